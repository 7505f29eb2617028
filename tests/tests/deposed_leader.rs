//! A leader frozen (SIGSTOP) past its lease while the others elect a new
//! leader and take a write must not answer a linearizable read from its old
//! state when it wakes, even hearing from no one (the others are frozen
//! then): the read is refused, or sees that write. It never misses it.
//!
//! What refuses it today is openraft: at its first tick the woken leader
//! finds no quorum within the lease and steps down, and a node that knows
//! no leader holds reads for an election. The lease fast path
//! (`Node::holds_lease`) would refuse too (its acknowledgement is older
//! than the lease), but the window before that first tick is too short for
//! a test to aim at; this one guards the whole read path.

use std::time::Duration;

use nix::sys::signal::Signal;
use rekap_client::proto as pb;
use rekap_tests::http::{get, sample};
use rekap_tests::workload::submission;
use rekap_tests::{CONTEST, KABUPATEN, start_with_a_result, wait_until};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_woken_deposed_leader_never_serves_a_stale_linearizable_read() {
    let (cluster, tps) = start_with_a_result().await;
    let linearizable = pb::Consistency::Linearizable;

    let old = cluster.wait_for_leader(Duration::from_secs(10)).await;
    // The old leader serves lease reads at first.
    let t = cluster
        .client_for(old)
        .totals(KABUPATEN, CONTEST, linearizable)
        .await
        .expect("read on the leader");
    assert_eq!(t.totals.unwrap().tps_reported, 1);

    cluster.signal(old, Signal::SIGSTOP);
    let others: Vec<u64> = cluster
        .running()
        .into_iter()
        .filter(|id| *id != old)
        .collect();
    let new = wait_until(
        "a new leader among the others",
        Duration::from_secs(30),
        || async {
            for id in &others {
                if cluster
                    .status(*id)
                    .await
                    .is_some_and(|s| s.state == "leader")
                {
                    return Some(*id);
                }
            }
            None
        },
    )
    .await;
    // Frozen is not dead: its port still takes connections (the kernel
    // answers), so no one took it for gone (`node::dead_leader`), and the
    // election waited out its lease.
    for id in &others {
        let (_, text) = get(&cluster.pki.ca_dir(), &cluster.http_addr(*id), "/metrics")
            .await
            .expect("metrics");
        assert_eq!(
            sample(&text, "rekap_server_dead_leaders_found_total"),
            Some(0.0),
            "node {id} took the frozen leader {old} for dead"
        );
    }
    let o = cluster
        .client_for(new)
        .submit(submission(&tps[1], 1))
        .await
        .expect("submission to the new leader");
    assert_eq!(o.status, pb::SubmitStatus::Accepted as i32);

    // The old leader wakes with both others frozen: it hears nothing from
    // the new leader, so only its lease (expired while it was frozen)
    // stands between it and a stale answer.
    for id in &others {
        cluster.signal(*id, Signal::SIGSTOP);
    }
    cluster.signal(old, Signal::SIGCONT);
    let read = cluster
        .client_for(old)
        .totals(KABUPATEN, CONTEST, linearizable)
        .await;
    for id in &others {
        cluster.signal(*id, Signal::SIGCONT);
    }
    match read {
        Ok(t) => assert_eq!(
            t.totals.unwrap().tps_reported,
            2,
            "node {old}, woken after being deposed, answered a linearizable read without the write the new leader {new} acknowledged"
        ),
        Err(e) => println!("node {old} refused the read after waking: {e}"),
    }
}
