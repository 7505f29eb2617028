//! Snapshot files: written to a temporary name, fsynced, then renamed, so a
//! crash never leaves a half-written snapshot under a real name.
//!
//! Layout: length-delimited messages, a `SnapshotHeader`, one
//! `SnapshotRecord` per state-machine key, and a last record with an empty key
//! whose value is the `SnapshotTrailer`: the record count and a SHA-256 of
//! every byte before the trailer, so truncation and damage are detected.

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use prost::Message;
use rekap_proto::pb;
use sha2::{Digest, Sha256};

use super::{invalid, io_err};
use crate::raft::convert::{snapshot_meta_from_pb, snapshot_meta_to_pb};
use crate::raft::types::SnapshotMeta;

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

/// Told how the writing of a snapshot file goes, so a reader can follow
/// the file as it grows.
pub trait Watch {
    /// The file is begun, under its temporary name.
    fn began(&self, _tmp: &Path) {}
    /// More of it reached the file (once per buffered chunk, not per record).
    fn wrote(&self) {}
}

/// Nobody follows.
impl Watch for () {}

/// A file that tells its watcher of each chunk written to it.
struct Watched<'a, W: Watch> {
    file: File,
    watch: &'a W,
}

impl<W: Watch> Write for Watched<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.watch.wrote();
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Writes a snapshot file from `records` (key order) and moves it into
/// place. Returns its final path.
pub fn write<I, K, V>(
    dir: &Path,
    meta: &SnapshotMeta,
    records: I,
    watch: &impl Watch,
) -> io::Result<PathBuf>
where
    I: IntoIterator<Item = io::Result<(K, V)>>,
    K: Into<Vec<u8>>,
    V: Into<Vec<u8>>,
{
    let tmp = temp_name(dir, "build");
    let file = File::create(&tmp)?;
    watch.began(&tmp);
    let mut w = BufWriter::with_capacity(1 << 20, Watched { file, watch });
    write_to(&mut w, meta, records)?;
    let watched = w.into_inner().map_err(|e| e.into_error())?;
    watched.file.sync_all()?;
    publish(dir, &tmp, meta)
}

/// The snapshot format, to any writer.
pub(super) fn write_to<I, K, V>(
    w: &mut impl Write,
    meta: &SnapshotMeta,
    records: I,
) -> io::Result<()>
where
    I: IntoIterator<Item = io::Result<(K, V)>>,
    K: Into<Vec<u8>>,
    V: Into<Vec<u8>>,
{
    let mut hash = Sha256::new();
    let header = pb::SnapshotHeader {
        meta: Some(snapshot_meta_to_pb(meta)),
    };
    let bytes = header.encode_length_delimited_to_vec();
    hash.update(&bytes);
    w.write_all(&bytes)?;
    let mut count = 0u64;
    for kv in records {
        let (key, value) = kv?;
        let rec = pb::SnapshotRecord {
            key: key.into(),
            value: value.into(),
        };
        let bytes = rec.encode_length_delimited_to_vec();
        hash.update(&bytes);
        w.write_all(&bytes)?;
        count += 1;
    }
    let trailer = pb::SnapshotRecord {
        key: Vec::new(),
        value: pb::SnapshotTrailer {
            record_count: count,
            sha256: hash.finalize().to_vec(),
        }
        .encode_to_vec(),
    };
    w.write_all(&trailer.encode_length_delimited_to_vec())
}

/// A whole snapshot file in memory (for tests and fuzzing).
pub fn to_bytes(meta: &SnapshotMeta, records: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    write_to(
        &mut out,
        meta,
        records.iter().map(|(k, v)| Ok((k.clone(), v.clone()))),
    )
    .expect("writing to memory");
    out
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

/// Longest record a snapshot may hold: far above any real record (a result
/// with its history), far below what a damaged length prefix could claim.
pub const MAX_RECORD: usize = 64 * 1024 * 1024;

/// A snapshot file opened for reading.
pub struct Reader<R: Read = BufReader<File>> {
    r: R,
    hash: Sha256,
    count: u64,
    pub meta: SnapshotMeta,
}

impl Reader {
    pub fn open(path: &Path) -> io::Result<Self> {
        Reader::new(BufReader::new(File::open(path)?))
    }
}

impl<R: Read> Reader<R> {
    pub fn new(mut r: R) -> io::Result<Self> {
        let mut hash = Sha256::new();
        let (header, bytes) = read_msg::<pb::SnapshotHeader>(&mut r)?
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "empty snapshot file"))?;
        hash.update(&bytes);
        let meta = snapshot_meta_from_pb(header.meta)?;
        Ok(Reader {
            r,
            hash,
            count: 0,
            meta,
        })
    }

    /// The next record, or `None` after the trailer checked out.
    pub fn next_record(&mut self) -> io::Result<Option<(Vec<u8>, Vec<u8>)>> {
        let (rec, bytes) = read_msg::<pb::SnapshotRecord>(&mut self.r)?.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "snapshot file is truncated: no trailer",
            )
        })?;
        if !rec.key.is_empty() {
            self.hash.update(&bytes);
            self.count += 1;
            return Ok(Some((rec.key, rec.value)));
        }
        let t = pb::SnapshotTrailer::decode(rec.value.as_slice()).map_err(io_err)?;
        if t.record_count != self.count {
            return Err(invalid(format!(
                "snapshot record count mismatch: {} read, trailer says {}",
                self.count, t.record_count
            )));
        }
        // Files written before the hash existed have none.
        let actual = std::mem::take(&mut self.hash).finalize();
        if !t.sha256.is_empty() && t.sha256.as_slice() != actual.as_slice() {
            return Err(invalid("snapshot content does not match its SHA-256"));
        }
        let mut rest = [0u8; 1];
        if self.r.read(&mut rest)? != 0 {
            return Err(invalid("snapshot file has bytes after its trailer"));
        }
        Ok(None)
    }

    /// All records, checked against the trailer.
    pub fn records(mut self) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut out = Vec::new();
        while let Some(r) = self.next_record()? {
            out.push(r);
        }
        Ok(out)
    }

    /// Reads the whole file without keeping it; returns the record count.
    /// Records are hashed as read, not decoded: a record with a key starts
    /// with the key's tag, and only the trailer (no key) is decoded, by
    /// `next_record` (this is three times as fast as decoding them all).
    pub fn verify(mut self) -> io::Result<u64> {
        /// Field 1 (`key`), length-delimited.
        const KEY_TAG: u8 = 0x0a;
        let mut raw = Vec::new();
        loop {
            let Some(start) = read_raw(&mut self.r, &mut raw)? else {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "snapshot file is truncated: no trailer",
                ));
            };
            if raw.get(start) == Some(&KEY_TAG) && raw.len() > start + 1 && raw[start + 1] != 0 {
                self.hash.update(&raw);
                self.count += 1;
                continue;
            }
            // Not a plain record: let the full decoder judge it (the
            // trailer, or damage).
            let mut rest = io::Cursor::new(std::mem::take(&mut raw)).chain(&mut self.r);
            let mut whole = Reader {
                r: &mut rest,
                hash: std::mem::take(&mut self.hash),
                count: self.count,
                meta: self.meta.clone(),
            };
            while whole.next_record()?.is_some() {}
            return Ok(whole.count);
        }
    }
}

/// One length-delimited message and its bytes (prefix included), or `None`
/// at a clean end of file.
fn read_msg<M: Message + Default>(r: &mut impl Read) -> io::Result<Option<(M, Vec<u8>)>> {
    let mut raw = Vec::with_capacity(10);
    let Some(start) = read_raw(r, &mut raw)? else {
        return Ok(None);
    };
    let msg = M::decode(&raw[start..]).map_err(io_err)?;
    Ok(Some((msg, raw)))
}

/// Reads one length-delimited message's bytes (prefix included) into
/// `raw`, replacing what it held; returns where the message starts, or
/// `None` at a clean end of file.
fn read_raw(r: &mut impl Read, raw: &mut Vec<u8>) -> io::Result<Option<usize>> {
    raw.clear();
    let mut len: u64 = 0;
    let mut shift = 0;
    loop {
        let mut byte = [0u8; 1];
        if r.read(&mut byte)? == 0 {
            return if shift == 0 {
                Ok(None)
            } else {
                Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "snapshot file is truncated inside a length prefix",
                ))
            };
        }
        raw.push(byte[0]);
        len |= u64::from(byte[0] & 0x7f) << shift;
        if byte[0] & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 63 {
            return Err(invalid("bad length prefix"));
        }
    }
    if len > MAX_RECORD as u64 {
        return Err(invalid(format!(
            "record of {len} bytes is over the {MAX_RECORD}-byte limit"
        )));
    }
    let start = raw.len();
    raw.resize(start + len as usize, 0);
    r.read_exact(&mut raw[start..])
        .map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "snapshot file is truncated: a record is cut short",
            ),
            _ => e,
        })?;
    Ok(Some(start))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(dir: &Path, records: usize) -> PathBuf {
        let meta = SnapshotMeta::default();
        let recs = (0..records).map(|i| {
            io::Result::Ok((
                format!("r-{i:06}").into_bytes().into_boxed_slice(),
                vec![i as u8; 40].into_boxed_slice(),
            ))
        });
        write(dir, &meta, recs, &()).unwrap()
    }

    #[test]
    fn verify_counts_every_record_and_refuses_any_damage() {
        let dir = tempfile::tempdir().unwrap();
        let path = written(dir.path(), 1000);
        assert_eq!(Reader::open(&path).unwrap().verify().unwrap(), 1000);
        let good = fs::read(&path).unwrap();
        // One flipped bit anywhere after the header, or a cut end, is refused.
        for at in [
            good.len() / 3,
            good.len() / 2,
            good.len() - 5,
            good.len() - 1,
        ] {
            let mut bad = good.clone();
            bad[at] ^= 0x01;
            fs::write(&path, &bad).unwrap();
            let r = Reader::open(&path).and_then(|r| r.verify());
            assert!(r.is_err(), "a flipped bit at {at} of {} passed", good.len());
        }
        fs::write(&path, &good[..good.len() - 10]).unwrap();
        assert!(Reader::open(&path).and_then(|r| r.verify()).is_err());
        let mut longer = good.clone();
        longer.push(0);
        fs::write(&path, &longer).unwrap();
        assert!(Reader::open(&path).and_then(|r| r.verify()).is_err());
    }
}
