//! Snapshot files: written to a temporary name, fsynced, then renamed, so a
//! crash never leaves a half-written snapshot under a real name.
//!
//! Layout: length-delimited messages, a `SnapshotHeader`, one
//! `SnapshotRecord` per state-machine key, and a last record with an empty key
//! whose value is the `SnapshotTrailer`: the record count and a SHA-256 of
//! every byte before the trailer, so truncation and damage are detected.

use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::ops::Range;
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

/// Writes a snapshot file, its records put in by `fill` (key order), and
/// moves it into place. Returns its final path.
pub fn write(
    dir: &Path,
    meta: &SnapshotMeta,
    watch: &impl Watch,
    fill: impl FnOnce(&mut Encoder<'_>) -> io::Result<()>,
) -> io::Result<PathBuf> {
    let tmp = temp_name(dir, "build");
    let file = File::create(&tmp)?;
    watch.began(&tmp);
    // The encoder writes in pieces of its own size: no buffer needed.
    let mut watched = Watched { file, watch };
    write_to(&mut watched, meta, fill)?;
    watched.file.sync_all()?;
    publish(dir, &tmp, meta)
}

/// The snapshot format, to any writer.
pub(super) fn write_to(
    w: &mut impl Write,
    meta: &SnapshotMeta,
    fill: impl FnOnce(&mut Encoder<'_>) -> io::Result<()>,
) -> io::Result<()> {
    let mut enc = Encoder::begin(w, meta)?;
    fill(&mut enc)?;
    enc.finish()
}

/// Writes records in the snapshot format, hashing them as they go.
pub struct Encoder<'a> {
    w: &'a mut dyn Write,
    hash: Sha256,
    count: u64,
    /// Encoded records not hashed and written yet. Hashed a record at a
    /// time (a few hundred bytes, in four parts), SHA-256 was half of the
    /// snapshot writer's thread: each call sets the SHA extensions up
    /// again for a block or two.
    buf: Vec<u8>,
}

/// How much an encoder gathers before it hashes and writes.
const PIECE: usize = 1 << 20;

impl<'a> Encoder<'a> {
    fn begin(w: &'a mut dyn Write, meta: &SnapshotMeta) -> io::Result<Self> {
        let header = pb::SnapshotHeader {
            meta: Some(snapshot_meta_to_pb(meta)),
        };
        let mut buf = Vec::with_capacity(PIECE + (64 << 10));
        header.encode_length_delimited(&mut buf).map_err(io_err)?;
        Ok(Encoder {
            w,
            hash: Sha256::new(),
            count: 0,
            buf,
        })
    }

    fn spill(&mut self) -> io::Result<()> {
        self.hash.update(&self.buf);
        self.w.write_all(&self.buf)?;
        self.buf.clear();
        Ok(())
    }

    /// One record, as prost encodes a length-delimited `SnapshotRecord`,
    /// written from the slices as they are: building the message cost two
    /// copies and an allocation per record, on the thread a new node's
    /// catch-up waits on.
    pub fn record(&mut self, key: &[u8], value: &[u8]) -> io::Result<()> {
        use prost::encoding::{encode_varint, encoded_len_varint};
        if key.is_empty() {
            // An empty key is the trailer's mark.
            return Err(invalid("a snapshot record's key is empty"));
        }
        let field = |len: usize| {
            if len == 0 {
                0
            } else {
                1 + encoded_len_varint(len as u64) + len
            }
        };
        let body = field(key.len()) + field(value.len());
        let buf = &mut self.buf;
        encode_varint(body as u64, buf);
        buf.push(KEY_TAG);
        encode_varint(key.len() as u64, buf);
        buf.extend_from_slice(key);
        if !value.is_empty() {
            buf.push(VALUE_TAG);
            encode_varint(value.len() as u64, buf);
            buf.extend_from_slice(value);
        }
        self.count += 1;
        if self.buf.len() >= PIECE {
            self.spill()?;
        }
        Ok(())
    }

    fn finish(mut self) -> io::Result<()> {
        self.spill()?;
        let trailer = pb::SnapshotRecord {
            key: Vec::new(),
            value: pb::SnapshotTrailer {
                record_count: self.count,
                sha256: self.hash.finalize().to_vec(),
            }
            .encode_to_vec(),
        };
        self.w.write_all(&trailer.encode_length_delimited_to_vec())
    }
}

/// `SnapshotRecord`'s field 1 (`key`) and 2 (`value`), length-delimited.
const KEY_TAG: u8 = 0x0a;
const VALUE_TAG: u8 = 0x12;

/// A whole snapshot file in memory (for tests and fuzzing).
pub fn to_bytes(meta: &SnapshotMeta, records: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    write_to(&mut out, meta, |enc| {
        records.iter().try_for_each(|(k, v)| enc.record(k, v))
    })
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

/// SHA-256 of what a reader has read, fed in pieces (as `Encoder` does).
#[derive(Default)]
struct Hashed {
    hash: Sha256,
    pending: Vec<u8>,
}

impl Hashed {
    fn update(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
        if self.pending.len() >= PIECE {
            self.hash.update(&self.pending);
            self.pending.clear();
        }
    }

    fn finalize(mut self) -> sha2::digest::Output<Sha256> {
        self.hash.update(&self.pending);
        self.hash.finalize()
    }
}

/// A snapshot file opened for reading.
pub struct Reader<R: Read = BufReader<File>> {
    r: R,
    hash: Hashed,
    count: u64,
    pub meta: SnapshotMeta,
    /// The record last read, prefix included (reused).
    raw: Vec<u8>,
    /// Its key and value when they had to be decoded out of it.
    decoded: (Vec<u8>, Vec<u8>),
}

impl Reader {
    pub fn open(path: &Path) -> io::Result<Self> {
        Reader::new(BufReader::new(File::open(path)?))
    }
}

/// Where the last record's key and value are.
enum Found {
    InRaw(Range<usize>, Range<usize>),
    Decoded,
}

impl<R: Read> Reader<R> {
    pub fn new(mut r: R) -> io::Result<Self> {
        let mut hash = Hashed::default();
        let (header, bytes) = read_msg::<pb::SnapshotHeader>(&mut r)?
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "empty snapshot file"))?;
        hash.update(&bytes);
        let meta = snapshot_meta_from_pb(header.meta)?;
        Ok(Reader::resume(r, hash, 0, meta))
    }

    fn resume(r: R, hash: Hashed, count: u64, meta: SnapshotMeta) -> Self {
        Reader {
            r,
            hash,
            count,
            meta,
            raw: Vec::new(),
            decoded: Default::default(),
        }
    }

    /// The next record, or `None` after the trailer checked out.
    pub fn next_record(&mut self) -> io::Result<Option<(Vec<u8>, Vec<u8>)>> {
        Ok(self.next_slices()?.map(|(k, v)| (k.to_vec(), v.to_vec())))
    }

    /// Like `next_record`, borrowing the record until the next call: a
    /// table built from a snapshot copies each record once, not three
    /// times.
    pub fn next_slices(&mut self) -> io::Result<Option<(&[u8], &[u8])>> {
        let Some(start) = read_raw(&mut self.r, &mut self.raw)? else {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "snapshot file is truncated: no trailer",
            ));
        };
        let found = match split_record(&self.raw, start) {
            Some((k, v)) => Found::InRaw(k, v),
            // Another valid encoding, or damage: prost judges.
            None => {
                let rec = pb::SnapshotRecord::decode(&self.raw[start..]).map_err(io_err)?;
                self.decoded = (rec.key, rec.value);
                Found::Decoded
            }
        };
        let (key, value) = match &found {
            Found::InRaw(k, v) => (&self.raw[k.clone()], &self.raw[v.clone()]),
            Found::Decoded => (&self.decoded.0[..], &self.decoded.1[..]),
        };
        if key.is_empty() {
            let trailer = value.to_vec();
            self.trailer(&trailer)?;
            return Ok(None);
        }
        self.hash.update(&self.raw);
        self.count += 1;
        Ok(Some(match found {
            Found::InRaw(k, v) => (&self.raw[k], &self.raw[v]),
            Found::Decoded => (&self.decoded.0, &self.decoded.1),
        }))
    }

    fn trailer(&mut self, bytes: &[u8]) -> io::Result<()> {
        let t = pb::SnapshotTrailer::decode(bytes).map_err(io_err)?;
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
        Ok(())
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
            let mut whole = Reader::resume(
                &mut rest,
                std::mem::take(&mut self.hash),
                self.count,
                self.meta.clone(),
            );
            while whole.next_record()?.is_some() {}
            return Ok(whole.count);
        }
    }
}

/// The key and value of a record body (`raw[start..]`) in the one shape
/// the writer makes: field 1, then field 2 unless the value is empty, and
/// nothing else. `None` for anything else, which prost then decodes.
fn split_record(raw: &[u8], start: usize) -> Option<(Range<usize>, Range<usize>)> {
    let field = |tag: u8, at: usize| -> Option<Range<usize>> {
        if raw.get(at) != Some(&tag) {
            return None;
        }
        let mut rest = raw.get(at + 1..)?;
        let len = usize::try_from(prost::encoding::decode_varint(&mut rest).ok()?).ok()?;
        let from = raw.len() - rest.len();
        let to = from.checked_add(len).filter(|&to| to <= raw.len())?;
        Some(from..to)
    };
    let key = field(KEY_TAG, start)?;
    let value = if key.end == raw.len() {
        key.end..key.end
    } else {
        field(VALUE_TAG, key.end)?
    };
    (value.end == raw.len()).then_some((key, value))
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
        write(dir, &meta, &(), |enc| {
            (0..records)
                .try_for_each(|i| enc.record(format!("r-{i:06}").as_bytes(), &[i as u8; 40]))
        })
        .unwrap()
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

    /// The encoder writes what prost writes for the same records, and the
    /// reader's in-place split reads them back; a record in another valid
    /// shape (fields reversed) is read too, by prost.
    #[test]
    fn records_encode_as_prost_does_and_read_back_in_any_valid_shape() {
        let meta = SnapshotMeta::default();
        let records: Vec<(Vec<u8>, Vec<u8>)> = [(1, 0), (1, 1), (130, 5), (3, 20_000), (200, 127)]
            .iter()
            .enumerate()
            .map(|(i, &(k, v))| (vec![b'a' + i as u8; k], vec![i as u8; v]))
            .collect();
        let bytes = to_bytes(&meta, &records);
        let header = pb::SnapshotHeader {
            meta: Some(snapshot_meta_to_pb(&meta)),
        }
        .encode_length_delimited_to_vec();
        let mut want = header.clone();
        for (k, v) in &records {
            let rec = pb::SnapshotRecord {
                key: k.clone(),
                value: v.clone(),
            };
            want.extend(rec.encode_length_delimited_to_vec());
        }
        assert_eq!(&bytes[..want.len()], &want[..]);
        let back = Reader::new(bytes.as_slice()).and_then(Reader::records);
        assert_eq!(back.unwrap(), records);

        // Value first, then key: valid protobuf, not the writer's shape.
        let (key, value) = (b"k1".to_vec(), b"v1".to_vec());
        let body = [&[0x12, 2][..], &value, &[0x0a, 2], &key].concat();
        let mut raw = vec![body.len() as u8];
        raw.extend(&body);
        assert!(split_record(&raw, 1).is_none());
        let mut file = header.clone();
        file.extend(&raw);
        let mut hash = Sha256::new();
        hash.update(&file);
        let trailer = pb::SnapshotRecord {
            key: Vec::new(),
            value: pb::SnapshotTrailer {
                record_count: 1,
                sha256: hash.finalize().to_vec(),
            }
            .encode_to_vec(),
        };
        file.extend(trailer.encode_length_delimited_to_vec());
        let back = Reader::new(file.as_slice()).and_then(Reader::records);
        assert_eq!(back.unwrap(), vec![(key, value)]);
    }
}
