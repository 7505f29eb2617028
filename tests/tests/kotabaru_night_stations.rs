//! Scenario: the Kotabaru night with stations. The cluster (five real
//! nodes) is down from 15:00 to 21:30, as the one server was in 2020; each
//! of the 21 kecamatan keeps typing its TPS into its own `rekap-station`.
//! When the nodes come back, everything saved before 21:30 must be in
//! within a minute, every TPS counted once. Writes
//! `kotabaru-night-stations.png` and `.md` beside the plain night's
//! (`REKAP_NIGHT_OUT`, `REKAP_NIGHT_SECONDS` as in `kotabaru_night`).

use std::path::PathBuf;
use std::time::Duration;

use rekap_client::generate::kotabaru::{self, CONTEST, KABUPATEN};
use rekap_client::proto as pb;
use rekap_tests::pki::AUDITOR;
use rekap_tests::{Cluster, ClusterOptions, load_registry, night_stations, night_stations_report};

fn out_dir() -> PathBuf {
    let default = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("kotabaru-night");
    rekap_tests::night_report::out_dir(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_stations_nothing_typed_during_the_outage_is_lost() {
    let secs: u64 = std::env::var("REKAP_NIGHT_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let sample = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/pilpres2019_sample.csv");
    let rows = rekap_client::generate::pilpres2019::read_rows(&sample).expect("the 2019 sample");
    let night = kotabaru::build(&rows, 2020).expect("the night");
    let mut cluster = Cluster::start(ClusterOptions {
        nodes: 5,
        ..ClusterOptions::default()
    })
    .await;
    load_registry(&cluster.client(), &night.registry).await;
    let work = tempfile::tempdir().expect("outboxes");
    let outcome =
        night_stations::replay(&mut cluster, &night, Duration::from_secs(secs), work.path()).await;

    assert_eq!(
        outcome.entries.len(),
        night.arrivals.len(),
        "every TPS typed"
    );
    assert!(
        outcome.entries.iter().all(|e| e.terkirim.is_some()),
        "every entry acknowledged"
    );
    assert!(
        outcome.saved_while_down > night.arrivals.len() / 2,
        "most of the night was typed while the cluster was down: {}",
        outcome.saved_while_down
    );
    let totals = cluster
        .client_as(AUDITOR)
        .totals(KABUPATEN, CONTEST, pb::Consistency::Linearizable)
        .await
        .expect("totals")
        .totals
        .expect("totals");
    let sah: i64 = night
        .arrivals
        .iter()
        .map(|a| a.submission.sah.unwrap_or(0))
        .sum();
    assert_eq!(
        (totals.tps_reported, totals.sah),
        (night.arrivals.len() as u64, sah as u64),
        "every TPS in, counted once"
    );
    let ids = cluster.running();
    rekap_tests::workload::check_chains(&cluster, &ids).await;

    let dir = out_dir();
    let chart = dir.join("kotabaru-night-stations.png");
    night_stations_report::chart(&outcome, &night, &chart).expect("chart");
    let report = night_stations_report::report(&outcome, &night, "kotabaru-night-stations.png");
    std::fs::write(dir.join("kotabaru-night-stations.md"), &report).expect("report");
    eprintln!("{report}\nchart and report in {}", dir.display());
}
