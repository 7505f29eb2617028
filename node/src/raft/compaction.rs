//! Log compaction: when to build a snapshot, and how much log to keep
//! behind it.
//!
//! Openraft counts entries, but Rekap's entries range from one TPS result to
//! an 8 MiB registry chunk: the 2019 replay is under a thousand entries and
//! about 100 MiB. So a snapshot is also built by bytes of log appended since
//! the last one: once they reach the interval (`--snapshot-bytes`, or half
//! the state's size on disk if that is more, so the cost of snapshots stays
//! a fixed share of the writes as the state grows), or once the log has been
//! quiet for `IDLE` with at least an eighth of the interval behind it, so a
//! burst such as an import is followed by a snapshot while nothing else is
//! going on. The log is purged by snapshot, not by count: up to the snapshot
//! before the newest. A follower installing the newest snapshot still finds
//! every entry after it (openraft#1706), one that fell behind by less than
//! an interval catches up by log, and a new node gets a snapshot and at most
//! one interval of log to replay.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use openraft::async_runtime::WatchReceiver;

use super::Raft;
use crate::store::Appended;

/// How often the appended bytes are looked at: a snapshot may start up to
/// this late, which is nothing beside the interval itself.
const TICK: Duration = Duration::from_millis(250);
/// How long the log must be quiet for a snapshot of a partial interval.
const IDLE: Duration = Duration::from_secs(2);
/// How long a new node waits for the purge behind its fresh snapshot.
const PURGE_WAIT: Duration = Duration::from_secs(5);

/// When to build the next snapshot, given the bytes appended since the
/// last one, the state's size on disk, and how long the log was quiet.
fn due(since: u64, state_bytes: u64, every_bytes: u64, quiet: Duration) -> bool {
    let interval = every_bytes.max(state_bytes / 2);
    since >= interval || (quiet >= IDLE && since >= interval / 8)
}

/// The snapshot policy of one node; `run` applies it, and a new node asks
/// for a fresh snapshot through `before_new_node`.
pub struct Compaction {
    raft: Raft,
    appended: Appended,
    every_bytes: u64,
    state_bytes: Box<dyn Fn() -> u64 + Send + Sync>,
    /// The appended bytes when the current interval began.
    mark: AtomicU64,
    /// The appended bytes when the newest snapshot showed up.
    at_snapshot: AtomicU64,
}

impl Compaction {
    pub fn new(
        raft: Raft,
        appended: Appended,
        every_bytes: u64,
        state_bytes: impl Fn() -> u64 + Send + Sync + 'static,
    ) -> Self {
        let now = appended.get();
        Compaction {
            raft,
            appended,
            every_bytes,
            state_bytes: Box::new(state_bytes),
            mark: AtomicU64::new(now),
            at_snapshot: AtomicU64::new(now),
        }
    }

    fn snapshot_index(&self) -> Option<u64> {
        let m = self.raft.metrics();
        m.borrow_watched().snapshot.as_ref().map(|l| l.index)
    }

    /// Runs until Raft shuts down.
    pub async fn run(&self) {
        let mut newest = self.snapshot_index();
        let (mut seen, mut changed) = (self.appended.get(), Instant::now());
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now = self.snapshot_index();
            if now > newest {
                // A snapshot was built (by any trigger) or installed: the
                // interval starts again, and the log behind the previous one
                // goes. Purging what is already gone changes nothing.
                let bytes = self.appended.get();
                self.mark.store(bytes, Ordering::Relaxed);
                self.at_snapshot.store(bytes, Ordering::Relaxed);
                if let Some(upto) = newest
                    && self.raft.trigger().purge_log(upto).await.is_err()
                {
                    return;
                }
                newest = now;
            }
            let bytes = self.appended.get();
            if bytes != seen {
                (seen, changed) = (bytes, Instant::now());
            }
            let since = bytes.saturating_sub(self.mark.load(Ordering::Relaxed));
            if since > 0
                && due(
                    since,
                    (self.state_bytes)(),
                    self.every_bytes,
                    changed.elapsed(),
                )
            {
                tracing::info!(
                    bytes = since,
                    "building a snapshot of the log since the last one"
                );
                // Until the snapshot shows up, don't ask again.
                self.mark.store(bytes, Ordering::Relaxed);
                if self.raft.trigger().snapshot().await.is_err() {
                    return;
                }
            }
        }
    }

    /// On the leader, before a node is added: if the log since the newest
    /// snapshot is more than a quiet log would have been snapshotted for,
    /// build a snapshot now, so the new node installs the state as it is
    /// and replays next to nothing, instead of replaying that log. The log
    /// behind it is purged only as far as every member already holds.
    pub async fn before_new_node(&self, within: Duration) -> Result<(), String> {
        let bytes = self.appended.get();
        // Since the newest snapshot, not since the last request for one: an
        // add-learner that is retried (its first try cut off while it
        // waited) must still find the log purged behind a snapshot.
        let since = bytes.saturating_sub(self.at_snapshot.load(Ordering::Relaxed));
        if due(since, (self.state_bytes)(), self.every_bytes, IDLE) {
            self.fresh_snapshot(since, bytes, within).await?;
        }
        self.purge_held().await
    }

    async fn fresh_snapshot(&self, since: u64, bytes: u64, within: Duration) -> Result<(), String> {
        let want = self
            .raft
            .metrics()
            .borrow_watched()
            .last_applied
            .as_ref()
            .map_or(0, |l| l.index);
        tracing::info!(bytes = since, "building a snapshot for the new node");
        self.mark.store(bytes, Ordering::Relaxed);
        self.raft
            .trigger()
            .snapshot()
            .await
            .map_err(|e| e.to_string())?;
        self.raft
            .wait(Some(within))
            .metrics(
                |m| m.snapshot.as_ref().is_some_and(|l| l.index >= want),
                "snapshot for a new node",
            )
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    /// Purges the log up to the newest snapshot, as far as every follower
    /// already holds it (`None`, one that holds nothing known, sorts first),
    /// so a node added next starts from that snapshot.
    async fn purge_held(&self) -> Result<(), String> {
        let m = self.raft.metrics().borrow_watched().clone();
        let mut upto = m.snapshot.as_ref().map(|l| l.index);
        for (id, held) in m.replication.iter().flat_map(|r| r.iter()) {
            if *id != m.id {
                upto = upto.min(held.as_ref().map(|l| l.index));
            }
        }
        if let Some(upto) = upto {
            self.raft
                .trigger()
                .purge_log(upto)
                .await
                .map_err(|e| e.to_string())?;
            // A purge waits for replication that still reads those entries;
            // the new node is added either way.
            let _ = self
                .raft
                .wait(Some(PURGE_WAIT))
                .metrics(
                    |m| m.purged.as_ref().is_some_and(|l| l.index >= upto),
                    "purged for a new node",
                )
                .await;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn a_full_interval_is_due_at_once_and_a_partial_one_only_when_quiet() {
        let busy = Duration::ZERO;
        assert!(due(64 * MIB, 0, 64 * MIB, busy));
        assert!(!due(63 * MIB, 0, 64 * MIB, busy));
        assert!(!due(8 * MIB - 1, 0, 64 * MIB, IDLE));
        assert!(due(8 * MIB, 0, 64 * MIB, IDLE));
    }

    #[test]
    fn the_interval_grows_with_the_state() {
        let busy = Duration::ZERO;
        assert!(!due(64 * MIB, 1024 * MIB, 64 * MIB, busy));
        assert!(due(512 * MIB, 1024 * MIB, 64 * MIB, busy));
        assert!(!due(63 * MIB, 1024 * MIB, 64 * MIB, IDLE));
        assert!(due(64 * MIB, 1024 * MIB, 64 * MIB, IDLE));
    }
}
