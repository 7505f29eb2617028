//! Scenario (c): under continuous submission load, kill -9 the leader. A new
//! leader takes over, the clients keep submitting with no manual step, and
//! after the killed node restarts every node holds every acknowledged
//! submission exactly once, with identical totals. Prints the gap between
//! the last acknowledgement before the kill and the first after it.
//!
//! `REKAP_FAILOVER_RUNS=10` repeats the scenario (default once).

use std::time::{Duration, Instant};

use rekap_tests::workload::{Workload, check_all};
use rekap_tests::{ClusterOptions, start_with_registry};

async fn one_run(run: usize) -> Duration {
    let (mut cluster, tps, endpoints) = start_with_registry(ClusterOptions::default(), 40).await;

    let load = Workload::start(&cluster, endpoints, tps.clone(), 8);
    load.wait_acked(300, Duration::from_secs(60)).await;
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    cluster.kill(leader);
    // Taken once the process is gone: acks it sent while dying count as before.
    let killed_at = Instant::now();

    let new_leader = cluster.wait_for_leader(Duration::from_secs(30)).await;
    assert_ne!(new_leader, leader, "the killed node cannot lead");
    load.wait_acked(300, Duration::from_secs(60)).await;

    cluster.restart(leader);
    load.wait_acked(300, Duration::from_secs(60)).await;
    let history = load.stop().await;

    let gap = history
        .gap_around(killed_at)
        .expect("acknowledgements on both sides of the kill");
    println!(
        "failover run {run}: killed leader {leader}, new leader {new_leader}, gap between acknowledgements {:.0} ms, {} acked, {} unknown",
        gap.as_secs_f64() * 1000.0,
        history.acked.len(),
        history.unknown.len()
    );
    let nodes = check_all(&cluster, &tps, &history).await;
    assert_eq!(
        nodes.len(),
        3,
        "all three nodes checked, the restarted one included"
    );
    gap
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_kill_under_load_loses_nothing() {
    let runs: usize = std::env::var("REKAP_FAILOVER_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let mut gaps = Vec::new();
    for run in 1..=runs {
        gaps.push(one_run(run).await);
    }
    let ms: Vec<String> = gaps
        .iter()
        .map(|g| format!("{:.0}", g.as_secs_f64() * 1000.0))
        .collect();
    println!("failover gaps (ms) over {runs} runs: {}", ms.join(", "));
}
