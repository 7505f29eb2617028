//! What this node's log holds, for a new leader's search (issue 25). openraft
//! starts a new leader knowing nothing of where each follower's log matches
//! its own and finds out by binary search, one probe of 8 entries per round
//! trip: about a second over a 100 ms link. A follower that says which log
//! id it holds on disk lets the leader skip that search (see
//! `network::hint`). Two handles serve that: `Durable` on the follower's
//! side, `LogIds` on the leader's.

use std::sync::{Arc, Mutex, Weak};

use prost::Message;
use rekap_proto::pb;
use rocksdb::DB;

use super::log_cache::LogCache;
use super::{CF_LOGS, cf};
use crate::raft::convert::entry_from_pb;
use crate::raft::types::LogId;

/// The newest log id whose entry, and every entry before it, this node's
/// log holds on disk (fsynced), or `None` when not known since start-up.
/// A hint taken from here can never name an entry a crash would take back,
/// so a leader that believes it never sees this follower's log go back.
#[derive(Clone, Default)]
pub struct Durable {
    inner: Arc<Mutex<Mark>>,
}

#[derive(Default)]
struct Mark {
    last: Option<LogId>,
    /// Bumped by each truncation: an fsync that covered entries written
    /// before it must not name them afterwards.
    generation: u64,
}

impl Durable {
    fn mark(&self) -> std::sync::MutexGuard<'_, Mark> {
        self.inner.lock().expect("durable mark lock")
    }

    pub fn get(&self) -> Option<LogId> {
        self.mark().last
    }

    /// The generation to pass to `flushed` for an append written now.
    pub(super) fn generation(&self) -> u64 {
        self.mark().generation
    }

    /// The fsync that covers the append of entries up to `upto` (written in
    /// `generation`) succeeded.
    pub(super) fn flushed(&self, upto: LogId, generation: u64) {
        let mut m = self.mark();
        if m.generation == generation && m.last.is_none_or(|l| l.index < upto.index) {
            m.last = Some(upto);
        }
    }

    /// The log now ends at `kept`. Entries up to the old mark were on disk,
    /// and `kept` lies among them when it is below it.
    pub(super) fn truncated(&self, kept: Option<LogId>) {
        let mut m = self.mark();
        m.generation += 1;
        let kept_index = kept.map(|k| k.index);
        if m.last.map(|l| l.index) > kept_index {
            m.last = kept;
        }
    }
}

/// Reads the log id at an index of this node's own log. Holds the database
/// weakly: replication tasks may outlive the store by a moment at shutdown,
/// and the database closes only once every strong handle is gone.
#[derive(Clone)]
pub struct LogIds {
    db: Weak<DB>,
    cache: LogCache,
}

impl LogIds {
    pub(super) fn new(db: &Arc<DB>, cache: LogCache) -> Self {
        LogIds {
            db: Arc::downgrade(db),
            cache,
        }
    }

    /// `None` when the index is not in the log (purged, beyond its end) or
    /// cannot be read.
    pub fn at(&self, index: u64) -> Option<LogId> {
        if let Some(hit) = self.cache.get(index, index + 1) {
            return hit.first().map(|e| e.log_id);
        }
        let db = self.db.upgrade()?;
        let raw = db
            .get_cf(cf(&db, CF_LOGS), index.to_be_bytes())
            .ok()
            .flatten()?;
        let entry = entry_from_pb(pb::Entry::decode(raw.as_slice()).ok()?).ok()?;
        Some(entry.log_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(term: u64, index: u64) -> LogId {
        crate::raft::convert::log_id(term, 1, index)
    }

    #[test]
    fn a_flush_raises_the_mark_and_never_lowers_it() {
        let d = Durable::default();
        assert_eq!(d.get(), None);
        d.flushed(id(1, 5), d.generation());
        assert_eq!(d.get(), Some(id(1, 5)));
        // Group commit may answer an older append's callback last.
        d.flushed(id(1, 3), d.generation());
        assert_eq!(d.get(), Some(id(1, 5)));
    }

    #[test]
    fn a_truncation_lowers_the_mark_to_what_is_kept() {
        let d = Durable::default();
        d.flushed(id(1, 10), d.generation());
        d.truncated(Some(id(1, 6)));
        assert_eq!(d.get(), Some(id(1, 6)));
        d.truncated(None);
        assert_eq!(d.get(), None);
    }

    #[test]
    fn a_truncation_above_the_mark_keeps_it() {
        let d = Durable::default();
        d.flushed(id(1, 4), d.generation());
        // Entries 5..=8 were written but not yet on disk: 8 is not durable.
        d.truncated(Some(id(1, 8)));
        assert_eq!(d.get(), Some(id(1, 4)));
    }

    #[test]
    fn an_fsync_of_entries_truncated_since_names_nothing() {
        let d = Durable::default();
        d.flushed(id(1, 4), d.generation());
        let before = d.generation();
        // Entries 5..=9 of term 1 written, then replaced from 5 by term 2
        // before their fsync answered.
        d.truncated(Some(id(1, 4)));
        d.flushed(id(1, 9), before);
        assert_eq!(d.get(), Some(id(1, 4)));
        d.flushed(id(2, 6), d.generation());
        assert_eq!(d.get(), Some(id(2, 6)));
    }
}
