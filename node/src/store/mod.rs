//! Storage: one RocksDB per node holding the Raft log, the vote, the
//! committed index and the tally state machine, plus snapshot files.
//!
//! Column families: `logs` (entries by big-endian index), `raft_meta` (vote,
//! committed, last purged), `sm_meta` (last applied, last membership) and
//! `sm_data` (the tally's records). Everything is encoded with our own
//! protobuf messages. Log appends are made durable by a group-commit flusher
//! thread before openraft is told they are; the vote is written synchronously.
//! Snapshots live in `<data_dir>/snapshots` as files written atomically.

mod flusher;
mod log_store;
pub mod snapshot;
mod state_machine;

use std::path::Path;
use std::sync::Arc;

use rocksdb::{ColumnFamilyDescriptor, DB, Options};

pub use log_store::LogStore;
pub use snapshot::SnapshotFile;
pub use state_machine::{SmState, SmView, StateMachineStore};

pub(crate) const CF_LOGS: &str = "logs";
pub(crate) const CF_RAFT_META: &str = "raft_meta";
pub(crate) const CF_SM_META: &str = "sm_meta";
pub(crate) const CF_SM_DATA: &str = "sm_data";

pub(crate) const KEY_VOTE: &[u8] = b"vote";
pub(crate) const KEY_COMMITTED: &[u8] = b"committed";
pub(crate) const KEY_PURGED: &[u8] = b"last_purged";
pub(crate) const KEY_APPLIED: &[u8] = b"last_applied";
pub(crate) const KEY_MEMBERSHIP: &[u8] = b"last_membership";

/// Opens (creating if needed) the node's database and its snapshot folder,
/// and returns the log store and the state machine that share it.
pub fn open(data_dir: &Path) -> anyhow::Result<(LogStore, StateMachineStore)> {
    std::fs::create_dir_all(data_dir)?;
    let mut opts = Options::default();
    opts.create_if_missing(true);
    opts.create_missing_column_families(true);
    let cfs = [CF_LOGS, CF_RAFT_META, CF_SM_META, CF_SM_DATA]
        .into_iter()
        .map(|n| ColumnFamilyDescriptor::new(n, Options::default()));
    let db = Arc::new(DB::open_cf_descriptors(&opts, data_dir.join("db"), cfs)?);
    let log = LogStore::new(db.clone());
    let sm = StateMachineStore::open(db, data_dir.join("snapshots"))?;
    Ok((log, sm))
}

pub(crate) fn cf<'a>(db: &'a DB, name: &str) -> &'a rocksdb::ColumnFamily {
    db.cf_handle(name).expect("column family created at open")
}

pub(crate) fn io_err(e: impl std::error::Error + Send + Sync + 'static) -> std::io::Error {
    std::io::Error::other(e)
}
