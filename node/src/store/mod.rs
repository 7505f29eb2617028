//! Storage: one RocksDB per node holding the Raft log, the vote, the
//! committed index and the tally state machine, plus snapshot files.
//!
//! Column families: `logs` (entries by big-endian index), `raft_meta` (vote,
//! committed, last purged), `sm_meta` (last applied, last membership),
//! `sm_results` (the tally's results) and `sm_data` (its other records; see
//! `families`). Everything is encoded with our own
//! protobuf messages. Log appends are made durable by a group-commit flusher
//! thread before openraft is told they are; the vote is written synchronously.
//! A snapshot is the state as of an applied index, written to a file in
//! `<data_dir>/snapshots` only when a peer needs one (`on_demand`).

mod backup;
pub mod checks;
mod export;
mod families;
mod flusher;
mod held;
mod install;
mod log_cache;
mod log_store;
mod on_demand;
mod records;
pub mod snapshot;
mod state_machine;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use rocksdb::{BlockBasedOptions, Cache, ColumnFamilyDescriptor, DB, DBRecoveryMode, Options};

pub use backup::Cut;
pub use checks::Owner;
pub use held::{Durable, LogIds};
pub use install::{Received, Streamed};
pub use log_store::{Appended, LogStore};
pub use on_demand::{Pending, SnapshotData, Source};
pub use state_machine::{Installing, SmState, SmView, StateMachineStore};

pub(crate) const CF_LOGS: &str = "logs";
pub(crate) const CF_RAFT_META: &str = "raft_meta";
pub(crate) const CF_SM_META: &str = "sm_meta";
pub(crate) const CF_SM_DATA: &str = "sm_data";
pub(crate) const CF_SM_RESULTS: &str = "sm_results";

pub(crate) const KEY_VOTE: &[u8] = b"vote";
pub(crate) const KEY_COMMITTED: &[u8] = b"committed";
pub(crate) const KEY_PURGED: &[u8] = b"last_purged";
pub(crate) const KEY_APPLIED: &[u8] = b"last_applied";
pub(crate) const KEY_MEMBERSHIP: &[u8] = b"last_membership";

const CFS: [&str; 5] = [CF_LOGS, CF_RAFT_META, CF_SM_META, CF_SM_DATA, CF_SM_RESULTS];

/// Histogram buckets for disk work (fsyncs, applies), in seconds: 0.1 ms to
/// about 3 s. etcd's start at 1 ms; an fsync here takes 0.2-0.4 ms.
pub const DISK_BUCKETS: [f64; 16] = [
    0.0001, 0.0002, 0.0004, 0.0008, 0.0016, 0.0032, 0.0064, 0.0128, 0.0256, 0.0512, 0.1024, 0.2048,
    0.4096, 0.8192, 1.6384, 3.2768,
];

/// Opens (creating if needed) the node's database and its snapshot folder,
/// and returns the log store and the state machine that share it, and the
/// closer that owns the database's end. An existing directory must belong
/// to `owner` and pass every checksum (see `checks`).
pub fn open(
    data_dir: &Path,
    owner: &Owner,
) -> anyhow::Result<(LogStore, StateMachineStore, Closer)> {
    std::fs::create_dir_all(data_dir)?;
    let path = data_dir.join("db");
    let fresh = !path.exists();
    checks::identity(data_dir, owner, fresh)?;
    let mut opts = Options::default();
    opts.create_if_missing(true);
    opts.create_missing_column_families(true);
    opts.set_paranoid_checks(true);
    // A torn last write (power loss) is dropped; damage anywhere else in the
    // write-ahead log stops the node instead of silently losing entries.
    opts.set_wal_recovery_mode(DBRecoveryMode::TolerateCorruptedTailRecords);
    opts.set_max_total_wal_size(64 << 20);
    // Memtables of all column families together: at most 16 MiB before
    // the largest is flushed (each may otherwise hold 2 x 16 MiB). 2019
    // import: RSS after it 279-289 MiB per node with a 24 MiB cap, against
    // 292-306 MiB without one. 16 MiB (with the table and cache sizes
    // below) brought it to 268-287, and its smaller L0 files cost
    // compaction less, not more (node DESIGN, "Where an import's time goes").
    opts.set_db_write_buffer_size(16 << 20);
    let cfs = CFS
        .into_iter()
        .map(|n| ColumnFamilyDescriptor::new(n, cf_options(n)));
    let db = Arc::new(
        DB::open_cf_descriptors(&opts, &path, cfs)
            .with_context(|| format!("opening the RocksDB database in {}", path.display()))?,
    );
    let snapshots = data_dir.join("snapshots");
    let log = LogStore::new(db.clone());
    let sm = match StateMachineStore::open(db.clone(), snapshots.clone()) {
        Ok(sm) => sm,
        // Name the damaged file if there is one, rather than the record.
        Err(e) => {
            let stop = std::sync::atomic::AtomicBool::new(false);
            checks::verify_db(&db, &CFS, &path, &stop)?;
            return Err(e);
        }
    };
    let checks = (!fresh).then(|| checks::Background::start(db.clone(), &CFS, path));
    let closer = Closer {
        path: data_dir.join("db"),
        db,
        checks,
    };
    Ok((log, sm, closer))
}

/// What the database takes, summed over its column families.
#[derive(Debug, Default, Clone, Copy)]
pub struct Usage {
    pub table_bytes: u64,
    pub memtable_bytes: u64,
    pub cache_bytes: u64,
}

/// A column family's integer property; 0 when RocksDB has none.
pub(crate) fn int_property(db: &DB, cf_name: &str, prop: &str) -> u64 {
    db.property_int_value_cf(cf(db, cf_name), prop)
        .ok()
        .flatten()
        .unwrap_or(0)
}

pub(crate) fn usage(db: &DB) -> Usage {
    // The block cache is shared: count it once.
    let mut u = Usage {
        cache_bytes: int_property(db, CF_SM_DATA, "rocksdb.block-cache-usage"),
        ..Usage::default()
    };
    for name in CFS {
        let prop = |p: &str| int_property(db, name, p);
        u.table_bytes += prop("rocksdb.total-sst-files-size");
        u.memtable_bytes += prop("rocksdb.cur-size-all-mem-tables");
        u.cache_bytes += prop("rocksdb.estimate-table-readers-mem");
    }
    u
}

/// One block cache for every column family. Bulk reads (the load at
/// start, snapshot builds, exports) bypass it, so it holds what point reads
/// of results and log entries use again. Most point reads are for keys
/// that do not exist yet, answered by Bloom filters (held by the table
/// readers, outside the cache), and the newest log entries are served from
/// `log_cache`: 8 MiB, not 16, for the import's peak RSS.
const BLOCK_CACHE: usize = 8 << 20;

/// The state is read by point gets, most of them for keys that do not exist
/// yet (a new submission's id and result): a Bloom filter answers those
/// without touching a data block. Memtables of 16 MiB (not 64) for the log
/// and the state, with the write-ahead log capped at 64 MiB, keep a node's
/// memory and its replay after kill -9 small (2019 state: restart to
/// serving 2.5 s before, 0.8 s after).
pub(super) fn cf_options(name: &str) -> Options {
    static CACHE: std::sync::OnceLock<Cache> = std::sync::OnceLock::new();
    let cache = CACHE.get_or_init(|| Cache::new_lru_cache(BLOCK_CACHE));
    let mut o = Options::default();
    let mut block = BlockBasedOptions::default();
    block.set_block_cache(cache);
    if name == CF_SM_DATA || name == CF_SM_RESULTS {
        block.set_bloom_filter(10.0, false);
        // The memtable too: each miss there walked the skiplist, 8% of a
        // node's CPU during the 2019 import.
        o.set_memtable_whole_key_filtering(true);
        o.set_memtable_prefix_bloom_ratio(0.05);
        // A flush of `sm_data` spans its key range (audit entries to
        // aggregates), so each L0 compaction rewrites what lies between.
        // Eight L0 files per compaction, not four, halved those rewrites
        // when results lived there too: the 2019 import's compactions took
        // 1.3-2.3 (not 3.0-3.9) CPU-seconds per node.
        o.set_level_zero_file_num_compaction_trigger(8);
        // A table's Bloom filter is built from a hash of each of its keys,
        // held until the table is finished: about 10 MiB for a 64 MiB table,
        // most of the import's peak above its end state.
        o.set_target_file_size_base(16 << 20);
    }
    o.set_block_based_table_factory(&block);
    if name == CF_SM_DATA || name == CF_SM_RESULTS || name == CF_LOGS {
        o.set_write_buffer_size(16 << 20);
    }
    // Log entries live until the next purge: compressing them only costs
    // the write path CPU.
    if name == CF_LOGS {
        o.set_compression_type(rocksdb::DBCompressionType::None);
    }
    o
}

/// Closes the database on purpose, on the caller's thread, before the
/// process exits. The log store, the state machine and their clones all
/// share the database; RocksDB must not still be open (or flushing) when
/// the process tears down its static objects.
pub struct Closer {
    db: Arc<DB>,
    path: PathBuf,
    checks: Option<checks::Background>,
}

impl Closer {
    /// Waits up to `within` until every other handle to the database is
    /// gone (the fsync thread joined, every task dropped), then stops
    /// RocksDB's background work, waiting for it, and closes the database.
    /// On timeout it says how many handles are still open and leaves the
    /// database as it is.
    pub fn close(mut self, within: Duration) -> anyhow::Result<()> {
        let start = Instant::now();
        if let Some(mut c) = self.checks.take() {
            c.stop();
        }
        while Arc::strong_count(&self.db) > 1 {
            if start.elapsed() >= within {
                anyhow::bail!(
                    "{} other handle(s) to the database {} still open after {within:?}: a task or thread did not stop",
                    Arc::strong_count(&self.db) - 1,
                    self.path.display()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        // Memtables to table files: the next start replays no log, and
        // every byte on disk is covered by a block checksum.
        for name in CFS {
            if let Err(e) = self.db.flush_cf(cf(&self.db, name)) {
                tracing::warn!(cf = name, error = %e, "flush at shutdown failed; the log still holds the data");
            }
        }
        tracing::debug!("cancelling RocksDB background work");
        self.db.cancel_all_background_work(true);
        drop(self.db);
        tracing::debug!(path = %self.path.display(), "database closed");
        Ok(())
    }
}

pub(crate) fn cf<'a>(db: &'a DB, name: &str) -> &'a rocksdb::ColumnFamily {
    db.cf_handle(name).expect("column family created at open")
}

/// Bytes on disk that are not what they should be.
pub(crate) fn invalid(msg: impl Into<String>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg.into())
}

pub(crate) fn io_err(e: impl std::error::Error + Send + Sync + 'static) -> std::io::Error {
    std::io::Error::other(e)
}

#[cfg(test)]
mod snapshot_tests;
#[cfg(test)]
mod tests {
    use prost::Message;
    use rekap_proto::pb;

    use super::*;

    pub(super) fn owner() -> Owner {
        Owner {
            node_id: 1,
            cluster: "test".into(),
        }
    }

    /// RocksDB holds a lock file while open: opening the same directory
    /// again succeeds only if the previous database really closed.
    #[test]
    fn dropping_every_handle_closes_the_database_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let (log, sm, closer) = open(dir.path(), &owner()).unwrap();
        let log2 = log.clone();
        drop((log, log2, sm, closer));
        let (log, sm, closer) = open(dir.path(), &owner()).expect("database closed on drop");
        drop((log, sm));
        closer.close(Duration::from_secs(5)).expect("closes");
        open(dir.path(), &owner()).expect("database closed by close()");
    }

    #[test]
    fn close_names_handles_still_open() {
        let dir = tempfile::tempdir().unwrap();
        let (log, sm, closer) = open(dir.path(), &owner()).unwrap();
        let err = closer
            .close(Duration::from_millis(50))
            .expect_err("handles are open");
        assert!(err.to_string().contains("4 other handle(s)"), "{err}");
        drop((log, sm));
    }

    /// The export walks the tree (provinsi 11 before 63), which is not the
    /// order of the result keys (A1 < B1 < C1): every result still comes
    /// back, in tree order.
    #[test]
    fn export_returns_every_result_in_tree_order() {
        use crate::tally::tests::{loaded, sub, submit};
        let mut st = loaded();
        for (i, t) in ["A1", "B1", "C1"].iter().enumerate() {
            submit(
                &mut st,
                sub(&format!("s{i}"), t, "PPWP", 3, 4, 1),
                2 + i as u64,
            )
            .unwrap();
        }
        let dir = tempfile::tempdir().unwrap();
        let (log, sm, closer) = open(dir.path(), &owner()).unwrap();
        let db = closer.db.clone();
        let mut batch = rocksdb::WriteBatch::default();
        let writes = st.records().into_iter().map(|(k, v)| (k, Some(v)));
        families::add_writes(&mut batch, &db, writes);
        db.write(batch).unwrap();
        drop((db, log, sm));
        closer.close(Duration::from_secs(5)).unwrap();

        let (_log, sm, _closer) = open(dir.path(), &owner()).unwrap();
        let mut got = Vec::new();
        sm.export("ID", "PPWP", |m| {
            // As a client receives it: the items are sent pre-encoded.
            let m = pb::ListJanggalResponse::decode(m.encode_to_vec().as_slice()).unwrap();
            got.extend(m.items);
            true
        })
        .unwrap()
        .unwrap();
        let ids: Vec<_> = got
            .iter()
            .map(|i| i.tps.as_ref().unwrap().tps_id.as_str())
            .collect();
        assert_eq!(ids, ["C1", "A1", "B1"]);
        for item in &got {
            let tps = item.tps.as_ref().unwrap();
            assert_eq!(Some(tps), st.tps_pb(&tps.tps_id).as_ref());
            assert_eq!(
                item.result.as_ref(),
                Some(&st.tps_result(&tps.tps_id, "PPWP").unwrap())
            );
        }
        let refused = sm.export("ID", "NOPE", |_| true).unwrap();
        assert_eq!(refused.unwrap_err().rule, "contest_exists");
    }
}
