//! Scenario: a station's outbox under volume and faults, real processes
//! throughout.
//!
//! - Volume: 1,000 entries queued with every node down are all delivered
//!   once a node answers, and the totals equal their sum.
//! - The operator's identity and scope change while entries wait: an
//!   expired or a revoked certificate keeps them queued (the page says why)
//!   until a new one is in place; a TPS taken out of the operator's scope is ditolak
//!   with its rule, kept, and delivered by `rekapctl outbox retry` once the
//!   scope is granted again.

use std::time::{Duration, Instant};

use rekap_client::certs::Validity;
use rekap_client::proto as pb;
use rekap_tests::pki::OPERATOR;
use rekap_tests::station::{Station, fields_of};
use rekap_tests::{CONTEST, ClusterOptions, start_with_registry, wait_until, workload};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_entries_queued_offline_arrive_once_when_a_node_answers() {
    let (mut cluster, tps, endpoints) = start_with_registry(ClusterOptions::default(), 10).await;
    assert_eq!(tps.len(), 1000);
    let dir = tempfile::tempdir().expect("temp dir");
    let certs = cluster.pki.user_dir(OPERATOR);
    let station = Station::start(
        &certs,
        &endpoints.join(","),
        &dir.path().join("outbox.sqlite"),
    )
    .await;
    station.wait_slice(tps.len()).await;
    for id in cluster.running() {
        cluster.kill(id);
    }
    let typed: Vec<pb::Submission> = tps
        .iter()
        .enumerate()
        .map(|(i, t)| workload::submission(t, i))
        .collect();
    let started = Instant::now();
    for s in &typed {
        let (code, body) = station.post(&s.tps_id, CONTEST, &fields_of(s)).await;
        assert_eq!(code, 303, "TPS {}: {body}", s.tps_id);
    }
    let queued = started.elapsed();
    assert_eq!(station.count("tersimpan").await, 1000);

    let back = Instant::now();
    for id in cluster.nodes.keys().copied().collect::<Vec<_>>() {
        cluster.restart(id);
    }
    cluster.wait_for_leader(Duration::from_secs(30)).await;
    let leader_after = back.elapsed();
    wait_until("1,000 terkirim", Duration::from_secs(60), || async {
        (station.count("terkirim").await == 1000).then_some(())
    })
    .await;
    let all_in = back.elapsed();
    let totals = cluster
        .client_as(OPERATOR)
        .totals("ID", CONTEST, pb::Consistency::Linearizable)
        .await
        .expect("totals")
        .totals
        .expect("totals");
    let sah: i64 = typed.iter().map(|s| s.sah.unwrap_or(0)).sum();
    let total: i64 = typed.iter().map(|s| s.total.unwrap_or(0)).sum();
    assert_eq!(
        (totals.tps_reported, totals.sah as i64, totals.total as i64),
        (1000, sah, total),
        "every entry counted once"
    );
    let rows = station.outbox_list();
    let rows = rows.as_array().expect("rows");
    assert_eq!(rows.len(), 1000);
    assert!(
        rows.iter()
            .all(|r| r["state"] == "terkirim" && r["log_index"].as_u64() > Some(0))
    );
    eprintln!(
        "station volume: 1,000 entries saved offline in {:.1} s ({:.1} ms each, fsync included); \
         nodes restarted: leader after {:.1} s, all 1,000 terkirim after {:.1} s ({:.1} s after the leader)",
        queued.as_secs_f64(),
        queued.as_secs_f64() * 1000.0 / 1000.0,
        leader_after.as_secs_f64(),
        all_in.as_secs_f64(),
        (all_in - leader_after).as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_or_revoked_certificate_and_a_lost_scope_lose_nothing() {
    let (cluster, tps, endpoints) = start_with_registry(ClusterOptions::default(), 1).await;
    let admin = cluster.client();
    const PPS: &str = "pps-a";
    admin.add_user(PPS).await.expect("add the operator");
    let scope: Vec<String> = tps[..3].to_vec();
    admin
        .grant(PPS, pb::Role::Operator, scope.clone())
        .await
        .expect("grant");
    let dir = tempfile::tempdir().expect("temp dir");
    let certs = cluster.pki.user_dir(PPS);
    let station = Station::start(
        &certs,
        &endpoints.join(","),
        &dir.path().join("outbox.sqlite"),
    )
    .await;
    station.wait_slice(3).await;

    // The certificate expires: the station says so from the file itself,
    // and the entry waits until a valid one is in place.
    let now = time::OffsetDateTime::now_utc();
    let expired = Validity {
        not_before: now - time::Duration::days(10),
        not_after: now - time::Duration::days(1),
    };
    cluster.pki.reissue(PPS, expired);
    let second = workload::submission(&tps[1], 2);
    assert_eq!(
        station.post(&tps[1], CONTEST, &fields_of(&second)).await.0,
        303
    );
    let why = wait_until(
        "the expiry on the page",
        Duration::from_secs(20),
        || async {
            let why = station.status().await["link"]["why"].as_str()?.to_string();
            why.contains("kedaluwarsa").then_some(why)
        },
    )
    .await;
    assert!(why.contains("Entri tetap antre"), "{why}");
    assert_eq!(station.count("tersimpan").await, 1);
    cluster.pki.reissue(PPS, Validity::days(30));
    wait_until(
        "terkirim with a valid certificate",
        Duration::from_secs(30),
        || async { (station.count("terkirim").await == 1).then_some(()) },
    )
    .await;

    // The certificate is revoked: the next entries wait, and say why. While
    // they wait, the third TPS leaves this operator's scope.
    admin
        .revoke_cert(PPS, &cluster.pki.serial(PPS))
        .await
        .expect("revoke");
    let first = workload::submission(&tps[0], 1);
    let third = workload::submission(&tps[2], 3);
    for s in [&first, &third] {
        assert_eq!(station.post(&s.tps_id, CONTEST, &fields_of(s)).await.0, 303);
    }
    let why = wait_until(
        "the reason on the page",
        Duration::from_secs(20),
        || async {
            let why = station.status().await["link"]["why"].as_str()?.to_string();
            why.contains("cert_revoked").then_some(why)
        },
    )
    .await;
    assert!(why.contains("Sertifikat Anda dicabut"), "{why}");
    let tps_page = |t: &str| {
        let path = format!("/tps/{t}?pemilihan={CONTEST}");
        let addr = station.addr.clone();
        async move {
            rekap_tests::http::get_plain(&addr, &path)
                .await
                .expect("the TPS page")
                .1
        }
    };
    assert!(
        tps_page(&tps[0]).await.contains("Sertifikat Anda dicabut"),
        "the TPS page says why"
    );
    assert_eq!(
        station.count("tersimpan").await,
        2,
        "still queued, not refused"
    );
    admin
        .revoke(PPS, pb::Role::Operator, vec![tps[2].clone()])
        .await
        .expect("revoke the scope");

    // A new certificate in the same folder: the station picks it up. The
    // first entry goes in; the third is ditolak, named and kept.
    cluster.pki.reissue(PPS, Validity::days(30));
    wait_until(
        "one terkirim, one ditolak",
        Duration::from_secs(30),
        || async {
            let s = (
                station.count("terkirim").await,
                station.count("ditolak").await,
            );
            (s == (2, 1)).then_some(())
        },
    )
    .await;
    let page = tps_page(&tps[2]).await;
    // Its page says why: the refusal, or (once the station has read its
    // slice again) that the TPS is no longer the operator's.
    assert!(
        (page.contains("permission:submit") && page.contains("di luar wilayah tugas"))
            || page.contains("tidak (lagi) berada dalam wilayah tugas"),
        "{page}"
    );
    let rows = station.outbox_list();
    let rows = rows.as_array().expect("rows");
    assert_eq!(rows.len(), 3, "the refused entry is kept");
    let refused = rows
        .iter()
        .find(|r| r["tps_id"] == tps[2].as_str())
        .expect("its row");
    assert_eq!(
        (refused["state"].as_str(), refused["rule"].as_str()),
        (Some("ditolak"), Some("permission:submit"))
    );

    // Granted again: `rekapctl outbox retry` delivers it, same submission id.
    admin
        .grant(PPS, pb::Role::Operator, vec![tps[2].clone()])
        .await
        .expect("grant again");
    let out = std::process::Command::new(rekap_tests::node_binary().with_file_name("rekapctl"))
        .arg("--endpoints")
        .arg(endpoints.join(","))
        .arg("--certs-dir")
        .arg(&certs)
        .args(["outbox", "retry", "--outbox"])
        .arg(&station.outbox)
        .output()
        .expect("rekapctl outbox retry");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = station.outbox_list();
    let row = rows
        .as_array()
        .and_then(|r| r.iter().find(|r| r["tps_id"] == tps[2].as_str()))
        .expect("its row")
        .clone();
    assert_eq!(row["state"], "terkirim", "{row}");
    let history = cluster
        .client_as(OPERATOR)
        .history(&tps[2], CONTEST, pb::Consistency::Linearizable)
        .await
        .expect("history");
    assert_eq!(history.len(), 1);
    assert_eq!(
        history[0]
            .submission
            .as_ref()
            .map(|s| s.submission_id.as_str()),
        row["submission_id"].as_str()
    );
}
