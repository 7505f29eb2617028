//! Keys of the state machine's records in its key/value store.
//!
//! One byte of kind, then the id(s). Kinds sort contests, regions, TPS and
//! results apart, and a restore can tell each record's type from its key.

pub const REGION: u8 = b'r';
pub const TPS: u8 = b't';
pub const CONTEST: u8 = b'c';
/// A contest+TPS result with all its revisions. Contest first: one
/// contest's results are one run of keys, so an import of a contest in TPS
/// order writes tables that overlap no other contest's, and RocksDB moves
/// them down its levels without rewriting them. Sorts after every other
/// kind, so the store keeps results in a column family of their own and
/// still reads the state in key order by reading its families in turn.
pub const RESULT: u8 = b'y';
/// Results of format 2 and before: TPS first (`x` TPS NUL contest). Moved
/// to `RESULT` when the store opens (`legacy_result_key`).
pub const LEGACY_RESULT: u8 = b'x';
/// The audit chain's head (one record).
pub const CHAIN: u8 = b'h';
/// One audit log entry per applied command, by big-endian log index. Never
/// read back into memory: the store serves them from disk, and skips them on
/// start by reading from the kind after this one, so it must sort first.
pub const AUDIT: u8 = b'a';
/// A user with their roles.
pub const USER: u8 = b'u';
/// The node ids removed from the cluster (one record).
pub const REMOVED_NODES: u8 = b'n';
/// The cluster's id (one record).
pub const CLUSTER: u8 = b'i';
/// Running sums of one region for one contest (`aggregate.rs`).
pub const AGGREGATE: u8 = b'g';
/// A request id of a revision after the first (correction, flag clearing,
/// review, objection) -> the revision it created. A first submission's id
/// is kept only in its own result: one record fewer per result, and
/// compaction's cost goes with the number of records. Records from before,
/// pointing at a revision 1, are ignored.
pub const REQUEST: u8 = b'q';
/// The layout version of these records (one record).
pub const FORMAT: u8 = b'f';
/// Aggregates are persisted and requests indexed from version 2 on;
/// results are keyed contest first from version 3 on.
pub const FORMAT_VERSION: &[u8] = b"3";
/// The version whose records differ from this one's only in the result
/// keys, which the store moves before the state is loaded.
pub const FORMAT_TPS_FIRST: &[u8] = b"2";
const _: () = assert!(
    AUDIT < AGGREGATE
        && AUDIT < REQUEST
        && AUDIT < FORMAT
        && AUDIT < REGION
        && AUDIT < TPS
        && AUDIT < CONTEST
        && AUDIT < RESULT
        && AUDIT < CHAIN
        && AUDIT < USER
        && AUDIT < REMOVED_NODES
        && AUDIT < CLUSTER
);
const _: () = assert!(
    RESULT > LEGACY_RESULT
        && RESULT > AGGREGATE
        && RESULT > REQUEST
        && RESULT > FORMAT
        && RESULT > REGION
        && RESULT > TPS
        && RESULT > CONTEST
        && RESULT > CHAIN
        && RESULT > USER
        && RESULT > REMOVED_NODES
        && RESULT > CLUSTER
);

pub fn region(code: &str) -> Vec<u8> {
    with_kind(REGION, code)
}

pub fn tps(tps_id: &str) -> Vec<u8> {
    with_kind(TPS, tps_id)
}

pub fn contest(contest_id: &str) -> Vec<u8> {
    with_kind(CONTEST, contest_id)
}

/// Ids never contain NUL (see `rules::check_id`), so it separates the two.
pub fn result(tps_id: &str, contest_id: &str) -> Vec<u8> {
    result_of(tps_id.as_bytes(), contest_id)
}

/// `result` for an id as bytes (cut from an encoded `Tps`).
pub fn result_of(tps_id: &[u8], contest_id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(2 + tps_id.len() + contest_id.len());
    k.push(RESULT);
    k.extend_from_slice(contest_id.as_bytes());
    k.push(0);
    k.extend_from_slice(tps_id);
    k
}

/// The (TPS, contest) of a result key.
pub fn result_ids(key: &[u8]) -> Option<(String, String)> {
    let (contest, tps) = split_nul(key.strip_prefix(&[RESULT])?)?;
    Some((tps, contest))
}

/// The key a result record of format 2 (TPS first) has now; `None` for
/// any other key.
pub fn legacy_result_key(key: &[u8]) -> Option<Vec<u8>> {
    let rest = key.strip_prefix(&[LEGACY_RESULT])?;
    let nul = rest.iter().position(|b| *b == 0)?;
    Some(result_of(
        &rest[..nul],
        std::str::from_utf8(&rest[nul + 1..]).ok()?,
    ))
}

/// Region codes and contest ids never contain NUL either.
pub fn aggregate(region: &str, contest_id: &str) -> Vec<u8> {
    let mut k = with_kind(AGGREGATE, region);
    k.push(0);
    k.extend_from_slice(contest_id.as_bytes());
    k
}

pub fn request(request_id: &str) -> Vec<u8> {
    with_kind(REQUEST, request_id)
}

pub fn format() -> Vec<u8> {
    vec![FORMAT]
}

/// The two ids of an aggregate key, after its kind byte.
pub fn split_pair(key: &[u8]) -> Option<(String, String)> {
    split_nul(key.get(1..)?)
}

/// `a` NUL `b`, both UTF-8.
fn split_nul(bytes: &[u8]) -> Option<(String, String)> {
    let nul = bytes.iter().position(|b| *b == 0)?;
    let a = std::str::from_utf8(&bytes[..nul]).ok()?;
    let b = std::str::from_utf8(&bytes[nul + 1..]).ok()?;
    Some((a.to_string(), b.to_string()))
}

/// A request record's value: TPS id, NUL, contest id, NUL, revision as 8
/// big-endian bytes.
pub fn request_value(tps_id: &str, contest_id: &str, revision: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(tps_id.len() + contest_id.len() + 10);
    v.extend_from_slice(tps_id.as_bytes());
    v.push(0);
    v.extend_from_slice(contest_id.as_bytes());
    v.push(0);
    v.extend_from_slice(&revision.to_be_bytes());
    v
}

pub fn parse_request_value(v: &[u8]) -> Option<((String, String), u64)> {
    let (ids, rev) = v.split_at_checked(v.len().checked_sub(8)?)?;
    let ids = split_nul(ids.strip_suffix(&[0])?)?;
    Some((ids, u64::from_be_bytes(rev.try_into().ok()?)))
}

pub fn chain() -> Vec<u8> {
    vec![CHAIN]
}

pub fn user(name: &str) -> Vec<u8> {
    with_kind(USER, name)
}

pub fn removed_nodes() -> Vec<u8> {
    vec![REMOVED_NODES]
}

pub fn cluster() -> Vec<u8> {
    vec![CLUSTER]
}

pub fn audit(index: u64) -> Vec<u8> {
    let mut k = vec![AUDIT];
    k.extend_from_slice(&index.to_be_bytes());
    k
}

fn with_kind(kind: u8, id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(id.len() + 1);
    k.push(kind);
    k.extend_from_slice(id.as_bytes());
    k
}
