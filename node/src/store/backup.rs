//! Backups of the state machine: a consistent cut of the state for
//! `SaveBackup`, and seeding an empty data directory from one for
//! `rekap-node restore`.
//!
//! A cut is taken under the state's read lock, so the RocksDB view, the
//! in-memory totals and the chain head are all of the same applied index:
//! apply writes its batch and settles the tally under the write lock.

use std::collections::BTreeSet;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use openraft::RaftSnapshotBuilder;
use rekap_proto::pb;
use rocksdb::WriteBatch;
use sha2::{Digest, Sha256};

use super::snapshot::{self, temp_name};
use super::state_machine::{meta_writes, read_meta};
use super::{CF_SM_META, StateMachineStore, cf, install, io_err, on_demand};
use crate::raft::types::{LogId, SnapshotMeta, StoredMembership};

/// A cut of the state: its body as a snapshot file (a temporary file the
/// caller removes) and what the backup's header says about it.
pub struct Cut {
    pub body: PathBuf,
    pub meta: SnapshotMeta,
    pub cluster_id: String,
    /// Every contest's totals over its scope.
    pub totals: Vec<pb::RegionTotals>,
    pub chain: pb::GetChainHeadResponse,
    /// SHA-256 and length of the body, taken while it was written.
    pub body_sha256: [u8; 32],
    pub body_bytes: u64,
}

/// A writer that hashes and counts what passes through it.
struct Hashing<W> {
    inner: W,
    hash: Sha256,
    bytes: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl Drop for Cut {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.body);
    }
}

impl StateMachineStore {
    /// Takes a cut of the applied state. Blocking: run it off the runtime.
    pub fn cut(&self) -> io::Result<Cut> {
        let inner = &self.inner;
        let _guard = inner.snapshot_lock.blocking_lock();
        let db = &inner.db;
        let (view, cluster_id, totals, chain) = {
            let st = self.try_view()?;
            let view = db.snapshot();
            let totals = st.tally.contest_totals();
            let chain = pb::GetChainHeadResponse {
                applied_index: st.applied_index(),
                ..st.tally.audit_chain().to_pb()
            };
            (view, st.tally.cluster_id().to_string(), totals, chain)
        };
        let (last_log_id, last_membership) =
            read_meta(|k| view.get_cf(cf(db, CF_SM_META), k).map_err(io_err))?;
        let meta = SnapshotMeta {
            last_log_id,
            last_membership,
        };
        // Removed with the cut, whatever becomes of it.
        let cut = Cut {
            body: temp_name(&inner.dir, "backup"),
            meta,
            cluster_id,
            totals,
            chain,
            body_sha256: [0; 32],
            body_bytes: 0,
        };
        let mut w = Hashing {
            inner: BufWriter::new(std::fs::File::create(&cut.body)?),
            hash: Sha256::new(),
            bytes: 0,
        };
        snapshot::write_to(&mut w, &cut.meta, |enc| {
            on_demand::copy_view(db, &view, None, enc)
        })?;
        w.flush()?;
        let mut cut = cut;
        cut.body_sha256 = w.hash.finalize().into();
        cut.body_bytes = w.bytes;
        Ok(cut)
    }

    /// Seeds this (empty) state machine from a backup's body: its records,
    /// applied at `applied` with `membership` (the new cluster's), under a
    /// new cluster id, with the new members readmitted should the old
    /// cluster have removed their ids. Then builds a snapshot of it, so
    /// the new cluster can catch a node up without the old log.
    pub async fn seed(
        &self,
        body: &Path,
        applied: LogId,
        membership: StoredMembership,
        cluster_id: String,
    ) -> io::Result<()> {
        let inner = self.inner.clone();
        let body = body.to_path_buf();
        tokio::task::spawn_blocking(move || -> io::Result<()> {
            let db = &inner.db;
            let body_meta = snapshot::Reader::open(&body)?.meta;
            let prepared = install::prepare(&body, &body_meta)?;
            install::install(db, &body, prepared, |b| {
                meta_writes(b, db, Some(&applied), &membership)
            })?;
            let mut st = inner.state.write().expect("state lock poisoned");
            st.tally = super::state_machine::load_tally(db)?;
            let members: BTreeSet<u64> =
                membership.membership().nodes().map(|(id, _)| *id).collect();
            let mut writes = st.tally.set_cluster_id(cluster_id);
            writes.extend(st.tally.readmit_nodes(&members));
            let mut batch = WriteBatch::default();
            super::families::add_writes(&mut batch, db, writes);
            db.write(batch).map_err(io_err)?;
            db.flush_wal(true).map_err(io_err)?;
            st.tally.settle();
            st.last_applied = Some(applied);
            st.membership = membership;
            st.loaded_at = applied.index;
            Ok(())
        })
        .await
        .map_err(io_err)??;
        let mut builder = self.clone();
        builder.build_snapshot().await?;
        Ok(())
    }
}
