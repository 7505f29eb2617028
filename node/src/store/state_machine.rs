//! The tally state machine on RocksDB: applies committed entries to the pure
//! `TallyState` and persists its record writes together with the applied log
//! id in one batch, so the two never disagree. A snapshot is one RocksDB
//! view, whose applied log id and data are read from the same view: its
//! metadata always matches its content exactly (`on_demand`).

use std::collections::BTreeSet;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard};

use anyhow::Context;
use futures::{Stream, StreamExt};
use openraft::storage::{EntryResponder, RaftStateMachine, Snapshot};
use openraft::{EntryPayload, OptionalSend, RaftSnapshotBuilder};
use prometheus_client::metrics::histogram::Histogram;
use prost::Message;
use rekap_proto::pb;
use rocksdb::{DB, Direction, IteratorMode, WriteBatch, WriteOptions};

use super::families::{STATE_FAMILIES, add_writes, move_legacy_results};
use super::install;
use super::on_demand::{self, Pending, SnapshotData};
use super::records::DbRecords;
use super::snapshot;
use super::{CF_SM_DATA, CF_SM_META, KEY_APPLIED, KEY_MEMBERSHIP, cf, io_err};
use crate::raft::convert::{
    log_id_from_pb, log_id_to_pb, stored_membership_from_pb, stored_membership_to_pb,
};
use crate::raft::types::{LogId, SnapshotMeta, StoredMembership, TypeConfig};
use crate::tally::{TallyState, keys};

/// The applied state: the tally and the Raft position it reflects.
pub struct SmState {
    pub tally: TallyState,
    pub last_applied: Option<LogId>,
    pub membership: StoredMembership,
    /// The applied index when the tally was read from disk: sums loaded
    /// then changed at or before it (see `TallyState::last_change`).
    pub loaded_at: u64,
}

impl SmState {
    pub fn applied_index(&self) -> u64 {
        self.last_applied.map_or(0, |l| l.index)
    }
}

pub type SmView<'a> = RwLockReadGuard<'a, SmState>;

/// The state is being replaced by a snapshot; reads are refused meanwhile.
#[derive(Debug, Clone, Copy)]
pub struct Installing;

impl std::fmt::Display for Installing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(
            "this node is installing a snapshot of the state; read from another node or retry",
        )
    }
}

impl From<Installing> for tonic::Status {
    fn from(e: Installing) -> Self {
        tonic::Status::unavailable(e.to_string())
    }
}

impl From<Installing> for io::Error {
    fn from(e: Installing) -> Self {
        io::Error::new(io::ErrorKind::WouldBlock, e.to_string())
    }
}

pub(super) struct Inner {
    pub(super) db: Arc<DB>,
    pub(super) dir: PathBuf,
    pub(super) state: RwLock<SmState>,
    installing: AtomicBool,
    removed: RwLock<BTreeSet<u64>>,
    /// The applied index, published as soon as a run of entries is
    /// written: linearizable reads wait on it, not on Raft's metrics,
    /// which the busy Raft core publishes later.
    applied: tokio::sync::watch::Sender<u64>,
    /// Serialises snapshot builds against installs.
    pub(super) snapshot_lock: tokio::sync::Mutex<()>,
    /// How long each applied run of entries took, its write included.
    applies: Histogram,
}

impl Inner {
    /// Publishes what is read beside the state lock: the applied index,
    /// and the removed nodes when they may have changed.
    fn publish(&self, st: &SmState, removed_changed: bool) {
        if removed_changed {
            *self.removed.write().expect("removed lock") = st.tally.removed_nodes().clone();
        }
        self.applied
            .send_replace(st.last_applied.map_or(0, |l| l.index));
    }
}

/// Cheap to clone: the gRPC services keep a clone to read the tally.
#[derive(Clone)]
pub struct StateMachineStore {
    pub(super) inner: Arc<Inner>,
}

type SmSnapshot = openraft::alias::SnapshotOf<TypeConfig, SnapshotData>;

pub(super) fn read_meta(
    get: impl Fn(&[u8]) -> io::Result<Option<Vec<u8>>>,
) -> io::Result<(Option<LogId>, StoredMembership)> {
    let applied = get(KEY_APPLIED)?
        .map(|b| pb::LogId::decode(b.as_slice()).map_err(io_err))
        .transpose()?
        .map(log_id_from_pb)
        .transpose()?;
    let membership = match get(KEY_MEMBERSHIP)? {
        Some(b) => stored_membership_from_pb(Some(
            pb::StoredMembership::decode(b.as_slice()).map_err(io_err)?,
        ))?,
        None => StoredMembership::default(),
    };
    Ok((applied, membership))
}

pub(super) fn meta_writes(
    batch: &mut WriteBatch,
    db: &DB,
    applied: Option<&LogId>,
    membership: &StoredMembership,
) {
    let meta = cf(db, CF_SM_META);
    match applied {
        Some(l) => batch.put_cf(meta, KEY_APPLIED, log_id_to_pb(l).encode_to_vec()),
        None => batch.delete_cf(meta, KEY_APPLIED),
    }
    batch.put_cf(
        meta,
        KEY_MEMBERSHIP,
        stored_membership_to_pb(membership).encode_to_vec(),
    );
}

impl StateMachineStore {
    pub fn open(db: Arc<DB>, dir: PathBuf) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        snapshot::clean_temp(&dir)?;
        if let Some(name) = install::interrupted(&db)? {
            let path = dir.join(name);
            tracing::warn!(path = %path.display(), "a snapshot install was interrupted; installing it again");
            let redo = || -> io::Result<()> {
                let meta = snapshot::Reader::open(&path)?.meta;
                let prepared = install::prepare(&path, &meta)?;
                install::install(&db, &path, prepared, |b| {
                    meta_writes(b, &db, meta.last_log_id.as_ref(), &meta.last_membership)
                })
            };
            redo().with_context(|| {
                format!(
                    "redoing the interrupted install of snapshot file {}",
                    path.display()
                )
            })?;
        }
        // Snapshot files are written for peers and kept while they may be
        // sent again; after a restart the log behind them may be gone.
        for old in snapshot::list(&dir)? {
            std::fs::remove_file(old)?;
        }
        let (last_applied, membership) =
            read_meta(|k| db.get_cf(cf(&db, CF_SM_META), k).map_err(io_err))?;
        let tally = load_tally(&db)?;
        let state = SmState {
            tally,
            last_applied,
            membership,
            loaded_at: last_applied.map_or(0, |l| l.index),
        };
        let removed = RwLock::new(state.tally.removed_nodes().clone());
        let applied = tokio::sync::watch::Sender::new(state.last_applied.map_or(0, |l| l.index));
        Ok(StateMachineStore {
            inner: Arc::new(Inner {
                db,
                dir,
                state: RwLock::new(state),
                installing: AtomicBool::new(false),
                removed,
                applied,
                snapshot_lock: tokio::sync::Mutex::new(()),
                applies: Histogram::new(super::DISK_BUCKETS),
            }),
        })
    }

    /// The durations of applied runs of entries, in seconds.
    pub fn apply_seconds(&self) -> Histogram {
        self.inner.applies.clone()
    }

    /// The database's size on disk and in memory.
    pub fn usage(&self) -> super::Usage {
        super::usage(&self.inner.db)
    }

    /// The state's table files on disk (not the log's).
    pub fn state_bytes(&self) -> u64 {
        STATE_FAMILIES
            .iter()
            .map(|f| super::int_property(&self.inner.db, f, "rocksdb.total-sst-files-size"))
            .sum()
    }

    /// The index applied here so far.
    pub fn applied_index(&self) -> u64 {
        *self.inner.applied.borrow()
    }

    /// The applied index, as it moves.
    pub fn subscribe_applied(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.applied.subscribe()
    }

    /// Returns once everything up to `index` is applied here.
    pub async fn wait_applied(&self, index: u64) {
        let mut rx = self.inner.applied.subscribe();
        // The sender lives as long as `self`: this cannot fail.
        let _ = rx.wait_for(|a| *a >= index).await;
    }

    /// Whether `node_id` was removed from the cluster. Kept apart from the
    /// state so that Raft calls are admitted during a snapshot install.
    pub fn is_removed(&self, node_id: u64) -> bool {
        self.inner
            .removed
            .read()
            .expect("removed lock")
            .contains(&node_id)
    }

    /// Read access to the applied state for callers on the async runtime:
    /// refused while a snapshot is being installed (seconds) instead of
    /// blocking a runtime thread for that long.
    pub fn try_view(&self) -> Result<SmView<'_>, Installing> {
        if self.inner.installing.load(Ordering::Acquire) {
            return Err(Installing);
        }
        Ok(self.view())
    }

    /// Read access to the applied state. Records the tally reads while the
    /// guard is held match its aggregates: apply writes under the write side.
    pub fn view(&self) -> SmView<'_> {
        self.inner.state.read().expect("state lock poisoned")
    }

    pub(crate) fn inner_db(&self) -> Arc<DB> {
        self.inner.db.clone()
    }

    pub fn snapshot_dir(&self) -> &std::path::Path {
        &self.inner.dir
    }

    /// Audit entries with a log index above `after`, in order, read from
    /// disk (they are never held in memory): at most `limit` entries and,
    /// past the first, about `max_bytes` of them.
    pub fn audit_entries(
        &self,
        after: u64,
        limit: usize,
        max_bytes: usize,
    ) -> io::Result<Vec<pb::AuditEntry>> {
        let db = &self.inner.db;
        let start = keys::audit(after.saturating_add(1));
        let mut out = Vec::new();
        let mut bytes = 0usize;
        for kv in db.iterator_cf(
            cf(db, CF_SM_DATA),
            IteratorMode::From(&start, Direction::Forward),
        ) {
            let (k, v) = kv.map_err(io_err)?;
            if k.first() != Some(&keys::AUDIT)
                || out.len() >= limit
                || (bytes > 0 && bytes + v.len() > max_bytes)
            {
                break;
            }
            bytes += v.len();
            out.push(pb::AuditEntry::decode(v.as_ref()).map_err(io_err)?);
        }
        Ok(out)
    }

    /// The chain head after the last command at or below `index`, or the
    /// latest one.
    pub fn chain_head(&self, index: Option<u64>) -> io::Result<pb::GetChainHeadResponse> {
        let st = self.try_view()?;
        let applied_index = st.last_applied.map_or(0, |l| l.index);
        let latest = st.tally.audit_chain().to_pb();
        drop(st);
        let Some(at) = index.filter(|i| *i < latest.index) else {
            return Ok(pb::GetChainHeadResponse {
                applied_index,
                ..latest
            });
        };
        let db = &self.inner.db;
        let key = keys::audit(at);
        let mut it = db.iterator_cf(
            cf(db, CF_SM_DATA),
            IteratorMode::From(&key, Direction::Reverse),
        );
        let found = match it.next() {
            Some(kv) => {
                let (k, v) = kv.map_err(io_err)?;
                (k.first() == Some(&keys::AUDIT))
                    .then(|| pb::AuditEntry::decode(v.as_ref()).map_err(io_err))
                    .transpose()?
            }
            None => None,
        };
        Ok(match found {
            Some(e) => pb::GetChainHeadResponse {
                applied_index,
                index: e.index,
                head: e.head,
                commands: e.sequence,
            },
            None => pb::GetChainHeadResponse {
                applied_index,
                index: 0,
                head: crate::tally::chain::hex(&[0u8; 32]),
                commands: 0,
            },
        })
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachineStore {
    type SnapshotData = SnapshotData;

    /// Copies nothing (`on_demand`): notes the applied index, and makes the
    /// state's writes up to it durable, so the log behind it may go.
    async fn build_snapshot(&mut self) -> Result<SmSnapshot, io::Error> {
        let _guard = self.inner.snapshot_lock.lock().await;
        let started = std::time::Instant::now();
        let pending = Pending::start(self.inner.db.clone(), self.inner.dir.clone()).await?;
        let db = self.inner.db.clone();
        tokio::task::spawn_blocking(move || db.flush_wal(true))
            .await
            .map_err(io_err)?
            .map_err(io_err)?;
        tracing::info!(
            index = ?pending.meta.last_log_id.as_ref().map(|l| l.index),
            ms = started.elapsed().as_millis() as u64,
            "snapshot built (nothing copied)"
        );
        Ok(Snapshot {
            meta: pending.meta.clone(),
            snapshot: SnapshotData::Pending(pending),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotData = SnapshotData;
    type SnapshotBuilder = Self;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), io::Error> {
        let st = self.view();
        Ok((st.last_applied, st.membership.clone()))
    }

    /// Applies a run of committed entries as one RocksDB batch; responders
    /// are answered only after the batch is written.
    async fn apply<S>(&mut self, mut entries: S) -> Result<(), io::Error>
    where
        S: Stream<Item = Result<EntryResponder<TypeConfig>, io::Error>> + Unpin + OptionalSend,
    {
        let mut items = Vec::new();
        while let Some(item) = entries.next().await {
            items.push(item?);
        }
        if items.is_empty() {
            return Ok(());
        }
        let started = std::time::Instant::now();
        let db = &self.inner.db;
        let mut batch = WriteBatch::default();
        let mut replies = Vec::with_capacity(items.len());
        let mut membership_changed = false;
        {
            let mut st = self.inner.state.write().expect("state lock poisoned");
            for (entry, responder) in items {
                let index = entry.log_id.index;
                let resp = match entry.payload {
                    EntryPayload::Blank => none_response(),
                    EntryPayload::Normal(cmd) => {
                        let (resp, writes) = st.tally.apply_encoded(&cmd, cmd.encoded(), index);
                        add_writes(&mut batch, db, writes);
                        resp
                    }
                    EntryPayload::Membership(m) => {
                        // Node ids this change drops are never admitted again.
                        let ids = |m: &crate::raft::types::Membership| -> std::collections::BTreeSet<u64> {
                            m.nodes().map(|(id, _)| *id).collect()
                        };
                        let before = ids(st.membership.membership());
                        let mut writes = st.tally.note_membership(&before, &ids(&m));
                        if before.is_empty() {
                            let members: Vec<(u64, String)> =
                                m.nodes().map(|(id, n)| (*id, n.addr.clone())).collect();
                            writes.extend(st.tally.note_first_membership(index, &members));
                        }
                        add_writes(&mut batch, db, writes.into_iter().filter(|w| w.1.is_some()));
                        st.membership = StoredMembership::new(Some(entry.log_id), m);
                        membership_changed = true;
                        none_response()
                    }
                };
                st.last_applied = Some(entry.log_id);
                replies.push((responder, resp));
            }
            meta_writes(&mut batch, db, st.last_applied.as_ref(), &st.membership);
            db.write(batch).map_err(io_err)?;
            st.tally.settle();
            self.inner.publish(&st, membership_changed);
        }
        self.inner.applies.observe(started.elapsed().as_secs_f64());
        for (responder, resp) in replies {
            if let Some(r) = responder {
                r.send(resp);
            }
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    /// Replaces the whole state with the snapshot's (`install`: redone
    /// after a crash), then removes the file.
    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: SnapshotData,
    ) -> Result<(), io::Error> {
        let received = match &snapshot {
            SnapshotData::Received(r) => Some(r.clone()),
            _ => None,
        };
        let ours = received.is_some();
        let snapshot = snapshot.file().await?;
        let _guard = self.inner.snapshot_lock.lock().await;
        let inner = self.inner.clone();
        let meta = meta.clone();
        let index = tokio::task::spawn_blocking(move || -> io::Result<Option<u64>> {
            let db = &inner.db;
            // A received file is moved into place (copying 2 GB took
            // seconds); any other is copied, so the caller's copy stays
            // intact. It is checked whole before it is published: a
            // damaged file must never replace a good snapshot.
            let src = if ours {
                snapshot.clone()
            } else {
                let tmp = snapshot::temp_name(&inner.dir, "copy");
                std::fs::copy(&snapshot, &tmp)?;
                std::fs::File::open(&tmp)?.sync_all()?;
                tmp
            };
            let started = std::time::Instant::now();
            // Built as it arrived, from the same bytes, or read now.
            let prepared = match received.and_then(|r| r.take_table(&meta)) {
                Some(p) => p,
                None => install::prepare(&src, &meta)?,
            };
            let checked = started.elapsed();
            let path = snapshot::publish(&inner.dir, &src, &meta)?;
            // Readers are refused (`try_view`): the records change under
            // the old aggregates until the new state is loaded. Those that
            // came before the flag finish first.
            inner.installing.store(true, Ordering::Release);
            let mut state = inner.state.write().expect("state lock poisoned");
            let installed = install::install(db, &path, prepared, |b| {
                meta_writes(b, db, meta.last_log_id.as_ref(), &meta.last_membership)
            })
            .and_then(|()| {
                let ingested = started.elapsed();
                let t = load_tally(db);
                tracing::info!(
                    check_and_table_ms = checked.as_millis() as u64,
                    ingest_ms = (ingested - checked).as_millis() as u64,
                    load_ms = (started.elapsed() - ingested).as_millis() as u64,
                    "snapshot records in place"
                );
                t
            });
            let tally = match installed {
                Ok(t) => t,
                // The old records are gone and the old state in memory no
                // longer matches them: nothing may read it. The marker makes
                // the next start install the same file again.
                Err(e) => install::abandon(&path, &e),
            };
            *state = SmState {
                tally,
                last_applied: meta.last_log_id,
                membership: meta.last_membership.clone(),
                loaded_at: meta.last_log_id.map_or(0, |l| l.index),
            };
            inner.publish(&state, true);
            inner.installing.store(false, Ordering::Release);
            // In place, the state needs the file no more (`on_demand`
            // writes one if a peer asks this node).
            let _ = std::fs::remove_file(&path);
            Ok(meta.last_log_id.map(|l| l.index))
        })
        .await
        .map_err(io_err)??;
        tracing::info!(?index, "snapshot installed");
        Ok(())
    }

    /// What a peer that needs a snapshot gets: the file written for an
    /// earlier one while the log after it is all here (so a broken
    /// transfer resumes where it broke), else the state as it is now,
    /// written when it is sent.
    async fn get_current_snapshot(&mut self) -> Result<Option<SmSnapshot>, io::Error> {
        let dir = self.inner.dir.clone();
        let purged = super::log_store::purged_index(&self.inner.db)?;
        let kept = tokio::task::spawn_blocking(move || on_demand::kept(&dir, purged))
            .await
            .map_err(io_err)??;
        if let Some((path, meta)) = kept {
            return Ok(Some(Snapshot {
                meta,
                snapshot: SnapshotData::File(path),
            }));
        }
        let p = Pending::start(self.inner.db.clone(), self.inner.dir.clone()).await?;
        // Nothing applied yet: no snapshot.
        Ok(p.meta.last_log_id.is_some().then(|| Snapshot {
            meta: p.meta.clone(),
            snapshot: SnapshotData::Pending(p),
        }))
    }
}

/// The tally over its records, result keys of format 2 moved first; upgrade
/// writes of an older layout are persisted (synced) before anything reads
/// the state.
pub(super) fn load_tally(db: &Arc<DB>) -> io::Result<TallyState> {
    let moved = move_legacy_results(db)?;
    if moved > 0 {
        tracing::info!(
            results = moved,
            "result records moved to sm_results, keyed contest first"
        );
    }
    let records = Arc::new(DbRecords { db: db.clone() });
    let mut tally = TallyState::load(records).map_err(io_err)?;
    let upgrade = tally.unsettled();
    if !upgrade.is_empty() {
        // A new database gets only the layout record; say so only for an
        // upgrade of real data.
        if upgrade.len() > 1 {
            tracing::info!(
                records = upgrade.len(),
                "state records upgraded: aggregates persisted, requests indexed"
            );
        }
        let mut batch = WriteBatch::default();
        add_writes(&mut batch, db, upgrade);
        let mut opts = WriteOptions::default();
        opts.set_sync(true);
        db.write_opt(batch, &opts).map_err(io_err)?;
        tally.settle();
    }
    Ok(tally)
}

fn none_response() -> pb::CommandResponse {
    pb::CommandResponse {
        kind: Some(pb::command_response::Kind::None(pb::Empty {})),
    }
}
