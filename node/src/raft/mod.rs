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

/// Openraft's settings for Rekap. The timing comes from `crate::timing`
/// (the lease is `election_timeout_max`: a follower that heard from the
/// leader within it refuses to vote for anyone else).
pub fn config(
    snapshot_every: u64,
    timing: crate::timing::Timing,
) -> anyhow::Result<Arc<openraft::Config>> {
    let c = openraft::Config {
        cluster_name: "rekap".to_string(),
        heartbeat_interval: timing.heartbeat_ms(),
        election_timeout_min: timing.election_ms(),
        election_timeout_max: timing.lease_ms(),
        install_snapshot_timeout: timing.install_snapshot_timeout_ms(),
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
