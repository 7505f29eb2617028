//! Live views for watchers (`Tally.Watch`, the dashboard's live pages).
//!
//! Owns one shared cell per watched (region, contest) holding the latest
//! view of the region and its children, refreshed from this node's applied
//! state at most once per tick, and only while someone watches it. A cell
//! holds one value, never a queue: a watcher that reads slowly, or not at
//! all, skips to the newest view and costs the writers nothing. Views are
//! computed once per region, not once per watcher, so a thousand browsers
//! on the national page cost one computation per tick. Watchers need no
//! account on the dashboard, so cells and watchers are capped, and a tick
//! recomputes only the cells whose sums changed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
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
/// Regions watched at once on one node; each costs a few lookups a tick.
pub const MAX_CELLS: usize = 10_000;
/// Watchers (streams) open at once on one node.
pub const MAX_WATCHERS: usize = 50_000;

/// A region and its children, as of one applied index.
#[derive(Debug, Clone, PartialEq)]
pub struct View {
    pub applied_index: u64,
    /// No figure here changed after this index.
    pub changed_index: u64,
    pub totals: pb::RegionTotals,
    pub children: Vec<pb::RegionTotals>,
    /// The view as JSON (the dashboard's), made once however many event
    /// streams send it.
    pub json: std::sync::OnceLock<String>,
}

/// Regions whose figures a view of `totals` and `children` shows.
fn codes<'v>(
    totals: &'v pb::RegionTotals,
    children: &'v [pb::RegionTotals],
) -> impl Iterator<Item = &'v str> {
    std::iter::once(totals)
        .chain(children)
        .filter_map(|t| t.region.as_ref().map(|r| r.code.as_str()))
}

impl View {
    pub fn compute(st: &SmState, region: &str, contest: &str) -> Result<View, pb::Rejection> {
        let (totals, children) = st.tally.children_totals(region, contest)?;
        let now = st.applied_index();
        // Names come from the registry: a registry change is a change.
        let registry = st.tally.registry_change().unwrap_or(st.loaded_at);
        let changed_index = codes(&totals, &children)
            .map(|code| st.tally.last_change(code, contest, st.loaded_at, now))
            .chain(std::iter::once(registry))
            .max()
            .unwrap_or(now)
            .min(now);
        Ok(View {
            applied_index: now,
            changed_index,
            totals,
            children,
            json: std::sync::OnceLock::new(),
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

/// The newest index this process saw change anything `view` shows: cheap
/// (lookups, no copies), for telling which cells a tick must recompute.
fn probe(st: &SmState, view: &View) -> u64 {
    let contest = view.totals.contest_id.as_str();
    codes(&view.totals, &view.children)
        .filter_map(|code| st.tally.changed_at(code, contest))
        .chain(st.tally.registry_change())
        .max()
        .unwrap_or(0)
}

/// Why a watch could not start.
#[derive(Debug)]
pub enum Refusal {
    Rejected(pb::Rejection),
    Installing(Installing),
    /// Too many regions or watchers on this node now.
    Busy(&'static str),
}

struct Cell {
    tx: watch::Sender<Arc<View>>,
    notified: Instant,
    /// `probe` when the view was last computed.
    probed: u64,
}

/// One watcher's hold on a cell; counted until dropped.
pub struct Subscription {
    pub rx: watch::Receiver<Arc<View>>,
    closing: watch::Receiver<bool>,
    _counted: Counted,
}

impl Subscription {
    /// Waits for the next view; false once the node is shutting down.
    pub async fn changed(&mut self) -> bool {
        tokio::select! {
            r = self.rx.changed() => r.is_ok(),
            _ = self.closing.wait_for(|c| *c) => false,
        }
    }
}

struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The cells, shared by the refresher and every watcher.
#[derive(Clone)]
pub struct Hub {
    cells: Arc<Mutex<HashMap<(String, String), Cell>>>,
    watchers: Arc<AtomicUsize>,
    /// Set at shutdown: every stream ends, so none holds up the drain.
    closing: watch::Sender<bool>,
    sm: StateMachineStore,
}

impl Hub {
    pub fn new(sm: StateMachineStore) -> Self {
        Hub {
            cells: Arc::default(),
            watchers: Arc::default(),
            closing: watch::Sender::new(false),
            sm,
        }
    }

    /// Ends every watcher's stream (the node is shutting down).
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// The live view of `region` for `contest`; its current value is the
    /// view now, never one older than what this node has applied. Refused
    /// for an unknown region or contest, a contest with no TPS in the
    /// region, and when the node has as many watchers as it takes.
    pub fn subscribe(&self, region: &str, contest: &str) -> Result<Subscription, Refusal> {
        if self.watchers.fetch_add(1, Ordering::Relaxed) >= MAX_WATCHERS {
            self.watchers.fetch_sub(1, Ordering::Relaxed);
            return Err(Refusal::Busy("watchers"));
        }
        let counted = Counted(self.watchers.clone());
        // Under the cells' lock, so no refresh slips between the view and
        // the cell it seeds.
        let mut cells = self.cells.lock().expect("watch cells lock");
        let st = self.sm.try_view().map_err(Refusal::Installing)?;
        let view = View::compute(&st, region, contest).map_err(Refusal::Rejected)?;
        if view.totals.tps_total == 0 {
            return Err(Refusal::Rejected(crate::tally::rules::reject(
                crate::tally::rules::code::NOT_FOUND,
                "contest_in_region",
                format!("contest {contest} has no TPS in region {region}"),
            )));
        }
        let probed = probe(&st, &view);
        drop(st);
        let code = view
            .totals
            .region
            .as_ref()
            .map_or_else(String::new, |r| r.code.clone());
        let key = (code, contest.to_string());
        if !cells.contains_key(&key) {
            cells.retain(|_, c| c.tx.receiver_count() > 0);
            if cells.len() >= MAX_CELLS {
                return Err(Refusal::Busy("regions"));
            }
        }
        let mut view = Some(view);
        let cell = cells.entry(key).or_insert_with(|| Cell {
            tx: watch::Sender::new(Arc::new(view.take().expect("unused"))),
            notified: Instant::now(),
            probed,
        });
        // A cell last refreshed before this node's latest apply would show
        // a resumed watcher something older than it has seen: it takes the
        // newer view, and wakes its watchers only if a figure changed.
        if let Some(new) = view.filter(|v| cell.tx.borrow().applied_index < v.applied_index) {
            cell.probed = probed;
            cell.tx.send_if_modified(|old| {
                let changed = !new.same_figures(old);
                *old = Arc::new(new);
                changed
            });
        }
        Ok(Subscription {
            rx: cell.tx.subscribe(),
            closing: self.closing.subscribe(),
            _counted: counted,
        })
    }

    /// Regions watched now.
    pub fn watched(&self) -> usize {
        self.cells.lock().expect("watch cells lock").len()
    }

    /// Refreshes the watched views after each applied change, at most once
    /// per `TICK`, on a blocking thread (it holds the state's read lock).
    /// Runs for the node's lifetime.
    pub async fn run(self) {
        let mut applied = self.sm.subscribe_applied();
        while applied.changed().await.is_ok() {
            let hub = self.clone();
            let _ = tokio::task::spawn_blocking(move || hub.refresh()).await;
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
            let heartbeat = cell.notified.elapsed() >= HEARTBEAT;
            let probed = probe(&st, &cell.tx.borrow());
            if probed <= cell.probed && !heartbeat {
                continue;
            }
            let Ok(new) = View::compute(&st, region, contest) else {
                // The region or contest left the registry: its watchers
                // keep the last view.
                continue;
            };
            cell.probed = probed;
            let notify = cell.tx.send_if_modified(|old| {
                let changed = !new.same_figures(old);
                let advanced = new.applied_index > old.applied_index;
                if changed || advanced {
                    *old = Arc::new(new);
                }
                changed || (advanced && heartbeat)
            });
            if notify || heartbeat {
                cell.notified = Instant::now();
            }
        }
    }
}
