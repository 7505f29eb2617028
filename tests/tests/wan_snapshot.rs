//! A node that catches up by snapshot over a thin link (4 Mbit/s, with
//! the leader's `--snapshot-rate` at 3 Mbit/s), cut off part-way through:
//! the transfer resumes from where it broke, not from zero, and the node
//! then holds everything. Prints the snapshot's size and the time against
//! size divided by the rate.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use rekap_tests::wan::{self, Shape};
use rekap_tests::workload::{Workload, check_all};
use rekap_tests::{ClusterOptions, ops, wait_until};

/// The bytes of the snapshot transfer kept so far in node `dir`'s snapshots.
fn kept(dir: &std::path::Path) -> Option<(PathBuf, u64)> {
    std::fs::read_dir(dir.join("snapshots"))
        .ok()?
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("partial-"))
        .filter_map(|e| Some((e.path(), e.metadata().ok()?.len())))
        .max_by_key(|(_, n)| *n)
}

/// The size of the snapshot file the leader (its data in `dir`) wrote for
/// a peer, once written.
fn written(dir: &std::path::Path) -> Option<u64> {
    std::fs::read_dir(dir.join("snapshots"))
        .ok()?
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("snap-"))
        .filter_map(|e| e.metadata().ok().map(|m| m.len()))
        .max()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_transfer_cut_mid_way_resumes_where_it_broke() {
    const RATE_MBIT: f64 = 3.0;
    let flags = (1..=3)
        .map(|id| {
            let rate = format!("{}kbit", (RATE_MBIT * 1000.0) as u64);
            (id, vec![("--snapshot-rate".to_string(), rate)])
        })
        .collect();
    let opts = ClusterOptions {
        node_flags: flags,
        // A new node then starts from a snapshot, not a replay of the log.
        snapshot_bytes: 1 << 20,
        ..ClusterOptions::default()
    };
    let (mut c, tps, endpoints) = wan::start_regional(opts, 100).await;
    let load = Workload::start(&c, endpoints, tps.clone(), 8);
    load.wait_acked(1000, Duration::from_secs(120)).await;
    let history = load.stop().await;

    // A new office on a 4 Mbit/s link.
    let id = c.spawn_joiner();
    let link = Shape::new(35, 30).mbit(4.0);
    c.wan().shape_both(id, link);
    let dir = c.nodes[&id].data_dir.clone();
    let started = Instant::now();
    let admin = c.client();
    let adding = tokio::spawn({
        let addr = c.addr(id);
        async move { ops::add_learner(&admin, id, addr).await }
    });

    // Cut it off once about 40% has arrived, for longer than a step of
    // the transfer may take, then heal.
    // The leader writes the file at disk speed, and sends it as it goes.
    let leader_dir = {
        let leader = c.wait_for_leader(Duration::from_secs(10)).await;
        c.nodes[&leader].data_dir.clone()
    };
    let size = wait_until("the snapshot written", Duration::from_secs(120), || async {
        written(&leader_dir)
    })
    .await;
    let at_cut = wait_until("40% of the snapshot", Duration::from_secs(120), || async {
        let (_, n) = kept(&dir)?;
        (n * 10 >= size * 4).then_some(n)
    })
    .await;
    c.wan().cut(id, true);
    let cut_at = Instant::now();
    // The cut's length is the scenario, not a wait for something: longer
    // than one step of the transfer may take (the regional timing's 12 s),
    // so the leader gives this try up while the link is dead.
    tokio::time::sleep(Duration::from_secs(15)).await;
    c.wan().cut(id, false);
    let cut_for = cut_at.elapsed();
    adding.await.expect("add-learner task");
    let took = started.elapsed();

    let leader = c.wait_for_leader(Duration::from_secs(10)).await;
    let leader_log = c.log(leader);
    let resumed = leader_log
        .lines()
        .rfind(|l| l.contains("resuming a snapshot transfer"))
        .unwrap_or_else(|| {
            panic!(
                "the leader never resumed a transfer:\n{}",
                c.log_tail(leader, 40)
            )
        })
        .to_string();
    let node_log = c.log(id);
    assert!(
        node_log.contains("resumed_at") && !node_log.contains("resumed_at=0 "),
        "node {id} received the rest only:\n{}",
        c.log_tail(id, 40)
    );
    let committed = c
        .status(leader)
        .await
        .expect("leader")
        .committed_index
        .unwrap_or(0);
    c.wait_applied(&[id], committed, Duration::from_secs(60))
        .await;
    check_all(&c, &tps, &history).await;

    let ideal = size as f64 / (RATE_MBIT * 1e6 / 8.0);
    let moving = took.as_secs_f64() - cut_for.as_secs_f64();
    println!(
        "broken transfer: snapshot {:.1} MiB at {RATE_MBIT} Mbit/s ({ideal:.1} s ideal); cut at {:.0}% for {:.1} s; caught up {:.1} s after the add, {:.1} s of it moving ({:.2}x the ideal); {resumed}",
        size as f64 / (1 << 20) as f64,
        at_cut as f64 * 100.0 / size as f64,
        cut_for.as_secs_f64(),
        took.as_secs_f64(),
        moving,
        moving / ideal,
    );
}
