//! Log compaction: when to build a snapshot, and how much log to keep
//! behind it.
//!
//! Openraft counts entries, but Rekap's entries range from one TPS result to
//! an 8 MiB registry chunk: the 2019 replay is under a thousand entries and
//! hundreds of MiB. So a snapshot is also built once `every_bytes` of log
//! were appended since the last one, and the log is purged by snapshot, not
//! by count: up to the snapshot before the newest. A follower installing the
//! newest snapshot still finds every entry after it (openraft#1706), one that
//! fell behind by less than an interval catches up by log, and a new node
//! gets a snapshot and at most one interval of log to replay.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use openraft::async_runtime::WatchReceiver;

use super::Raft;

/// How often the appended bytes are looked at: a snapshot may start up to
/// this late, which is nothing beside the interval itself.
const TICK: Duration = Duration::from_millis(250);

/// The log's appended bytes, counted by the log store.
#[derive(Clone, Default)]
pub struct Appended(Arc<AtomicU64>);

impl Appended {
    pub fn add(&self, bytes: u64) {
        self.0.fetch_add(bytes, Ordering::Relaxed);
    }

    fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Runs until Raft shuts down.
pub async fn run(raft: Raft, appended: Appended, every_bytes: u64) {
    let metrics = raft.metrics();
    let snapshot_index = || metrics.borrow_watched().snapshot.as_ref().map(|l| l.index);
    let mut newest = snapshot_index();
    let mut mark = appended.get();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = snapshot_index();
        if now > newest {
            // A snapshot was built (by either trigger) or installed: the
            // interval starts again, and the log behind the previous one
            // goes. Purging what is already gone changes nothing.
            mark = appended.get();
            if let Some(upto) = newest
                && raft.trigger().purge_log(upto).await.is_err()
            {
                return;
            }
            newest = now;
        }
        let bytes = appended.get();
        if bytes.saturating_sub(mark) >= every_bytes {
            tracing::info!(
                bytes = bytes - mark,
                "log grew by the snapshot interval; building a snapshot"
            );
            // Until the snapshot shows up, don't ask again.
            mark = bytes;
            if raft.trigger().snapshot().await.is_err() {
                return;
            }
        }
    }
}
