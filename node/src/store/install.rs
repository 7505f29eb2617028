//! Installing a snapshot file into the tally's column families without
//! holding it in memory.
//!
//! The records stream into one RocksDB table file per family (`prepare`),
//! checked against the file's trailer and hash on the way, so one pass over
//! the file both checks it and builds the tables; the tables are then
//! ingested whole (`install`), so the install is not one atomic write. It
//! is made redoable instead: the file is first published under its final
//! name, then a synced marker in `sm_meta` names it, then the old records
//! are dropped and the tables are ingested, and the last, synced batch sets
//! `last_applied` and clears the marker. A node that crashes in between
//! finds the marker at start and installs the same file again before
//! anything reads the state.
//!
//! A file received in one piece has its tables built as it arrives
//! (`Streamed`), from the same bytes, checked the same way, so the install
//! that follows need not read the file again.

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rocksdb::{
    BottommostLevelCompaction, CompactOptions, DB, IngestExternalFileOptions, SstFileWriter,
    WriteBatch, WriteOptions,
};

use super::families::{STATE_FAMILIES, family_of};
use super::snapshot::{Reader, temp_name};
use super::{CF_SM_DATA, CF_SM_META, cf, cf_options, invalid, io_err};
use crate::raft::types::SnapshotMeta;

/// The marker: the path of the snapshot file being installed.
pub(crate) const KEY_INSTALLING: &[u8] = b"installing";

/// The tables built from a snapshot file whose every record checked out,
/// one per column family that has records; removed if never ingested.
#[derive(Debug, Default)]
pub struct Prepared {
    tables: Vec<(&'static str, PathBuf)>,
}

impl Drop for Prepared {
    fn drop(&mut self) {
        // Moved into the database if ingested; leftovers otherwise.
        for (_, t) in self.tables.drain(..).filter(|(_, t)| t.exists()) {
            let _ = std::fs::remove_file(t);
        }
    }
}

/// Reads the whole file at `path`, checking it against `meta`, its trailer
/// and its hash, and writes its records into table files beside it. Run
/// before the file is published and before anything is dropped for it: a
/// damaged file fails here and changes nothing.
pub fn prepare(path: &Path, meta: &SnapshotMeta) -> io::Result<Prepared> {
    let dir = path.parent().unwrap_or(Path::new("."));
    build(Reader::open(path)?, meta, dir)
}

/// The tables of a snapshot's records, in `dir`, once every record checked
/// out against `meta`, the trailer and the hash.
fn build<R: Read>(mut reader: Reader<R>, meta: &SnapshotMeta, dir: &Path) -> io::Result<Prepared> {
    if reader.meta != *meta {
        return Err(invalid("snapshot file does not match its metadata"));
    }
    // Removes the tables if writing them fails.
    let mut prepared = Prepared::default();
    write_tables(dir, &mut reader, &mut prepared)?;
    Ok(prepared)
}

/// Installs the published snapshot file at `path`, from the tables
/// `prepare` built from it. `finish` adds the meta writes (last applied,
/// membership) to the final batch.
pub fn install(
    db: &DB,
    path: &Path,
    prepared: Prepared,
    finish: impl FnOnce(&mut WriteBatch),
) -> io::Result<()> {
    let mut synced = WriteOptions::default();
    synced.set_sync(true);
    let mut start = WriteBatch::default();
    // The file's name only: the snapshot folder is joined at start, which
    // may run from another working directory.
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::other("a snapshot path has a file name"))?;
    start.put_cf(
        cf(db, CF_SM_META),
        KEY_INSTALLING,
        name.to_string_lossy().as_bytes(),
    );
    let (lo, hi) = ([0u8].as_slice(), [0xffu8; 2].as_slice());
    for family in STATE_FAMILIES {
        start.delete_range_cf(cf(db, family), lo, hi);
    }
    db.write_opt(start, &synced).map_err(io_err)?;
    crate::crash::point("snapshot-install-marked");
    // The old records are compacted away now, so each table goes into an
    // empty tree, at its bottom level, and stays there. Left as a tombstone
    // over them, it would land in level 0 and be rewritten by a compaction
    // at once, taking a core while the state loads (17% of the box's CPU
    // through a new node's catch-up of the 2019 state). A view a snapshot
    // holds keeps what it sees: compaction never drops that.
    let mut bottom = CompactOptions::default();
    bottom.set_bottommost_level_compaction(BottommostLevelCompaction::Force);
    for family in STATE_FAMILIES {
        db.flush_cf(cf(db, family)).map_err(io_err)?;
        db.compact_range_cf_opt(cf(db, family), Some(lo), Some(hi), &bottom);
    }
    // The range deletions are older than the tables (ingested after them),
    // so they drop only the old records.
    for (family, table) in &prepared.tables {
        let mut how = IngestExternalFileOptions::default();
        how.set_move_files(true);
        db.ingest_external_file_cf_opts(cf(db, family), &how, vec![table])
            .map_err(io_err)?;
    }
    drop(prepared);
    let mut batch = WriteBatch::default();
    finish(&mut batch);
    batch.delete_cf(cf(db, CF_SM_META), KEY_INSTALLING);
    db.write_opt(batch, &synced).map_err(io_err)?;
    Ok(())
}

/// Writes the records into table files, one per column family, for
/// RocksDB to take whole: no write-ahead log, no memtable, and each file is
/// durable in the manifest once ingested. The snapshot holds the state in
/// key order, which is what a table file needs, and its families hold runs
/// of it (`families`), so each table is begun when its first record comes.
fn write_tables<R: Read>(
    dir: &Path,
    reader: &mut Reader<R>,
    prepared: &mut Prepared,
) -> io::Result<()> {
    // Not compressed: built while the bytes arrive, on one thread, which
    // compressing made slower than the transfer (5.5 s against 2.9 s for
    // the 2019 state). It goes in at the bottom level (`install`), and
    // compactions compress it as they rewrite it.
    let mut opts = cf_options(CF_SM_DATA);
    opts.set_compression_type(rocksdb::DBCompressionType::None);
    let mut writer: Option<(&str, SstFileWriter)> = None;
    while let Some((k, v)) = reader.next_slices()? {
        let family = family_of(k);
        let (_, w) = match writer.take() {
            Some((f, w)) if f == family => writer.insert((f, w)),
            done => {
                // A table is begun only with a record to put in it, so it
                // is never empty (RocksDB refuses to finish an empty one).
                if let Some((_, mut w)) = done {
                    w.finish().map_err(io_err)?;
                }
                // A family seen before would mean records out of key order.
                if prepared.tables.iter().any(|(f, _)| *f == family) {
                    return Err(invalid("snapshot records out of key order"));
                }
                let table = temp_name(dir, "ingest");
                let w = SstFileWriter::create(&opts);
                w.open(&table).map_err(io_err)?;
                prepared.tables.push((family, table));
                writer.insert((family, w))
            }
        };
        w.put(k, v).map_err(io_err)?;
    }
    if let Some((_, mut w)) = writer {
        w.finish().map_err(io_err)?;
    }
    Ok(())
}

/// A table being built from a snapshot's bytes as they arrive, on a
/// thread of its own; `feed` waits while the thread is behind, so at most
/// a few chunks are held in memory.
pub struct Streamed {
    tx: Option<tokio::sync::mpsc::Sender<Vec<u8>>>,
    built: tokio::task::JoinHandle<io::Result<Prepared>>,
}

impl Streamed {
    /// Starts a table in `dir` for the snapshot `meta` names.
    pub fn start(dir: &Path, meta: SnapshotMeta) -> Streamed {
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let dir = dir.to_path_buf();
        let built = tokio::task::spawn_blocking(move || {
            let chunks = Chunks {
                rx,
                chunk: Vec::new(),
                at: 0,
            };
            build(Reader::new(chunks)?, &meta, &dir)
        });
        Streamed {
            tx: Some(tx),
            built,
        }
    }

    /// The next bytes of the file. A builder that already failed takes no
    /// more (the install then reads the file itself).
    pub async fn feed(&mut self, bytes: Vec<u8>) {
        if let Some(tx) = &self.tx
            && tx.send(bytes).await.is_err()
        {
            self.tx = None;
        }
    }

    /// The table, once the file's end arrived and its trailer and hash
    /// checked out; the error says why not.
    pub async fn finish(mut self) -> io::Result<Prepared> {
        self.tx = None;
        (&mut self.built).await.map_err(io::Error::other)?
    }
}

/// The bytes fed to a `Streamed`, as a reader; its end is the sender's.
struct Chunks {
    rx: tokio::sync::mpsc::Receiver<Vec<u8>>,
    chunk: Vec<u8>,
    at: usize,
}

impl Read for Chunks {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.chunk.len() {
            match self.rx.blocking_recv() {
                Some(c) => (self.chunk, self.at) = (c, 0),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// A snapshot file received from a leader into this node's folder (its
/// installer's own, moved into place), with the table built as it
/// arrived if it arrived in one piece.
#[derive(Debug)]
pub struct Received {
    pub path: PathBuf,
    table: Mutex<Option<(SnapshotMeta, Prepared)>>,
}

impl Received {
    pub fn new(path: PathBuf, table: Option<(SnapshotMeta, Prepared)>) -> Received {
        Received {
            path,
            table: Mutex::new(table),
        }
    }

    /// The table built for this snapshot (`meta`), once.
    pub fn take_table(&self, meta: &SnapshotMeta) -> Option<Prepared> {
        let mut t = self.table.lock().expect("table lock");
        match t.take() {
            Some((m, p)) if m == *meta => Some(p),
            _ => None,
        }
    }
}

/// Ends the process after an install failed part-way: the state in memory
/// no longer matches the records, and the marker makes the next start
/// install the same file again. `_exit` skips destructors, as kill -9 would;
/// everything written so far is in the WAL.
pub fn abandon(path: &Path, e: &io::Error) -> ! {
    tracing::error!(path = %path.display(), error = %e, "snapshot install failed part-way; stopping so the next start installs it again");
    // SAFETY: `_exit` ends the process at once; always sound to call.
    unsafe { libc::_exit(70) }
}

/// The file name of the snapshot an interrupted install was writing.
pub fn interrupted(db: &DB) -> io::Result<Option<PathBuf>> {
    let v = db
        .get_cf(cf(db, CF_SM_META), KEY_INSTALLING)
        .map_err(io_err)?;
    Ok(v.map(|b| PathBuf::from(String::from_utf8_lossy(&b).into_owned())))
}
