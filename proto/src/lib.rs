//! Rekap's wire contract, generated from `proto/rekap/v1/*.proto`.
//!
//! Owns every type that crosses the network or reaches the disk; the node and
//! the client share these definitions so clients in other languages can be
//! generated from the same files.

#![allow(clippy::all, clippy::pedantic)]

/// Package `rekap.v1`.
pub mod v1 {
    tonic::include_proto!("rekap.v1");

    pub use crate::janggal_item::JanggalItem;

    /// Encoded `FileDescriptorSet`, for gRPC server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("rekap_descriptor");
}

pub use v1 as pb;

pub mod backup;
pub mod identity;
mod janggal_item;
pub mod zones;

/// Short summaries for logs (openraft wants its application data `Display`).
mod display {
    use std::fmt;

    use super::v1::{Command, CommandResponse, command, command_response};

    impl fmt::Display for Command {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match &self.kind {
                Some(command::Kind::LoadRegistry(r)) => write!(
                    f,
                    "load_registry(regions={}, tps={}, contests={})",
                    r.regions.len(),
                    r.tps.len(),
                    r.contests.len()
                ),
                Some(command::Kind::Submit(b)) => {
                    write!(f, "submit({} results)", b.submissions.len())
                }
                Some(command::Kind::Correct(c)) => {
                    write!(
                        f,
                        "correct({} {} rev {})",
                        c.tps_id, c.contest_id, c.replaces_revision
                    )
                }
                Some(command::Kind::ClearFlags(c)) => {
                    write!(
                        f,
                        "clear_flags({} {} rev {})",
                        c.tps_id, c.contest_id, c.replaces_revision
                    )
                }
                Some(command::Kind::Review(r)) => {
                    write!(
                        f,
                        "review({} {} rev {})",
                        r.tps_id, r.contest_id, r.replaces_revision
                    )
                }
                Some(command::Kind::Objection(r)) => {
                    write!(
                        f,
                        "objection({} {} rev {})",
                        r.tps_id, r.contest_id, r.replaces_revision
                    )
                }
                Some(command::Kind::UserAdmin(_)) => write!(f, "user_admin"),
                Some(command::Kind::BootstrapAdmin(b)) => write!(f, "bootstrap_admin({})", b.name),
                None => write!(f, "empty"),
            }?;
            match &self.principal {
                Some(p) => write!(f, " by {}", p.name),
                None => Ok(()),
            }
        }
    }

    impl fmt::Display for CommandResponse {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match &self.kind {
                Some(command_response::Kind::LoadRegistry(_)) => write!(f, "registry loaded"),
                Some(command_response::Kind::Submit(b)) => write!(f, "{} outcomes", b.items.len()),
                Some(command_response::Kind::Rejection(r)) => write!(f, "rejected: {}", r.rule),
                Some(command_response::Kind::Correct(c)) => {
                    write!(
                        f,
                        "revision {}",
                        c.result.as_ref().map_or(0, |r| r.revision)
                    )
                }
                Some(command_response::Kind::User(u)) => write!(
                    f,
                    "user {}",
                    u.user.as_ref().map_or("", |u| u.name.as_str())
                ),
                Some(command_response::Kind::None(_)) | None => write!(f, "none"),
            }
        }
    }
}
