//! Scenario: the shipped caching front (`deploy/nginx`, real nginx) in front
//! of three real nodes. A page read twice is served from nginx's cache; a
//! new result shows through it within max-age plus one second; the live
//! events pass through as they come; and a node killed behind it costs a
//! crowd of readers no error.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rekap_tests::http::{dashboard_answers, events, get_with};
use rekap_tests::nginx::Front;
use rekap_tests::pki::OPERATOR;
use rekap_tests::{CONTEST, ClusterOptions, KABUPATEN, start_with_registry, wait_until, workload};

/// The nodes' default `max-age` (shared caches are told a second less).
const MAX_AGE: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_caches_the_dashboard_and_rides_over_a_dead_node() {
    let (mut cluster, tps, _) = start_with_registry(ClusterOptions::default(), 2).await;
    cluster.settle(Duration::from_secs(10)).await;
    let front = Front::start(&cluster).await;
    let ca = cluster.pki.ca_dir();
    let page = format!("/wilayah/{KABUPATEN}?pemilihan={CONTEST}");

    // Read twice: the second comes from nginx's cache.
    let first = get_with(&ca, &front.addr, &page, &[]).await.expect("page");
    assert_eq!(first.status, 200, "{}", front.log());
    assert_eq!(first.header("x-cache-status"), Some("MISS"));
    let again = get_with(&ca, &front.addr, &page, &[]).await.expect("page");
    assert_eq!(again.header("x-cache-status"), Some("HIT"));
    assert_eq!(again.body, first.body);
    let m = get_with(&ca, &front.addr, "/metrics", &[])
        .await
        .expect("metrics");
    assert_eq!(m.status, 404, "the nodes' metrics are not public");

    // The live events, through nginx, as they come.
    let (status, mut live) = events(
        &ca,
        &front.addr,
        &format!("/api/v1/events/{KABUPATEN}?pemilihan={CONTEST}"),
    )
    .await
    .expect("event stream");
    assert_eq!(status, 200);
    let view = tokio::time::timeout(Duration::from_secs(5), live.recv())
        .await
        .expect("the first view within 5 s")
        .expect("a view");
    let v: serde_json::Value = serde_json::from_str(&view).expect("JSON");
    assert_eq!(v["totals"]["tps_reported"], 0);

    // A new result shows through the cache within max-age plus a second,
    // with a reader polling as browsers would.
    let operator = cluster.client_as(OPERATOR);
    operator
        .submit(workload::submission(&tps[0], 0))
        .await
        .expect("accepted");
    let acked = Instant::now();
    wait_until(
        "the result through nginx",
        MAX_AGE + Duration::from_secs(1),
        || async {
            let a = get_with(&ca, &front.addr, &page, &[]).await.ok()?;
            let text = String::from_utf8(a.body.to_vec()).ok()?;
            text.contains("data-f=\"tps_reported\">1<").then_some(())
        },
    )
    .await;
    println!(
        "a new result showed through nginx {:?} after its ack",
        acked.elapsed()
    );
    let event = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let d = live.recv().await.expect("the stream stays open");
            let v: serde_json::Value = serde_json::from_str(&d).expect("JSON");
            if v["totals"]["tps_reported"] == 1 {
                return;
            }
        }
    })
    .await;
    assert!(event.is_ok(), "the new view came through the event stream");

    // A crowd reading many pages (some always past the cache), while a
    // node is killed: not one reader sees an error.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut readers = Vec::new();
    for r in 0..8 {
        let (ca, addr, tps) = (ca.clone(), front.addr.clone(), tps.clone());
        let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
        readers.push(tokio::spawn(async move {
            let mut i = r;
            while !stop.load(Ordering::Relaxed) {
                let path = match i % 3 {
                    0 => format!("/tps/{}?pemilihan={CONTEST}", tps[i % tps.len()]),
                    1 => format!("/wilayah/{KABUPATEN}?pemilihan={CONTEST}&r={r}-{i}"),
                    _ => format!("/api/v1/wilayah/{KABUPATEN}?pemilihan={CONTEST}"),
                };
                match get_with(&ca, &addr, &path, &[]).await {
                    Ok(a) if a.status == 200 => ok.fetch_add(1, Ordering::Relaxed),
                    Ok(a) => {
                        eprintln!("{path}: {}", a.status);
                        failed.fetch_add(1, Ordering::Relaxed)
                    }
                    Err(e) => {
                        eprintln!("{path}: {e}");
                        failed.fetch_add(1, Ordering::Relaxed)
                    }
                };
                i += 8;
            }
        }));
    }
    wait_until("readers under way", Duration::from_secs(10), || async {
        (ok.load(Ordering::Relaxed) >= 100).then_some(())
    })
    .await;
    let before_kill = ok.load(Ordering::Relaxed);
    let survivors = [cluster.http_addr(2), cluster.http_addr(3)];
    let answered_before = answered(&ca, &survivors).await;
    cluster.kill(1);
    let killed = Instant::now();
    // Long enough for every reader to go past the cache to the nodes many
    // times, and for the dead node's fail_timeout (5 s) to end once.
    wait_until(
        "readers after the kill",
        Duration::from_secs(30),
        || async {
            (killed.elapsed() > Duration::from_secs(7)
                && ok.load(Ordering::Relaxed) >= before_kill + 500)
                .then_some(())
        },
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.await.expect("reader");
    }
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    println!(
        "readers: {ok} answers, {} after node 1 was killed, {failed} errors",
        ok - before_kill
    );
    assert_eq!(
        failed,
        0,
        "a killed node cost readers errors\n{}",
        front.log()
    );
    // The pages no cache holds (every `r` is new) were answered by the
    // nodes left.
    let answered_after = answered(&ca, &survivors).await;
    println!(
        "nodes 2 and 3 answered {answered_before} requests before the kill, {answered_after} after"
    );
    assert!(
        answered_after >= answered_before + 100.0,
        "the readers' answers after the kill came from nodes 2 and 3"
    );
}

/// Dashboard answers the nodes at `addrs` gave, in all.
async fn answered(ca: &std::path::Path, addrs: &[String]) -> f64 {
    let mut sum = 0.0;
    for a in addrs {
        for kind in ["rendered", "kept", "not_modified"] {
            sum += dashboard_answers(ca, a, kind).await;
        }
    }
    sum
}
