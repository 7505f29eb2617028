//! A leader that lost its majority says so. With both followers frozen
//! (SIGSTOP), openraft refuses new proposals once the leader's quorum lease
//! has expired; the node answers UNAVAILABLE with the reason `no_quorum` in
//! `x-rekap-unavailable` and names the members it has not heard from,
//! instead of "no leader elected yet". After the followers resume, the
//! refused submission, sent again with the same id, is counted once.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use rekap_client::proto as pb;
use rekap_client::{Client, ClientOptions};
use rekap_tests::pki::OPERATOR;
use rekap_tests::workload::submission;
use rekap_tests::{CONTEST, KABUPATEN, Nodes, start_with_a_result, unavailable_reason, wait_until};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_without_a_majority_answers_no_quorum_and_names_the_silent_members() {
    let (cluster, tps) = start_with_a_result().await;
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    let followers: Vec<u64> = cluster
        .running()
        .into_iter()
        .filter(|id| *id != leader)
        .collect();
    // One node only, short attempts: each answer is the leader's own.
    let to_leader = Client::with_options(
        [cluster.addr(leader)],
        ClientOptions {
            deadline: Duration::from_secs(2),
            attempt_timeout: Duration::from_millis(500),
            hedge_after: None,
            ..cluster.pki().options(OPERATOR)
        },
    );

    for id in &followers {
        cluster.signal(*id, Signal::SIGSTOP);
    }
    let frozen = Instant::now();
    let refused = wait_until(
        "the leader answers no_quorum",
        Duration::from_secs(20),
        || async {
            match to_leader.submit(submission(&tps[1], 1)).await {
                Err(s) if unavailable_reason(&s).as_deref() == Some("no_quorum") => Some(s),
                _ => None,
            }
        },
    )
    .await;
    eprintln!(
        "first no_quorum {:?} after the followers froze: {}",
        frozen.elapsed(),
        refused.message()
    );
    assert_eq!(refused.code(), tonic::Code::Unavailable);
    for id in &followers {
        assert!(
            refused.message().contains(&format!("node {id}")),
            "names node {id}: {}",
            refused.message()
        );
    }
    assert!(!refused.message().contains(&format!("node {leader}")));

    for id in &followers {
        cluster.signal(*id, Signal::SIGCONT);
    }
    let outcome = cluster
        .client_as(OPERATOR)
        .submit(submission(&tps[1], 1))
        .await
        .expect("the same submission after the heal");
    assert_eq!(outcome.tps_id, tps[1]);
    let totals = cluster
        .client_as(OPERATOR)
        .totals(KABUPATEN, CONTEST, pb::Consistency::Linearizable)
        .await
        .expect("totals");
    assert_eq!(totals.totals.unwrap().tps_reported, 2, "counted once");
}
