//! The tally state machine: registry, results, idempotency and aggregates.
//!
//! Pure and deterministic: no I/O, no clocks, no openraft types. `apply`
//! takes a replicated command and the log index it sits at, changes the
//! in-memory state, and returns the response together with the record writes
//! the storage layer must persist in the same atomic batch. `restore` rebuilds
//! the state (aggregates included) from those records. Aggregates per region
//! and contest are maintained incrementally so totals and progress of any
//! region are read in O(1), never by scanning its TPS.

pub mod auth;
pub mod chain;
mod correct;
pub mod keys;
mod query;
mod registry;
pub mod revise;
pub mod rules;
mod submit;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_revisions;
mod users;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use prost::Message;
use rekap_proto::pb;

pub use auth::{Action, Perm};
pub use chain::Chain;
pub use query::{JanggalPage, MissingPage};
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
}

/// A record write for the storage layer: `None` deletes the key.
pub type Write = (Vec<u8>, Option<Vec<u8>>);

/// A region with its place in the tree.
#[derive(Debug, Clone)]
struct RegionNode {
    region: pb::Region,
    children: BTreeSet<String>,
    /// TPS ids; only a desa has any.
    tps: BTreeSet<String>,
}

/// Running sums of one region for one contest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Aggregate {
    /// In the contest's candidate order.
    votes: Vec<u64>,
    sah: u64,
    tidak_sah: u64,
    total: u64,
    tps_reported: u64,
    tps_total: u64,
    tps_janggal: u64,
}

type ResultKey = (String, String);

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
    }
}

#[derive(Debug, Clone)]
pub struct TallyState {
    regions: HashMap<String, RegionNode>,
    tps: HashMap<String, pb::Tps>,
    contests: BTreeMap<String, pb::Contest>,
    results: HashMap<ResultKey, pb::ResultHistory>,
    /// Submission or correction request id -> the result and the revision
    /// it created.
    by_request: HashMap<String, (ResultKey, u64)>,
    aggregates: HashMap<ResultKey, Aggregate>,
    chain: Chain,
    users: BTreeMap<String, UserEntry>,
    removed_nodes: BTreeSet<u64>,
}

impl Default for TallyState {
    fn default() -> Self {
        Self::new()
    }
}

impl TallyState {
    pub fn new() -> Self {
        let root = pb::Region {
            code: NASIONAL.to_string(),
            parent_code: String::new(),
            level: pb::RegionLevel::Nasional as i32,
            name: "NASIONAL".to_string(),
        };
        let mut regions = HashMap::new();
        regions.insert(
            NASIONAL.to_string(),
            RegionNode {
                region: root,
                children: BTreeSet::new(),
                tps: BTreeSet::new(),
            },
        );
        TallyState {
            regions,
            tps: HashMap::new(),
            contests: BTreeMap::new(),
            results: HashMap::new(),
            by_request: HashMap::new(),
            aggregates: HashMap::new(),
            chain: Chain::default(),
            users: BTreeMap::new(),
            removed_nodes: BTreeSet::new(),
        }
    }

    /// Applies one replicated command. Deterministic: the same state and
    /// command always give the same response and writes. The command's
    /// principal is authorized first, against the users as of this index.
    /// Every command, refused or not, extends the audit chain.
    pub fn apply(
        &mut self,
        cmd: &pb::Command,
        log_index: u64,
    ) -> (pb::CommandResponse, Vec<Write>) {
        use pb::command::Kind;
        use pb::command_response::Kind as R;
        let mut writes = Vec::new();
        let who = cmd.principal.as_ref();
        let kind = match self.check_command(cmd) {
            Err(rej) => R::Rejection(rej),
            Ok(()) => match &cmd.kind {
                Some(Kind::LoadRegistry(req)) => either(
                    self.load_registry(req, log_index, &mut writes),
                    R::LoadRegistry,
                ),
                Some(Kind::Submit(batch)) => {
                    R::Submit(self.submit_batch(&batch.submissions, log_index, who, &mut writes))
                }
                Some(Kind::Correct(req)) => {
                    either(self.correct(req, log_index, who, &mut writes), R::Correct)
                }
                Some(Kind::ClearFlags(req)) => either(
                    self.clear_flags(req, log_index, who, &mut writes),
                    R::Correct,
                ),
                Some(Kind::Review(req)) => {
                    either(self.review(req, log_index, who, &mut writes), R::Correct)
                }
                Some(Kind::Objection(req)) => {
                    either(self.object(req, log_index, who, &mut writes), R::Correct)
                }
                Some(Kind::UserAdmin(req)) => {
                    either(self.user_admin(req, log_index, &mut writes), R::User)
                }
                Some(Kind::BootstrapAdmin(req)) => {
                    either(self.bootstrap_admin(req, log_index, &mut writes), R::User)
                }
                None => R::Rejection(rules::invalid("command", "empty command")),
            },
        };
        self.chain.extend(log_index, cmd, &mut writes);
        (pb::CommandResponse { kind: Some(kind) }, writes)
    }

    /// The audit chain as of the last applied command.
    pub fn audit_chain(&self) -> &Chain {
        &self.chain
    }

    /// Rebuilds the state from persisted records (in any order).
    pub fn restore<I>(records: I) -> Result<Self, RestoreError>
    where
        I: IntoIterator<Item = (Vec<u8>, Vec<u8>)>,
    {
        let (mut regions, mut tps, mut contests, mut results) = (vec![], vec![], vec![], vec![]);
        let mut chain = Chain::default();
        let mut users = BTreeMap::new();
        let mut removed = Vec::new();
        for (k, v) in records {
            match k.first() {
                Some(&keys::REGION) => regions.push(pb::Region::decode(v.as_slice())?),
                Some(&keys::TPS) => tps.push(pb::Tps::decode(v.as_slice())?),
                Some(&keys::CONTEST) => contests.push(pb::Contest::decode(v.as_slice())?),
                Some(&keys::RESULT) => results.push(pb::ResultHistory::decode(v.as_slice())?),
                Some(&keys::CHAIN) => {
                    let p = pb::GetChainHeadResponse::decode(v.as_slice())?;
                    chain =
                        Chain::from_pb(&p).ok_or(RestoreError::UnknownKind(Some(keys::CHAIN)))?;
                }
                Some(&keys::AUDIT) => {}
                Some(&keys::USER) => {
                    let u = pb::User::decode(v.as_slice())?;
                    users.insert(u.name.clone(), UserEntry::new(u));
                }
                Some(&keys::REMOVED_NODES) => {
                    removed = pb::RemovedNodes::decode(v.as_slice())?.node_ids;
                }
                other => return Err(RestoreError::UnknownKind(other.copied())),
            }
        }
        let mut st = TallyState::new();
        st.chain = chain;
        st.users = users;
        st.removed_nodes = removed.into_iter().collect();
        regions.sort_by_key(|r| r.level);
        for r in regions {
            st.insert_region(r);
        }
        for t in tps {
            st.insert_tps(t);
        }
        for c in contests {
            st.insert_contest(c);
        }
        for r in results {
            st.insert_result(r);
        }
        Ok(st)
    }

    /// Every record as `restore` expects it, in key order, except the audit
    /// entries (which `restore` never reads). For tests and consistency
    /// checks; the store itself snapshots from RocksDB.
    pub fn records(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut out: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        for n in self.regions.values().filter(|n| n.region.code != NASIONAL) {
            out.push((keys::region(&n.region.code), n.region.encode_to_vec()));
        }
        for t in self.tps.values() {
            out.push((keys::tps(&t.tps_id), t.encode_to_vec()));
        }
        for c in self.contests.values() {
            out.push((keys::contest(&c.contest_id), c.encode_to_vec()));
        }
        for ((t, c), r) in &self.results {
            out.push((keys::result(t, c), r.encode_to_vec()));
        }
        if self.chain.commands > 0 {
            out.push((keys::chain(), self.chain.to_pb().encode_to_vec()));
        }
        for u in self.users.values() {
            out.push((keys::user(&u.user.name), u.user.encode_to_vec()));
        }
        if !self.removed_nodes.is_empty() {
            let rec = pb::RemovedNodes {
                node_ids: self.removed_nodes.iter().copied().collect(),
            };
            out.push((keys::removed_nodes(), rec.encode_to_vec()));
        }
        out.sort();
        out
    }

    /// Codes from `code` up to nasional, `code` first, borrowed from the
    /// tree (empty for an unknown code).
    fn chain_of(&self, code: &str) -> Vec<&str> {
        let mut out = Vec::with_capacity(5);
        let mut node = self.regions.get(code);
        while let Some(n) = node {
            out.push(n.region.code.as_str());
            if n.region.code == NASIONAL {
                break;
            }
            node = self.regions.get(&n.region.parent_code);
        }
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
    /// these ancestors.
    fn covering(&self, chain: &[String]) -> Vec<(String, usize)> {
        self.contests
            .values()
            .filter(|c| self.covers(c, chain))
            .map(|c| (c.contest_id.clone(), c.candidates.len()))
            .collect()
    }

    fn covers(&self, contest: &pb::Contest, chain: &[impl AsRef<str>]) -> bool {
        let scope = scope_of(contest);
        chain.iter().any(|c| c.as_ref() == scope)
    }

    fn insert_region(&mut self, region: pb::Region) {
        let code = region.code.clone();
        let parent = region.parent_code.clone();
        match self.regions.get_mut(&code) {
            Some(n) => n.region = region,
            None => {
                self.regions.insert(
                    code.clone(),
                    RegionNode {
                        region,
                        children: BTreeSet::new(),
                        tps: BTreeSet::new(),
                    },
                );
            }
        }
        if let Some(p) = self.regions.get_mut(&parent) {
            p.children.insert(code);
        }
    }

    /// Adds or replaces a TPS. A new TPS counts towards `tps_total` of every
    /// contest that covers it, in every region above it.
    fn insert_tps(&mut self, t: pb::Tps) {
        let is_new = !self.tps.contains_key(&t.tps_id);
        if let Some(d) = self.regions.get_mut(&t.desa_code) {
            d.tps.insert(t.tps_id.clone());
        }
        if is_new {
            let chain = self.ancestors(&t.desa_code);
            let covering = self.covering(&chain);
            for (contest_id, n) in covering {
                for code in &chain {
                    self.agg_mut(code, &contest_id, n).tps_total += 1;
                }
            }
        }
        self.tps.insert(t.tps_id.clone(), t);
    }

    /// Adds or replaces a contest and recounts its `tps_total` everywhere.
    fn insert_contest(&mut self, c: pb::Contest) {
        let id = c.contest_id.clone();
        let n = c.candidates.len();
        self.aggregates.retain(|(_, cid), _| cid != &id);
        let scope = scope_of(&c).to_string();
        self.contests.insert(id.clone(), c);
        let mut desas = Vec::new();
        self.collect_desas(&scope, &mut desas);
        for desa in desas {
            let count = self.regions[&desa].tps.len() as u64;
            if count == 0 {
                continue;
            }
            for code in self.ancestors(&desa) {
                self.agg_mut(&code, &id, n).tps_total += count;
            }
        }
    }

    fn collect_desas(&self, code: &str, out: &mut Vec<String>) {
        if let Some(n) = self.regions.get(code) {
            if n.region.level == pb::RegionLevel::Desa as i32 {
                out.push(code.to_string());
            }
            for ch in &n.children {
                self.collect_desas(ch, out);
            }
        }
    }

    /// Adds a stored result (on restore) and indexes its request ids.
    fn insert_result(&mut self, h: pb::ResultHistory) {
        let Some(s) = current(&h).submission.as_ref() else {
            return;
        };
        let key = (s.tps_id.clone(), s.contest_id.clone());
        for r in &h.revisions {
            if let Some(sub) = &r.submission {
                self.by_request
                    .insert(sub.submission_id.clone(), (key.clone(), r.revision));
            }
        }
        let rev = current(&h).clone();
        self.contribute(&key, &rev, 1);
        self.results.insert(key, h);
    }

    /// Adds (`sign` = 1) or takes away (-1) a revision's figures in every
    /// region above its TPS. A correction takes away the old revision and
    /// adds the new, so aggregates move by exactly the difference.
    fn contribute(&mut self, key: &ResultKey, rev: &pb::Revision, sign: i64) {
        let Some(s) = rev.submission.as_ref() else {
            return;
        };
        let Some(contest) = self.contests.get(&key.1) else {
            return;
        };
        let Some(t) = self.tps.get(&key.0) else {
            return;
        };
        let votes: Vec<u64> = contest
            .candidates
            .iter()
            .map(|c| {
                s.votes
                    .iter()
                    .find(|v| v.candidate_id == c.candidate_id)
                    .map_or(0, |v| v.votes.max(0) as u64)
            })
            .collect();
        let n = votes.len();
        let num = |v: Option<i64>| v.unwrap_or(0).max(0) as u64;
        let (sah, tidak_sah, total) = (num(s.sah), num(s.tidak_sah), num(s.total));
        let flagged = u64::from(!rev.janggal.is_empty());
        let add = |x: &mut u64, d: u64| {
            *x = if sign > 0 { *x + d } else { *x - d };
        };
        for code in self.ancestors(&t.desa_code.clone()) {
            let a = self.agg_mut(&code, &key.1, n);
            for (sum, v) in a.votes.iter_mut().zip(&votes) {
                add(sum, *v);
            }
            add(&mut a.sah, sah);
            add(&mut a.tidak_sah, tidak_sah);
            add(&mut a.total, total);
            add(&mut a.tps_reported, 1);
            add(&mut a.tps_janggal, flagged);
        }
    }

    fn agg_mut(&mut self, region: &str, contest: &str, n: usize) -> &mut Aggregate {
        let a = self
            .aggregates
            .entry((region.to_string(), contest.to_string()))
            .or_default();
        if a.votes.len() < n {
            a.votes.resize(n, 0);
        }
        a
    }

    /// Number of accepted results; for status and tests.
    pub fn result_count(&self) -> usize {
        self.results.len()
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
