//! Consensus: openraft's type configuration for Rekap, its tuning, and the
//! conversions between openraft's values and our protobuf encoding.
//!
//! This module owns the boundary with openraft. Everything openraft hands us
//! that must cross the network or reach the disk is converted here into the
//! `rekap.v1` messages, so an openraft upgrade never changes what is on disk.

pub mod cmd;
pub mod compaction;
pub mod convert;
pub mod types;

use std::sync::Arc;

pub use cmd::Cmd;
pub use types::*;

/// The Raft handle, over Rekap's state machine store. The store names only
/// `types`, never this module, so the two do not import each other.
pub type Raft = openraft::Raft<TypeConfig, crate::store::StateMachineStore>;

/// Timing: a follower stands for election once it has heard nothing for
/// the leader lease (`election_timeout_max`) plus its own random election
/// timeout, so failover after a leader dies takes 0.65–0.8 s plus one vote
/// and one commit. Heartbeats every 50 ms keep a live leader's followers
/// quiet: a false election needs 650 ms of silence, which is 13 missed
/// heartbeats and far above an fsync (node/DESIGN.md, "Failover").
/// Openraft's leader lease is `election_timeout_max`: a follower that heard
/// from the leader within it refuses to vote for anyone else.
pub const LEADER_LEASE: std::time::Duration = std::time::Duration::from_millis(400);

pub fn config(snapshot_every: u64) -> anyhow::Result<Arc<openraft::Config>> {
    let c = openraft::Config {
        cluster_name: "rekap".to_string(),
        heartbeat_interval: 50,
        election_timeout_min: 250,
        election_timeout_max: LEADER_LEASE.as_millis() as u64,
        install_snapshot_timeout: 5_000,
        // With registry chunks of up to 8 MiB, 64 entries stay under the
        // Raft message limit (network::MAX_RAFT_MESSAGE).
        max_payload_entries: 64,
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(snapshot_every),
        // Never purge by count: `compaction` purges behind the previous
        // snapshot, and builds snapshots by bytes too.
        max_in_snapshot_log_to_keep: u64::MAX,
        purge_batch_size: 256,
        enable_pre_vote: Some(true),
        ..Default::default()
    };
    Ok(Arc::new(c.validate()?))
}
