//! Fault injection across real hosts (containers on a network the test
//! creates): under a continuous load, a seeded random schedule kills -9,
//! freezes and cuts off nodes (the leader among them), changes membership,
//! crashes the sender or the receiver of a new node's snapshot part-way,
//! and restarts the whole cluster. After healing, the checker proves every
//! acknowledged submission is present exactly once, nothing unsubmitted is
//! present, unknown outcomes are present once or absent, totals equal the
//! sum of the results held, and every node holds the same audit chain. It
//! prints, per fault kind, how long until the next acknowledgement.
//!
//! Needs Docker and the image; `tests/run.sh` builds it first
//! (`bash deploy/image/build.sh`). Knobs:
//! `REKAP_FAULTS` (default 20), `REKAP_SEED` (default: from the clock,
//! printed), `REKAP_FAULT_REPORT=path.md` for a markdown report.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rekap_client::{Client, ClientOptions};
use rekap_tests::docker::DockerCluster;
use rekap_tests::pki::ADMIN;
use rekap_tests::workload::{History, Workload, check_all};
use rekap_tests::{Nodes, load_registry, ops, setup_users, synthetic_registry, wait_for_leader};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    KillLeader,
    KillFollower,
    Pause,
    PartitionLeader,
    PartitionFollower,
    Membership,
    SnapshotCrash,
    FullRestart,
}

struct Injected {
    kind: Kind,
    target: u64,
    at: Instant,
}

fn admin_client(c: &DockerCluster) -> Client {
    Client::with_options(
        c.running().into_iter().map(|id| c.addr(id)),
        ClientOptions {
            deadline: Duration::from_secs(60),
            ..c.pki().options(ADMIN)
        },
    )
}

/// Adds a node, promotes it, and removes `victim`: the voter count stays 3.
async fn replace(c: &mut DockerCluster, victim: u64) -> u64 {
    let new_id = c.spawn_joiner();
    let admin = admin_client(c);
    ops::add_learner(&admin, new_id, c.addr(new_id)).await;
    ops::promote(&admin, new_id).await;
    ops::remove(&admin, victim).await;
    let survivors: Vec<u64> = c.running().into_iter().filter(|id| *id != victim).collect();
    ops::wait_removed(&*c, &survivors, victim, Duration::from_secs(60)).await;
    c.destroy(victim);
    new_id
}

/// Adds a node and, once it says a snapshot is coming, kills the leader
/// sending it (`crash_sender`) or the new node receiving it, for `hold`;
/// then the new node, caught up, takes `victim`'s place as in `replace`.
/// Returns the node killed and when.
async fn crash_mid_snapshot(
    c: &mut DockerCluster,
    leader: u64,
    victim: u64,
    crash_sender: bool,
    hold: Duration,
) -> (u64, Instant) {
    let new_id = c.spawn_joiner();
    let addr = c.addr(new_id);
    let first = {
        let admin = admin_client(c);
        let req = rekap_proto::pb::AddLearnerRequest {
            node: Some(rekap_proto::pb::NodeAddr {
                node_id: new_id,
                addr: addr.clone(),
            }),
            blocking: true,
        };
        // Its answer does not matter: the crash may cut it off.
        tokio::spawn(async move {
            let _ = admin
                .admin_patient(|mut a| {
                    let r = req.clone();
                    async move { a.add_learner(r).await }
                })
                .await;
        })
    };
    // A small state streams in a moment: the crash lands mid-stream or
    // mid-install, whichever the timing gives.
    let began = Instant::now();
    // (Early in the run there is no snapshot yet: it replays the log.)
    while !c.logs(new_id, 500).contains("receiving a snapshot")
        && !first.is_finished()
        && began.elapsed() < Duration::from_secs(30)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let coming = c.logs(new_id, 500).contains("receiving a snapshot");
    let target = if crash_sender { leader } else { new_id };
    c.kill(target);
    println!(
        "  killed the snapshot's {} (node {target}) {} the new node {new_id} said it was receiving one",
        if crash_sender { "sender" } else { "receiver" },
        if coming { "after" } else { "before" },
    );
    let at = Instant::now();
    first.abort();
    tokio::time::sleep(hold).await;
    c.restart(target);
    wait_for_leader(&*c, Duration::from_secs(60)).await;
    let admin = admin_client(c);
    ops::add_learner(&admin, new_id, addr).await;
    ops::promote(&admin, new_id).await;
    ops::remove(&admin, victim).await;
    let survivors: Vec<u64> = c.running().into_iter().filter(|id| *id != victim).collect();
    ops::wait_removed(&*c, &survivors, victim, Duration::from_secs(60)).await;
    c.destroy(victim);
    (target, at)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn report(seed: u64, faults: &[Injected], history: &History, verdict: &str) -> String {
    let mut gaps: BTreeMap<Kind, Vec<Duration>> = BTreeMap::new();
    for f in faults {
        let next = history
            .acked
            .values()
            .map(|(_, at)| *at)
            .filter(|at| *at > f.at)
            .min();
        if let Some(n) = next {
            gaps.entry(f.kind).or_default().push(n - f.at);
        }
    }
    let ms = |d: Duration| format!("{:.0}", d.as_secs_f64() * 1000.0);
    let mut out = format!(
        "# Rekap fault-injection run\n\nseed {seed}; {} faults; {} acknowledged, {} unknown, {} refused submissions\n\nchecker verdict: **{verdict}**\n\n| fault | count | next ack p50 ms | p99 ms | max ms |\n|---|---|---|---|---|\n",
        faults.len(),
        history.acked.len(),
        history.unknown.len(),
        history.failed.len()
    );
    for (kind, mut g) in gaps {
        g.sort();
        out += &format!(
            "| {kind:?} | {} | {} | {} | {} |\n",
            g.len(),
            ms(percentile(&g, 0.5)),
            ms(percentile(&g, 0.99)),
            ms(*g.last().unwrap())
        );
    }
    out += "\n| # | fault | node |\n|---|---|---|\n";
    for (i, f) in faults.iter().enumerate() {
        out += &format!("| {} | {:?} | {} |\n", i + 1, f.kind, f.target);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_faults_across_containers_lose_nothing() {
    let faults: usize = std::env::var("REKAP_FAULTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let seed: u64 = std::env::var("REKAP_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis() as u64
        });
    println!("fault run: {faults} faults, seed {seed} (REKAP_SEED={seed} repeats the schedule)");
    let mut rng = StdRng::seed_from_u64(seed);

    let mut c = DockerCluster::start(3);
    wait_for_leader(&c, Duration::from_secs(60)).await;
    setup_users(&c, &admin_client(&c)).await;
    // The writers ack about 2,000 submissions per fault, more while a new
    // node catches up (a snapshot crash): room to spare.
    let reg = synthetic_registry((faults * 80).max(50));
    load_registry(&admin_client(&c), &reg).await;
    let tps: Arc<Vec<String>> = Arc::new(reg.tps.iter().map(|t| t.tps_id.clone()).collect());
    let endpoints: Vec<String> = c.running().into_iter().map(|id| c.addr(id)).collect();
    let load = Workload::start(&c, endpoints, tps.clone(), 4);
    load.wait_acked(50, Duration::from_secs(60)).await;

    let kinds = [
        Kind::KillLeader,
        Kind::KillFollower,
        Kind::Pause,
        Kind::PartitionLeader,
        Kind::PartitionFollower,
        Kind::Membership,
        Kind::SnapshotCrash,
        Kind::FullRestart,
    ];
    let mut injected = Vec::new();
    for i in 0..faults {
        // Full restarts are rarer: one in about fourteen.
        let kind = kinds[rng.random_range(0..kinds.len() * 2) % kinds.len()];
        let kind = if kind == Kind::FullRestart && rng.random_bool(0.5) {
            Kind::KillFollower
        } else {
            kind
        };
        let leader = wait_for_leader(&c, Duration::from_secs(60)).await;
        let followers: Vec<u64> = c.running().into_iter().filter(|id| *id != leader).collect();
        let follower = followers[rng.random_range(0..followers.len())];
        let hold = Duration::from_millis(rng.random_range(500..2500));
        // Each fault's clock starts once it is in effect (the docker command
        // returned): acknowledgements already on their way do not count.
        let (target, at) = match kind {
            Kind::KillLeader | Kind::KillFollower => {
                let t = if kind == Kind::KillLeader {
                    leader
                } else {
                    follower
                };
                c.kill(t);
                let at = Instant::now();
                tokio::time::sleep(hold).await;
                c.restart(t);
                (t, at)
            }
            Kind::Pause => {
                let t = if rng.random_bool(0.5) {
                    leader
                } else {
                    follower
                };
                c.pause(t);
                let at = Instant::now();
                tokio::time::sleep(hold).await;
                c.unpause(t);
                (t, at)
            }
            Kind::PartitionLeader | Kind::PartitionFollower => {
                let t = if kind == Kind::PartitionLeader {
                    leader
                } else {
                    follower
                };
                c.disconnect(t);
                let at = Instant::now();
                tokio::time::sleep(hold).await;
                c.reconnect(t);
                (t, at)
            }
            Kind::Membership => {
                let victim = if rng.random_bool(0.3) {
                    leader
                } else {
                    follower
                };
                let at = Instant::now();
                replace(&mut c, victim).await;
                (victim, at)
            }
            Kind::SnapshotCrash => {
                crash_mid_snapshot(&mut c, leader, follower, rng.random_bool(0.5), hold).await
            }
            Kind::FullRestart => {
                let all = c.running();
                for &id in &all {
                    c.kill(id);
                }
                let at = Instant::now();
                for &id in &all {
                    c.restart(id);
                }
                (0, at)
            }
        };
        println!(
            "fault {}: {kind:?} on node {target} (held {} ms)",
            i + 1,
            hold.as_millis()
        );
        injected.push(Injected { kind, target, at });
        // The cluster must serve again before the next fault.
        wait_for_leader(&c, Duration::from_secs(60)).await;
        load.wait_acked(20, Duration::from_secs(90)).await;
    }
    let history = load.stop().await;
    for id in c.hosts.keys().copied().collect::<Vec<_>>() {
        c.heal(id);
    }
    let nodes = check_all(&c, &tps, &history).await;
    assert_eq!(nodes.len(), 3, "three voters checked");
    let text = report(
        seed,
        &injected,
        &history,
        "PASS: every acknowledged submission present exactly once, totals and audit chains equal on all nodes",
    );
    println!("{text}");
    if let Ok(path) = std::env::var("REKAP_FAULT_REPORT") {
        std::fs::write(&path, &text).expect("write report");
    }
}
