//! Installing a snapshot file into `sm_data` without holding it in memory.
//!
//! The records stream into one RocksDB table file (`prepare`), checked
//! against the file's trailer and hash on the way, so one pass over the
//! file both checks it and builds the table; the table is then ingested
//! whole (`install`), so the install is not one atomic write. It is made redoable instead: the
//! file is first published under its final name, then a synced marker in
//! `sm_meta` names it, then the old records are dropped and the table is
//! ingested, and the last, synced batch sets `last_applied` and clears the
//! marker. A node that crashes in between finds the marker at start and
//! installs the same file again before anything reads the state.

use std::io;
use std::path::{Path, PathBuf};

use rocksdb::{DB, IngestExternalFileOptions, SstFileWriter, WriteBatch, WriteOptions};

use super::snapshot::{Reader, temp_name};
use super::{CF_SM_DATA, CF_SM_META, cf, cf_options, invalid, io_err};
use crate::raft::types::SnapshotMeta;

/// The marker: the path of the snapshot file being installed.
pub(crate) const KEY_INSTALLING: &[u8] = b"installing";

/// The table built from a snapshot file whose every record checked out;
/// removed if it is never ingested.
pub struct Prepared {
    /// `None` when the snapshot holds no records.
    table: Option<PathBuf>,
}

impl Drop for Prepared {
    fn drop(&mut self) {
        // Moved into the database if ingested; a leftover otherwise.
        if let Some(t) = self.table.take().filter(|t| t.exists()) {
            let _ = std::fs::remove_file(t);
        }
    }
}

/// Reads the whole file at `path`, checking it against `meta`, its trailer
/// and its hash, and writes its records into a table file beside it. Run
/// before the file is published and before anything is dropped for it: a
/// damaged file fails here and changes nothing.
pub fn prepare(path: &Path, meta: &SnapshotMeta) -> io::Result<Prepared> {
    let mut reader = Reader::open(path)?;
    if reader.meta != *meta {
        return Err(invalid("snapshot file does not match its metadata"));
    }
    let table = temp_name(path.parent().unwrap_or(Path::new(".")), "ingest");
    // Removes the table if writing it fails, or if it holds nothing.
    let written = Prepared {
        table: Some(table.clone()),
    };
    Ok(if write_table(&table, &mut reader)? {
        written
    } else {
        Prepared { table: None }
    })
}

/// Installs the published snapshot file at `path`, from the table
/// `prepare` built from it. `finish` adds the meta writes (last applied,
/// membership) to the final batch.
pub fn install(
    db: &DB,
    path: &Path,
    prepared: Prepared,
    finish: impl FnOnce(&mut WriteBatch),
) -> io::Result<()> {
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
    // The range deletion is older than the table (ingested after it), so it
    // drops only the old records.
    if let Some(table) = &prepared.table {
        let mut how = IngestExternalFileOptions::default();
        how.set_move_files(true);
        db.ingest_external_file_cf_opts(data, &how, vec![table])
            .map_err(io_err)?;
    }
    drop(prepared);
    let mut batch = WriteBatch::default();
    finish(&mut batch);
    batch.delete_cf(cf(db, CF_SM_META), KEY_INSTALLING);
    db.write_opt(batch, &synced).map_err(io_err)?;
    Ok(())
}

/// Writes the records into one table file, for RocksDB to take whole: no
/// write-ahead log, no memtable, and the file is durable in the manifest
/// once ingested. The snapshot holds `sm_data` in key order, which is what
/// a table file needs. Returns whether there was any record.
fn write_table(table: &Path, reader: &mut Reader) -> io::Result<bool> {
    let mut opts = cf_options(CF_SM_DATA);
    // Written once and soon compacted: compressing it here only slows the
    // install (compaction compresses what it rewrites).
    opts.set_compression_type(rocksdb::DBCompressionType::None);
    let mut writer = SstFileWriter::create(&opts);
    writer.open(table).map_err(io_err)?;
    let mut any = false;
    while let Some((k, v)) = reader.next_record()? {
        writer.put(k, v).map_err(io_err)?;
        any = true;
    }
    // RocksDB refuses to finish a table with nothing in it.
    if any {
        writer.finish().map_err(io_err)?;
    }
    Ok(any)
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
