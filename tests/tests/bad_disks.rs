//! A damaged or foreign data directory stops the node at start, with an
//! error naming the file; it never panics and never silently rebuilds. Each
//! case runs the real `rekap-node` on a real RocksDB directory, and prints
//! what the user sees.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rekap_tests::pki::OPERATOR;
use rekap_tests::workload::submission;
use rekap_tests::{Cluster, ClusterOptions, load_registry, synthetic_registry};

/// A one-node cluster holding `n` results, stopped cleanly (so its
/// memtables are in table files).
async fn stopped_node_with_data(n: usize) -> Cluster {
    let opts = ClusterOptions {
        nodes: 1,
        snapshot_every: 10,
        ..ClusterOptions::default()
    };
    let mut cluster = Cluster::start(opts).await;
    let reg = synthetic_registry(1);
    load_registry(&cluster.client(), &reg).await;
    let op = cluster.client_as(OPERATOR);
    for (i, t) in reg.tps.iter().take(n).enumerate() {
        op.submit(submission(&t.tps_id, i)).await.expect("submit");
    }
    cluster.stop(1).await;
    cluster
}

fn files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    v.sort_by_key(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0));
    v
}

fn flip_byte(path: &Path, at: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[at] ^= 0x5a;
    std::fs::write(path, bytes).unwrap();
}

/// Starts node 1 as `edit` says and checks it refuses, naming `names`.
async fn refuses(
    cluster: &Cluster,
    case: &str,
    edit: impl FnOnce(&mut Vec<(String, String)>),
    names: &str,
) {
    let (status, out) = cluster.run_to_exit(1, edit, Duration::from_secs(30)).await;
    assert!(
        !status.success() && status.code().is_some(),
        "{case}: expected a refusal with an exit status, got {status}\n{out}"
    );
    assert!(
        !out.contains("panicked"),
        "{case}: the node panicked\n{out}"
    );
    let error = out
        .lines()
        .find(|l| l.contains("ERROR"))
        .unwrap_or_else(|| panic!("{case}: no error logged\n{out}"));
    assert!(
        error.contains(names),
        "{case}: the error must name {names}: {error}"
    );
    println!("{case}: exit {status}\n    {}", error.trim());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_or_foreign_data_directories_refuse_to_start() {
    let cluster = stopped_node_with_data(40).await;
    let data = cluster.nodes[&1].data_dir.clone();

    // Another node's directory, and another cluster's.
    refuses(
        &cluster,
        "directory of another node id",
        |a| {
            // A restarted node needs no --initial-cluster.
            a.retain(|(k, _)| k != "--initial-cluster");
            for (k, v) in a.iter_mut() {
                if k == "--id" {
                    *v = "2".into();
                }
            }
        },
        "IDENTITY",
    )
    .await;
    refuses(
        &cluster,
        "directory of another cluster",
        |a| a.push(("--cluster-name".into(), "kabupaten-lain".into())),
        "IDENTITY",
    )
    .await;

    // One flipped byte in a RocksDB table file (checksums are verified at
    // start, for every block).
    let ssts = files(&data.join("db"), ".sst");
    let sst = ssts.last().expect("table files after a clean stop").clone();
    let len = std::fs::metadata(&sst).unwrap().len() as usize;
    flip_byte(&sst, len / 3);
    refuses(
        &cluster,
        "flipped byte in a RocksDB table file",
        |_| {},
        sst.file_name().unwrap().to_str().unwrap(),
    )
    .await;
}
