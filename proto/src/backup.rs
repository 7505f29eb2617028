//! The backup file (layout in `backup.proto`): written by `rekapctl
//! snapshot save`, checked offline by `rekapctl snapshot status`, read by
//! `rekap-node restore`. Any changed byte fails the check: the body against
//! the header's SHA-256, everything against the file's trailing SHA-256.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;

use prost::Message;
use sha2::{Digest, Sha256};

use crate::v1::BackupHeader;

pub const MAGIC: &[u8] = b"REKAP-BACKUP\n";
pub const FORMAT_VERSION: u32 = 1;
/// A header is small (a few totals); anything larger is damage.
const MAX_HEADER: usize = 16 << 20;
const TRAILER: u64 = 32;

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes a backup as its parts arrive: the header, then the body.
pub struct Writer<W: Write> {
    out: W,
    file: Sha256,
    body: Sha256,
    body_bytes: u64,
    header: BackupHeader,
}

impl<W: Write> Writer<W> {
    pub fn new(mut out: W, header: BackupHeader) -> io::Result<Self> {
        let encoded = header.encode_to_vec();
        let mut file = Sha256::new();
        for part in [MAGIC, &(encoded.len() as u32).to_le_bytes(), &encoded] {
            out.write_all(part)?;
            file.update(part);
        }
        Ok(Writer {
            out,
            file,
            body: Sha256::new(),
            body_bytes: 0,
            header,
        })
    }

    pub fn body(&mut self, chunk: &[u8]) -> io::Result<()> {
        self.out.write_all(chunk)?;
        self.file.update(chunk);
        self.body.update(chunk);
        self.body_bytes += chunk.len() as u64;
        Ok(())
    }

    /// Checks the body against the header and ends the file.
    pub fn finish(mut self) -> io::Result<W> {
        let got = hex(&self.body.finalize());
        if got != self.header.body_sha256 || self.body_bytes != self.header.body_bytes {
            return Err(bad(format!(
                "the body received ({} bytes, sha256 {got}) is not the one the header names ({} bytes, sha256 {})",
                self.body_bytes, self.header.body_bytes, self.header.body_sha256
            )));
        }
        self.out.write_all(&self.file.finalize())?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// A backup file that passed every check.
#[derive(Debug, Clone)]
pub struct Verified {
    pub header: BackupHeader,
    /// Where the body starts in the file, and its length.
    pub body_offset: u64,
    pub body_len: u64,
    /// SHA-256 (hex) of the whole file but its trailer.
    pub file_sha256: String,
}

/// Reads the whole file and checks it: magic, format, trailer, body hash.
pub fn verify(path: &Path) -> io::Result<Verified> {
    let len = std::fs::metadata(path)?.len();
    let mut r = BufReader::with_capacity(1 << 20, File::open(path)?);
    let mut file = Sha256::new();
    let mut magic = vec![0; MAGIC.len()];
    r.read_exact(&mut magic)
        .map_err(|_| bad("too short to be a backup"))?;
    if magic != MAGIC {
        return Err(bad("not a Rekap backup (wrong magic)"));
    }
    file.update(&magic);
    let mut n = [0; 4];
    r.read_exact(&mut n).map_err(|_| bad("truncated header"))?;
    file.update(n);
    let n = u32::from_le_bytes(n) as usize;
    let body_offset = (MAGIC.len() + 4 + n) as u64;
    if n > MAX_HEADER || body_offset + TRAILER > len {
        return Err(bad(format!("header length {n} does not fit the file")));
    }
    let mut encoded = vec![0; n];
    r.read_exact(&mut encoded)?;
    file.update(&encoded);
    let body_len = len - body_offset - TRAILER;
    let mut body = Sha256::new();
    let mut left = body_len;
    let mut buf = vec![0; 1 << 20];
    while left > 0 {
        let k = (buf.len() as u64).min(left) as usize;
        r.read_exact(&mut buf[..k])?;
        file.update(&buf[..k]);
        body.update(&buf[..k]);
        left -= k as u64;
    }
    let mut trailer = [0; TRAILER as usize];
    r.read_exact(&mut trailer)?;
    let file_sha = file.finalize();
    if file_sha.as_slice() != trailer {
        return Err(bad(
            "the file's SHA-256 does not match its trailer: the file is damaged or was changed",
        ));
    }
    let header = BackupHeader::decode(encoded.as_slice())
        .map_err(|e| bad(format!("the header does not decode: {e}")))?;
    if header.format_version != FORMAT_VERSION {
        return Err(bad(format!(
            "backup format {} is not one this build reads ({FORMAT_VERSION})",
            header.format_version
        )));
    }
    let body_sha = hex(&body.finalize());
    if body_sha != header.body_sha256 || body_len != header.body_bytes {
        return Err(bad(format!(
            "the body ({body_len} bytes, sha256 {body_sha}) is not the one the header names ({} bytes, sha256 {})",
            header.body_bytes, header.body_sha256
        )));
    }
    Ok(Verified {
        header,
        body_offset,
        body_len,
        file_sha256: hex(&file_sha),
    })
}

/// Copies the body of a verified backup to `out`.
pub fn copy_body(path: &Path, v: &Verified, out: &mut impl Write) -> io::Result<u64> {
    let mut f = File::open(path)?;
    f.seek(SeekFrom::Start(v.body_offset))?;
    io::copy(&mut f.take(v.body_len), out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(body: &[u8]) -> Vec<u8> {
        let header = BackupHeader {
            format_version: FORMAT_VERSION,
            cluster_id: "c1".into(),
            applied_index: 7,
            body_sha256: hex(&Sha256::digest(body)),
            body_bytes: body.len() as u64,
            ..Default::default()
        };
        let mut w = Writer::new(Vec::new(), header).unwrap();
        w.body(&body[..3]).unwrap();
        w.body(&body[3..]).unwrap();
        w.finish().unwrap()
    }

    #[test]
    fn a_backup_verifies_and_any_flipped_byte_is_refused() {
        let dir = std::env::temp_dir().join(format!("rekap-backup-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("b.bin");
        let bytes = sample(b"the body of the backup");
        std::fs::write(&path, &bytes).unwrap();
        let v = verify(&path).unwrap();
        assert_eq!(v.header.applied_index, 7);
        let mut body = Vec::new();
        copy_body(&path, &v, &mut body).unwrap();
        assert_eq!(body, b"the body of the backup");
        for i in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[i] ^= 0x01;
            std::fs::write(&path, &damaged).unwrap();
            assert!(verify(&path).is_err(), "byte {i} flipped went unnoticed");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_body_that_is_not_the_headers_is_refused_while_writing() {
        let header = BackupHeader {
            format_version: FORMAT_VERSION,
            body_sha256: hex(&Sha256::digest(b"promised")),
            body_bytes: 8,
            ..Default::default()
        };
        let mut w = Writer::new(Vec::new(), header).unwrap();
        w.body(b"received").unwrap();
        assert!(w.finish().is_err());
    }
}
