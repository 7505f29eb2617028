//! Installing a snapshot file into `sm_data` without holding it in memory.
//!
//! The records stream into RocksDB in batches of a few MiB, so the install
//! is not one atomic write. It is made redoable instead: the file is first
//! published under its final name, then a synced marker in `sm_meta` names
//! it, then the old records are dropped and the new ones written, and the
//! last, synced batch sets `last_applied` and clears the marker. A node that
//! crashes in between finds the marker at start and installs the same file
//! again before anything reads the state.

use std::io;
use std::path::{Path, PathBuf};

use rocksdb::{DB, WriteBatch, WriteOptions};

use super::snapshot::Reader;
use super::{CF_SM_DATA, CF_SM_META, cf, io_err};
use crate::raft::SnapshotMeta;

/// The marker: the path of the snapshot file being installed.
pub(crate) const KEY_INSTALLING: &[u8] = b"installing";

/// Bytes per batch while streaming records in.
const BATCH_BYTES: usize = 4 << 20;

/// Reads the whole file against its trailer and `meta`: before it is
/// published, and before anything is dropped for it.
pub fn check(path: &Path, meta: &SnapshotMeta) -> io::Result<()> {
    let reader = Reader::open(path)?;
    if reader.meta != *meta {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "snapshot file does not match its metadata",
        ));
    }
    reader.verify()?;
    Ok(())
}

/// Installs the published, checked snapshot file at `path`. `finish` adds
/// the meta writes (last applied, membership) to the final batch.
pub fn install(
    db: &DB,
    path: &Path,
    meta: &SnapshotMeta,
    finish: impl FnOnce(&mut WriteBatch),
) -> io::Result<()> {
    let mut reader = Reader::open(path)?;
    debug_assert!(reader.meta == *meta);
    let data = cf(db, CF_SM_DATA);
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
    start.delete_range_cf(data, [0u8].as_slice(), [0xffu8; 2].as_slice());
    db.write_opt(start, &synced).map_err(io_err)?;
    let mut batch = WriteBatch::default();
    while let Some((k, v)) = reader.next_record()? {
        batch.put_cf(data, k, v);
        if batch.size_in_bytes() >= BATCH_BYTES {
            db.write(std::mem::take(&mut batch)).map_err(io_err)?;
        }
    }
    finish(&mut batch);
    batch.delete_cf(cf(db, CF_SM_META), KEY_INSTALLING);
    db.write_opt(batch, &synced).map_err(io_err)?;
    Ok(())
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
