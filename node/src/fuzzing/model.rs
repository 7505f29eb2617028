//! Sequences of commands against a reference tally: a plain map of each
//! TPS's current numbers and revision, and of every id used. After every
//! command the tally's outcome must be the model's, and its nasional totals
//! the model's sums; at the end a restore from the records agrees too.

use std::collections::BTreeMap;

use arbitrary::Unstructured;
use rekap_proto::pb;

use super::world::{self, CONTEST, TPS};
use crate::tally::TallyState;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Numbers {
    v1: i64,
    v2: i64,
    ts: i64,
}

impl Numbers {
    fn submission(&self, id: &str, tps: &str) -> pb::Submission {
        let votes = |c: &str, v| pb::CandidateVotes {
            candidate_id: c.into(),
            votes: v,
        };
        pb::Submission {
            submission_id: id.into(),
            tps_id: tps.into(),
            contest_id: CONTEST.into(),
            votes: vec![votes("01", self.v1), votes("02", self.v2)],
            sah: Some(self.v1 + self.v2),
            tidak_sah: Some(self.ts),
            total: Some(self.v1 + self.v2 + self.ts),
            ..Default::default()
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Used {
    Corrected(usize),
    Cleared(usize),
}

#[derive(Default)]
struct Model {
    /// TPS index -> (revision, numbers).
    results: BTreeMap<usize, (u64, Numbers)>,
    /// TPS index -> the id and numbers of its first submission: that id
    /// counts only within its own result.
    firsts: BTreeMap<usize, (String, Numbers)>,
    /// The ids of later revisions, which count across all results.
    ids: BTreeMap<String, Used>,
}

/// What the model expects of one command: accepted at a revision, a
/// duplicate, or refused by a rule.
#[derive(Debug, PartialEq, Eq)]
enum Expect {
    Revision(u64),
    Duplicate,
    Refused(&'static str),
}

fn numbers(u: &mut Unstructured) -> arbitrary::Result<Numbers> {
    Ok(Numbers {
        v1: u.int_in_range(0..=300)?,
        v2: u.int_in_range(0..=300)?,
        ts: u.int_in_range(0..=20)?,
    })
}

fn id(u: &mut Unstructured) -> arbitrary::Result<String> {
    Ok(format!("id{}", u.int_in_range(0..=11)?))
}

impl Model {
    fn submit(&mut self, id: &str, t: usize, n: Numbers) -> Expect {
        if let Some((first, numbers)) = self.firsts.get(&t)
            && first == id
        {
            return if *numbers == n {
                Expect::Duplicate
            } else {
                Expect::Refused("submission_id_reused")
            };
        }
        if self.ids.contains_key(id) {
            return Expect::Refused("submission_id_reused");
        }
        match self.results.get(&t) {
            Some((_, cur)) if *cur == n => Expect::Duplicate,
            Some(_) => Expect::Refused("result_exists"),
            None => {
                self.results.insert(t, (1, n));
                self.firsts.insert(t, (id.into(), n));
                Expect::Revision(1)
            }
        }
    }

    /// A correction (`Some(numbers)`) or a flag clearing (`None`).
    fn revise(
        &mut self,
        id: &str,
        t: usize,
        replaces: u64,
        new: Option<Numbers>,
        flagged: bool,
    ) -> Expect {
        let kind = if new.is_some() {
            Used::Corrected(t)
        } else {
            Used::Cleared(t)
        };
        if self.firsts.get(&t).is_some_and(|(first, _)| first == id) {
            return Expect::Refused("request_id_reused");
        }
        if let Some(used) = self.ids.get(id) {
            return if *used == kind {
                Expect::Duplicate
            } else {
                Expect::Refused("request_id_reused")
            };
        }
        let Some((rev, cur)) = self.results.get(&t).copied() else {
            return Expect::Refused("result_exists");
        };
        if replaces != rev {
            return Expect::Refused("stale_revision");
        }
        match new {
            Some(n) if n == cur => return Expect::Refused("correction_changes_nothing"),
            None if !flagged => return Expect::Refused("result_flagged"),
            _ => {}
        }
        self.results.insert(t, (rev + 1, new.unwrap_or(cur)));
        self.ids.insert(id.into(), kind);
        Expect::Revision(rev + 1)
    }
}

fn outcome_of_submit(item: &pb::BatchItem) -> Expect {
    match &item.result {
        Some(pb::batch_item::Result::Outcome(o))
            if o.status == pb::SubmitStatus::Duplicate as i32 =>
        {
            Expect::Duplicate
        }
        Some(pb::batch_item::Result::Outcome(o)) => Expect::Revision(o.revision),
        Some(pb::batch_item::Result::Rejection(r)) => Expect::Refused(leak(&r.rule)),
        None => panic!("empty batch item"),
    }
}

fn outcome_of_revision(resp: &pb::CommandResponse) -> Expect {
    match &resp.kind {
        Some(pb::command_response::Kind::Correct(c)) if c.duplicate => Expect::Duplicate,
        Some(pb::command_response::Kind::Correct(c)) => {
            Expect::Revision(c.result.as_ref().map_or(0, |r| r.revision))
        }
        Some(pb::command_response::Kind::Rejection(r)) => Expect::Refused(leak(&r.rule)),
        other => panic!("unexpected response {other:?}"),
    }
}

/// Rule names are a small fixed set; comparing them as `&'static str` keeps
/// `Expect` simple.
fn leak(rule: &str) -> &'static str {
    const RULES: [&str; 7] = [
        "submission_id_reused",
        "result_exists",
        "request_id_reused",
        "stale_revision",
        "correction_changes_nothing",
        "result_flagged",
        "id_format",
    ];
    RULES
        .iter()
        .find(|r| **r == rule)
        .copied()
        .unwrap_or_else(|| panic!("unexpected rule {rule}"))
}

fn flagged(st: &TallyState, t: usize) -> bool {
    st.tps_result(TPS[t], CONTEST)
        .map(|r| !r.janggal.is_empty())
        .unwrap_or(false)
}

fn check_sums(st: &TallyState, model: &Model) {
    let tot = st.totals("ID", CONTEST).expect("nasional totals");
    let sum = |f: fn(&Numbers) -> i64| {
        model
            .results
            .values()
            .map(|(_, n)| f(n) as u64)
            .sum::<u64>()
    };
    assert_eq!(tot.tps_reported, model.results.len() as u64, "TPS reported");
    assert_eq!(tot.candidates[0].votes, sum(|n| n.v1), "paslon 01");
    assert_eq!(tot.candidates[1].votes, sum(|n| n.v2), "paslon 02");
    assert_eq!(tot.sah, sum(|n| n.v1 + n.v2), "sah");
    assert_eq!(tot.tidak_sah, sum(|n| n.ts), "tidak sah");
    assert_eq!(tot.total, sum(|n| n.v1 + n.v2 + n.ts), "total");
    let janggal = model.results.keys().filter(|t| flagged(st, **t)).count() as u64;
    assert_eq!(
        tot.tps_janggal, janggal,
        "flagged TPS count against the flagged results"
    );
}

fn command(kind: pb::command::Kind) -> pb::Command {
    pb::Command {
        kind: Some(kind),
        principal: None,
        proposed_at_ms: 0,
    }
}

/// Runs commands decoded from `data` against the tally and the model.
pub fn command_sequence(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let mut st = world::state();
    let mut model = Model::default();
    let mut index = 2u64;
    while !u.is_empty() && index < 300 {
        if step(&mut u, &mut st, &mut model, index).is_err() {
            break;
        }
        check_sums(&st, &model);
        index += 1;
    }
    let back = TallyState::restore(st.records()).expect("restore");
    check_sums(&back, &model);
    assert_eq!(
        super::world::recounted(&st).records(),
        st.records(),
        "persisted aggregates or request index differ from a recount"
    );
}

fn step(
    u: &mut Unstructured,
    st: &mut TallyState,
    model: &mut Model,
    index: u64,
) -> arbitrary::Result<()> {
    let t = u.int_in_range(0..=TPS.len() - 1)?;
    match u.int_in_range(0..=3u8)? {
        op @ (0 | 1) => {
            let count = if op == 0 { 1 } else { u.int_in_range(1..=4)? };
            let mut items = Vec::new();
            let mut expected = Vec::new();
            for k in 0..count {
                let tk = if k == 0 {
                    t
                } else {
                    u.int_in_range(0..=TPS.len() - 1)?
                };
                let (i, n) = (id(u)?, numbers(u)?);
                expected.push(model.submit(&i, tk, n));
                items.push(n.submission(&i, TPS[tk]));
            }
            let (resp, _) = st.apply(
                &command(pb::command::Kind::Submit(pb::SubmitBatchRequest {
                    submissions: items,
                })),
                index,
            );
            let Some(pb::command_response::Kind::Submit(b)) = resp.kind else {
                panic!("a batch answers per item: {resp}");
            };
            let got: Vec<Expect> = b.items.iter().map(outcome_of_submit).collect();
            assert_eq!(got, expected, "submissions");
        }
        op => {
            let i = id(u)?;
            let rev = model.results.get(&t).map_or(1, |(r, _)| *r);
            let replaces = if u.ratio(7, 8)? { rev } else { rev + 1 };
            let new = if op == 2 { Some(numbers(u)?) } else { None };
            let expected = model.revise(&i, t, replaces, new, flagged(st, t));
            let kind = match new {
                Some(n) => pb::command::Kind::Correct(pb::CorrectRequest {
                    request_id: i.clone(),
                    tps_id: TPS[t].into(),
                    contest_id: CONTEST.into(),
                    replaces_revision: replaces,
                    reason: pb::CorrectionReason::Recount as i32,
                    submission: Some(n.submission("ignored", TPS[t])),
                    ..Default::default()
                }),
                None => pb::command::Kind::ClearFlags(pb::ClearFlagsRequest {
                    request_id: i.clone(),
                    tps_id: TPS[t].into(),
                    contest_id: CONTEST.into(),
                    replaces_revision: replaces,
                    reason: pb::CorrectionReason::Recount as i32,
                    ..Default::default()
                }),
            };
            let (resp, _) = st.apply(&command(kind), index);
            assert_eq!(
                outcome_of_revision(&resp),
                expected,
                "revision {i} on {}",
                TPS[t]
            );
        }
    }
    Ok(())
}
