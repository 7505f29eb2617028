//! Scenario (d): kill a follower, keep writing until the leader has purged
//! its log past everything the follower had, restart it: it can only catch
//! up by snapshot, and then holds everything acknowledged.

use std::sync::Arc;
use std::time::Duration;

use rekap_client::proto as pb;
use rekap_tests::workload::{History, Workload, check_all};
use rekap_tests::{Cluster, ClusterOptions, ops, start_with_registry, wait_until};

/// One index from the leader's status (0 when it has none).
async fn leader_index(
    cluster: &Cluster,
    leader: u64,
    which: fn(&pb::ClusterStatusResponse) -> Option<u64>,
) -> u64 {
    which(&cluster.status(leader).await.expect("leader status")).unwrap_or(0)
}

/// Node `id`'s status once it applied what `leader` had committed when
/// asked.
async fn caught_up(cluster: &Cluster, leader: u64, id: u64) -> pb::ClusterStatusResponse {
    let committed = leader_index(cluster, leader, |s| s.committed_index).await;
    cluster
        .wait_applied(&[id], committed, Duration::from_secs(60))
        .await;
    cluster.status(id).await.expect("node status")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lagging_follower_catches_up_by_snapshot() {
    let (mut cluster, tps, endpoints) = start_with_registry(
        ClusterOptions {
            nodes: 3,
            snapshot_every: 100,
            ..ClusterOptions::default()
        },
        // The load runs on while the follower catches up, which took up to
        // 1,700 entries of 2,000 TPS (and ran out once): room to spare.
        50,
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
    let follower_had = leader_index(&cluster, leader, |s| s.last_log_index).await;

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
    let purged = leader_index(&cluster, leader, |s| s.purged_index).await;
    let f = caught_up(&cluster, leader, follower).await;
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

/// A cluster after a burst of 800 acknowledged writes, the load stopped:
/// the snapshot interval is the smallest, so a new node gets a fresh
/// snapshot (an eighth of it, 128 KiB, of log is behind the newest one).
async fn after_a_burst() -> (Cluster, Arc<Vec<String>>, History) {
    let (cluster, tps, endpoints) = start_with_registry(
        ClusterOptions {
            nodes: 3,
            snapshot_bytes: 1 << 20,
            ..ClusterOptions::default()
        },
        20,
    )
    .await;
    let load = Workload::start(&cluster, endpoints, tps.clone(), 4);
    load.wait_acked(800, Duration::from_secs(60)).await;
    let history = load.stop().await;
    (cluster, tps, history)
}

/// A node added after a burst of writes (here one below the entry and byte
/// intervals, so no snapshot exists yet) starts from a snapshot the leader
/// builds for it, not from a replay of the whole log; then it holds
/// everything acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_node_starts_from_a_fresh_snapshot() {
    let (mut cluster, tps, history) = after_a_burst().await;

    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    let before = cluster.status(leader).await.expect("leader status");
    let applied = before.applied_index.unwrap_or(0);
    assert!(
        before.snapshot_index.unwrap_or(0) < applied,
        "the log since the newest snapshot must be there to replay: {before:?}"
    );
    let id = cluster.spawn_joiner();
    ops::add_learner(&cluster.client(), id, cluster.addr(id)).await;
    let s = caught_up(&cluster, leader, id).await;
    assert!(
        s.snapshot_index.unwrap_or(0) >= applied,
        "the new node must have installed a snapshot at or after {applied}, the leader's applied index when it was added; it has {:?}",
        s.snapshot_index
    );
    println!(
        "new node {id} installed a snapshot at {:?}; the leader had applied {applied} when it was added",
        s.snapshot_index
    );
    check_all(&cluster, &tps, &history).await;
}

/// A new node killed while a snapshot reaches it, at the two steps where
/// a crash could leave it half done: with part of the transfer kept on
/// disk, and with its old state deleted but the new one not yet ingested
/// (crash points, so the kill lands on that step every run). Each restart
/// goes on from where it stopped: the transfer is made again, the install
/// is redone at start. Then the node holds everything acknowledged, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_node_killed_mid_transfer_and_mid_install_loses_nothing() {
    // Stopped, so the snapshot the new node is sent stays the same one
    // through its crashes.
    let (mut cluster, tps, history) = after_a_burst().await;
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    let id = cluster.spawn_joiner_with_env(&[("FAILPOINTS", "snapshot-chunk-received=return")]);
    // Not waiting: it cannot finish while the node keeps crashing.
    ops::add_learner_as(&cluster.client(), id, cluster.addr(id), false).await;
    for (point, then) in [
        ("snapshot-chunk-received", "snapshot-install-marked=return"),
        ("snapshot-install-marked", ""),
    ] {
        let status = cluster.wait_exit(id, Duration::from_secs(60)).await;
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9),
            "node {id} was to kill itself at {point}: {status}\n{}",
            cluster.log_tail(id, 30)
        );
        let log = cluster.log(id);
        assert!(
            log.lines()
                .any(|l| l.contains("crash point reached")
                    && l.contains(&format!("point=\"{point}\""))),
            "node {id} ended, but not at {point}:\n{}",
            cluster.log_tail(id, 30)
        );
        cluster.set_env(id, &[("FAILPOINTS", then)]);
        cluster.restart(id);
    }
    let s = caught_up(&cluster, leader, id).await;
    let log = cluster.log(id);
    // The transfer after the first crash starts again or resumes from the
    // bytes that reached the disk; either way it must arrive whole.
    assert!(
        log.contains("snapshot received"),
        "a transfer after the first crash arrives whole:\n{log}"
    );
    assert!(
        log.contains("a snapshot install was interrupted; installing it again"),
        "the last start redoes the install the second crash cut off:\n{}",
        cluster.log_tail(id, 30)
    );
    println!(
        "new node {id} survived both crashes; it holds the snapshot at {:?}",
        s.snapshot_index
    );
    let nodes = check_all(&cluster, &tps, &history).await;
    assert_eq!(nodes.len(), 4, "the new node checked with the voters");
}
