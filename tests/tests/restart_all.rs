//! Scenario (f): stop every node and start them again: all data is still
//! there. Once with SIGTERM, once with kill -9.

use std::sync::Arc;
use std::time::Duration;

use rekap_tests::workload::{Workload, check_all};
use rekap_tests::{ClusterOptions, start_with_registry};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_cluster_restart_keeps_everything() {
    let (mut cluster, tps, endpoints) = start_with_registry(ClusterOptions::default(), 10).await;
    let load = Workload::start(&cluster, endpoints.clone(), tps.clone(), 4);
    load.wait_acked(200, Duration::from_secs(60)).await;
    let history = load.stop().await;
    let before = check_all(&cluster, &tps, &history).await;

    for graceful in [true, false] {
        let ids = cluster.running();
        for &id in &ids {
            if graceful {
                cluster.stop(id).await;
            } else {
                cluster.kill(id);
            }
        }
        for &id in &ids {
            cluster.restart(id);
        }
        cluster.wait_for_leader(Duration::from_secs(30)).await;
        let after = check_all(&cluster, &tps, &history).await;
        assert_eq!(
            after[0].present, before[0].present,
            "restart (graceful: {graceful}) changed the tally"
        );
        assert_eq!(after[0].sah, before[0].sah);
    }
    // And the restarted cluster still takes writes.
    let load = Workload::start(
        &cluster,
        endpoints,
        Arc::new(tps[history.acked.len() + history.unknown.len()..].to_vec()),
        2,
    );
    load.wait_acked(20, Duration::from_secs(60)).await;
    load.stop().await;
}
