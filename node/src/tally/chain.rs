//! The audit chain: every applied command extends a SHA-256 hash chain,
//! head = SHA-256(previous head || log index as 8 big-endian bytes ||
//! command's protobuf encoding), starting from 32 zero bytes. The head is a
//! record of the state machine (so snapshots carry it) and each command is
//! kept as an audit entry, so anyone can recompute the chain from an export.

use prost::Message;
use rekap_proto::pb;
use sha2::{Digest, Sha256};

use super::{Write, keys};

/// Where the chain stands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chain {
    pub head: [u8; 32],
    /// Log index of the last command covered (0: none).
    pub index: u64,
    pub commands: u64,
}

pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(2 * bytes.len());
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The next head after `command` at `index`.
pub fn next_head(prev: &[u8; 32], index: u64, command: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(index.to_be_bytes());
    h.update(command);
    h.finalize().into()
}

impl Chain {
    /// Extends the chain with one command and returns the records to write:
    /// the new head and the command's audit entry.
    pub fn extend(&mut self, index: u64, command: &[u8], writes: &mut Vec<Write>) {
        self.head = next_head(&self.head, index, command);
        self.index = index;
        self.commands += 1;
        let entry = pb::AuditEntry {
            index,
            command: command.to_vec(),
            head: hex(&self.head),
            sequence: self.commands,
        };
        writes.push((keys::audit(index), Some(entry.encode_to_vec())));
        writes.push((keys::chain(), Some(self.to_pb().encode_to_vec())));
    }

    pub fn to_pb(&self) -> pb::GetChainHeadResponse {
        pb::GetChainHeadResponse {
            applied_index: self.index,
            index: self.index,
            head: hex(&self.head),
            commands: self.commands,
        }
    }

    pub fn from_pb(p: &pb::GetChainHeadResponse) -> Option<Chain> {
        let mut head = [0u8; 32];
        if p.head.len() != 64 {
            return None;
        }
        for (i, b) in head.iter_mut().enumerate() {
            *b = u8::from_str_radix(&p.head[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(Chain {
            head,
            index: p.index,
            commands: p.commands,
        })
    }
}
