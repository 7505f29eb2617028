//! Scenario (d): kill a follower, keep writing until the leader has purged
//! its log past everything the follower had, restart it: it can only catch
//! up by snapshot, and then holds everything acknowledged.

use std::time::Duration;

use rekap_tests::workload::{Workload, check_all};
use rekap_tests::{ClusterOptions, start_with_registry, wait_until};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lagging_follower_catches_up_by_snapshot() {
    let (mut cluster, tps, endpoints) = start_with_registry(
        ClusterOptions {
            nodes: 3,
            snapshot_every: 100,
        },
        20,
    )
    .await;
    let load = Workload::start(&cluster, endpoints, tps.clone(), 4);
    load.wait_acked(50, Duration::from_secs(60)).await;

    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    let follower = cluster
        .running()
        .into_iter()
        .find(|id| *id != leader)
        .unwrap();
    cluster.kill(follower);
    let status = cluster.status(leader).await.expect("leader status");
    let follower_had = status.last_log_index.unwrap_or(0);

    // Keep writing until the leader no longer has the log the follower needs.
    wait_until(
        "leader to purge past the follower's log",
        Duration::from_secs(120),
        || async {
            let s = cluster.status(leader).await?;
            (s.purged_index.unwrap_or(0) > follower_had + 10).then_some(())
        },
    )
    .await;

    cluster.restart(follower);
    let leader_now = cluster.status(leader).await.expect("leader status");
    let purged = leader_now.purged_index.unwrap_or(0);
    cluster
        .wait_applied(
            &[follower],
            leader_now.committed_index.unwrap_or(0),
            Duration::from_secs(60),
        )
        .await;
    let f = cluster.status(follower).await.expect("follower status");
    assert!(
        f.snapshot_index.unwrap_or(0) >= purged,
        "follower snapshot {:?} must cover the leader's purge point {purged}",
        f.snapshot_index
    );
    println!(
        "follower {follower} had log up to {follower_had}; leader purged to {purged}; follower installed snapshot at {:?}",
        f.snapshot_index
    );

    load.wait_acked(50, Duration::from_secs(60)).await;
    let history = load.stop().await;
    check_all(&cluster, &tps, &history).await;
}
