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

use rocksdb::{DB, ReadOptions};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::{oneshot, watch};

use super::families::STATE_FAMILIES;
use super::install::Received;
use super::snapshot;
use super::state_machine::read_meta;
use super::{CF_SM_META, cf, io_err};
use crate::raft::types::SnapshotMeta;

/// Openraft's snapshot data.
#[derive(Debug, Clone)]
pub enum SnapshotData {
    /// A complete, checked file on local disk, written here for a peer:
    /// an installer copies it, as others may still read it.
    File(PathBuf),
    /// A file just received from a leader into this node's snapshot
    /// folder: its installer's own, moved into place, not copied.
    Received(Arc<Received>),
    /// The state as of one applied index, not written yet.
    Pending(Arc<Pending>),
}

impl SnapshotData {
    /// The snapshot as a file, written now if it was not yet.
    pub async fn file(&self) -> io::Result<PathBuf> {
        match self {
            SnapshotData::File(p) => Ok(p.clone()),
            SnapshotData::Received(r) => Ok(r.path.clone()),
            SnapshotData::Pending(p) => p.file().await,
        }
    }
}

/// How far the writing of a pending snapshot's file has come.
#[derive(Debug, Clone, Default)]
struct Progress {
    /// The file being written (under its temporary name), once begun.
    writing: Option<PathBuf>,
    /// Set when it is done: the file under its final name, or the error.
    done: Option<Result<PathBuf, String>>,
}

/// Waits for the next change in a writing's progress.
async fn changed(progress: &mut watch::Receiver<Progress>) -> io::Result<()> {
    progress.changed().await.map_err(|_| writer_ended())
}

fn writer_ended() -> io::Error {
    io::Error::other("the snapshot view's thread ended")
}

/// Something run after each chunk of the file is written (tests hold the
/// writer back with it, to read a file surely still growing).
type Hold = Box<dyn Fn() + Send>;

/// One RocksDB view, held by its own thread until the file is asked for
/// (then written) or every holder is gone (then dropped).
#[derive(Debug)]
pub struct Pending {
    pub meta: SnapshotMeta,
    /// Sending on it (or dropping it) tells the thread to write (or quit).
    go: Mutex<Option<std::sync::mpsc::SyncSender<()>>>,
    progress: watch::Receiver<Progress>,
}

/// Publishes a writing's progress to the readers of the growing file.
struct Follow<'a> {
    progress: &'a watch::Sender<Progress>,
    hold: Option<Hold>,
}

impl snapshot::Watch for Follow<'_> {
    fn began(&self, tmp: &Path) {
        self.progress
            .send_modify(|p| p.writing = Some(tmp.to_path_buf()));
    }

    fn wrote(&self) {
        self.progress.send_modify(|_| {});
        if let Some(hold) = &self.hold {
            hold();
        }
    }
}

/// Writes the view's records to a file, saying where and when it is done.
fn write_view(
    db: &DB,
    view: &rocksdb::SnapshotWithThreadMode<'_, DB>,
    dir: &Path,
    meta: &SnapshotMeta,
    follow: &Follow<'_>,
) -> io::Result<PathBuf> {
    snapshot::write(dir, meta, follow, |enc| {
        copy_view(db, view, Some(4 << 20), enc)
    })
}

/// Every record of the tally in `view`, in key order (its families in
/// turn), into `enc`. A raw iterator lends each key and value: the plain
/// one copies both into boxes of their own first.
pub(super) fn copy_view(
    db: &DB,
    view: &rocksdb::SnapshotWithThreadMode<'_, DB>,
    readahead: Option<usize>,
    enc: &mut snapshot::Encoder<'_>,
) -> io::Result<()> {
    for family in STATE_FAMILIES {
        let mut opts = ReadOptions::default();
        // A walk of the whole state would push out what point reads use.
        opts.fill_cache(false);
        if let Some(n) = readahead {
            opts.set_readahead_size(n);
        }
        let mut it = view.raw_iterator_cf_opt(cf(db, family), opts);
        it.seek_to_first();
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            enc.record(k, v)?;
            it.next();
        }
        it.status().map_err(io_err)?;
    }
    Ok(())
}

impl Pending {
    /// Takes the view now (its metadata names no log id when nothing was
    /// ever applied). Returns once the view is taken: run it where nothing
    /// is being applied, or the view may be newer than the caller thinks
    /// (it is consistent either way, being one view).
    pub async fn start(db: Arc<DB>, dir: PathBuf) -> io::Result<Arc<Pending>> {
        Pending::spawn(db, dir, None).await
    }

    /// Like `start`, with `hold` run after each chunk the writer writes.
    #[cfg(test)]
    pub(super) async fn start_held(
        db: Arc<DB>,
        dir: PathBuf,
        hold: Hold,
    ) -> io::Result<Arc<Pending>> {
        Pending::spawn(db, dir, Some(hold)).await
    }

    async fn spawn(db: Arc<DB>, dir: PathBuf, hold: Option<Hold>) -> io::Result<Arc<Pending>> {
        let (meta_tx, meta_rx) = oneshot::channel();
        let (go_tx, go_rx) = std::sync::mpsc::sync_channel::<()>(1);
        let (progress_tx, progress) = watch::channel(Progress::default());
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
                let follow = Follow {
                    progress: &progress_tx,
                    hold,
                };
                let r = write_view(&db, &view, &dir, &meta, &follow);
                match &r {
                    Ok(path) => tracing::info!(
                        index = ?meta.last_log_id.as_ref().map(|l| l.index),
                        path = %path.display(),
                        ms = started.elapsed().as_millis() as u64,
                        "snapshot written for a peer"
                    ),
                    Err(e) => tracing::warn!(error = %e, "writing a snapshot failed"),
                }
                progress_tx.send_modify(|p| p.done = Some(r.map_err(|e| e.to_string())));
            })?;
        let meta = meta_rx.await.map_err(|_| writer_ended())??;
        Ok(Arc::new(Pending {
            meta,
            go: Mutex::new(Some(go_tx)),
            progress,
        }))
    }

    fn begin(&self) {
        if let Some(go) = self.go.lock().expect("go lock").take() {
            let _ = go.send(());
        }
    }

    /// The file, written from the view on the first call (later calls wait
    /// for that one).
    pub async fn file(&self) -> io::Result<PathBuf> {
        self.begin();
        let mut progress = self.progress.clone();
        let p = progress
            .wait_for(|p| p.done.is_some())
            .await
            .map_err(|_| writer_ended())?;
        match p.done.as_ref().expect("waited for it") {
            Ok(path) => Ok(path.clone()),
            Err(e) => Err(io::Error::other(e.clone())),
        }
    }

    /// The file opened for reading while it is still being written, so a
    /// sender need not wait for the whole of it.
    async fn growing(&self) -> io::Result<Source> {
        self.begin();
        let mut progress = self.progress.clone();
        loop {
            let now = progress.borrow_and_update().clone();
            let (path, whole) = match (now.done, now.writing) {
                (Some(Err(e)), _) => return Err(io::Error::other(e)),
                (Some(Ok(path)), _) => (path, true),
                (None, Some(tmp)) => (tmp, false),
                (None, None) => {
                    changed(&mut progress).await?;
                    continue;
                }
            };
            match tokio::fs::File::open(&path).await {
                Ok(file) => {
                    let progress = (!whole).then(|| self.progress.clone());
                    return Ok(Source { file, progress });
                }
                // Renamed into place meanwhile: `done` follows at once.
                Err(e) if e.kind() == io::ErrorKind::NotFound => changed(&mut progress).await?,
                Err(e) => return Err(e),
            }
        }
    }
}

/// A snapshot's bytes for a sender: a whole file, or one still being
/// written, whose end of file is only the end once the writing is done.
pub struct Source {
    file: tokio::fs::File,
    progress: Option<watch::Receiver<Progress>>,
}

impl Source {
    /// Opens the snapshot's file, or the one being written for it.
    pub async fn open(data: &SnapshotData) -> io::Result<Source> {
        match data {
            SnapshotData::File(path) => Source::whole(path).await,
            SnapshotData::Received(r) => Source::whole(&r.path).await,
            SnapshotData::Pending(p) => p.growing().await,
        }
    }

    async fn whole(path: &Path) -> io::Result<Source> {
        Ok(Source {
            file: tokio::fs::File::open(path).await?,
            progress: None,
        })
    }

    /// The file's size, once it is whole.
    pub async fn size(&self) -> io::Result<Option<u64>> {
        match self.progress {
            Some(_) => Ok(None),
            None => Ok(Some(self.file.metadata().await?.len())),
        }
    }

    pub async fn seek(&mut self, offset: u64) -> io::Result<()> {
        self.file
            .seek(io::SeekFrom::Start(offset))
            .await
            .map(|_| ())
    }

    /// Like `read`: 0 only at the end of the whole file.
    pub async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let n = self.file.read(buf).await?;
            let Some(progress) = self.progress.as_mut().filter(|_| n == 0) else {
                return Ok(n);
            };
            let done = progress.borrow_and_update().done.clone();
            match done {
                // Read once more: what was written before it was done.
                Some(Ok(_)) => self.progress = None,
                Some(Err(e)) => return Err(io::Error::other(e)),
                None => changed(progress).await?,
            }
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
