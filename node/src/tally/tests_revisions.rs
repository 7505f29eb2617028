//! Unit tests of the C.Hasil rules, janggal flags, corrections, history
//! and the audit chain.

use rekap_proto::pb;

use super::rules::code;
use super::tests::{data_records, loaded, rule_of, sub, submit};
use super::*;

/// A change to a valid form, paired with the rule it should trip.
type Bend = fn(&mut pb::Submission);

fn full(id: &str, tps: &str) -> pb::Submission {
    let mut s = sub(id, tps, "PPWP", 120, 80, 5);
    s.dpt = Some(280);
    s.dptb = Some(5);
    s.dpk = Some(3);
    s.users_dpt = Some(195);
    s.users_dptb = Some(5);
    s.users_dpk = Some(5);
    s.users_total = Some(205);
    s.ballots_received = Some(292);
    s.ballots_used = Some(205);
    s.ballots_unused = Some(85);
    s.ballots_damaged = Some(2);
    s
}

fn correct_cmd(req: pb::CorrectRequest) -> pb::Command {
    pb::Command {
        principal: None,
        proposed_at_ms: 0,
        kind: Some(pb::command::Kind::Correct(req)),
    }
}

fn correction(id: &str, tps: &str, replaces: u64, numbers: pb::Submission) -> pb::CorrectRequest {
    pb::CorrectRequest {
        request_id: id.into(),
        tps_id: tps.into(),
        contest_id: "PPWP".into(),
        replaces_revision: replaces,
        reason: pb::CorrectionReason::FormMisread as i32,
        note: "OCR read 105 as 905".into(),
        evidence_sha256: String::new(),
        submission: Some(numbers),
    }
}

fn apply_correct(
    st: &mut TallyState,
    cmd: pb::Command,
    index: u64,
) -> Result<pb::CorrectResponse, pb::Rejection> {
    match st.apply(&cmd, index).0.kind {
        Some(pb::command_response::Kind::Correct(r)) => Ok(r),
        Some(pb::command_response::Kind::Rejection(r)) => Err(r),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn a_complete_consistent_form_is_accepted_unflagged() {
    let mut st = loaded();
    let o = submit(&mut st, full("f", "A1"), 2).unwrap();
    assert!(o.janggal.is_empty(), "{:?}", o.janggal);
}

#[test]
fn every_hard_rule_refuses_and_unknown_fields_are_not_zero() {
    let mut st = loaded();
    let before = data_records(&st);
    let cases: Vec<(Bend, &str)> = vec![
        (|s| s.ballots_damaged = Some(-1), "non_negative"),
        (|s| s.users_total = Some(206), "users_sum_eq_users_total"),
        (
            |s| s.ballots_unused = Some(84),
            "ballots_received_eq_used_unused_damaged",
        ),
        (|s| s.dpt = Some(190), "users_dpt_le_dpt"),
        (|s| s.sah = None, "required_field"),
        (|s| s.dpt = Some(i64::MAX), "figure_limit"),
    ];
    for (i, (break_it, rule)) in cases.into_iter().enumerate() {
        let mut s = full(&format!("h{i}"), "A1");
        break_it(&mut s);
        assert_eq!(
            rule_of(submit(&mut st, s, 10 + i as u64)),
            (code::INVALID_ARGUMENT, rule.into())
        );
    }
    assert_eq!(data_records(&st), before);
    // A rule whose fields are not all known does not apply.
    let mut partial = full("p", "A1");
    partial.users_dpk = None;
    partial.users_total = Some(999);
    partial.ballots_received = None;
    partial.dpt = None;
    assert!(submit(&mut st, partial, 20).is_ok());
}

#[test]
fn every_soft_rule_flags_with_its_reason() {
    let cases: Vec<(Bend, &str)> = vec![
        (
            |s| {
                s.ballots_used = Some(204);
                s.ballots_unused = Some(86);
            },
            "total_ne_ballots_used",
        ),
        (
            |s| {
                s.users_total = Some(206);
                s.users_dpk = Some(6);
            },
            "total_ne_users_total",
        ),
        (
            |s| {
                s.votes[0].votes = 720;
                s.sah = Some(800);
                s.total = Some(805);
                s.users_total = None;
                s.ballots_used = None;
                s.dpt = None;
                s.users_dpt = None;
            },
            "total_over_800",
        ),
        (
            |s| {
                s.dpt = Some(100);
                s.dptb = Some(0);
                s.dpk = Some(0);
                s.users_dpt = Some(95);
                s.users_total = Some(105);
                s.users_dptb = Some(5);
                s.users_dpk = Some(5);
            },
            "votes_over_registered",
        ),
        (
            |s| {
                s.votes[1].votes = 0;
                s.votes[0].votes = 200;
            },
            "all_votes_one_candidate",
        ),
        (
            |s| {
                s.dpt = Some(196);
                s.dptb = Some(0);
                s.dpk = Some(0);
            },
            "turnout_over_registered",
        ),
    ];
    for (i, (bend, reason)) in cases.into_iter().enumerate() {
        let mut st = loaded();
        let mut s = full(&format!("s{i}"), "A1");
        bend(&mut s);
        let o = submit(&mut st, s, 2).unwrap_or_else(|r| panic!("case {reason}: refused {r:?}"));
        assert!(
            o.janggal.iter().any(|j| j == reason),
            "case {reason}: flags {:?}",
            o.janggal
        );
        let t = st.totals("ID", "PPWP").unwrap();
        assert_eq!((t.tps_reported, t.tps_janggal), (1, 1), "case {reason}");
        let q = st.janggal_queue("63", "PPWP", 10, "").unwrap();
        assert_eq!(q.items.len(), 1);
        assert_eq!(q.total_janggal, 1);
    }
}

#[test]
fn a_correction_adds_a_revision_and_moves_totals_by_the_difference() {
    let mut st = loaded();
    submit(&mut st, sub("s1", "A1", "PPWP", 905, 50, 5), 2).unwrap();
    submit(&mut st, sub("s2", "B1", "PPWP", 10, 20, 1), 3).unwrap();
    let fixed = sub("ignored", "A1", "PPWP", 105, 50, 5);
    let r = apply_correct(&mut st, correct_cmd(correction("c1", "A1", 1, fixed)), 4).unwrap();
    let cur = r.result.unwrap();
    assert_eq!((cur.revision, cur.log_index, r.duplicate), (2, 4, false));
    let t = st.totals("ID", "PPWP").unwrap();
    assert_eq!(t.candidates[0].votes, 105 + 10);
    assert_eq!((t.sah, t.tps_reported), (105 + 50 + 30, 2));

    let history = st.tps_history("A1", "PPWP").unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0].submission.as_ref().unwrap().votes[0].votes, 905);
    assert_eq!(history[1].kind, pb::RevisionKind::Corrected as i32);
    assert_eq!(history[1].reason, pb::CorrectionReason::FormMisread as i32);

    // Retrying the correction answers with what it did, changes nothing.
    let again = apply_correct(
        &mut st,
        correct_cmd(correction(
            "c1",
            "A1",
            1,
            sub("x", "A1", "PPWP", 105, 50, 5),
        )),
        5,
    )
    .unwrap();
    assert!(again.duplicate);
    assert_eq!(again.result.unwrap().revision, 2);
    assert_eq!(st.tps_history("A1", "PPWP").unwrap().len(), 2);
    // Retrying the original submission still returns its original outcome.
    let orig = submit(&mut st, sub("s1", "A1", "PPWP", 905, 50, 5), 6).unwrap();
    assert_eq!(
        (orig.status, orig.revision),
        (pb::SubmitStatus::Duplicate as i32, 1)
    );
    // Restore rebuilds the same aggregates from the stored history.
    let back = TallyState::restore(st.records()).unwrap();
    assert_eq!(
        back.totals("ID", "PPWP").unwrap(),
        st.totals("ID", "PPWP").unwrap()
    );
}

#[test]
fn racing_corrections_one_wins_the_other_is_stale() {
    let mut st = loaded();
    submit(&mut st, sub("s1", "A1", "PPWP", 100, 50, 5), 2).unwrap();
    let a = correction("ca", "A1", 1, sub("x", "A1", "PPWP", 101, 50, 5));
    let b = correction("cb", "A1", 1, sub("x", "A1", "PPWP", 102, 50, 5));
    assert!(apply_correct(&mut st, correct_cmd(a), 3).is_ok());
    let lost = apply_correct(&mut st, correct_cmd(b), 4).unwrap_err();
    assert_eq!(
        (lost.code, lost.rule.as_str()),
        (code::FAILED_PRECONDITION, "stale_revision")
    );
    assert_eq!(st.totals("ID", "PPWP").unwrap().candidates[0].votes, 101);
}

#[test]
fn corrections_are_refused_by_rule() {
    let mut st = loaded();
    submit(&mut st, sub("s1", "A1", "PPWP", 100, 50, 5), 2).unwrap();
    let mut no_reason = correction("c1", "A1", 1, sub("x", "A1", "PPWP", 101, 50, 5));
    no_reason.reason = 0;
    let mut bad_sum = correction("c2", "A1", 1, sub("x", "A1", "PPWP", 101, 50, 5));
    bad_sum.submission.as_mut().unwrap().sah = Some(1);
    let same = correction("c3", "A1", 1, sub("x", "A1", "PPWP", 100, 50, 5));
    let nothing_there = correction("c4", "A2", 1, sub("x", "A2", "PPWP", 1, 1, 0));
    let reused = correction("s1", "A1", 1, sub("x", "A1", "PPWP", 101, 50, 5));
    let cases = [
        (no_reason, code::INVALID_ARGUMENT, "reason_required"),
        (bad_sum, code::INVALID_ARGUMENT, "sum_candidates_eq_sah"),
        (
            same,
            code::FAILED_PRECONDITION,
            "correction_changes_nothing",
        ),
        (nothing_there, code::NOT_FOUND, "result_exists"),
        (reused, code::ALREADY_EXISTS, "request_id_reused"),
    ];
    let before = data_records(&st);
    for (i, (req, c, rule)) in cases.into_iter().enumerate() {
        let e = apply_correct(&mut st, correct_cmd(req), 10 + i as u64).unwrap_err();
        assert_eq!((e.code, e.rule.as_str()), (c, rule));
    }
    assert_eq!(data_records(&st), before);
}

#[test]
fn clearing_flags_is_a_recorded_revision() {
    let mut st = loaded();
    let o = submit(&mut st, sub("s1", "A1", "PPWP", 150, 0, 1), 2).unwrap();
    assert_eq!(o.janggal, vec!["all_votes_one_candidate".to_string()]);
    let clear = |id: &str, replaces: u64| pb::Command {
        principal: None,
        proposed_at_ms: 0,
        kind: Some(pb::command::Kind::ClearFlags(pb::ClearFlagsRequest {
            request_id: id.into(),
            tps_id: "A1".into(),
            contest_id: "PPWP".into(),
            replaces_revision: replaces,
            reason: pb::CorrectionReason::Recount as i32,
            note: "checked against the plano: correct".into(),
            evidence_sha256: String::new(),
        })),
    };
    let r = apply_correct(&mut st, clear("k1", 1), 3)
        .unwrap()
        .result
        .unwrap();
    assert!(r.janggal.is_empty());
    assert_eq!(r.revision, 2);
    assert_eq!(st.totals("ID", "PPWP").unwrap().tps_janggal, 0);
    assert_eq!(st.totals("ID", "PPWP").unwrap().sah, 150);
    let h = st.tps_history("A1", "PPWP").unwrap();
    assert_eq!(h[1].kind, pb::RevisionKind::FlagsCleared as i32);
    assert_eq!(h[0].janggal.len(), 1, "the flagged revision stays readable");
    let e = apply_correct(&mut st, clear("k2", 2), 4).unwrap_err();
    assert_eq!(e.rule, "result_flagged");
}

#[test]
fn the_audit_chain_is_deterministic_and_survives_restore() {
    let mut a = loaded();
    let mut b = loaded();
    for st in [&mut a, &mut b] {
        submit(st, sub("s1", "A1", "PPWP", 100, 50, 5), 2).unwrap();
        let _ = submit(st, sub("bad", "A2", "PPWP", -1, 50, 5), 3);
    }
    assert_eq!(a.audit_chain(), b.audit_chain());
    assert_eq!(
        a.audit_chain().commands,
        3,
        "refused commands are chained too"
    );
    let c = TallyState::restore(a.records()).unwrap();
    assert_eq!(c.audit_chain(), a.audit_chain());
    submit(&mut b, sub("s2", "B1", "PPWP", 1, 2, 0), 4).unwrap();
    assert_ne!(a.audit_chain().head, b.audit_chain().head);
}

#[test]
fn a_tps_without_results_can_be_removed_one_with_results_cannot() {
    let mut st = loaded();
    submit(&mut st, sub("s1", "A1", "PPWP", 100, 50, 5), 2).unwrap();
    let remove = |ids: &[&str]| pb::Command {
        principal: None,
        proposed_at_ms: 0,
        kind: Some(pb::command::Kind::LoadRegistry(pb::LoadRegistryRequest {
            remove_tps: ids.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        })),
    };
    let (resp, _) = st.apply(&remove(&["A1"]), 3);
    let Some(pb::command_response::Kind::Rejection(rej)) = resp.kind else {
        panic!("removed a TPS with results")
    };
    assert_eq!(rej.rule, "tps_has_results");
    let (resp, _) = st.apply(&remove(&["A2"]), 4);
    let Some(pb::command_response::Kind::LoadRegistry(r)) = resp.kind else {
        panic!()
    };
    assert_eq!(r.tps_removed, 1);
    assert_eq!(st.totals("63", "PPWP").unwrap().tps_total, 2);
}

#[test]
fn renaming_a_contest_with_results_keeps_its_totals() {
    let mut st = loaded();
    submit(&mut st, sub("s1", "A1", "PPWP", 100, 50, 5), 2).unwrap();
    let before = st.totals("ID", "PPWP").unwrap();
    let mut renamed = super::tests::contest("PPWP", "");
    renamed.name = "PEMILU PRESIDEN".into();
    renamed.candidates[0].name = "PASLON SATU".into();
    let cmd = pb::Command {
        principal: None,
        proposed_at_ms: 0,
        kind: Some(pb::command::Kind::LoadRegistry(pb::LoadRegistryRequest {
            contests: vec![renamed],
            ..Default::default()
        })),
    };
    let (resp, _) = st.apply(&cmd, 3);
    let Some(pb::command_response::Kind::LoadRegistry(r)) = resp.kind else {
        panic!("refused")
    };
    assert_eq!(r.contests_updated, 1);
    let after = st.totals("ID", "PPWP").unwrap();
    assert_eq!(
        (after.sah, after.tps_reported),
        (before.sah, before.tps_reported)
    );
    assert_eq!(after.candidates[0].name, "PASLON SATU");
    let back = TallyState::restore(st.records()).unwrap();
    assert_eq!(back.totals("ID", "PPWP").unwrap(), after);
    // Changing its candidates is still refused once it has results.
    let mut reshaped = super::tests::contest("PPWP", "");
    reshaped.candidates.pop();
    let cmd = pb::Command {
        principal: None,
        proposed_at_ms: 0,
        kind: Some(pb::command::Kind::LoadRegistry(pb::LoadRegistryRequest {
            contests: vec![reshaped],
            ..Default::default()
        })),
    };
    let (resp, _) = st.apply(&cmd, 4);
    let Some(pb::command_response::Kind::Rejection(rej)) = resp.kind else {
        panic!("accepted")
    };
    assert_eq!(rej.rule, "registry_immutable");
}

#[test]
fn removing_a_removed_tps_again_is_a_no_op() {
    let mut st = loaded();
    let remove = pb::Command {
        principal: None,
        proposed_at_ms: 0,
        kind: Some(pb::command::Kind::LoadRegistry(pb::LoadRegistryRequest {
            remove_tps: vec!["A2".into()],
            ..Default::default()
        })),
    };
    let (first, _) = st.apply(&remove, 2);
    let (again, _) = st.apply(&remove, 3);
    let removed = |r: pb::CommandResponse| match r.kind {
        Some(pb::command_response::Kind::LoadRegistry(r)) => r.tps_removed,
        other => panic!("refused: {other:?}"),
    };
    assert_eq!((removed(first), removed(again)), (1, 0));
    assert_eq!(st.totals("63", "PPWP").unwrap().tps_total, 2);
}

#[test]
fn a_revision_carries_its_commands_time_and_the_chain_covers_it() {
    // 9 December 2020, 19:00 and 19:42 WITA.
    const T1: i64 = 1_607_511_600_000;
    const T2: i64 = 1_607_514_120_000;
    let submit_at = |ms: i64| pb::Command {
        principal: None,
        proposed_at_ms: ms,
        kind: Some(pb::command::Kind::Submit(pb::SubmitBatchRequest {
            submissions: vec![sub("s1", "A1", "PPWP", 100, 50, 5)],
        })),
    };
    let fix = || correction("c1", "A1", 1, sub("c1", "A1", "PPWP", 90, 60, 5));
    let mut st = loaded();
    st.apply(&submit_at(T1), 2);
    let corrected = pb::Command {
        proposed_at_ms: T2,
        ..correct_cmd(fix())
    };
    apply_correct(&mut st, corrected, 3).unwrap();
    let h = st.tps_history("A1", "PPWP").unwrap();
    assert_eq!((h[0].at_ms, h[1].at_ms), (T1, T2));
    let view = st.tps_result("A1", "PPWP").unwrap();
    assert_eq!((view.submitted_at_ms, view.changed_at_ms), (T1, T2));
    // A replica restored from the records shows the same times.
    let back = TallyState::restore(st.records()).unwrap();
    assert_eq!(back.tps_history("A1", "PPWP").unwrap(), h);
    // The same command at another time is another chain.
    let mut other = loaded();
    other.apply(&submit_at(T1 + 1), 2);
    let mut same = loaded();
    same.apply(&submit_at(T1), 2);
    assert_ne!(other.audit_chain().head, same.audit_chain().head);
}

/// A first submission's id is kept in its own result only (no index
/// record), so it is judged within that result; the ids of later revisions
/// are indexed and judged across all results.
#[test]
fn a_first_submission_id_counts_within_its_result() {
    let mut st = loaded();
    submit(&mut st, sub("s1", "A1", "PPWP", 100, 50, 5), 2).unwrap();
    let other = submit(&mut st, sub("s1", "A2", "PPWP", 1, 1, 0), 3).unwrap();
    assert_eq!(other.status, pb::SubmitStatus::Accepted as i32);
    apply_correct(
        &mut st,
        correct_cmd(correction(
            "c1",
            "A1",
            1,
            sub("x", "A1", "PPWP", 101, 50, 5),
        )),
        4,
    )
    .unwrap();
    let retries = [
        sub("s1", "A1", "PPWP", 100, 50, 5),
        sub("s1", "A2", "PPWP", 1, 1, 0),
    ];
    for (retry, log_index) in retries.into_iter().zip([2, 3]) {
        let o = submit(&mut st, retry, 5).unwrap();
        assert_eq!(o.status, pb::SubmitStatus::Duplicate as i32);
        assert_eq!((o.revision, o.log_index), (1, log_index));
    }
    let before = data_records(&st);
    let cases = [
        sub("c1", "A2", "PPWP", 1, 1, 0),
        sub("s1", "A2", "PPWP", 2, 1, 0),
    ];
    for s in cases {
        assert_eq!(
            rule_of(submit(&mut st, s, 6)),
            (code::ALREADY_EXISTS, "submission_id_reused".into())
        );
    }
    let again = correction("s1", "A2", 1, sub("x", "A2", "PPWP", 2, 1, 0));
    let e = apply_correct(&mut st, correct_cmd(again), 7).unwrap_err();
    assert_eq!(e.rule, "request_id_reused");
    assert_eq!(data_records(&st), before);
    let t = st.totals("ID", "PPWP").unwrap();
    assert_eq!((t.sah, t.tps_reported), (153, 2));
}

/// A state written before first submissions lost their index record still
/// holds those records (revision 1). They are ignored, so it decides a
/// reused id as a state written after does.
#[test]
fn index_records_of_first_submissions_from_before_are_ignored() {
    let mut st = loaded();
    submit(&mut st, sub("s1", "A1", "PPWP", 100, 50, 5), 2).unwrap();
    let mut records = st.records();
    records.push((keys::request("s1"), keys::request_value("A1", "PPWP", 1)));
    let mut old = TallyState::restore(records).unwrap();
    let o = submit(&mut old, sub("s1", "A2", "PPWP", 1, 1, 0), 3).unwrap();
    assert_eq!(o.status, pb::SubmitStatus::Accepted as i32);
    let retry = submit(&mut old, sub("s1", "A1", "PPWP", 100, 50, 5), 4).unwrap();
    assert_eq!(
        (retry.status, retry.revision),
        (pb::SubmitStatus::Duplicate as i32, 1)
    );
}

/// A state written by a newer build (a snapshot or backup of it) is
/// refused, not upgraded as if it were of the first layout.
#[test]
fn a_newer_record_format_is_refused() {
    let st = loaded();
    let mut records = st.records();
    for (k, v) in &mut records {
        if k[0] == keys::FORMAT {
            *v = b"9".to_vec();
        }
    }
    let err = TallyState::restore(records).expect_err("refused");
    assert!(
        matches!(err, RestoreError::NewerFormat(ref v) if v == b"9"),
        "{err}"
    );
}
