//! The newest log entries, kept in memory beside RocksDB. Right after an
//! append, each follower's replication stream and then the apply step read
//! the same entries back; served from here, that costs an `Arc` clone per
//! entry instead of a RocksDB read and a protobuf decode each time. Only a
//! contiguous run ending at the last appended entry is kept, up to a byte
//! budget, and every change to the log on disk (append, truncate, purge)
//! changes it the same way, so a hit always equals what RocksDB holds. A
//! range it does not wholly hold is read from RocksDB.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use crate::raft::types::Entry;

/// Encoded bytes of entries kept. Decoded, with their encoding kept beside
/// them, entries take about 6 times as much (8 MiB here cost 75 MiB of RSS
/// after the 2019 import). 2 MiB still holds hundreds of write-load entries,
/// or about ten 1000-row import batches: more than replication and apply
/// trail the newest append by.
const BUDGET: usize = 2 << 20;

#[derive(Clone, Default)]
pub struct LogCache {
    inner: Arc<Mutex<Run>>,
}

#[derive(Default)]
struct Run {
    /// Entries with consecutive indexes, and each one's encoded size.
    entries: VecDeque<(Entry, usize)>,
    bytes: usize,
}

impl Run {
    fn first(&self) -> Option<u64> {
        self.entries.front().map(|(e, _)| e.log_id.index)
    }

    fn last(&self) -> Option<u64> {
        self.entries.back().map(|(e, _)| e.log_id.index)
    }

    fn pop_back(&mut self) {
        if let Some((_, n)) = self.entries.pop_back() {
            self.bytes -= n;
        }
    }

    fn pop_front(&mut self) {
        if let Some((_, n)) = self.entries.pop_front() {
            self.bytes -= n;
        }
    }
}

impl LogCache {
    fn run(&self) -> std::sync::MutexGuard<'_, Run> {
        self.inner.lock().expect("log cache lock")
    }

    /// Records entries just written (with their encoded sizes). An append
    /// that overwrites the tail replaces it; one that leaves a gap starts a
    /// new run.
    pub fn appended(&self, entries: impl IntoIterator<Item = (Entry, usize)>) {
        let mut run = self.run();
        for (e, n) in entries {
            let index = e.log_id.index;
            while run.last().is_some_and(|l| l >= index) {
                run.pop_back();
            }
            if run.last().is_some_and(|l| l + 1 != index) {
                *run = Run::default();
            }
            run.bytes += n;
            run.entries.push_back((e, n));
        }
        // Keep at least the newest entry, however large.
        while run.bytes > BUDGET && run.entries.len() > 1 {
            run.pop_front();
        }
    }

    /// Forgets entries after `index` (all of them for `None`).
    pub fn truncated_after(&self, index: Option<u64>) {
        let mut run = self.run();
        while run.last().is_some_and(|l| index.is_none_or(|i| l > i)) {
            run.pop_back();
        }
    }

    /// Forgets entries up to and including `index`.
    pub fn purged(&self, index: u64) {
        let mut run = self.run();
        while run.first().is_some_and(|f| f <= index) {
            run.pop_front();
        }
    }

    /// The entries `start..end`, if every one of them is held here.
    pub fn get(&self, start: u64, end: u64) -> Option<Vec<Entry>> {
        let run = self.run();
        let (first, last) = (run.first()?, run.last()?);
        if start < first || end > last + 1 || start >= end {
            return None;
        }
        let from = (start - first) as usize;
        let to = (end - first) as usize;
        Some(
            run.entries
                .range(from..to)
                .map(|(e, _)| e.clone())
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::convert::log_id;
    use openraft::EntryPayload;

    fn entry(term: u64, index: u64) -> (Entry, usize) {
        let e = Entry {
            log_id: log_id(term, 1, index),
            payload: EntryPayload::Blank,
        };
        (e, 100)
    }

    fn held(c: &LogCache, start: u64, end: u64) -> Option<Vec<(u64, u64)>> {
        c.get(start, end).map(|v| {
            v.iter()
                .map(|e| (e.log_id.leader_id.term, e.log_id.index))
                .collect()
        })
    }

    #[test]
    fn serves_only_ranges_it_wholly_holds() {
        let c = LogCache::default();
        assert_eq!(held(&c, 1, 2), None);
        c.appended((5..=9).map(|i| entry(1, i)));
        assert_eq!(held(&c, 5, 10).map(|v| v.len()), Some(5));
        assert_eq!(held(&c, 7, 9), Some(vec![(1, 7), (1, 8)]));
        assert_eq!(held(&c, 4, 6), None, "4 is not held");
        assert_eq!(held(&c, 9, 11), None, "10 is not held");
        assert_eq!(held(&c, 7, 7), None);
    }

    #[test]
    fn an_overwritten_tail_is_replaced_and_a_gap_starts_a_new_run() {
        let c = LogCache::default();
        c.appended((1..=5).map(|i| entry(1, i)));
        c.appended([entry(2, 4)]);
        assert_eq!(held(&c, 1, 5), Some(vec![(1, 1), (1, 2), (1, 3), (2, 4)]));
        assert_eq!(held(&c, 5, 6), None, "the old 5 went with the overwrite");
        c.appended([entry(2, 9)]);
        assert_eq!(held(&c, 4, 5), None);
        assert_eq!(held(&c, 9, 10), Some(vec![(2, 9)]));
    }

    #[test]
    fn truncation_and_purge_follow_the_log() {
        let c = LogCache::default();
        c.appended((1..=10).map(|i| entry(1, i)));
        c.truncated_after(Some(8));
        assert_eq!(held(&c, 8, 10), None);
        assert_eq!(held(&c, 7, 9).map(|v| v.len()), Some(2));
        c.purged(3);
        assert_eq!(held(&c, 3, 5), None);
        assert_eq!(held(&c, 4, 9).map(|v| v.len()), Some(5));
        c.truncated_after(None);
        assert_eq!(held(&c, 4, 5), None);
    }

    #[test]
    fn stays_within_its_budget_and_keeps_the_newest() {
        let c = LogCache::default();
        let big = BUDGET / 4 + 1;
        c.appended((1..=8).map(|i| (entry(1, i).0, big)));
        assert_eq!(held(&c, 5, 9).map(|v| v.len()), None, "4 do not fit");
        assert_eq!(held(&c, 6, 9).map(|v| v.len()), Some(3));
        c.appended([(entry(1, 9).0, BUDGET * 2)]);
        assert_eq!(held(&c, 9, 10).map(|v| v.len()), Some(1));
        assert_eq!(held(&c, 8, 10), None);
    }
}
