//! `rekap-node restore FILE --id N --initial-cluster ... --data-dir DIR`:
//! seeds one node of a new cluster from a backup (`rekapctl snapshot
//! save`), as `etcdutl snapshot restore` does. Run it once per node, with
//! the same file and member list on each; then start the nodes as usual.
//!
//! Every node gets the same state: the backup's records, applied at the
//! backup's index with the new member list, under a new cluster id derived
//! from the backup and the member list. The new cluster's log starts after
//! that index; its terms start again from 0, so the applied entry is
//! recorded at term 0 (the header keeps the old cluster's term). Refuses a
//! data directory that is not empty and a file that fails any check; it
//! works in a sibling folder and renames it into place at the end, so an
//! interrupted restore leaves nothing behind under DIR.

use std::collections::BTreeSet;
use std::path::PathBuf;

use anyhow::{Context, bail};
use openraft::BasicNode;
use rekap_proto::backup;
use sha2::{Digest, Sha256};

use crate::config::parse_cluster;
use crate::raft::convert::log_id;
use crate::raft::{Membership, StoredMembership};
use crate::store;

#[derive(clap::Args, Debug)]
pub struct RestoreArgs {
    /// The backup file (`rekapctl snapshot save`).
    pub file: PathBuf,
    /// This node's id in the new cluster.
    #[arg(long, env = "REKAP_NODE_ID")]
    pub id: u64,
    /// The new cluster's members, "1=host:port,2=host:port,3=host:port":
    /// the same list on every node.
    #[arg(long, env = "REKAP_INITIAL_CLUSTER")]
    pub initial_cluster: String,
    /// An empty (or missing) directory for the node's data.
    #[arg(long, env = "REKAP_DATA_DIR")]
    pub data_dir: PathBuf,
    /// The cluster name the node will run with (its --cluster-name).
    #[arg(long, env = "REKAP_CLUSTER_NAME", default_value = "rekap")]
    pub cluster_name: String,
}

/// The new cluster's id: the same on every node restored from this file
/// into this member list, and never the old cluster's.
pub fn new_cluster_id(header: &rekap_proto::pb::BackupHeader, members: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"rekap restore\n");
    h.update(header.cluster_id.as_bytes());
    h.update(header.body_sha256.as_bytes());
    h.update(members.as_bytes());
    backup::hex(&h.finalize()[..8])
}

pub fn run(args: RestoreArgs) -> anyhow::Result<()> {
    let dir = &args.data_dir;
    if dir.exists()
        && std::fs::read_dir(dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .next()
            .is_some()
    {
        bail!(
            "refusing to restore into {}: it is not empty (restore seeds a new node; use an empty directory)",
            dir.display()
        );
    }
    let verified = backup::verify(&args.file)
        .with_context(|| format!("refusing {}: it fails its checks", args.file.display()))?;
    let h = &verified.header;
    let members = parse_cluster(&args.initial_cluster)?;
    if !members.contains_key(&args.id) {
        bail!("node {} is not in --initial-cluster", args.id);
    }
    let listed: String = members
        .iter()
        .map(|(id, a)| format!("{id}={a}"))
        .collect::<Vec<_>>()
        .join(",");
    let cluster_id = new_cluster_id(h, &listed);
    let applied = log_id(0, 0, h.applied_index);
    let voters: BTreeSet<u64> = members.keys().copied().collect();
    let nodes = members
        .iter()
        .map(|(id, addr)| (*id, BasicNode { addr: addr.clone() }));
    let membership = StoredMembership::new(
        Some(applied),
        Membership::new(
            vec![voters],
            nodes.collect::<std::collections::BTreeMap<_, _>>(),
        )
        .context("the member list")?,
    );

    let name = dir.file_name().context("--data-dir names a directory")?;
    let work = dir.with_file_name(format!(".{}.restoring", name.to_string_lossy()));
    if work.exists() {
        std::fs::remove_dir_all(&work)
            .with_context(|| format!("removing an earlier attempt at {}", work.display()))?;
    }
    let owner = store::Owner {
        node_id: args.id,
        cluster: args.cluster_name.clone(),
    };
    let (log, sm, closer) = store::open(&work, &owner)?;
    let body = work.join("restore-body.bin");
    backup::copy_body(&args.file, &verified, &mut std::fs::File::create(&body)?)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(sm.seed(&body, applied, membership, cluster_id.clone()))
        .context("seeding the state")?;
    std::fs::remove_file(&body)?;
    drop((log, sm));
    drop(rt);
    closer.close(std::time::Duration::from_secs(30))?;
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent)?;
    }
    if dir.exists() {
        std::fs::remove_dir(dir)?;
    }
    std::fs::rename(&work, dir)
        .with_context(|| format!("moving {} to {}", work.display(), dir.display()))?;
    // The rename is durable only once the folder holding it is synced: a
    // node that lost it would start pristine and form an empty cluster.
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::File::open(parent)?.sync_all()?;
    }
    tracing::info!(
        file = %args.file.display(),
        index = h.applied_index,
        old_cluster = %h.cluster_id,
        new_cluster = %cluster_id,
        data_dir = %dir.display(),
        "restored: start the node with the same --id, --data-dir and --initial-cluster"
    );
    Ok(())
}
