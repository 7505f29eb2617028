//! Unit tests of the pure tally state machine.

use rekap_proto::pb;

use super::rules::code;
use super::*;

/// Records other than the audit chain's head, which every command moves.
pub(super) fn data_records(st: &TallyState) -> Vec<(Vec<u8>, Vec<u8>)> {
    st.records()
        .into_iter()
        .filter(|(k, _)| k[0] != keys::CHAIN)
        .collect()
}

pub(super) fn region(code: &str, parent: &str, level: pb::RegionLevel) -> pb::Region {
    pb::Region {
        code: code.into(),
        parent_code: parent.into(),
        level: level as i32,
        name: format!("NAME {code}"),
    }
}

pub(super) fn tps(id: &str, desa: &str, number: u32) -> pb::Tps {
    pb::Tps {
        tps_id: id.into(),
        desa_code: desa.into(),
        number,
        dpt: Some(300),
    }
}

pub(super) fn contest(id: &str, scope: &str) -> pb::Contest {
    let cand = |n: u32| pb::Candidate {
        candidate_id: format!("0{n}"),
        number: n,
        name: format!("PASLON {n}"),
    };
    pb::Contest {
        contest_id: id.into(),
        name: id.into(),
        scope_code: scope.into(),
        candidates: vec![cand(1), cand(2)],
    }
}

/// Two provinsi; provinsi 63 has kabupaten 63.02 with two kecamatan, one
/// desa each and 2 + 1 TPS; provinsi 11 has one TPS. Contests: PPWP
/// (nasional) and GUB-63 (provinsi 63 only).
pub(crate) fn registry() -> pb::Command {
    use pb::RegionLevel::*;
    let regions = vec![
        region("63.02.01.2001", "63.02.01", Desa),
        region("63", "", Provinsi),
        region("63.02", "63", Kabupaten),
        region("63.02.01", "63.02", Kecamatan),
        region("63.02.02", "63.02", Kecamatan),
        region("63.02.02.2001", "63.02.02", Desa),
        region("11", "ID", Provinsi),
        region("11.01", "11", Kabupaten),
        region("11.01.01", "11.01", Kecamatan),
        region("11.01.01.2001", "11.01.01", Desa),
    ];
    let tps = vec![
        tps("A1", "63.02.01.2001", 1),
        tps("A2", "63.02.01.2001", 2),
        tps("B1", "63.02.02.2001", 1),
        tps("C1", "11.01.01.2001", 1),
    ];
    pb::Command {
        principal: None,
        proposed_at_ms: 0,
        kind: Some(pb::command::Kind::LoadRegistry(pb::LoadRegistryRequest {
            regions,
            tps,
            contests: vec![contest("PPWP", ""), contest("GUB-63", "63")],
            remove_tps: vec![],
        })),
    }
}

pub(crate) fn sub(
    id: &str,
    tps: &str,
    contest: &str,
    v1: i64,
    v2: i64,
    tidak_sah: i64,
) -> pb::Submission {
    pb::Submission {
        submission_id: id.into(),
        tps_id: tps.into(),
        contest_id: contest.into(),
        votes: vec![
            pb::CandidateVotes {
                candidate_id: "01".into(),
                votes: v1,
            },
            pb::CandidateVotes {
                candidate_id: "02".into(),
                votes: v2,
            },
        ],
        sah: Some(v1 + v2),
        tidak_sah: Some(tidak_sah),
        total: Some(v1 + v2 + tidak_sah),
        ..Default::default()
    }
}

pub(crate) fn loaded() -> TallyState {
    let mut st = TallyState::new();
    let (resp, writes) = st.apply(&registry(), 1);
    match resp.kind {
        Some(pb::command_response::Kind::LoadRegistry(r)) => {
            assert_eq!((r.regions_added, r.tps_added, r.contests_added), (10, 4, 2));
        }
        other => panic!("registry refused: {other:?}"),
    }
    // 16 records, the chain head and the command's audit entry, and the
    // TPS counts of every region and contest.
    let (sums, rest): (Vec<_>, Vec<_>) = writes.iter().partition(|(k, _)| k[0] == keys::AGGREGATE);
    assert_eq!(rest.len(), 18);
    assert!(!sums.is_empty());
    st
}

pub(crate) fn submit(
    st: &mut TallyState,
    s: pb::Submission,
    index: u64,
) -> Result<pb::SubmitOutcome, pb::Rejection> {
    let cmd = pb::Command {
        principal: None,
        proposed_at_ms: 0,
        kind: Some(pb::command::Kind::Submit(pb::SubmitBatchRequest {
            submissions: vec![s],
        })),
    };
    let (resp, _) = st.apply(&cmd, index);
    let Some(pb::command_response::Kind::Submit(mut b)) = resp.kind else {
        panic!("not a submit response")
    };
    match b.items.remove(0).result.unwrap() {
        pb::batch_item::Result::Outcome(o) => Ok(o),
        pb::batch_item::Result::Rejection(r) => Err(r),
    }
}

pub(super) fn rule_of(r: Result<pb::SubmitOutcome, pb::Rejection>) -> (i32, String) {
    let r = r.expect_err("expected a rejection");
    (r.code, r.rule)
}

#[test]
fn totals_and_progress_move_up_the_hierarchy() {
    let mut st = loaded();
    submit(&mut st, sub("s1", "A1", "PPWP", 100, 50, 5), 2).unwrap();
    submit(&mut st, sub("s2", "B1", "PPWP", 10, 20, 1), 3).unwrap();
    submit(&mut st, sub("s3", "C1", "PPWP", 7, 3, 0), 4).unwrap();

    let kab = st.totals("63.02", "PPWP").unwrap();
    assert_eq!(
        kab.candidates.iter().map(|c| c.votes).collect::<Vec<_>>(),
        vec![110, 70]
    );
    assert_eq!((kab.sah, kab.tidak_sah, kab.total), (180, 6, 186));
    assert_eq!((kab.tps_reported, kab.tps_total), (2, 3));

    let nas = st.totals("", "PPWP").unwrap();
    assert_eq!((nas.sah, nas.tps_reported, nas.tps_total), (190, 3, 4));

    let (p, children) = st.progress("63.02", "PPWP").unwrap();
    assert_eq!((p.tps_reported, p.tps_total), (2, 3));
    let kids: Vec<_> = children
        .iter()
        .map(|c| (c.tps_reported, c.tps_total))
        .collect();
    assert_eq!(kids, vec![(1, 2), (1, 1)]);
}

#[test]
fn contest_scope_limits_tps_counts_and_submissions() {
    let mut st = loaded();
    assert_eq!(st.totals("ID", "GUB-63").unwrap().tps_total, 3);
    assert_eq!(st.totals("11", "GUB-63").unwrap().tps_total, 0);
    assert_eq!(
        rule_of(submit(&mut st, sub("g1", "C1", "GUB-63", 1, 1, 0), 2)),
        (code::INVALID_ARGUMENT, "contest_covers_tps".into())
    );
}

#[test]
fn every_rule_rejects_and_changes_nothing() {
    let mut st = loaded();
    let before = data_records(&st);
    let mut negative = sub("n", "A1", "PPWP", -1, 5, 0);
    negative.sah = Some(4);
    negative.total = Some(4);
    let mut bad_sum = sub("b", "A1", "PPWP", 1, 2, 0);
    bad_sum.sah = Some(4);
    bad_sum.total = Some(4);
    let mut bad_total = sub("t", "A1", "PPWP", 1, 2, 0);
    bad_total.total = Some(9);
    let mut missing_field = sub("m", "A1", "PPWP", 1, 2, 0);
    missing_field.tidak_sah = None;
    let mut extra_candidate = sub("e", "A1", "PPWP", 1, 2, 0);
    extra_candidate.votes.push(pb::CandidateVotes {
        candidate_id: "03".into(),
        votes: 0,
    });
    let mut short_candidates = sub("c", "A1", "PPWP", 1, 2, 0);
    short_candidates.votes.pop();
    short_candidates.sah = Some(1);
    short_candidates.total = Some(1);
    let mut twice = sub("w", "A1", "PPWP", 1, 2, 0);
    twice.votes[1].candidate_id = "01".into();
    let mut bad_id = sub("bad id!", "A1", "PPWP", 1, 2, 0);
    bad_id.submission_id = "bad id!".into();
    let cases = [
        (negative, code::INVALID_ARGUMENT, "non_negative"),
        (bad_sum, code::INVALID_ARGUMENT, "sum_candidates_eq_sah"),
        (
            bad_total,
            code::INVALID_ARGUMENT,
            "sah_plus_tidak_sah_eq_total",
        ),
        (missing_field, code::INVALID_ARGUMENT, "required_field"),
        (extra_candidate, code::INVALID_ARGUMENT, "candidate_set"),
        (short_candidates, code::INVALID_ARGUMENT, "candidate_set"),
        (twice, code::INVALID_ARGUMENT, "candidate_set"),
        (bad_id, code::INVALID_ARGUMENT, "id_format"),
        (
            sub("u", "NOPE", "PPWP", 1, 2, 0),
            code::NOT_FOUND,
            "tps_exists",
        ),
        (
            sub("k", "A1", "DPR", 1, 2, 0),
            code::NOT_FOUND,
            "contest_exists",
        ),
    ];
    for (i, (s, want_code, want_rule)) in cases.into_iter().enumerate() {
        let got = rule_of(submit(&mut st, s, 10 + i as u64));
        assert_eq!(got, (want_code, want_rule.to_string()), "case {i}");
    }
    assert_eq!(data_records(&st), before);
    assert_eq!(st.totals("ID", "PPWP").unwrap().tps_reported, 0);
}

/// Votes may come in any order: each counts for its own candidate, the
/// result is kept in the contest's order, and the same figures in that
/// order are a retry of it.
#[test]
fn votes_out_of_the_contests_order_count_for_their_candidates() {
    let mut st = loaded();
    let mut s = sub("r1", "A1", "PPWP", 100, 50, 5);
    s.votes.reverse();
    let first = submit(&mut st, s, 2).unwrap();
    assert_eq!(first.status, pb::SubmitStatus::Accepted as i32);
    let votes: Vec<_> = st
        .totals("ID", "PPWP")
        .unwrap()
        .candidates
        .iter()
        .map(|c| (c.candidate_id.clone(), c.votes))
        .collect();
    assert_eq!(votes, vec![("01".to_string(), 100), ("02".to_string(), 50)]);
    let stored = st.history("A1", "PPWP").unwrap().revisions[0]
        .submission
        .clone()
        .unwrap();
    let ids: Vec<_> = stored
        .votes
        .iter()
        .map(|v| v.candidate_id.as_str())
        .collect();
    assert_eq!(ids, ["01", "02"]);
    let retry = submit(&mut st, sub("r1", "A1", "PPWP", 100, 50, 5), 3).unwrap();
    assert_eq!(retry.status, pb::SubmitStatus::Duplicate as i32);
}

#[test]
fn retries_never_count_twice_and_conflicts_are_refused() {
    let mut st = loaded();
    let first = submit(&mut st, sub("s1", "A1", "PPWP", 100, 50, 5), 2).unwrap();
    assert_eq!(first.status, pb::SubmitStatus::Accepted as i32);

    let retry = submit(&mut st, sub("s1", "A1", "PPWP", 100, 50, 5), 3).unwrap();
    assert_eq!(retry.status, pb::SubmitStatus::Duplicate as i32);
    assert_eq!((retry.log_index, retry.revision), (2, 1));

    let same_numbers_new_id = submit(&mut st, sub("s9", "A1", "PPWP", 100, 50, 5), 4).unwrap();
    assert_eq!(
        same_numbers_new_id.status,
        pb::SubmitStatus::Duplicate as i32
    );
    assert_eq!(same_numbers_new_id.original_submission_id, "s1");

    assert_eq!(
        rule_of(submit(&mut st, sub("s2", "A1", "PPWP", 99, 51, 5), 5)),
        (code::ALREADY_EXISTS, "result_exists".into())
    );
    assert_eq!(
        rule_of(submit(&mut st, sub("s1", "A1", "PPWP", 99, 51, 5), 6)),
        (code::ALREADY_EXISTS, "submission_id_reused".into())
    );
    let t = st.totals("ID", "PPWP").unwrap();
    assert_eq!((t.sah, t.tps_reported), (150, 1));
}

#[test]
fn a_batch_decides_items_in_order() {
    let mut st = loaded();
    let cmd = pb::Command {
        principal: None,
        proposed_at_ms: 0,
        kind: Some(pb::command::Kind::Submit(pb::SubmitBatchRequest {
            submissions: vec![
                sub("a", "A1", "PPWP", 1, 1, 0),
                sub("b", "A1", "PPWP", 2, 2, 0),
                sub("c", "A2", "PPWP", 3, 3, 0),
            ],
        })),
    };
    let (resp, writes) = st.apply(&cmd, 2);
    let Some(pb::command_response::Kind::Submit(b)) = resp.kind else {
        panic!()
    };
    let kinds: Vec<bool> = b
        .items
        .iter()
        .map(|i| matches!(i.result, Some(pb::batch_item::Result::Outcome(_))))
        .collect();
    assert_eq!(kinds, vec![true, false, true]);
    assert_eq!(
        writes.iter().filter(|(k, _)| k[0] == keys::RESULT).count(),
        2
    );
}

#[test]
fn oversized_batch_is_refused_whole() {
    let mut st = loaded();
    let submissions = (0..=rules::MAX_BATCH)
        .map(|i| sub(&format!("s{i}"), "A1", "PPWP", 1, 1, 0))
        .collect();
    let cmd = pb::Command {
        principal: None,
        proposed_at_ms: 0,
        kind: Some(pb::command::Kind::Submit(pb::SubmitBatchRequest {
            submissions,
        })),
    };
    let (_, writes) = st.apply(&cmd, 2);
    assert!(
        writes
            .iter()
            .all(|(k, _)| k[0] == keys::CHAIN || k[0] == keys::AUDIT)
    );
    assert_eq!(st.result_count(), 0);
}

#[test]
fn missing_tps_pages_through_the_tree() {
    let mut st = loaded();
    submit(&mut st, sub("s1", "A2", "PPWP", 1, 1, 0), 2).unwrap();
    let p1 = st.missing("ID", "PPWP", 1, "").unwrap();
    assert_eq!(p1.total_missing, 3);
    let mut seen: Vec<String> = p1.tps.iter().map(|t| t.tps_id.clone()).collect();
    let mut token = p1.next_page_token;
    while !token.is_empty() {
        let p = st.missing("ID", "PPWP", 1, &token).unwrap();
        seen.extend(p.tps.iter().map(|t| t.tps_id.clone()));
        token = p.next_page_token;
    }
    // Tree order: provinsi 11 before 63.
    assert_eq!(seen, vec!["C1", "A1", "B1"]);
    let kec = st.missing("63.02.01", "PPWP", 10, "").unwrap();
    assert_eq!(
        kec.tps
            .iter()
            .map(|t| t.tps_id.as_str())
            .collect::<Vec<_>>(),
        vec!["A1"]
    );
    assert!(kec.next_page_token.is_empty());
}

#[test]
fn registry_reload_is_a_no_op_and_guards_its_shape() {
    let mut st = loaded();
    let (resp, writes) = st.apply(&registry(), 2);
    let Some(pb::command_response::Kind::LoadRegistry(r)) = resp.kind else {
        panic!()
    };
    assert_eq!((r.unchanged, r.regions_added, r.tps_added), (16, 0, 0));
    assert!(
        writes
            .iter()
            .all(|(k, _)| k[0] == keys::CHAIN || k[0] == keys::AUDIT)
    );

    let orphan = pb::Command {
        principal: None,
        proposed_at_ms: 0,
        kind: Some(pb::command::Kind::LoadRegistry(pb::LoadRegistryRequest {
            tps: vec![tps("Z1", "99.99.99.9999", 1)],
            ..Default::default()
        })),
    };
    let (resp, writes) = st.apply(&orphan, 3);
    let Some(pb::command_response::Kind::Rejection(rej)) = resp.kind else {
        panic!()
    };
    assert_eq!(
        (rej.code, rej.rule.as_str()),
        (code::NOT_FOUND, "parent_exists")
    );
    assert!(
        writes
            .iter()
            .all(|(k, _)| k[0] == keys::CHAIN || k[0] == keys::AUDIT)
    );

    let moved = pb::Command {
        principal: None,
        proposed_at_ms: 0,
        kind: Some(pb::command::Kind::LoadRegistry(pb::LoadRegistryRequest {
            tps: vec![tps("A1", "63.02.02.2001", 1)],
            ..Default::default()
        })),
    };
    let (resp, _) = st.apply(&moved, 4);
    let Some(pb::command_response::Kind::Rejection(rej)) = resp.kind else {
        panic!()
    };
    assert_eq!(rej.rule, "registry_immutable");
}

#[test]
fn restore_rebuilds_the_same_state_and_aggregates() {
    let mut st = loaded();
    submit(&mut st, sub("s1", "A1", "PPWP", 100, 50, 5), 2).unwrap();
    submit(&mut st, sub("s2", "B1", "GUB-63", 10, 20, 1), 3).unwrap();
    let back = TallyState::restore(st.records()).unwrap();
    assert_eq!(back.records(), st.records());
    for (region, contest) in [("ID", "PPWP"), ("63.02.02", "GUB-63"), ("11", "PPWP")] {
        assert_eq!(
            back.totals(region, contest).unwrap(),
            st.totals(region, contest).unwrap()
        );
    }
    // Retry after restore is still recognised.
    let mut back = back;
    let again = submit(&mut back, sub("s1", "A1", "PPWP", 100, 50, 5), 9).unwrap();
    assert_eq!(again.status, pb::SubmitStatus::Duplicate as i32);
}

/// Each region's parent index names the region its `parent_code` names,
/// whether the tree was built by commands (regions in any order within a
/// chunk) or loaded back from the records.
#[test]
fn parent_indexes_follow_parent_codes() {
    let st = loaded();
    let back = TallyState::restore(st.records()).unwrap();
    for s in [&st, &back] {
        assert_eq!(s.regions.len(), 11);
        for (code, n) in &s.regions {
            let parent = n
                .parent
                .map(|i| s.regions.get_index(i as usize).unwrap().0.as_str());
            let want = (code != NASIONAL).then_some(n.region.parent_code.as_str());
            assert_eq!(parent, want, "region {code}");
        }
        assert_eq!(
            s.chain_of("63.02.02.2001"),
            ["63.02.02.2001", "63.02.02", "63.02", "63", "ID"]
        );
    }
}

#[test]
fn new_tps_after_contest_counts_towards_totals() {
    let mut st = loaded();
    let more = pb::Command {
        principal: None,
        proposed_at_ms: 0,
        kind: Some(pb::command::Kind::LoadRegistry(pb::LoadRegistryRequest {
            tps: vec![tps("A3", "63.02.01.2001", 3)],
            ..Default::default()
        })),
    };
    st.apply(&more, 2);
    assert_eq!(st.totals("63", "GUB-63").unwrap().tps_total, 4);
    assert_eq!(st.totals("ID", "PPWP").unwrap().tps_total, 5);
}
