//! The real 2019 data path, end to end with the real tools: `rekapctl
//! pilpres2019` derives the registry and results from a committed sample of
//! the KawalPemilu extract, `registry load` and `import` put them into a
//! 3-node cluster, and the national and per-province totals Rekap reports
//! equal an independent sum of the acceptable rows. A rerun of the import
//! counts nothing twice, and `verify` finds the nodes' audit chains equal.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use rekap_client::generate::pilpres2019::{self, CONTEST};
use rekap_client::proto as pb;
use rekap_tests::pki::{ADMIN, AUDITOR, OPERATOR};
use rekap_tests::{Cluster, ClusterOptions};
use serde_json::Value;

fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/pilpres2019_sample.csv")
}

#[derive(Default, Debug, PartialEq)]
struct Sums {
    pas1: u64,
    pas2: u64,
    sah: u64,
    tidak_sah: u64,
    rows: u64,
}

/// Plain arithmetic over the raw rows: complete, non-negative, and
/// pas1 + pas2 = sah, sah + tidak_sah = jumlah.
fn independent_sums(rows: &[pilpres2019::Row]) -> (Sums, BTreeMap<String, Sums>) {
    let mut nat = Sums::default();
    let mut prov: BTreeMap<String, Sums> = BTreeMap::new();
    for r in rows {
        let Some([p1, p2, sah, ts, jml]) = r.figures() else {
            continue;
        };
        if [p1, p2, sah, ts, jml].iter().any(|v| *v < 0) || p1 + p2 != sah || sah + ts != jml {
            continue;
        }
        for s in [
            &mut nat,
            prov.entry(r.provinsi.trim().to_string()).or_default(),
        ] {
            s.pas1 += p1 as u64;
            s.pas2 += p2 as u64;
            s.sah += sah as u64;
            s.tidak_sah += ts as u64;
            s.rows += 1;
        }
    }
    (nat, prov)
}

fn sums_of(t: &pb::RegionTotals) -> Sums {
    Sums {
        pas1: t.candidates[0].votes,
        pas2: t.candidates[1].votes,
        sah: t.sah,
        tidak_sah: t.tidak_sah,
        rows: t.tps_reported,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_2019_sample_imports_and_totals_match_an_independent_sum() {
    let cluster = Cluster::start(ClusterOptions::default()).await;
    let endpoints: String = cluster
        .running()
        .into_iter()
        .map(|id| cluster.addr(id))
        .collect::<Vec<_>>()
        .join(",");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let sample = sample();
    cluster.rekapctl(
        ADMIN,
        &endpoints,
        &["pilpres2019", sample.to_str().unwrap(), "--out", out],
    );
    cluster.rekapctl(ADMIN, &endpoints, &["registry", "load", out]);
    // The operator may submit for every kecamatan of the sample.
    cluster.rekapctl(
        ADMIN,
        &endpoints,
        &[
            "users",
            "grant",
            OPERATOR,
            "operator",
            "--each-kecamatan-of",
            "ID",
            "--contest",
            CONTEST,
        ],
    );
    let results = dir.path().join("results.csv");
    let first = cluster.rekapctl(OPERATOR, &endpoints, &["import", results.to_str().unwrap()]);

    let rows = pilpres2019::read_rows(&sample).unwrap();
    let (nat, prov) = independent_sums(&rows);
    assert_eq!(first["rows"], rows.len() as u64);
    assert_eq!(first["accepted"], nat.rows);
    assert_eq!(
        first["incomplete"],
        rows.iter().filter(|r| r.figures().is_none()).count() as u64
    );
    let rejected: u64 = first["rejected"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(
        first["accepted"].as_u64().unwrap() + first["incomplete"].as_u64().unwrap() + rejected,
        rows.len() as u64
    );
    assert!(first["rejected"]["sum_candidates_eq_sah"].as_u64().unwrap() > 0);
    assert!(
        first["rejected"]["sah_plus_tidak_sah_eq_total"]
            .as_u64()
            .unwrap()
            > 0
    );
    let rejects = std::fs::read_to_string(format!("{}.rejects.csv", results.display())).unwrap();
    assert_eq!(
        rejects.lines().count() as u64,
        rejected + 1,
        "one line per refused row, plus the header"
    );

    // Rekap's totals equal the independent sums, nationally and per province.
    let c = cluster.client();
    let t = c
        .totals("ID", CONTEST, pb::Consistency::Linearizable)
        .await
        .unwrap()
        .totals
        .unwrap();
    assert_eq!(sums_of(&t), nat);
    let kids = c
        .children("ID", CONTEST, pb::Consistency::Linearizable)
        .await
        .unwrap();
    assert_eq!(kids.children.len(), prov.len());
    for child in &kids.children {
        let name = child.region.as_ref().unwrap().name.clone();
        assert_eq!(sums_of(child), prov[&name], "provinsi {name}");
    }

    // A rerun counts nothing twice.
    let again = cluster.rekapctl(OPERATOR, &endpoints, &["import", results.to_str().unwrap()]);
    assert_eq!(again["accepted"], 0);
    assert_eq!(again["already_present"], first["accepted"]);
    let t2 = c
        .totals("ID", CONTEST, pb::Consistency::Linearizable)
        .await
        .unwrap()
        .totals
        .unwrap();
    assert_eq!(sums_of(&t2), nat);

    // The open export holds every accepted result; a third party can
    // recompute the audit chain from the exported log and reach the head
    // the node reports.
    let csv_path = dir.path().join("export.csv");
    let audit_path = dir.path().join("audit.jsonl");
    cluster.rekapctl(
        AUDITOR,
        &endpoints,
        &[
            "export",
            "--contest",
            CONTEST,
            "--out",
            csv_path.to_str().unwrap(),
            "--audit",
            audit_path.to_str().unwrap(),
        ],
    );
    let exported = std::fs::read_to_string(&csv_path).unwrap();
    assert_eq!(exported.lines().count() as u64, nat.rows + 1);
    // An unknown contest is refused before anything streams.
    let refused = c
        .export_results(pb::ExportResultsRequest {
            region_code: "ID".into(),
            contest_id: "NO-SUCH-CONTEST".into(),
            consistency: 0,
        })
        .await
        .expect_err("unknown contest");
    assert_eq!(refused.code(), tonic::Code::NotFound, "{refused:?}");
    assert!(refused.message().contains("contest_exists"), "{refused:?}");
    // Every exported result names who submitted it.
    let mut lines = exported.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = header.iter().position(|h| *h == "submitted_by").unwrap();
    assert!(lines.all(|l| l.split(',').nth(col) == Some(OPERATOR)));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("audit_chain.py");
    let py = Command::new("python3")
        .arg(&script)
        .arg(&audit_path)
        .arg("--results")
        .arg(&csv_path)
        .output()
        .expect("python3");
    assert!(
        py.status.success(),
        "{}",
        String::from_utf8_lossy(&py.stderr)
    );
    let recomputed: Value = serde_json::from_slice(&py.stdout).unwrap();
    let first_node = endpoints.split(',').next().unwrap();
    let head = c.chain_head_of(first_node, None).await.unwrap();
    assert_eq!(recomputed["head"], head.head.as_str());
    assert_eq!(recomputed["commands"], head.commands);
    // Each result's time is the time its command carries in the chain,
    // and every command the test made carries one.
    assert_eq!(recomputed["results_checked"], nat.rows, "{recomputed}");
    assert_eq!(recomputed["timed_commands"], head.commands, "{recomputed}");

    // Every node holds the same audit chain.
    let v = cluster.rekapctl(AUDITOR, &endpoints, &["verify"]);
    assert_eq!(v["agree"], true, "{v}");
    println!(
        "2019 sample: {} rows, {} accepted, national pas1 {} pas2 {} sah {} tidak sah {}",
        rows.len(),
        nat.rows,
        nat.pas1,
        nat.pas2,
        nat.sah,
        nat.tidak_sah
    );
}
