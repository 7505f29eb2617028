//! Scenario: timing is configuration. Three real nodes run with etcd's
//! default timing (heartbeat 100 ms, election timeout 1 s) instead of the
//! loopback defaults: every node reports it, clients adopt the attempt
//! timeout it implies, a killed leader is replaced and writes go on. A node
//! given other timing is named by `rekapctl cluster status`, and settings
//! that cannot work are refused at start with the reason.

use std::process::Command;
use std::time::{Duration, Instant};

use rekap_tests::pki::OPERATOR;
use rekap_tests::{Cluster, ClusterOptions, node_binary, workload};

const WAN: (u64, u64) = (100, 1000);

fn cluster_status_text(cluster: &Cluster) -> String {
    let endpoints: Vec<String> = cluster
        .running()
        .iter()
        .map(|&id| cluster.addr(id))
        .collect();
    let out = Command::new(node_binary().with_file_name("rekapctl"))
        .arg("--endpoints")
        .arg(endpoints.join(","))
        .arg("--certs-dir")
        .arg(cluster.pki.user_dir(OPERATOR))
        .args(["cluster", "status"])
        .output()
        .expect("rekapctl cluster status");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_runs_on_the_timing_it_is_given_and_names_a_node_that_differs() {
    let (mut cluster, tps, _) = rekap_tests::start_with_registry(
        ClusterOptions {
            timing: Some(WAN),
            // The failover below shows the timers' timing: a killed
            // leader's refused port would end it at once
            // (`node::dead_leader`), so no one probes here.
            node_flags: (1..=3)
                .map(|id| (id, vec![("--probe-dead-leader".into(), "false".into())]))
                .collect(),
            ..ClusterOptions::default()
        },
        1,
    )
    .await;
    for id in cluster.running() {
        let t = cluster
            .status(id)
            .await
            .expect("status")
            .timing
            .expect("timing");
        assert_eq!(
            (t.heartbeat_interval_ms, t.election_timeout_ms, t.lease_ms),
            (100, 1000, 1200),
            "node {id}"
        );
        assert_eq!((t.client_attempt_ms, t.client_hedge_ms), (15_000, 3_000));
    }
    let text = cluster_status_text(&cluster);
    assert!(
        text.contains("100/1000-1200 ms") && !text.contains("TIMING MISMATCH"),
        "{text}"
    );

    // Writes, then the leader dies: the next one takes over on this timing.
    let operator = cluster.client_as(OPERATOR);
    operator
        .submit(workload::submission(&tps[0], 1))
        .await
        .expect("a write");
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    cluster.kill(leader);
    let killed = Instant::now();
    operator
        .submit(workload::submission(&tps[1], 2))
        .await
        .expect("a write after the leader died");
    let failover = killed.elapsed();
    eprintln!(
        "timing 100/1000, without the dead-leader probe: a write acknowledged {:.2} s after kill -9 of the leader (lease 1.2 s; at the loopback defaults the same path takes about 1 s)",
        failover.as_secs_f64()
    );
    assert!(
        failover > Duration::from_millis(1200),
        "no follower stands within the lease: {failover:?}"
    );

    // The dead node comes back with other timing: status names it.
    cluster.set_timing(leader, (50, 250));
    cluster.restart(leader);
    rekap_tests::wait_until("the node back", Duration::from_secs(20), || async {
        cluster.status(leader).await.map(|_| ())
    })
    .await;
    let text = cluster_status_text(&cluster);
    let line = text
        .lines()
        .find(|l| l.starts_with("TIMING MISMATCH"))
        .unwrap_or_else(|| panic!("no mismatch named:\n{text}"));
    assert!(
        line.contains(&format!("node {leader} 50/250-350 ms")),
        "{line}"
    );
    // The nodes say so in their logs too (each asks its peers every 30 s).
    let others: Vec<u64> = cluster
        .running()
        .into_iter()
        .filter(|&id| id != leader)
        .collect();
    rekap_tests::wait_until("a peer's warning", Duration::from_secs(45), || async {
        others
            .iter()
            .any(|&id| cluster.log(id).contains("a peer runs other timing"))
            .then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timing_that_cannot_work_is_refused_at_start_with_the_reason() {
    let mut cluster = Cluster::start(ClusterOptions::default()).await;
    let id = cluster.running()[0];
    cluster.kill(id);
    let (status, out) = cluster
        .run_to_exit(
            id,
            |args| {
                args.push(("--heartbeat-interval".into(), "100".into()));
                args.push(("--election-timeout".into(), "150".into()));
            },
            Duration::from_secs(20),
        )
        .await;
    assert!(!status.success());
    assert!(
        out.contains("--election-timeout 150 ms is under 2 heartbeats"),
        "{out}"
    );
}
