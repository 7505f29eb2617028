//! Scenario: `Tally.Watch` on real nodes. A follower serves its own
//! watchers; updates are coalesced to at most one per tick; a watcher that
//! never reads holds up no write and, when it finally reads, gets the
//! newest view instead of a backlog; a watcher whose node is killed moves
//! on and never goes back in time; a resumed watch skips a view it has
//! already seen; a node with no leader still serves a watch.

use std::time::{Duration, Instant};

use futures::StreamExt;
use rekap_client::proto as pb;
use rekap_client::rule_of;
use rekap_node::watch::TICK;
use rekap_tests::pki::{AUDITOR, OPERATOR};
use rekap_tests::{CONTEST, ClusterOptions, KABUPATEN, start_with_registry, workload};

const TPS: usize = 200;

fn reported(u: &pb::WatchUpdate) -> u64 {
    u.totals.as_ref().map_or(0, |t| t.tps_reported)
}

/// Submits `tps` one command each, 8 at a time, and returns when all are
/// acknowledged.
async fn submit_each(client: &rekap_client::Client, tps: &[String], offset: usize) {
    let subs: Vec<pb::Submission> = tps
        .iter()
        .enumerate()
        .map(|(i, t)| workload::submission(t, offset + i))
        .collect();
    let results: Vec<_> = futures::stream::iter(subs)
        .map(|s| {
            let c = client.clone();
            async move { c.submit(s).await }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    for r in results {
        r.expect("submission accepted");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchers_get_coalesced_live_views_from_any_node() {
    let (mut cluster, tps, _) = start_with_registry(ClusterOptions::default(), 2).await;
    assert_eq!(tps.len(), TPS);
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    let follower = cluster
        .running()
        .into_iter()
        .find(|&id| id != leader)
        .expect("a follower");
    let operator = cluster.client_as(OPERATOR);
    // A follower authorizes a watcher against its own state: let every
    // node apply the users and the registry first.
    let setup = cluster
        .status(leader)
        .await
        .expect("status")
        .applied_index
        .unwrap_or(0);
    cluster
        .wait_applied(&cluster.running(), setup, Duration::from_secs(10))
        .await;

    // Refusals name their rule and open no stream.
    let mut raw =
        pb::tally_client::TallyClient::new(cluster.raw_channel(AUDITOR, &cluster.addr(follower)));
    let e = raw
        .watch(pb::WatchRequest {
            region_code: "99.99".into(),
            contest_id: CONTEST.into(),
            from_index: 0,
        })
        .await
        .expect_err("an unknown region is refused");
    assert_eq!(e.code(), tonic::Code::NotFound, "{e:?}");
    assert_eq!(rule_of(&e).as_deref(), Some("region_exists"));

    // A watcher on the follower only, and one that never reads, on the leader.
    let mut on_follower =
        rekap_tests::client_as_for(&cluster, AUDITOR, follower).watch(KABUPATEN, CONTEST);
    let first = on_follower.next().await.expect("the current view");
    assert_eq!(
        first.node_id, follower,
        "the follower serves its watcher itself"
    );
    assert_eq!(reported(&first), 0);
    assert_eq!(first.children.len(), 2, "one view per kecamatan");
    let mut idle =
        pb::tally_client::TallyClient::new(cluster.raw_channel(AUDITOR, &cluster.addr(leader)))
            .watch(pb::WatchRequest {
                region_code: KABUPATEN.into(),
                contest_id: CONTEST.into(),
                from_index: 0,
            })
            .await
            .expect("the idle watch opens")
            .into_inner();

    // 150 results as 150 commands, while the follower's watcher reads.
    let reader = tokio::spawn(async move {
        let mut seen = vec![first];
        while reported(seen.last().expect("one view")) < 150 {
            seen.push(on_follower.next().await.expect("a view"));
        }
        (on_follower, seen)
    });
    let started = Instant::now();
    submit_each(&operator, &tps[..150], 0).await;
    let (mut on_follower, seen) = tokio::time::timeout(Duration::from_secs(20), reader)
        .await
        .expect("the watcher sees all 150 within 20 s")
        .expect("reader");
    let elapsed = started.elapsed();
    for w in seen.windows(2) {
        assert!(
            w[1].applied_index > w[0].applied_index,
            "views move forward"
        );
        assert!(reported(&w[1]) > reported(&w[0]), "each view is a change");
    }
    let ticks = (elapsed.as_secs_f64() / TICK.as_secs_f64()).ceil() as usize;
    assert!(
        seen.len() <= ticks + 2,
        "{} views in {elapsed:?}: more than one per {TICK:?} tick",
        seen.len()
    );
    assert!(
        seen.len() < 150 / 2,
        "150 commands coalesce into few views ({})",
        seen.len()
    );
    let last = seen.last().expect("a view");
    let totals = operator
        .totals(KABUPATEN, CONTEST, pb::Consistency::Linearizable)
        .await
        .expect("totals");
    let linear = totals.totals.expect("totals");
    let watched = last.totals.clone().expect("totals");
    assert_eq!(watched.sah, linear.sah);
    assert_eq!(watched.candidates, linear.candidates);
    let child_sum: u64 = last.children.iter().map(|c| c.tps_reported).sum();
    assert_eq!(child_sum, 150, "the kecamatan add up");

    // The idle watcher, read only now, gets the newest view after at most
    // what the transport held: no backlog of 150.
    let mut idle_seen = 0;
    loop {
        let u = tokio::time::timeout(Duration::from_secs(5), idle.message())
            .await
            .expect("the idle stream has the newest view")
            .expect("stream")
            .expect("a view");
        idle_seen += 1;
        if reported(&u) == 150 {
            break;
        }
    }
    assert!(
        idle_seen <= ticks + 2,
        "the idle watcher got {idle_seen} views: a backlog"
    );

    // `rekapctl watch`, one view as JSON, from the follower.
    let out = std::process::Command::new(rekap_tests::node_binary().with_file_name("rekapctl"))
        .args([
            "--endpoints",
            &cluster.addr(follower),
            "--json",
            "--certs-dir",
        ])
        .arg(cluster.pki.user_dir(AUDITOR))
        .args([
            "watch",
            "--region",
            KABUPATEN,
            "--contest",
            CONTEST,
            "--count",
            "1",
        ])
        .output()
        .expect("rekapctl runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON line");
    assert_eq!(line["totals"]["tps_reported"], 150);
    assert_eq!(line["node_id"], follower);
    assert_eq!(line["children"].as_array().map(Vec::len), Some(2));

    // A resumed watch skips the view it already has: its first message is
    // a change after from_index.
    let from = last.applied_index;
    let mut resumed = raw
        .watch(pb::WatchRequest {
            region_code: KABUPATEN.into(),
            contest_id: CONTEST.into(),
            from_index: from,
        })
        .await
        .expect("resumes")
        .into_inner();

    // Kill the node serving a watcher that knows the whole cluster: it
    // moves on, and never shows an older view.
    let mut roaming = cluster.client_as(AUDITOR).watch(KABUPATEN, CONTEST);
    let before = match roaming.next().await {
        Ok(v) => v,
        Err(e) => {
            for id in cluster.running() {
                eprintln!(
                    "node {id}: {:?}",
                    cluster.status(id).await.map(|s| (s.state, s.applied_index))
                );
            }
            panic!("roaming via {:?}: {e:?}", roaming.serving());
        }
    };
    assert_eq!(reported(&before), 150);
    let serving = before.node_id;
    cluster.kill(serving);
    submit_each(&operator, &tps[150..], 150).await;
    let after = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let u = roaming.next().await.expect("the watch moves on");
            assert!(u.applied_index >= before.applied_index, "back in time");
            if reported(&u) == TPS as u64 {
                return u;
            }
        }
    })
    .await
    .expect("the roaming watcher sees all 200");
    assert_ne!(after.node_id, serving, "served by another node now");

    if serving != follower {
        let u = tokio::time::timeout(Duration::from_secs(10), resumed.message())
            .await
            .expect("a change after from_index")
            .expect("stream")
            .expect("a view");
        assert!(
            u.changed_index > from,
            "the resumed watch repeated a view it had seen"
        );
        assert!(reported(&u) > 150);
        let u = on_follower
            .next()
            .await
            .expect("the follower's watcher goes on");
        assert!(reported(&u) > 150);
    }

    // With one node left there is no leader, and a watch still opens there.
    let survivors = cluster.running();
    cluster
        .wait_applied(&survivors, after.applied_index, Duration::from_secs(10))
        .await;
    cluster.kill(survivors[0]);
    let lone = survivors[1];
    let mut alone = rekap_tests::client_as_for(&cluster, AUDITOR, lone).watch(KABUPATEN, CONTEST);
    let u = alone.next().await.expect("a view without a leader");
    assert_eq!(u.node_id, lone);
    assert_eq!(reported(&u), TPS as u64);
}
