//! The command as Raft carries it. One proposed command is held by the
//! leader's log cache, by each follower's replication stream and by the
//! apply step at once; sharing it behind an `Arc` means none of them copies
//! it, and keeping its encoding beside it means it is encoded once for the
//! log and the same bytes go to every follower.

use std::fmt;
use std::ops::Deref;
use std::sync::OnceLock;

use prost::Message;
use rekap_proto::pb;

pub struct Cmd {
    cmd: pb::Command,
    encoded: OnceLock<Vec<u8>>,
}

impl Cmd {
    pub fn new(cmd: pb::Command) -> Self {
        Cmd {
            cmd,
            encoded: OnceLock::new(),
        }
    }

    /// The command's protobuf encoding, computed on first use.
    pub fn encoded(&self) -> &[u8] {
        self.encoded.get_or_init(|| self.cmd.encode_to_vec())
    }

    pub fn into_inner(self) -> pb::Command {
        self.cmd
    }
}

impl Deref for Cmd {
    type Target = pb::Command;
    fn deref(&self) -> &pb::Command {
        &self.cmd
    }
}

impl fmt::Debug for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.cmd, f)
    }
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.cmd, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kept_encoding_is_the_commands_encoding() {
        let cmd = pb::Command {
            principal: Some(pb::Principal {
                name: "op-1".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let shared = Cmd::new(cmd.clone());
        assert_eq!(shared.encoded(), cmd.encode_to_vec().as_slice());
        assert_eq!(pb::Command::decode(shared.encoded()).unwrap(), cmd);
        assert_eq!(*shared, cmd);
    }
}
