//! The Raft log, vote and committed index in RocksDB.

use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use openraft::storage::{IOFlushed, LogState, RaftLogStorage};
use openraft::{OptionalSend, RaftLogReader};
use prometheus_client::metrics::histogram::Histogram;
use prost::Message;
use rekap_proto::pb;
use rocksdb::{DB, Direction, IteratorMode, ReadOptions, WriteBatch, WriteOptions};

use super::flusher::Flusher;
use super::held::{Durable, LogIds};
use super::log_cache::LogCache;
use super::{CF_LOGS, CF_RAFT_META, KEY_COMMITTED, KEY_PURGED, KEY_VOTE, cf, io_err};
use crate::raft::convert::{
    encode_entry, entry_from_pb, log_id_from_pb, log_id_to_pb, vote_from_pb, vote_to_pb,
};
use crate::raft::types::{Entry, LogId, TypeConfig, Vote};

/// The log's appended bytes, counted by the log store.
#[derive(Clone, Default)]
pub struct Appended(Arc<AtomicU64>);

impl Appended {
    pub fn add(&self, bytes: u64) {
        self.0.fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Clone)]
pub struct LogStore {
    db: Arc<DB>,
    flusher: Flusher,
    appended: Appended,
    /// Shared by every clone: the newest entries (see `log_cache`).
    cache: LogCache,
    /// How long each WAL fsync took (shared by clones, read by `/metrics`).
    fsyncs: Histogram,
    durable: Durable,
}

fn index_key(i: u64) -> [u8; 8] {
    i.to_be_bytes()
}

fn sync_opts() -> WriteOptions {
    let mut o = WriteOptions::default();
    o.set_sync(true);
    o
}

impl LogStore {
    pub fn new(db: Arc<DB>) -> Self {
        let fsyncs = Histogram::new(crate::store::DISK_BUCKETS);
        let durable = Durable::default();
        let flusher = Flusher::start(db.clone(), fsyncs.clone(), durable.clone());
        LogStore {
            db,
            flusher,
            appended: Appended::default(),
            cache: LogCache::default(),
            fsyncs,
            durable,
        }
    }

    /// The newest log id this log holds on disk (see `held`).
    pub fn durable(&self) -> Durable {
        self.durable.clone()
    }

    /// Reads log ids of this log without keeping the database open.
    pub fn log_ids(&self) -> LogIds {
        LogIds::new(&self.db, self.cache.clone())
    }

    /// The durations of the log's fsyncs, in seconds.
    pub fn fsync_seconds(&self) -> Histogram {
        self.fsyncs.clone()
    }

    /// The count of bytes appended, for the snapshot policy.
    pub fn appended(&self) -> Appended {
        self.appended.clone()
    }

    fn get_meta<M: Message + Default>(&self, key: &[u8]) -> io::Result<Option<M>> {
        let raw = self
            .db
            .get_cf(cf(&self.db, CF_RAFT_META), key)
            .map_err(io_err)?;
        raw.map(|b| M::decode(b.as_slice()).map_err(io_err))
            .transpose()
    }

    fn last_purged(&self) -> io::Result<Option<LogId>> {
        Ok(self
            .get_meta::<pb::LogId>(KEY_PURGED)?
            .map(log_id_from_pb)
            .transpose()?)
    }
}

/// The index the log is purged up to (entries up to it are gone).
pub(super) fn purged_index(db: &rocksdb::DB) -> io::Result<Option<u64>> {
    let Some(raw) = db
        .get_cf(cf(db, CF_RAFT_META), KEY_PURGED)
        .map_err(io_err)?
    else {
        return Ok(None);
    };
    let id = pb::LogId::decode(raw.as_slice()).map_err(io_err)?;
    Ok(Some(log_id_from_pb(id)?.index))
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        let start = match range.start_bound() {
            Bound::Included(i) => *i,
            Bound::Excluded(i) => i + 1,
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(i) => i.saturating_add(1),
            Bound::Excluded(i) => *i,
            Bound::Unbounded => u64::MAX,
        };
        if let Some(hit) = self.cache.get(start, end) {
            return Ok(hit);
        }
        let mut opts = ReadOptions::default();
        // The iterator stops at the range's end instead of reading one
        // entry past it.
        if end != u64::MAX {
            opts.set_iterate_upper_bound(index_key(end));
        }
        let mut out = Vec::new();
        let it = self.db.iterator_cf_opt(
            cf(&self.db, CF_LOGS),
            opts,
            IteratorMode::From(&index_key(start), Direction::Forward),
        );
        for kv in it {
            let (k, v) = kv.map_err(io_err)?;
            let idx = u64::from_be_bytes(k.as_ref().try_into().map_err(io_err)?);
            if !range.contains(&idx) {
                break;
            }
            out.push(entry_from_pb(
                pb::Entry::decode(v.as_ref()).map_err(io_err)?,
            )?);
        }
        Ok(out)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        self.get_meta::<pb::Vote>(KEY_VOTE)?
            .map(|v| Ok(vote_from_pb(Some(v))?))
            .transpose()
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, io::Error> {
        let last_purged_log_id = self.last_purged()?;
        let last = self
            .db
            .iterator_cf(cf(&self.db, CF_LOGS), IteratorMode::End)
            .next();
        let last_log_id = match last {
            Some(kv) => {
                let (_, v) = kv.map_err(io_err)?;
                Some(entry_from_pb(pb::Entry::decode(v.as_ref()).map_err(io_err)?)?.log_id)
            }
            None => last_purged_log_id,
        };
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    /// Durable on return: a vote must never be forgotten after a crash.
    async fn save_vote(&mut self, vote: &Vote) -> Result<(), io::Error> {
        let mut b = WriteBatch::default();
        b.put_cf(
            cf(&self.db, CF_RAFT_META),
            KEY_VOTE,
            vote_to_pb(vote).encode_to_vec(),
        );
        self.db.write_opt(b, &sync_opts()).map_err(io_err)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), io::Error> {
        let meta = cf(&self.db, CF_RAFT_META);
        match committed {
            Some(c) => self
                .db
                .put_cf(meta, KEY_COMMITTED, log_id_to_pb(&c).encode_to_vec()),
            None => self.db.delete_cf(meta, KEY_COMMITTED),
        }
        .map_err(io_err)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, io::Error> {
        Ok(self
            .get_meta::<pb::LogId>(KEY_COMMITTED)?
            .map(log_id_from_pb)
            .transpose()?)
    }

    /// Readable on return; the callback fires after the WAL fsync.
    async fn append<I>(
        &mut self,
        entries: I,
        callback: IOFlushed<TypeConfig>,
    ) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let logs = cf(&self.db, CF_LOGS);
        let mut b = WriteBatch::default();
        let mut buf = Vec::new();
        let mut kept = Vec::new();
        let generation = self.durable.generation();
        let mut last = None;
        for e in entries {
            last = Some(e.log_id);
            buf.clear();
            encode_entry(&e, &mut buf);
            b.put_cf(logs, index_key(e.log_id.index), &buf);
            kept.push((e, buf.len()));
        }
        self.appended.add(b.size_in_bytes() as u64);
        self.db.write(b).map_err(io_err)?;
        self.cache.appended(kept);
        self.flusher.flush(callback, last.map(|l| (l, generation)));
        Ok(())
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), io::Error> {
        self.cache.truncated_after(last_log_id.map(|l| l.index));
        self.durable.truncated(last_log_id);
        let from = last_log_id.map_or(0, |l| l.index + 1);
        let mut b = WriteBatch::default();
        b.delete_range_cf(cf(&self.db, CF_LOGS), index_key(from), index_key(u64::MAX));
        b.delete_cf(cf(&self.db, CF_LOGS), index_key(u64::MAX));
        self.db.write_opt(b, &sync_opts()).map_err(io_err)
    }

    /// Records the purge point first, in the same batch as the deletion.
    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        self.cache.purged(log_id.index);
        let mut b = WriteBatch::default();
        b.put_cf(
            cf(&self.db, CF_RAFT_META),
            KEY_PURGED,
            log_id_to_pb(&log_id).encode_to_vec(),
        );
        b.delete_range_cf(
            cf(&self.db, CF_LOGS),
            index_key(0),
            index_key(log_id.index + 1),
        );
        self.db.write(b).map_err(io_err)
    }
}
