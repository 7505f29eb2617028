//! Corrections on a real cluster: two offices correct the same TPS at the
//! same moment through different nodes; exactly one wins, the other is told
//! its revision is stale, and every node ends with the same history and
//! totals. Flag clearing and the janggal queue go through followers too.

use std::time::Duration;

use rekap_client::proto as pb;
use rekap_client::rule_of;
use rekap_tests::pki::{OPERATOR, VERIFIER, VERIFIER2};
use rekap_tests::workload::submission;
use rekap_tests::{
    CONTEST, Cluster, ClusterOptions, KABUPATEN, client_as_for, load_registry, synthetic_registry,
    wait_until,
};
use tonic::Code;

fn correction(id: &str, tps: &str, v1: i64) -> pb::CorrectRequest {
    let mut numbers = submission(tps, 0);
    numbers.votes[0].votes = v1;
    let sah = numbers.votes.iter().map(|v| v.votes).sum::<i64>();
    numbers.sah = Some(sah);
    numbers.total = Some(sah + numbers.tidak_sah.unwrap());
    pb::CorrectRequest {
        request_id: id.into(),
        tps_id: tps.into(),
        contest_id: CONTEST.into(),
        replaces_revision: 1,
        reason: pb::CorrectionReason::Recount as i32,
        note: "pleno PPK".into(),
        evidence_sha256: String::new(),
        submission: Some(numbers),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_corrections_through_two_nodes_one_wins() {
    let cluster = Cluster::start(ClusterOptions::default()).await;
    let reg = synthetic_registry(1);
    load_registry(&cluster.client(), &reg).await;
    let tps = reg.tps[0].tps_id.clone();
    cluster
        .client_as(OPERATOR)
        .submit(submission(&tps, 0))
        .await
        .unwrap();

    // Two verifiers' offices, through two different nodes.
    let ids = cluster.running();
    let (a, b) = (
        client_as_for(&cluster, VERIFIER, ids[1]),
        client_as_for(&cluster, VERIFIER2, ids[2]),
    );
    let (ra, rb) = tokio::join!(
        a.correct(correction("fix-a", &tps, 11)),
        b.correct(correction("fix-b", &tps, 22))
    );
    let (won, lost) = match (ra, rb) {
        (Ok(w), Err(l)) => (w, l),
        (Err(l), Ok(w)) => (w, l),
        other => panic!("exactly one correction must win: {other:?}"),
    };
    assert_eq!(
        (lost.code(), rule_of(&lost).as_deref()),
        (Code::FailedPrecondition, Some("stale_revision"))
    );
    let winner = won.result.unwrap();
    assert_eq!(winner.revision, 2);
    let winning_votes = winner.submission.as_ref().unwrap().votes[0].votes;

    for id in cluster.running() {
        let c = cluster.client_for(id);
        wait_until(
            "node to hold both revisions",
            Duration::from_secs(10),
            || async {
                let h = c
                    .history(&tps, CONTEST, pb::Consistency::Stale)
                    .await
                    .ok()?;
                (h.len() == 2).then_some(h)
            },
        )
        .await;
        let h = c
            .history(&tps, CONTEST, pb::Consistency::Stale)
            .await
            .unwrap();
        let by = |r: &pb::Revision| r.author.as_ref().map(|a| a.name.clone());
        let winner_name = if h[1].submission.as_ref().unwrap().submission_id == "fix-a" {
            VERIFIER
        } else {
            VERIFIER2
        };
        assert_eq!(
            (by(&h[0]), by(&h[1])),
            (Some(OPERATOR.into()), Some(winner_name.into())),
            "node {id}: who did what"
        );
        let t = c
            .totals(KABUPATEN, CONTEST, pb::Consistency::Stale)
            .await
            .unwrap()
            .totals
            .unwrap();
        assert_eq!(t.candidates[0].votes as i64, winning_votes, "node {id}");
        assert_eq!(t.tps_reported, 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flagged_results_are_queued_and_cleared_with_a_reason() {
    let cluster = Cluster::start(ClusterOptions::default()).await;
    let reg = synthetic_registry(1);
    load_registry(&cluster.client(), &reg).await;
    let follower = {
        let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
        cluster
            .running()
            .into_iter()
            .find(|id| *id != leader)
            .unwrap()
    };
    let c = cluster.client_for(follower);
    let tps = reg.tps[3].tps_id.clone();
    let mut s = submission(&tps, 3);
    s.votes[1].votes = 0;
    s.sah = Some(s.votes[0].votes);
    s.total = Some(s.sah.unwrap() + s.tidak_sah.unwrap());
    let o = c.submit(s).await.unwrap();
    assert_eq!(o.janggal, vec!["all_votes_one_candidate".to_string()]);

    let q = c
        .janggal(pb::ListJanggalRequest {
            region_code: KABUPATEN.into(),
            contest_id: CONTEST.into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!((q.total_janggal, q.items.len()), (1, 1));
    let r = client_as_for(&cluster, VERIFIER, follower)
        .clear_flags(pb::ClearFlagsRequest {
            request_id: "review-1".into(),
            tps_id: tps.clone(),
            contest_id: CONTEST.into(),
            replaces_revision: 1,
            reason: pb::CorrectionReason::Recount as i32,
            note: "checked against the plano".into(),
            evidence_sha256: String::new(),
        })
        .await
        .unwrap();
    assert!(r.result.unwrap().janggal.is_empty());
    let t = c
        .totals(KABUPATEN, CONTEST, pb::Consistency::Linearizable)
        .await
        .unwrap()
        .totals
        .unwrap();
    assert_eq!(t.tps_janggal, 0);
    let h = c
        .history(&tps, CONTEST, pb::Consistency::Linearizable)
        .await
        .unwrap();
    assert_eq!(h.len(), 2);
    assert_eq!(h[1].kind, pb::RevisionKind::FlagsCleared as i32);
}
