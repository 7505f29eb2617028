//! openraft's type configuration for Rekap and the aliases of its types.
//! The storage layer implements openraft's traits for these types, so it
//! imports this module; only `raft/mod.rs` ties the types to the store
//! (`Raft`), which keeps store and consensus from importing each other.

use std::sync::Arc;

use rekap_proto::pb;

use super::cmd::Cmd;

openraft::declare_raft_types!(
    /// Rekap's Raft types: the tally `Command`, shared (see `cmd`), is the
    /// application data.
    pub TypeConfig:
        D = Arc<Cmd>,
        R = pb::CommandResponse,
        Node = openraft::BasicNode,
);

pub type NodeId = u64;

pub type LogId = openraft::alias::LogIdOf<TypeConfig>;
pub type Vote = openraft::alias::VoteOf<TypeConfig>;
pub type LeaderId = openraft::alias::LeaderIdOf<TypeConfig>;
pub type Entry = openraft::alias::EntryOf<TypeConfig>;
pub type Membership = openraft::Membership<NodeId, openraft::BasicNode>;
pub type StoredMembership = openraft::alias::StoredMembershipOf<TypeConfig>;
pub type SnapshotMeta = openraft::alias::SnapshotMetaOf<TypeConfig>;
pub type RaftMetrics = openraft::RaftMetrics<TypeConfig>;
