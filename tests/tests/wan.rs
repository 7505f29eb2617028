//! Rekap over the links between offices: every node behind the WAN
//! emulator (`rekap_tests::wan`), on the regional profile (Jakarta,
//! Banjarmasin, Kotabaru: 5/15/35 ms one way with jitter and 1% stalls)
//! with the README's regional timing. Each scenario prints its figures.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rekap_client::proto as pb;
use rekap_tests::http::{get, sample};
use rekap_tests::wan::{self, SATELLITE};
use rekap_tests::workload::{History, Workload, check_all, submission};
use rekap_tests::{
    CONTEST, Cluster, ClusterOptions, KABUPATEN, client_as_for, client_for, ops, wait_until,
};

/// Three nodes on the regional profile, with these leader priorities.
async fn regional_cluster(
    priorities: &[(u64, u32)],
    kecamatan: usize,
) -> (Cluster, Arc<Vec<String>>, Vec<String>) {
    let opts = ClusterOptions {
        node_flags: wan::leader_priorities(priorities),
        ..ClusterOptions::default()
    };
    wan::start_regional(opts, kecamatan).await
}

/// Waits until node `id` leads with its quorum; returns how long that took.
async fn wait_leads(c: &Cluster, id: u64, within: Duration) -> Duration {
    let start = Instant::now();
    wait_until(&format!("node {id} leading"), within, || async {
        let s = c.status(id).await?;
        (s.state == "leader" && s.quorum == Some(true)).then_some(())
    })
    .await;
    start.elapsed()
}

/// The node that leads now, as a voter other than `not` says.
async fn leader_seen_by_others(c: &Cluster, not: u64) -> u64 {
    wait_until(
        "a leader among the others",
        Duration::from_secs(30),
        || async {
            for id in c.running().into_iter().filter(|id| *id != not) {
                if let Some(s) = c.status(id).await
                    && s.state == "leader"
                {
                    return Some(id);
                }
            }
            None
        },
    )
    .await
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

fn rate(h: &History, over: Duration) -> f64 {
    h.acked.len() as f64 / over.as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steady_wan_load_keeps_its_leader_at_the_preferred_office() {
    let (c, tps, endpoints) = regional_cluster(&[(1, 3), (2, 2), (3, 1)], 40).await;
    let placed = wait_leads(&c, 1, Duration::from_secs(60)).await;
    let term = c.status(1).await.expect("node 1 answers").term;

    let load = Workload::start(&c, endpoints, tps.clone(), 16);
    let start = Instant::now();
    load.wait_acked(2000, Duration::from_secs(120)).await;
    let h = load.stop().await;
    let took = start.elapsed();

    for id in 1..=3 {
        let s = c.status(id).await.expect("every node answers");
        assert_eq!(s.term, term, "node {id}: the term moved under steady load");
        assert_eq!(s.leader_id, Some(1), "node {id} follows another leader");
    }
    check_all(&c, &tps, &h).await;
    println!(
        "steady WAN: node 1 led {} after the links slowed; 16 writers: {} acked in {:.1} s, {:.0} w/s, p50 {}, p99 {}; leader changes: 0 (term {term})",
        ms(placed),
        h.acked.len(),
        took.as_secs_f64(),
        rate(&h, took),
        ms(h.latency(0.5)),
        ms(h.latency(0.99)),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_on_the_wan_and_back_to_the_preferred_office() {
    let (mut c, tps, endpoints) = regional_cluster(&[(1, 3), (2, 2), (3, 1)], 40).await;
    wait_leads(&c, 1, Duration::from_secs(60)).await;
    let load = Workload::start(&c, endpoints, tps.clone(), 8);
    load.wait_acked(200, Duration::from_secs(60)).await;

    c.kill(1);
    let killed_at = Instant::now();
    let next = leader_seen_by_others(&c, 1).await;
    let elected = killed_at.elapsed();
    // Node 1's office still answers (its host is up): the reset a round
    // trip away tells the others its process is gone.
    let mut found = 0.0;
    for id in [2, 3] {
        let (_, text) = get(&c.pki.ca_dir(), &c.http_addr(id), "/metrics")
            .await
            .expect("metrics");
        found += sample(&text, "rekap_server_dead_leaders_found_total").unwrap_or(0.0);
    }
    assert!(found >= 1.0, "no survivor found node 1's process gone");
    load.wait_acked(200, Duration::from_secs(60)).await;
    // The new leader took the surviving follower's word for where its log
    // matches rather than searching for it (`network::hint`; release
    // builds only). check_all below shows the shortcut lost nothing.
    let (_, text) = get(&c.pki.ca_dir(), &c.http_addr(next), "/metrics")
        .await
        .expect("metrics");
    let hints = sample(&text, "rekap_raft_follower_hints_taken_total").unwrap_or(0.0);
    if !cfg!(debug_assertions) {
        assert!(
            hints >= 1.0,
            "node {next} searched for its follower's match point instead of taking its hint"
        );
    }

    c.restart(1);
    let restarted = Instant::now();
    wait_until(
        "node 1 following again",
        Duration::from_secs(60),
        || async {
            let s = c.status(1).await?;
            (s.state == "follower" && s.leader_id.is_some()).then_some(())
        },
    )
    .await;
    let healthy_at = Instant::now();
    wait_leads(&c, 1, Duration::from_secs(60)).await;
    let back = healthy_at.elapsed();
    load.wait_acked(200, Duration::from_secs(60)).await;
    let h = load.stop().await;

    let gap = h
        .longest_pause_after(killed_at, Duration::from_secs(30))
        .expect("acknowledgements after the kill");
    check_all(&c, &tps, &h).await;
    println!(
        "failover on the WAN: leader 1 killed, node {next} seen leading {} later ({hints} follower hints taken); client-seen gap {}; node 1 healthy {} after its restart, leading again {} after that",
        ms(elected),
        ms(gap),
        ms(healthy_at - restarted),
        ms(back),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_priority_0_voter_hands_the_lead_back_and_a_satellite_learner_serves_reads() {
    // Kotabaru is a voter that should never lead while another can.
    let (mut c, tps, _) = regional_cluster(&[(3, 0)], 1).await;
    let operator = c.client_as(rekap_tests::pki::OPERATOR);
    operator
        .submit(submission(&tps[0], 0))
        .await
        .expect("a first result");

    // Asked to lead, it takes the lead, then hands it on by itself.
    let before = c.wait_for_leader(Duration::from_secs(30)).await;
    if before != 3 {
        let via = client_as_for(&c, rekap_tests::pki::ADMIN, before);
        via.admin(|mut a| async move {
            a.transfer_leader(pb::TransferLeaderRequest { to_node_id: 3 })
                .await
        })
        .await
        .expect("transfer to node 3");
    }
    wait_leads(&c, 3, Duration::from_secs(10)).await;
    let led = Instant::now();
    let back = leader_seen_by_others(&c, 3).await;
    let handed_back = led.elapsed();
    wait_leads(&c, back, Duration::from_secs(30)).await;

    // A learner behind a satellite link.
    let learner = c.spawn_joiner();
    c.wan().shape_both(learner, SATELLITE);
    ops::add_learner(&c.client(), learner, c.addr(learner)).await;
    let s = c.status(learner).await.expect("the learner answers");
    assert_eq!(s.state, "learner");
    let at_learner = client_for(&c, learner);
    let stale = pb::Consistency::Stale;
    let t = at_learner
        .totals(KABUPATEN, CONTEST, stale)
        .await
        .expect("a stale read at the learner");
    assert_eq!(t.totals.expect("totals").tps_reported, 1);
    // A write sent to the learner is forwarded to the leader.
    let sent = Instant::now();
    let o = client_as_for(&c, rekap_tests::pki::OPERATOR, learner)
        .submit(submission(&tps[1], 1))
        .await
        .expect("a write through the learner");
    let forwarded = sent.elapsed();
    assert_eq!(o.status, pb::SubmitStatus::Accepted as i32);
    wait_until(
        "the learner to hold the write",
        Duration::from_secs(30),
        || async {
            let t = at_learner.totals(KABUPATEN, CONTEST, stale).await.ok()?;
            (t.totals?.tps_reported == 2).then_some(())
        },
    )
    .await;
    println!(
        "priority 0: node 3 led, then node {back} led {} later; satellite learner {learner} (300 ms one way) served a stale read and forwarded a write in {}",
        ms(handed_back),
        ms(forwarded),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_office_cut_off_for_a_minute_rejoins_without_an_election() {
    let (c, tps, _) = regional_cluster(&[(1, 2)], 40).await;
    wait_leads(&c, 1, Duration::from_secs(60)).await;
    let term = c.status(1).await.expect("node 1 answers").term;
    // Kotabaru's own clients try Kotabaru's node first.
    let load = Workload::start(&c, vec![c.addr(3), c.addr(1), c.addr(2)], tps.clone(), 4);
    load.wait_acked(100, Duration::from_secs(60)).await;

    c.wan().cut(3, true);
    let cut_at = Instant::now();
    load.wait_acked(200, Duration::from_secs(60)).await;
    let moved = cut_at.elapsed();
    // The cut node's dashboard, on its office's own network, keeps
    // serving and says for how long it has not heard from the leader.
    let api = format!("/api/v1/wilayah/{KABUPATEN}");
    let ca = c.pki.ca_dir();
    let stale_for = wait_until("a minute cut off", Duration::from_secs(120), || async {
        let (code, body) = rekap_tests::http::get(&ca, &c.http_addr(3), &api)
            .await
            .ok()?;
        assert_eq!(code, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        let since = v["out_of_touch_since_ms"].as_i64()?;
        let ms = (rekap_node::node::now_ms() - since).max(0) as u64;
        (ms >= 60_000).then_some(ms)
    })
    .await;
    let (code, page) =
        rekap_tests::http::get(&ca, &c.http_addr(3), &format!("/wilayah/{KABUPATEN}"))
            .await
            .expect("the cut node's page");
    assert_eq!(code, 200);
    assert!(page.contains("tidak terhubung ke pemimpin"), "{page}");
    let acked_during_cut = load.acked();

    c.wan().cut(3, false);
    let healed = Instant::now();
    let leader_index = c.status(1).await.expect("leader").committed_index;
    c.wait_applied(&[3], leader_index.unwrap_or(0), Duration::from_secs(60))
        .await;
    let caught_up = healed.elapsed();
    load.wait_acked(100, Duration::from_secs(60)).await;
    let h = load.stop().await;
    for id in 1..=3 {
        let s = c.status(id).await.expect("every node answers");
        assert_eq!(s.term, term, "node {id}: the heal disturbed an election");
        assert_eq!(s.leader_id, Some(1));
    }
    check_all(&c, &tps, &h).await;
    println!(
        "office cut: clients moved off node 3 (100 acks) {} after the cut; {acked_during_cut} acked by the end of the cut; node 3 said {} s out of touch; caught up {} after the heal; term {term} throughout",
        ms(moved),
        stale_for / 1000,
        ms(caught_up),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_whose_uplink_lags_past_its_lease_never_serves_a_stale_read() {
    let (c, tps, _) = regional_cluster(&[], 1).await;
    let operator = c.client_as(rekap_tests::pki::OPERATOR);
    operator
        .submit(submission(&tps[0], 0))
        .await
        .expect("a first result");
    let old = c.wait_for_leader(Duration::from_secs(30)).await;
    let timing = c.status(old).await.and_then(|s| s.timing).expect("timing");
    let lease = Duration::from_millis(timing.lease_ms.into());
    // What it sends now arrives three leases late; what it hears is on time.
    let base = wan::REGIONAL[(old - 1) as usize].1;
    let lagging = wan::Shape {
        delay: 3 * lease,
        ..base
    };
    c.wan().shape(old, lagging, base);
    let new = leader_seen_by_others(&c, old).await;
    let o = client_for(&c, new)
        .submit(submission(&tps[1], 1))
        .await
        .expect("a write at the new leader");
    assert_eq!(o.status, pb::SubmitStatus::Accepted as i32);

    let mut tally =
        pb::tally_client::TallyClient::new(c.raw_channel(rekap_tests::pki::OPERATOR, &c.addr(old)));
    let mut req = tonic::Request::new(pb::GetTotalsRequest {
        region_code: KABUPATEN.into(),
        contest_id: CONTEST.into(),
        consistency: pb::Consistency::Linearizable as i32,
    });
    req.set_timeout(Duration::from_secs(30));
    let asked = Instant::now();
    match tally.get_totals(req).await {
        Ok(t) => assert_eq!(
            t.into_inner().totals.expect("totals").tps_reported,
            2,
            "node {old}, deposed behind a lagging uplink, answered a linearizable read without the write new leader {new} acknowledged"
        ),
        Err(e) => println!("node {old} refused the read: {e}"),
    }
    println!(
        "deposed leader: node {old}'s uplink lagged {}; node {new} led; the read at node {old} was answered {} later, never stale",
        ms(3 * lease),
        ms(asked.elapsed()),
    );
}
