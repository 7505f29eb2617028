//! The membership runbook as ops staff try it on a real cluster:
//! `transfer-leader` names a leader only once it is confirmed, even when
//! the transfer races an election, and `cluster status` lists a dead node
//! once, though its endpoint and its advertised address are written
//! differently.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use rekap_client::proto as pb;
use rekap_tests::pki::ADMIN;
use rekap_tests::{Cluster, ClusterOptions, ops, wait_until};

/// One transfer, asked of node `via` directly (no client retries, which
/// would ask again and again); None when refused as UNAVAILABLE
/// (leadership moved under it: a claim of nothing).
async fn transfer(cluster: &Cluster, via: u64, to: u64) -> Option<pb::TransferLeaderResponse> {
    let ch = cluster.raw_channel(ADMIN, &cluster.addr(via));
    let r = pb::admin_client::AdminClient::new(ch)
        .transfer_leader(pb::TransferLeaderRequest { to_node_id: to })
        .await;
    match r {
        Ok(r) => Some(r.into_inner()),
        Err(s) if s.code() == tonic::Code::Unavailable => None,
        Err(s) => panic!("transfer-leader to {to}: {s:?}"),
    }
}

/// Every node's (leader, term), over `window`: panics if any node follows
/// another leader or a later term than `expect` meanwhile. A node at that
/// term that knows no leader yet (it granted the vote, and the new leader's
/// first append has not reached it) claims nothing, and passes.
async fn holds(cluster: &Cluster, expect: (u64, u64), window: Duration) {
    let until = Instant::now() + window;
    while Instant::now() < until {
        for id in cluster.running() {
            if let Some(s) = cluster.status(id).await
                && s.term >= expect.1
            {
                assert_eq!(
                    (s.leader_id.unwrap_or(expect.0), s.term),
                    (expect.0, expect.1),
                    "node {id} after a confirmed transfer to node {} at term {} (it reports leader {:?} at term {})",
                    expect.0,
                    expect.1,
                    s.leader_id,
                    s.term
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_that_races_an_election_says_who_really_leads() {
    let cluster = Cluster::start(ClusterOptions::default()).await;
    let (mut confirmed, mut lost) = (0, 0);
    for round in 0..6 {
        let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
        let others: Vec<u64> = cluster
            .running()
            .into_iter()
            .filter(|id| *id != leader)
            .collect();
        let answers = if round % 2 == 0 {
            // Two transfers to two nodes at once: each target stands for
            // election, and the second races the first.
            let (a, b) = tokio::join!(
                transfer(&cluster, leader, others[0]),
                transfer(&cluster, leader, others[1]),
            );
            vec![a, b]
        } else {
            // The target is frozen while it is asked to stand: the old
            // leader has given up its lease, so another node's election
            // timer runs out and it stands too.
            cluster.signal(others[0], Signal::SIGSTOP);
            let asked = tokio::spawn({
                let ch = cluster.raw_channel(ADMIN, &cluster.addr(leader));
                let to = others[0];
                async move {
                    pb::admin_client::AdminClient::new(ch)
                        .transfer_leader(pb::TransferLeaderRequest { to_node_id: to })
                        .await
                }
            });
            // The freeze: longer than an election timeout, shorter than
            // the confirmation's wait.
            tokio::time::sleep(Duration::from_millis(800)).await;
            cluster.signal(others[0], Signal::SIGCONT);
            match asked.await.expect("the transfer task") {
                Ok(r) => vec![Some(r.into_inner())],
                Err(s) if s.code() == tonic::Code::Unavailable => vec![None],
                Err(s) => panic!("transfer-leader to {}: {s:?}", others[0]),
            }
        };
        eprintln!("round {round}: {answers:?}");
        // The later of the confirmed answers is who leads now, and goes on
        // leading: nothing else moves the leadership after it.
        let last = answers
            .iter()
            .flatten()
            .filter(|r| r.confirmed)
            .max_by_key(|r| r.term);
        if let Some(r) = last {
            confirmed += 1;
            let leader = r.leader_id.expect("a confirmed answer names its leader");
            if leader != others[0] && round % 2 == 1 {
                lost += 1;
            }
            holds(&cluster, (leader, r.term), Duration::from_secs(2)).await;
        }
    }
    eprintln!("{confirmed} rounds confirmed a leader; {lost} transfers lost to an election");
    assert!(confirmed > 0, "no round confirmed a leader");
    // Uncontested, the transfer lands where it was asked, and says so.
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    let target = cluster
        .running()
        .into_iter()
        .find(|id| *id != leader)
        .unwrap();
    let r = transfer(&cluster, leader, target)
        .await
        .expect("an uncontested transfer answers");
    assert!(r.confirmed, "{r:?}");
    assert_eq!(r.leader_id, Some(target));
    holds(&cluster, (target, r.term), Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_status_lists_a_dead_node_once() {
    let mut cluster = Cluster::start(ClusterOptions::default()).await;
    let admin = cluster.client();
    // Node 4 is added under another spelling of its address than the
    // endpoint ops staff reach it by.
    let id = cluster.spawn_joiner();
    let advertised = cluster.addr(id).replace("127.0.0.1", "localhost");
    ops::add_learner(&admin, id, advertised.clone()).await;
    cluster.kill(id);
    let endpoints: Vec<String> = (1..=id).map(|n| cluster.addr(n)).collect();
    let rows = wait_until(
        "the leader to miss node 4",
        Duration::from_secs(30),
        || async {
            let v = cluster.rekapctl(ADMIN, &endpoints.join(","), &["cluster", "status"]);
            let rows = v.as_array()?.clone();
            rows.iter()
                .any(|r| r["node_id"] == id && r.get("error").is_some())
                .then_some(rows)
        },
    )
    .await;
    let of_4: Vec<_> = rows
        .iter()
        .filter(|r| r["node_id"] == id || r["addr"] == advertised.as_str())
        .collect();
    assert_eq!(of_4.len(), 1, "{rows:#?}");
    assert_eq!(of_4[0]["addr"], cluster.addr(id).as_str(), "{rows:#?}");
    assert_eq!(of_4[0]["advertised"], advertised.as_str(), "{rows:#?}");
    assert_eq!(rows.len(), 4, "{rows:#?}");
}
