//! Live views for watchers (`Tally.Watch`, the dashboard's live pages).
//!
//! Owns one shared cell per watched (region, contest) holding the latest
//! view of the region and its children, refreshed from this node's applied
//! state at most once per tick, and only while someone watches it. A cell
//! holds one value, never a queue: a watcher that reads slowly, or not at
//! all, skips to the newest view and costs the writers nothing. Views are
//! computed once per region, not once per watcher, so a thousand browsers
//! on the national page cost one computation per tick.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rekap_proto::pb;
use tokio::sync::watch;

use crate::store::{Installing, SmState, StateMachineStore};

/// Views are refreshed at most this often.
pub const TICK: Duration = Duration::from_millis(250);
/// With figures unchanged, watchers still hear the newer applied index
/// this often, so "as of" stays current.
const HEARTBEAT: Duration = Duration::from_secs(5);

/// A region and its children, as of one applied index.
#[derive(Debug, Clone, PartialEq)]
pub struct View {
    pub applied_index: u64,
    /// No figure here changed after this index.
    pub changed_index: u64,
    pub totals: pb::RegionTotals,
    pub children: Vec<pb::RegionTotals>,
}

impl View {
    pub fn compute(st: &SmState, region: &str, contest: &str) -> Result<View, pb::Rejection> {
        let (totals, children) = st.tally.children_totals(region, contest)?;
        let now = st.applied_index();
        let changed_index = std::iter::once(&totals)
            .chain(&children)
            .filter_map(|t| t.region.as_ref())
            .map(|r| st.tally.last_change(&r.code, contest, st.loaded_at, now))
            .max()
            .unwrap_or(now)
            .min(now);
        Ok(View {
            applied_index: now,
            changed_index,
            totals,
            children,
        })
    }

    fn same_figures(&self, other: &View) -> bool {
        self.totals == other.totals && self.children == other.children
    }

    pub fn to_pb(&self, node_id: u64) -> pb::WatchUpdate {
        pb::WatchUpdate {
            totals: Some(self.totals.clone()),
            children: self.children.clone(),
            applied_index: self.applied_index,
            changed_index: self.changed_index,
            node_id,
        }
    }
}

/// Why a watch could not start.
#[derive(Debug)]
pub enum Refusal {
    Rejected(pb::Rejection),
    Installing(Installing),
}

struct Cell {
    tx: watch::Sender<Arc<View>>,
    notified: Instant,
}

/// The cells, shared by the refresher and every watcher.
#[derive(Clone)]
pub struct Hub {
    cells: Arc<Mutex<HashMap<(String, String), Cell>>>,
    sm: StateMachineStore,
}

impl Hub {
    pub fn new(sm: StateMachineStore) -> Self {
        Hub {
            cells: Arc::default(),
            sm,
        }
    }

    /// The live view of `region` for `contest`; its current value is the
    /// view now, never one older than what this node has applied. Refused
    /// for an unknown region or contest.
    pub fn subscribe(
        &self,
        region: &str,
        contest: &str,
    ) -> Result<watch::Receiver<Arc<View>>, Refusal> {
        // Under the cells' lock, so no refresh slips between the view and
        // the cell it seeds.
        let mut cells = self.cells.lock().expect("watch cells lock");
        let st = self.sm.try_view().map_err(Refusal::Installing)?;
        let view = View::compute(&st, region, contest).map_err(Refusal::Rejected)?;
        let code = view
            .totals
            .region
            .as_ref()
            .map_or_else(String::new, |r| r.code.clone());
        let applied = view.applied_index;
        let mut view = Some(view);
        let cell = cells
            .entry((code, contest.to_string()))
            .or_insert_with(|| Cell {
                tx: watch::Sender::new(Arc::new(view.take().expect("unused"))),
                notified: Instant::now(),
            });
        // A cell last refreshed before this node's latest apply would show
        // a resumed watcher something older than it has seen.
        if let Some(v) = view.filter(|_| cell.tx.borrow().applied_index < applied) {
            cell.tx.send_replace(Arc::new(v));
            cell.notified = Instant::now();
        }
        Ok(cell.tx.subscribe())
    }

    /// Regions watched now.
    pub fn watched(&self) -> usize {
        self.cells.lock().expect("watch cells lock").len()
    }

    /// Refreshes the watched views after each applied change, at most once
    /// per `TICK`. Runs for the node's lifetime.
    pub async fn run(self) {
        let mut applied = self.sm.subscribe_applied();
        while applied.changed().await.is_ok() {
            self.refresh();
            tokio::time::sleep(TICK).await;
        }
    }

    fn refresh(&self) {
        let mut cells = self.cells.lock().expect("watch cells lock");
        cells.retain(|_, c| c.tx.receiver_count() > 0);
        if cells.is_empty() {
            return;
        }
        // During a snapshot install the views keep their last values; the
        // install moves the applied index, which brings the next refresh.
        let Ok(st) = self.sm.try_view() else {
            return;
        };
        for ((region, contest), cell) in cells.iter_mut() {
            let Ok(new) = View::compute(&st, region, contest) else {
                // The region or contest left the registry: its watchers
                // keep the last view.
                continue;
            };
            let heartbeat = cell.notified.elapsed() >= HEARTBEAT;
            let notify = cell.tx.send_if_modified(|old| {
                let changed = !new.same_figures(old);
                let advanced = new.applied_index > old.applied_index;
                if changed || advanced {
                    *old = Arc::new(new);
                }
                changed || (advanced && heartbeat)
            });
            if notify {
                cell.notified = Instant::now();
            }
        }
    }
}
