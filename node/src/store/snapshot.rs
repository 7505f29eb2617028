//! Snapshot files: written to a temporary name, fsynced, then renamed, so a
//! crash never leaves a half-written snapshot under a real name.
//!
//! Layout: length-delimited messages, a `SnapshotHeader`, one
//! `SnapshotRecord` per state-machine key, and a last record with an empty key
//! whose value is the `SnapshotTrailer` (record count), so truncation is
//! detected.

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use prost::Message;
use rekap_proto::pb;

use super::io_err;
use crate::raft::SnapshotMeta;
use crate::raft::convert::{snapshot_meta_from_pb, snapshot_meta_to_pb};

/// Openraft's snapshot data: a complete, fsynced file on local disk.
#[derive(Debug, Clone)]
pub struct SnapshotFile {
    pub path: PathBuf,
}

/// How many snapshot files to keep: the newest may be in the middle of being
/// streamed when the next one is finished.
const KEEP: usize = 2;

pub fn final_name(dir: &Path, meta: &SnapshotMeta) -> PathBuf {
    let ordinal = meta.last_log_id.as_ref().map_or(0, |l| l.index + 1);
    dir.join(format!("snap-{ordinal:020}.bin"))
}

pub fn temp_name(dir: &Path, what: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    dir.join(format!(
        "{what}-{}-{}.tmp",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Writes a snapshot file from `records` (key order) and moves it into
/// place. Returns its final path.
pub fn write<I>(dir: &Path, meta: &SnapshotMeta, records: I) -> io::Result<PathBuf>
where
    I: IntoIterator<Item = io::Result<(Box<[u8]>, Box<[u8]>)>>,
{
    let tmp = temp_name(dir, "build");
    let mut w = BufWriter::new(File::create(&tmp)?);
    let header = pb::SnapshotHeader {
        meta: Some(snapshot_meta_to_pb(meta)),
    };
    w.write_all(&header.encode_length_delimited_to_vec())?;
    let mut count = 0u64;
    for kv in records {
        let (key, value) = kv?;
        let rec = pb::SnapshotRecord {
            key: key.into_vec(),
            value: value.into_vec(),
        };
        w.write_all(&rec.encode_length_delimited_to_vec())?;
        count += 1;
    }
    let trailer = pb::SnapshotRecord {
        key: Vec::new(),
        value: pb::SnapshotTrailer {
            record_count: count,
        }
        .encode_to_vec(),
    };
    w.write_all(&trailer.encode_length_delimited_to_vec())?;
    let file = w.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    publish(dir, &tmp, meta)
}

/// Moves a complete file into place under its final name, fsyncs the folder
/// and drops older snapshots.
pub fn publish(dir: &Path, tmp: &Path, meta: &SnapshotMeta) -> io::Result<PathBuf> {
    let dest = final_name(dir, meta);
    fs::rename(tmp, &dest)?;
    File::open(dir)?.sync_all()?;
    let mut all = list(dir)?;
    all.sort();
    let drop = all.len().saturating_sub(KEEP);
    for old in all.into_iter().take(drop) {
        if old != dest {
            let _ = fs::remove_file(old);
        }
    }
    Ok(dest)
}

/// Finished snapshot files in `dir`, unsorted.
pub fn list(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir)? {
        let p = e?.path();
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with("snap-") && name.ends_with(".bin") {
            out.push(p);
        }
    }
    Ok(out)
}

/// Removes leftovers of builds or transfers that a crash interrupted.
pub fn clean_temp(dir: &Path) -> io::Result<()> {
    for e in fs::read_dir(dir)? {
        let p = e?.path();
        if p.extension().is_some_and(|x| x == "tmp") {
            fs::remove_file(p)?;
        }
    }
    Ok(())
}

/// A snapshot file opened for reading.
pub struct Reader {
    r: BufReader<File>,
    pub meta: SnapshotMeta,
}

impl Reader {
    pub fn open(path: &Path) -> io::Result<Self> {
        let mut r = BufReader::new(File::open(path)?);
        let header: pb::SnapshotHeader = read_msg(&mut r)?
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "empty snapshot file"))?;
        let meta = snapshot_meta_from_pb(header.meta)?;
        Ok(Reader { r, meta })
    }

    /// All records, checked against the trailer's count.
    pub fn records(mut self) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut out = Vec::new();
        loop {
            let rec: pb::SnapshotRecord = read_msg(&mut self.r)?.ok_or_else(|| {
                io::Error::new(io::ErrorKind::UnexpectedEof, "snapshot file has no trailer")
            })?;
            if rec.key.is_empty() {
                let t = pb::SnapshotTrailer::decode(rec.value.as_slice()).map_err(io_err)?;
                if t.record_count != out.len() as u64 {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "snapshot record count mismatch",
                    ));
                }
                return Ok(out);
            }
            out.push((rec.key, rec.value));
        }
    }
}

fn read_msg<M: Message + Default>(r: &mut impl Read) -> io::Result<Option<M>> {
    let mut len: u64 = 0;
    let mut shift = 0;
    loop {
        let mut byte = [0u8; 1];
        if r.read(&mut byte)? == 0 {
            return if shift == 0 {
                Ok(None)
            } else {
                Err(io::ErrorKind::UnexpectedEof.into())
            };
        }
        len |= u64::from(byte[0] & 0x7f) << shift;
        if byte[0] & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 63 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "bad length prefix",
            ));
        }
    }
    let mut buf = vec![0u8; len as usize];
    r.read_exact(&mut buf)?;
    M::decode(buf.as_slice()).map(Some).map_err(io_err)
}
