//! Issue 10: a node stopped with SIGTERM while submissions are in flight
//! exits 0, and after a restart holds every submission it acknowledged.
//!
//! One node, so every acknowledgement came from the process being stopped:
//! nothing can be recovered from a peer. Repeated `REKAP_SIGTERM_RUNS` times
//! (default 20) on the same data directory; prints each exit status.

use std::sync::Arc;
use std::time::Duration;

use rekap_tests::workload::{History, Workload, check_all};
use rekap_tests::{ClusterOptions, start_with_registry};

/// TPS each run may use; runs take disjoint slices of the registry.
const PER_RUN: usize = 250;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_exits_zero_and_keeps_every_ack() {
    let runs: usize = std::env::var("REKAP_SIGTERM_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let kecamatan = (runs * PER_RUN).div_ceil(100);
    let opts = ClusterOptions {
        nodes: 1,
        ..ClusterOptions::default()
    };
    let (mut cluster, tps, endpoints) = start_with_registry(opts, kecamatan).await;
    let mut history = History::default();
    let mut statuses = Vec::with_capacity(runs);
    for run in 0..runs {
        let slice = Arc::new(tps[run * PER_RUN..(run + 1) * PER_RUN].to_vec());
        let load = Workload::start(&cluster, endpoints.clone(), slice, 8);
        load.wait_acked(30, Duration::from_secs(60)).await;
        // Submissions are in flight now: stop the node under them.
        let status = cluster.stop_status(1).await;
        statuses.push(status.code());
        assert!(
            status.success(),
            "run {run}: SIGTERM under load gave {status}\n{}",
            cluster.log_tail(1, 30)
        );
        cluster.restart(1);
        // Calls that were cut off retry against the restarted node.
        let h = load.stop().await;
        history.acked.extend(h.acked);
        history.unknown.extend(h.unknown);
        history.failed.extend(h.failed);
        check_all(&cluster, &tps, &history).await;
    }
    // A lone voter is its own majority however long ago it was elected:
    // its status never says quorum lost (nor would its writes).
    let s = cluster.status(1).await.expect("status");
    assert_eq!(
        (s.state.as_str(), s.quorum),
        ("leader", Some(true)),
        "{s:?}"
    );
    println!(
        "{runs} SIGTERM stops under load, {} acknowledged submissions kept; exit statuses: {statuses:?}",
        history.acked.len()
    );
}
