//! Start-up checks of a data directory: it belongs to this node of this
//! cluster (the IDENTITY file written when the directory was created), every
//! RocksDB block passes its checksum, and every snapshot file is whole. A
//! failed check stops the node with an error naming the file: nothing is
//! repaired or rebuilt silently. A replaced node gets an empty directory.

use std::fs;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, bail};
use rocksdb::{DB, IteratorMode, ReadOptions};
use serde::{Deserialize, Serialize};

use super::snapshot;

pub const IDENTITY_FILE: &str = "IDENTITY";

/// Who a data directory belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    pub node_id: u64,
    pub cluster: String,
}

/// Records `owner` in a new directory, or checks it against the record.
pub fn identity(data_dir: &Path, owner: &Owner, fresh: bool) -> anyhow::Result<()> {
    let path = data_dir.join(IDENTITY_FILE);
    match fs::read_to_string(&path) {
        Ok(text) => {
            let found: Owner = toml::from_str(&text).with_context(|| {
                format!(
                    "{} is damaged; it names the node and cluster this directory belongs to",
                    path.display()
                )
            })?;
            if found != *owner {
                bail!(
                    "data directory {} belongs to node {} of cluster {:?}, not node {} of cluster {:?} ({}); start node {} on it, or give this node an empty directory",
                    data_dir.display(),
                    found.node_id,
                    found.cluster,
                    owner.node_id,
                    owner.cluster,
                    path.display(),
                    found.node_id
                );
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if !fresh {
                tracing::warn!(path = %path.display(), "data directory has no IDENTITY record; recording this node as its owner");
            }
            let text = format!(
                "# Written when this data directory was created: the node and cluster it belongs to.\n{}",
                toml::to_string(owner)?
            );
            let tmp = data_dir.join("IDENTITY.tmp");
            let mut f = fs::File::create(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            fs::rename(&tmp, &path)?;
            fs::File::open(data_dir)?.sync_all()?;
            Ok(())
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Reads every block of every column family with checksums on, so a
/// damaged file is found now rather than in the middle of a count.
pub fn verify_db(db: &DB, cfs: &[&str], path: &Path) -> anyhow::Result<()> {
    for name in cfs {
        let mut ro = ReadOptions::default();
        ro.set_verify_checksums(true);
        ro.fill_cache(false);
        ro.set_readahead_size(4 << 20);
        let cf = super::cf(db, name);
        for kv in db.iterator_cf_opt(cf, ro, IteratorMode::Start) {
            kv.with_context(|| {
                format!(
                    "RocksDB data in {} is corrupt (column family {name})",
                    path.display()
                )
            })?;
        }
    }
    Ok(())
}

/// Every published snapshot file reads to its trailer and matches its hash.
pub fn verify_snapshots(dir: &Path) -> anyhow::Result<()> {
    for path in snapshot::list(dir)? {
        snapshot::Reader::open(&path)
            .and_then(snapshot::Reader::verify)
            .with_context(|| format!("snapshot file {} is damaged", path.display()))?;
    }
    Ok(())
}
