//! Scenario: backup and restore, with the real tools. `rekapctl snapshot
//! save` takes a backup while 8 writers submit; then every node is killed
//! and its data wiped, `rekap-node restore` seeds three new data
//! directories from the file, and the restored cluster holds the backup's
//! totals and audit chain head, every result acknowledged before the save,
//! and a new cluster id, and takes new submissions. A file with one byte
//! flipped is refused by `snapshot status` and by `restore`, and restore
//! refuses a data directory that is not empty.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use rekap_client::proto as pb;
use rekap_tests::pki::{ADMIN, OPERATOR};
use rekap_tests::workload::{self, Workload};
use rekap_tests::{CONTEST, ClusterOptions, node_binary, start_with_registry};

fn rekapctl() -> PathBuf {
    node_binary().with_file_name("rekapctl")
}

fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn restore(file: &Path, id: u64, cluster: &str, dir: &Path) -> Output {
    run(Command::new(node_binary())
        .arg("restore")
        .arg(file)
        .args([
            "--id",
            &id.to_string(),
            "--initial-cluster",
            cluster,
            "--data-dir",
        ])
        .arg(dir))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_under_load_restores_a_new_cluster() {
    let (mut cluster, tps, endpoints) = start_with_registry(ClusterOptions::default(), 3).await;
    let admin = cluster.client();
    let old_id = admin
        .status_of(&endpoints[0])
        .await
        .expect("status")
        .cluster_id;
    assert_eq!(
        old_id.len(),
        16,
        "a cluster has an id from its first membership"
    );
    let scratch = tempfile::tempdir().expect("scratch dir");
    let file = scratch.path().join("rekap.backup");

    // 8 writers over the first 250 TPS; the save runs in the middle.
    let load = Workload::start(
        &cluster,
        endpoints.clone(),
        std::sync::Arc::new(tps[..250].to_vec()),
        8,
    );
    load.wait_acked(40, Duration::from_secs(30)).await;
    let save_started = Instant::now();
    let saved = run(Command::new(rekapctl())
        .args(["--endpoints", &endpoints.join(","), "--json", "--certs-dir"])
        .arg(cluster.pki.user_dir(ADMIN))
        .args(["snapshot", "save"])
        .arg(&file));
    assert!(
        saved.status.success(),
        "snapshot save: {}",
        text(&saved.stderr)
    );
    let history = load.stop().await;
    let header: serde_json::Value = serde_json::from_slice(&saved.stdout).expect("JSON");
    let index = header["applied_index"].as_u64().expect("index");
    let chain_index = header["chain_index"].as_u64().expect("chain index");
    let chain_head = header["chain_head"].as_str().expect("head").to_string();
    assert_eq!(header["cluster_id"], old_id.as_str());
    let acked_before: Vec<(&String, i64)> = history
        .acked
        .iter()
        .filter(|(_, (_, at))| *at < save_started)
        .map(|(t, (sah, _))| (t, *sah))
        .collect();
    assert!(acked_before.len() >= 40);
    eprintln!(
        "backup: index {index}, {} bytes, sha256 {}, {} results acknowledged before the save, {} in all",
        header["body_bytes"],
        header["body_sha256"],
        acked_before.len(),
        history.acked.len()
    );

    // `status` checks the file offline and reads the same header.
    let status = run(Command::new(rekapctl())
        .args(["--json", "snapshot", "status"])
        .arg(&file));
    assert!(status.status.success(), "status: {}", text(&status.stderr));
    let checked: serde_json::Value = serde_json::from_slice(&status.stdout).expect("JSON");
    assert_eq!(checked["file_sha256"], header["file_sha256"]);
    assert_eq!(checked["totals"], header["totals"]);

    // One flipped byte: refused by status and by restore.
    let bad = scratch.path().join("flipped.backup");
    let mut bytes = std::fs::read(&file).expect("read backup");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x20;
    std::fs::write(&bad, &bytes).expect("write damaged copy");
    let refused = run(Command::new(rekapctl())
        .args(["snapshot", "status"])
        .arg(&bad));
    assert!(!refused.status.success(), "status accepted a damaged file");
    assert!(
        text(&refused.stderr).contains("fails its checks"),
        "{}",
        text(&refused.stderr)
    );
    let fresh = scratch.path().join("never");
    let refused = restore(&bad, 1, "1=127.0.0.1:1", &fresh);
    assert!(!refused.status.success(), "restore accepted a damaged file");
    assert!(
        text(&refused.stderr).contains("fails its checks"),
        "{}",
        text(&refused.stderr)
    );
    assert!(
        !fresh.exists(),
        "a refused restore left {}",
        fresh.display()
    );

    // Wipe every node, then restore all three from the file.
    let ids = cluster.running();
    let members = ids
        .iter()
        .map(|id| format!("{id}={}", cluster.addr(*id)))
        .collect::<Vec<_>>()
        .join(",");
    for &id in &ids {
        cluster.kill(id);
    }
    let in_use = cluster.nodes[&ids[0]].data_dir.clone();
    let refused = restore(&file, ids[0], &members, &in_use);
    assert!(
        !refused.status.success(),
        "restore wrote over a data directory"
    );
    assert!(
        text(&refused.stderr).contains("not empty"),
        "{}",
        text(&refused.stderr)
    );
    for &id in &ids {
        let dir = cluster.nodes[&id].data_dir.clone();
        std::fs::remove_dir_all(&dir).expect("wipe");
        let out = restore(&file, id, &members, &dir);
        assert!(
            out.status.success(),
            "restore node {id}: {}",
            text(&out.stderr)
        );
        cluster.restart(id);
    }
    cluster.wait_for_leader(Duration::from_secs(30)).await;
    let admin = cluster.client();

    // Totals, chain head and the acknowledged results are the backup's.
    for t in header["totals"].as_array().expect("totals") {
        let contest = t["contest_id"].as_str().expect("contest");
        let scope = t["region"].as_str().expect("the contest's scope");
        let now = admin
            .totals(scope, contest, pb::Consistency::Linearizable)
            .await
            .expect("totals after restore")
            .totals
            .expect("totals");
        assert_eq!(now.sah, t["sah"].as_u64().unwrap(), "{contest} sah");
        assert_eq!(now.total, t["total"].as_u64().unwrap(), "{contest} total");
        assert_eq!(
            now.tps_reported,
            t["tps_reported"].as_u64().unwrap(),
            "{contest} TPS in"
        );
    }
    let mut new_ids = Vec::new();
    for &id in &ids {
        let head = admin
            .chain_head_of(&cluster.addr(id), Some(chain_index))
            .await
            .expect("chain head");
        assert_eq!(
            head.head, chain_head,
            "node {id}'s audit chain at {chain_index}"
        );
        new_ids.push(
            admin
                .status_of(&cluster.addr(id))
                .await
                .expect("status")
                .cluster_id,
        );
    }
    assert!(
        new_ids.iter().all(|i| *i == new_ids[0] && *i != old_id),
        "{old_id} then {new_ids:?}"
    );
    eprintln!(
        "restored: cluster id {old_id} -> {}, chain head {chain_head} at {chain_index} on nodes {ids:?}",
        new_ids[0]
    );
    let operator = cluster.client_as(OPERATOR);
    for (tps_id, sah) in &acked_before {
        let r = operator
            .tps_result(tps_id, CONTEST, pb::Consistency::Linearizable)
            .await
            .unwrap_or_else(|e| panic!("{tps_id}, acknowledged before the save, is gone: {e}"));
        assert_eq!(r.submission.and_then(|s| s.sah), Some(*sah), "{tps_id}");
    }
    // The restored cluster counts on.
    let next = operator
        .submit(workload::submission(&tps[290], 290))
        .await
        .expect("a submission after the restore");
    assert!(
        next.log_index > index,
        "the new cluster's log goes on from the backup's index"
    );
}
