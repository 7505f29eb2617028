//! Snapshots written only when a peer needs one. Compacting the log needs
//! no copy of the state: the state is durable in RocksDB up to the applied
//! index, so "building" a snapshot is noting that index (`Pending::start`
//! on the state machine's worker, between applies). A thread takes one
//! RocksDB view at that moment and holds it; the file is written from that
//! view only when a sender asks for it (`Pending::file`), and the view is
//! let go when nobody holds the snapshot any more. A log purged behind the
//! noted index is safe because the write-ahead log, which holds the state's
//! writes up to it, is fsynced before the snapshot is reported.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rocksdb::{DB, IteratorMode, ReadOptions};
use tokio::sync::{oneshot, watch};

use super::snapshot;
use super::state_machine::read_meta;
use super::{CF_SM_DATA, CF_SM_META, cf, io_err};
use crate::raft::types::SnapshotMeta;

/// Openraft's snapshot data.
#[derive(Debug, Clone)]
pub enum SnapshotData {
    /// A complete, checked file on local disk: one received from a
    /// leader, or one written here for a peer.
    File(PathBuf),
    /// The state as of one applied index, not written yet.
    Pending(Arc<Pending>),
}

impl SnapshotData {
    /// The snapshot as a file, written now if it was not yet.
    pub async fn file(&self) -> io::Result<PathBuf> {
        match self {
            SnapshotData::File(p) => Ok(p.clone()),
            SnapshotData::Pending(p) => p.file().await,
        }
    }
}

/// One RocksDB view, held by its own thread until the file is asked for
/// (then written) or every holder is gone (then dropped).
#[derive(Debug)]
pub struct Pending {
    pub meta: SnapshotMeta,
    /// Sending on it (or dropping it) tells the thread to write (or quit).
    go: Mutex<Option<std::sync::mpsc::SyncSender<()>>>,
    written: watch::Receiver<Option<Result<PathBuf, String>>>,
}

impl Pending {
    /// Takes the view now (its metadata names no log id when nothing was
    /// ever applied). Returns once the view is taken: run it where nothing is being applied, or
    /// the view may be newer than the caller thinks (it is consistent
    /// either way, being one view).
    pub async fn start(db: Arc<DB>, dir: PathBuf) -> io::Result<Arc<Pending>> {
        let (meta_tx, meta_rx) = oneshot::channel();
        let (go_tx, go_rx) = std::sync::mpsc::sync_channel::<()>(1);
        let (written_tx, written) = watch::channel(None);
        std::thread::Builder::new()
            .name("snapshot-view".into())
            .spawn(move || {
                let view = db.snapshot();
                let meta = read_meta(|k| view.get_cf(cf(&db, CF_SM_META), k).map_err(io_err)).map(
                    |(last_log_id, last_membership)| SnapshotMeta {
                        last_log_id,
                        last_membership,
                    },
                );
                let meta = match meta {
                    Ok(m) => m,
                    Err(e) => {
                        let _ = meta_tx.send(Err(e));
                        return;
                    }
                };
                if meta_tx.send(Ok(meta.clone())).is_err() || go_rx.recv().is_err() {
                    return;
                }
                let started = std::time::Instant::now();
                let mut opts = ReadOptions::default();
                opts.fill_cache(false);
                opts.set_readahead_size(4 << 20);
                let records = view
                    .iterator_cf_opt(cf(&db, CF_SM_DATA), opts, IteratorMode::Start)
                    .map(|kv| kv.map_err(io_err));
                let r = snapshot::write(&dir, &meta, records);
                match &r {
                    Ok(path) => tracing::info!(
                        index = ?meta.last_log_id.as_ref().map(|l| l.index),
                        path = %path.display(),
                        ms = started.elapsed().as_millis() as u64,
                        "snapshot written for a peer"
                    ),
                    Err(e) => tracing::warn!(error = %e, "writing a snapshot failed"),
                }
                let _ = written_tx.send(Some(r.map_err(|e| e.to_string())));
            })?;
        let meta = meta_rx
            .await
            .map_err(|_| io::Error::other("the snapshot view's thread ended"))??;
        Ok(Arc::new(Pending {
            meta,
            go: Mutex::new(Some(go_tx)),
            written,
        }))
    }

    /// The file, written from the view on the first call (later calls wait
    /// for that one).
    pub async fn file(&self) -> io::Result<PathBuf> {
        if let Some(go) = self.go.lock().expect("go lock").take() {
            let _ = go.send(());
        }
        let mut written = self.written.clone();
        let done = written
            .wait_for(Option::is_some)
            .await
            .map_err(|_| io::Error::other("the snapshot view's thread ended"))?;
        match done.as_ref().expect("waited for Some") {
            Ok(p) => Ok(p.clone()),
            Err(e) => Err(io::Error::other(e.clone())),
        }
    }
}

/// The newest snapshot file in `dir` if the log after it is all here (the
/// log is purged up to `purged`); files the log has passed are removed.
pub(super) fn kept(dir: &Path, purged: Option<u64>) -> io::Result<Option<(PathBuf, SnapshotMeta)>> {
    let mut files = snapshot::list(dir)?;
    files.sort();
    let mut found = None;
    while let Some(path) = files.pop() {
        if found.is_some() {
            // Older than the one found: `snapshot::publish` keeps a few.
            break;
        }
        let usable = snapshot::Reader::open(&path).ok().filter(|r| {
            let index = r.meta.last_log_id.as_ref().map(|l| l.index);
            purged.is_none_or(|p| index >= Some(p))
        });
        match usable {
            Some(r) => found = Some((path, r.meta)),
            None => std::fs::remove_file(&path)?,
        }
    }
    Ok(found)
}
