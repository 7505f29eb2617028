//! Keys of the state machine's records in its key/value store.
//!
//! One byte of kind, then the id(s). Kinds sort contests, regions, TPS and
//! results apart, and a restore can tell each record's type from its key.

pub const REGION: u8 = b'r';
pub const TPS: u8 = b't';
pub const CONTEST: u8 = b'c';
/// A TPS+contest result with all its revisions.
pub const RESULT: u8 = b'x';
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
const _: () = assert!(
    AUDIT < REGION
        && AUDIT < TPS
        && AUDIT < CONTEST
        && AUDIT < RESULT
        && AUDIT < CHAIN
        && AUDIT < USER
        && AUDIT < REMOVED_NODES
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
    let mut k = with_kind(RESULT, tps_id);
    k.push(0);
    k.extend_from_slice(contest_id.as_bytes());
    k
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
