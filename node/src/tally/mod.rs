//! The tally state machine: registry, results, idempotency and aggregates.
//!
//! Pure and deterministic: no I/O of its own, no clocks, no openraft types.
//! `apply` takes a replicated command and the log index it sits at, changes
//! the state, and returns the response together with the record writes the
//! storage layer must persist in the same atomic batch. Results, their
//! histories and the request-id index are records read on demand through
//! `Records` (`records.rs`); memory holds only the registry's tree, compact,
//! and the aggregates per region and contest, which are persisted with the
//! results they sum. Totals and progress of any region are read in O(1),
//! never by scanning its TPS, and a restart reads the aggregates back
//! instead of recounting.

mod aggregate;
pub mod auth;
pub mod browse;
pub mod chain;
mod correct;
pub mod keys;
mod load;
mod query;
pub mod records;
mod registry;
pub mod revise;
pub mod rules;
pub mod slice;
mod submit;
#[cfg(test)]
pub(crate) mod tests;
#[cfg(test)]
mod tests_revisions;
mod tree;
mod users;
pub mod wire;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use indexmap::{IndexMap, IndexSet};
use prost::Message;
use rekap_proto::pb;
use rustc_hash::FxBuildHasher;

use aggregate::Aggregate;
pub use auth::{Action, Perm};
pub use chain::Chain;
pub use query::{ExportList, JanggalPage, KabupatenCount, MissingPage};
use records::Overlay;
pub use records::{MemRecords, Records};
use tree::{RegionNode, TpsEntry};
pub use users::UserEntry;

/// Code of the single nasional region, the root of the hierarchy.
pub const NASIONAL: &str = "ID";

/// A persisted record that `restore` cannot read.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("undecodable state-machine record: {0}")]
    Decode(#[from] prost::DecodeError),
    #[error("unknown state-machine record kind {0:?}")]
    UnknownKind(Option<u8>),
    #[error("undecodable state-machine record {0:?}")]
    Bad(Vec<u8>),
    /// Written by a newer rekap-node (a snapshot or backup from it): its
    /// records are not ones this build can read right.
    #[error(
        "the state's record format {} is newer than this build's ({}): upgrade this node",
        String::from_utf8_lossy(.0),
        String::from_utf8_lossy(keys::FORMAT_VERSION)
    )]
    NewerFormat(Vec<u8>),
    #[error(transparent)]
    Read(#[from] records::ReadError),
}

/// A record write for the storage layer: `None` deletes the key.
pub type Write = (Vec<u8>, Option<Vec<u8>>);

type ResultKey = (String, String);

/// FxHash for the maps every apply looks up several times per submission
/// (SipHash and those lookups were a twelfth of a follower's apply). Their keys are registry
/// codes and contest ids that an admin loaded; a submission only looks
/// keys up, so no caller can flood them with colliding keys.
type Fast = FxBuildHasher;

/// `(region, contest)` borrowed: finds an aggregate without allocating. It
/// hashes exactly as the owned `ResultKey` does (fields in order).
#[derive(Hash)]
struct AggRef<'a>(&'a str, &'a str);

impl indexmap::Equivalent<ResultKey> for AggRef<'_> {
    fn equivalent(&self, k: &ResultKey) -> bool {
        self.0 == k.0 && self.1 == k.1
    }
}

/// The first revision of `h` and its numbers, if `request_id` made it:
/// a first submission's id is kept only there (`keys::REQUEST`).
fn first_submission<'a>(
    h: &'a pb::ResultHistory,
    request_id: &str,
) -> Option<(&'a pb::Revision, &'a pb::Submission)> {
    let first = h.revisions.first()?;
    let numbers = first.submission.as_ref()?;
    (numbers.submission_id == request_id).then_some((first, numbers))
}

/// The current (last) revision of a result.
fn current(h: &pb::ResultHistory) -> &pb::Revision {
    h.revisions
        .last()
        .expect("a stored result has at least one revision")
}

/// The public view of a result: its current revision.
fn view(h: &pb::ResultHistory) -> pb::StoredResult {
    let c = current(h);
    pb::StoredResult {
        submission: c.submission.clone(),
        revision: c.revision,
        log_index: c.log_index,
        janggal: c.janggal.clone(),
        submitted_by: h.revisions[0].author.clone(),
        changed_by: c.author.clone(),
        submitted_at_ms: h.revisions[0].at_ms,
        changed_at_ms: c.at_ms,
    }
}

#[derive(Clone)]
pub struct TallyState {
    /// Insertion-ordered so a TPS names its desa by index.
    regions: IndexMap<String, RegionNode, Fast>,
    tps: IndexMap<Box<str>, TpsEntry, Fast>,
    contests: BTreeMap<String, pb::Contest>,
    /// Contest ids by scope code: a TPS finds the contests covering it by
    /// looking up its few ancestors, not by scanning every contest.
    by_scope: HashMap<String, BTreeSet<String>>,
    aggregates: IndexMap<ResultKey, Aggregate, Fast>,
    /// Aggregates changed by the command being applied.
    dirty: IndexSet<ResultKey, Fast>,
    chain: Chain,
    users: BTreeMap<String, UserEntry>,
    removed_nodes: BTreeSet<u64>,
    /// Set when the first membership is applied, or by a restore.
    cluster_id: String,
    /// The last registry command this process applied (in memory only):
    /// names and shapes a view shows may have changed there.
    registry_changed_at: Option<u64>,
    /// The time of the command being applied (its `proposed_at_ms`): the
    /// revisions it makes carry it.
    proposed_at_ms: i64,
    records: Overlay,
    /// The writes of the command being applied, in order.
    log: Vec<Write>,
}

impl std::fmt::Debug for TallyState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TallyState")
            .field("regions", &self.regions.len())
            .field("tps", &self.tps.len())
            .field("contests", &self.contests.len())
            .field("aggregates", &self.aggregates.len())
            .field("chain", &self.chain)
            .finish_non_exhaustive()
    }
}

impl Default for TallyState {
    fn default() -> Self {
        Self::new()
    }
}

impl TallyState {
    /// An empty state over an empty in-memory store: for tests.
    pub fn new() -> Self {
        let mut st = Self::empty(Arc::new(MemRecords::default()));
        st.put(keys::format(), Some(keys::FORMAT_VERSION.to_vec()));
        st.log.clear();
        st
    }

    fn empty(base: Arc<dyn Records>) -> Self {
        let root = pb::Region {
            code: NASIONAL.to_string(),
            parent_code: String::new(),
            level: pb::RegionLevel::Nasional as i32,
            name: "NASIONAL".to_string(),
        };
        let mut regions = IndexMap::default();
        regions.insert(NASIONAL.to_string(), RegionNode::new(root, None));
        TallyState {
            regions,
            tps: IndexMap::default(),
            contests: BTreeMap::new(),
            by_scope: HashMap::new(),
            aggregates: IndexMap::default(),
            dirty: IndexSet::default(),
            chain: Chain::default(),
            users: BTreeMap::new(),
            removed_nodes: BTreeSet::new(),
            cluster_id: String::new(),
            registry_changed_at: None,
            proposed_at_ms: 0,
            records: Overlay::new(base),
            log: Vec::new(),
        }
    }

    /// Applies one replicated command. Deterministic: the same state and
    /// command always give the same response and writes. The command's
    /// principal is authorized first, against the users as of this index.
    /// Every command, refused or not, extends the audit chain. The writes
    /// stay visible to later commands until `settle`.
    pub fn apply(
        &mut self,
        cmd: &pb::Command,
        log_index: u64,
    ) -> (pb::CommandResponse, Vec<Write>) {
        self.apply_encoded(cmd, &cmd.encode_to_vec(), log_index)
    }

    /// `apply`, given the command's protobuf encoding (which the audit
    /// chain hashes) by a caller that holds it already.
    pub fn apply_encoded(
        &mut self,
        cmd: &pb::Command,
        encoded: &[u8],
        log_index: u64,
    ) -> (pb::CommandResponse, Vec<Write>) {
        use pb::command::Kind;
        use pb::command_response::Kind as R;
        let who = cmd.principal.as_ref();
        self.proposed_at_ms = cmd.proposed_at_ms;
        let kind = match self.check_command(cmd) {
            Err(rej) => R::Rejection(rej),
            Ok(()) => match &cmd.kind {
                Some(Kind::LoadRegistry(req)) => {
                    self.registry_changed_at = Some(log_index);
                    either(self.load_registry(req, log_index), R::LoadRegistry)
                }
                Some(Kind::Submit(batch)) => {
                    R::Submit(self.submit_batch(&batch.submissions, log_index, who))
                }
                Some(Kind::Correct(req)) => either(self.correct(req, log_index, who), R::Correct),
                Some(Kind::ClearFlags(req)) => {
                    either(self.clear_flags(req, log_index, who), R::Correct)
                }
                Some(Kind::Review(req)) => either(self.review(req, log_index, who), R::Correct),
                Some(Kind::Objection(req)) => either(self.object(req, log_index, who), R::Correct),
                Some(Kind::UserAdmin(req)) => either(self.user_admin(req, log_index), R::User),
                Some(Kind::BootstrapAdmin(req)) => {
                    either(self.bootstrap_admin(req, log_index), R::User)
                }
                None => R::Rejection(rules::invalid("command", "empty command")),
            },
        };
        self.flush_aggregates(Some(log_index));
        let mut chain_writes = Vec::with_capacity(2);
        self.chain.extend(log_index, encoded, &mut chain_writes);
        for (k, v) in chain_writes {
            self.put(k, v);
        }
        let writes = std::mem::take(&mut self.log);
        (pb::CommandResponse { kind: Some(kind) }, writes)
    }

    /// The storage layer persisted every write returned so far: reads now
    /// go to it.
    pub fn settle(&mut self) {
        self.records.settle();
    }

    /// Writes made outside `apply` (by `load` upgrading an older layout)
    /// that the storage layer must persist before `settle`.
    pub fn unsettled(&self) -> Vec<Write> {
        self.records.pending()
    }

    fn put(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) {
        self.records.put(key.clone(), value.clone());
        self.log.push((key, value));
    }

    /// The last registry command this process applied, if any.
    pub fn registry_change(&self) -> Option<u64> {
        self.registry_changed_at
    }

    /// The audit chain as of the last applied command.
    pub fn audit_chain(&self) -> &Chain {
        &self.chain
    }

    /// Builds the state from a list of records (in any order): for tests.
    pub fn restore<I>(records: I) -> Result<Self, RestoreError>
    where
        I: IntoIterator<Item = (Vec<u8>, Vec<u8>)>,
    {
        Self::load(Arc::new(MemRecords::new(records)))
    }

    /// Every record in key order, except the audit entries: for tests and
    /// consistency checks; the store itself snapshots from RocksDB.
    pub fn records(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut out = Vec::new();
        self.records.scan(&[], &mut |k, v| {
            if k.first() != Some(&keys::AUDIT) {
                out.push((k.to_vec(), v.to_vec()));
            }
            true
        });
        out
    }

    /// A result with all its revisions.
    fn history(&self, tps_id: &str, contest_id: &str) -> Option<pb::ResultHistory> {
        let bytes = self.records.get(&keys::result(tps_id, contest_id))?;
        Some(pb::ResultHistory::decode(bytes.as_slice()).expect("a stored result decodes"))
    }

    fn has_result(&self, tps_id: &str, contest_id: &str) -> bool {
        self.records
            .get(&keys::result(tps_id, contest_id))
            .is_some()
    }

    /// The result and revision a request id created, for a request that
    /// names the result `tps_id`, `contest_id`: that result's first
    /// submission if the id is its, else a later revision of any result
    /// through the index. Own result first, so a retried submission is its
    /// own duplicate whatever other requests reused its id.
    fn request(
        &self,
        request_id: &str,
        tps_id: &str,
        contest_id: &str,
    ) -> Option<(ResultKey, u64)> {
        if self
            .history(tps_id, contest_id)
            .is_some_and(|h| first_submission(&h, request_id).is_some())
        {
            return Some(((tps_id.to_string(), contest_id.to_string()), 1));
        }
        self.later_request(request_id)
    }

    /// A request id's revision through the index of later revisions.
    fn later_request(&self, request_id: &str) -> Option<(ResultKey, u64)> {
        let bytes = self.records.get(&keys::request(request_id))?;
        let (key, rev) =
            keys::parse_request_value(&bytes).expect("a stored request record decodes");
        (rev > 1).then_some((key, rev))
    }

    /// Stores a result's history, indexing the request of its newest
    /// revision unless it is the first (found in the result itself).
    fn save_history(&mut self, key: &ResultKey, h: &pb::ResultHistory) {
        let rev = current(h);
        if let Some(sub) = rev.submission.as_ref().filter(|_| rev.revision > 1) {
            let v = keys::request_value(&key.0, &key.1, rev.revision);
            self.put(keys::request(&sub.submission_id), Some(v));
        }
        self.put(keys::result(&key.0, &key.1), Some(h.encode_to_vec()));
    }

    /// Codes from `code` up to nasional, `code` first, borrowed from the
    /// tree (empty for an unknown code).
    fn chain_of(&self, code: &str) -> Vec<&str> {
        let mut out = Vec::with_capacity(5);
        up_from(&self.regions, code, |c| out.push(c));
        out
    }

    /// Codes from the desa up to nasional, desa first, for callers that
    /// change the state while they walk them.
    fn ancestors(&self, desa_code: &str) -> Vec<String> {
        self.chain_of(desa_code)
            .into_iter()
            .map(String::from)
            .collect()
    }

    /// Contests (id, number of candidates) whose scope holds a TPS with
    /// these ancestors, in id order.
    fn covering(&self, chain: &[String]) -> Vec<(String, usize)> {
        let mut ids: Vec<&String> = chain
            .iter()
            .filter_map(|code| self.by_scope.get(code))
            .flatten()
            .collect();
        ids.sort_unstable();
        ids.into_iter()
            .map(|id| (id.clone(), self.contests[id].candidates.len()))
            .collect()
    }

    fn covers(&self, contest: &pb::Contest, chain: &[impl AsRef<str>]) -> bool {
        let scope = scope_of(contest);
        chain.iter().any(|c| c.as_ref() == scope)
    }

    /// Number of accepted results; for status and tests.
    pub fn result_count(&self) -> usize {
        self.contests
            .keys()
            .map(|c| self.aggregate(NASIONAL, c).tps_reported as usize)
            .sum()
    }
}

/// Calls `f` on each code from `code` up to nasional, `code` first (never
/// for an unknown code). A free function, so a caller can walk the tree
/// while it changes the aggregates.
fn up_from<'r>(
    regions: &'r IndexMap<String, RegionNode, Fast>,
    code: &str,
    f: impl FnMut(&'r str),
) {
    if let Some(i) = regions.get_index_of(code) {
        up_from_index(regions, i, f);
    }
}

/// `up_from` for the region at index `i`.
fn up_from_index<'r>(
    regions: &'r IndexMap<String, RegionNode, Fast>,
    i: usize,
    mut f: impl FnMut(&'r str),
) {
    let mut next = Some(i);
    while let Some((code, n)) = next.and_then(|i| regions.get_index(i)) {
        f(code.as_str());
        if code == NASIONAL {
            break;
        }
        next = n.parent.map(|p| p as usize);
    }
}

fn either<T>(
    r: Result<T, pb::Rejection>,
    ok: impl FnOnce(T) -> pb::command_response::Kind,
) -> pb::command_response::Kind {
    r.map_or_else(pb::command_response::Kind::Rejection, ok)
}

fn scope_of(c: &pb::Contest) -> &str {
    if c.scope_code.is_empty() {
        NASIONAL
    } else {
        &c.scope_code
    }
}
