//! Scenario: the Kotabaru night (the seed's story), short version. KPU
//! Kotabaru's 892 TPS of the 2020 Pilkada, rebuilt from the committed 2019
//! sample, arrive over an evening compressed into a minute, on five real
//! nodes; the leader is killed at 15:00 and stays down, the next leader is
//! killed at 18:00 and comes back at 19:00. Every result must be in, once,
//! every kecamatan at 100% on every node's dashboard, and every node's
//! audit chain the same. Writes the chart and report to
//! `<target>/tmp/kotabaru-night/` (or `REKAP_NIGHT_OUT`);
//! `REKAP_NIGHT_SECONDS` sets the night's length (default 60;
//! `deploy/kotabaru-night.sh` runs it at 300).

use std::path::PathBuf;
use std::time::Duration;

use rekap_client::generate::kotabaru::{self, CONTEST, KABUPATEN};
use rekap_client::proto as pb;
use rekap_tests::night_report::{self, Checks};
use rekap_tests::pki::AUDITOR;
use rekap_tests::{Cluster, ClusterOptions, http, load_registry, night, wait_until};

fn sample() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/pilpres2019_sample.csv")
}

fn out_dir() -> PathBuf {
    let default = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("kotabaru-night");
    rekap_tests::night_report::out_dir(default)
}

/// Kecamatan at 100% on one node's dashboard API, and how many there are.
async fn dashboard(cluster: &Cluster, id: u64) -> Option<(usize, usize)> {
    let path = format!("/api/v1/wilayah/{KABUPATEN}?pemilihan={CONTEST}");
    let (code, body) = http::get(&cluster.pki.ca_dir(), &cluster.http_addr(id), &path)
        .await
        .ok()?;
    if code != 200 {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    let kids = v["children"].as_array()?;
    let done = kids
        .iter()
        .filter(|k| k["tps_total"].as_u64() > Some(0) && k["tps_reported"] == k["tps_total"])
        .count();
    Some((done, kids.len()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kotabaru_night_counts_every_tps_through_two_dead_servers() {
    let secs: u64 = std::env::var("REKAP_NIGHT_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let rows = rekap_client::generate::pilpres2019::read_rows(&sample())
        .expect("the committed 2019 sample");
    let night = kotabaru::build(&rows, 2020).expect("the night");
    assert_eq!(night.arrivals.len(), kotabaru::TPS_2020);
    assert_eq!(
        night.kecamatan.len(),
        21,
        "Kotabaru's kecamatan in the 2019 file"
    );

    let mut cluster = Cluster::start(ClusterOptions {
        nodes: 5,
        ..ClusterOptions::default()
    })
    .await;
    load_registry(&cluster.client(), &night.registry).await;
    let outcome = night::replay(&mut cluster, &night, Duration::from_secs(secs)).await;
    assert!(
        outcome.failed.is_empty(),
        "submissions failed for good: {:?}",
        outcome.failed
    );
    assert_eq!(
        outcome.acks.len(),
        night.arrivals.len(),
        "every TPS acknowledged once"
    );

    // The first leader comes back too, so every node's chain can be checked.
    let down: Vec<u64> = cluster
        .nodes
        .iter()
        .filter(|(_, n)| !n.is_running())
        .map(|(id, _)| *id)
        .collect();
    for id in down {
        cluster.restart(id);
    }
    let auditor = cluster.client_as(AUDITOR);
    let totals = auditor
        .totals(KABUPATEN, CONTEST, pb::Consistency::Linearizable)
        .await
        .expect("totals")
        .totals
        .expect("totals");
    assert_eq!(totals.tps_reported, night.arrivals.len() as u64);
    let sah: i64 = night
        .arrivals
        .iter()
        .map(|a| a.submission.sah.unwrap_or(0))
        .sum();
    assert_eq!(totals.sah, sah as u64, "counted once each");
    let ids = cluster.running();
    rekap_tests::workload::check_chains(&cluster, &ids).await;
    let mut chains = Vec::new();
    for &id in &ids {
        let h = rekap_tests::auditor_for(&cluster, id)
            .chain_head_of(&cluster.addr(id), None)
            .await
            .expect("chain head");
        chains.push((id, h.applied_index, h.head));
    }
    let mut dashboards = Vec::new();
    for &id in &ids {
        let (done, all) = wait_until(
            &format!("node {id}'s dashboard to show every kecamatan at 100%"),
            Duration::from_secs(30),
            || async {
                let (done, all) = dashboard(&cluster, id).await?;
                (done == all).then_some((done, all))
            },
        )
        .await;
        assert_eq!(all, 21);
        dashboards.push((id, done, all));
    }

    let dir = out_dir();
    // The kabupaten page after the night, as a browser shows it.
    let shot = dir.join("kotabaru-dashboard.png");
    let _ = std::fs::remove_file(&shot);
    let url = format!(
        "https://{}/wilayah/{KABUPATEN}?pemilihan={CONTEST}",
        cluster.http_addr(ids[0])
    );
    let browser = std::env::var("REKAP_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let ran = std::process::Command::new(&browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--ignore-certificate-errors",
            "--hide-scrollbars",
            "--window-size=1280,1700",
        ])
        .arg(format!("--screenshot={}", shot.display()))
        .arg(&url)
        .output()
        .expect("headless chromium (tests/run.sh installs it)");
    assert!(
        shot.exists(),
        "no screenshot of {url}: {}",
        String::from_utf8_lossy(&ran.stderr)
    );
    let chart = dir.join("kotabaru-night.png");
    night_report::chart(&outcome, &night, &chart).expect("chart");
    let report = night_report::report(
        &outcome,
        &night,
        &Checks { chains, dashboards },
        "kotabaru-night.png",
    );
    std::fs::write(dir.join("kotabaru-night.md"), &report).expect("report");
    eprintln!("{report}\nchart and report in {}", dir.display());
}
