//! Cluster initialisation: exactly once, on a pristine cluster.
//!
//! Every node of a new cluster is started with the same `--initial-cluster`
//! list. Only the node with the lowest id initialises, and only after a
//! majority of the listed nodes answer and none of them is initialised
//! already, so a node that lost its disk can never re-initialise a running
//! cluster (openraft#1535). Restarted nodes find their state on disk and skip
//! this entirely.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use openraft::BasicNode;
use openraft::async_runtime::WatchReceiver;
use openraft::errors::{InitializeError, RaftError};
use rekap_proto::pb;
use rekap_proto::pb::admin_client::AdminClient;
use tonic::Status;

use crate::node::Node;
use crate::raft::{NodeId, Raft};

/// Initialises `raft` with `members` unless it already is. Returns whether
/// it was initialised before the call (a harmless no-op).
pub async fn initialize(raft: &Raft, members: BTreeMap<NodeId, BasicNode>) -> Result<bool, Status> {
    if raft
        .is_initialized()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?
    {
        return Ok(true);
    }
    match raft.initialize(members).await {
        Ok(()) => Ok(false),
        Err(RaftError::APIError(InitializeError::NotAllowed(_))) => Ok(true),
        Err(RaftError::APIError(InitializeError::NotInMembers(e))) => {
            Err(Status::invalid_argument(format!("rule=init_members: {e}")))
        }
        Err(RaftError::Fatal(f)) => Err(Status::unavailable(f.to_string())),
    }
}

/// Whether a peer answers, and whether it is part of a cluster already.
async fn peer_initialized(node: &Node, addr: &str) -> Option<bool> {
    let ch = node.peers.public(addr).ok()?;
    let mut req = tonic::Request::new(pb::ClusterStatusRequest {});
    req.set_timeout(Duration::from_secs(1));
    let resp = tokio::time::timeout(
        Duration::from_secs(1),
        AdminClient::new(ch).cluster_status(req),
    )
    .await
    .ok()?
    .ok()?;
    Some(resp.into_inner().initialized)
}

/// Runs in the background on every node started with an initial cluster.
pub async fn auto_initialize(node: Arc<Node>, initial: BTreeMap<NodeId, String>) {
    let Some(&first) = initial.keys().next() else {
        return;
    };
    if first != node.id {
        return;
    }
    let members: BTreeMap<NodeId, BasicNode> = initial
        .iter()
        .map(|(id, addr)| (*id, BasicNode { addr: addr.clone() }))
        .collect();
    loop {
        if node.raft.is_initialized().await.unwrap_or(true) {
            return;
        }
        let mut pristine = 1;
        let mut someone_initialized = false;
        for (id, addr) in &initial {
            if *id == node.id {
                continue;
            }
            match peer_initialized(&node, addr).await {
                Some(true) => someone_initialized = true,
                Some(false) => pristine += 1,
                None => {}
            }
        }
        if someone_initialized {
            tracing::info!("a peer is already initialised; waiting to be contacted");
            return;
        }
        if pristine * 2 > initial.len() {
            match initialize(&node.raft, members.clone()).await {
                Ok(_) => {
                    tracing::info!(members = ?initial, "cluster initialised");
                    return;
                }
                Err(e) => tracing::warn!(error = %e, "initialisation failed; retrying"),
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Runs on every node: while the cluster has no users and this node leads,
/// proposes its first admin (from --initial-admin, or the caller of
/// InitCluster). The state machine accepts only the first such command, so
/// a leader change in between cannot make two admins.
pub async fn ensure_first_admin(node: Arc<Node>) {
    let mut rx = node.raft.metrics();
    loop {
        if node.sm.try_view().is_ok_and(|v| v.tally.auth_enabled()) {
            return;
        }
        let pending = node.first_admin.lock().expect("first admin lock").clone();
        let leads = node.leader().is_some_and(|(id, _)| id == node.id);
        if let (Some((name, who)), true) = (pending, leads) {
            let cmd = pb::Command {
                kind: Some(pb::command::Kind::BootstrapAdmin(pb::BootstrapAdmin {
                    name: name.clone(),
                })),
                principal: None,
                proposed_at_ms: 0,
            };
            match node.propose(cmd, &who).await {
                Ok(pb::CommandResponse {
                    kind: Some(pb::command_response::Kind::User(_)),
                }) => tracing::info!(admin = %name, "first admin set"),
                Ok(other) => {
                    tracing::warn!(admin = %name, response = %other, "first admin not set")
                }
                Err(_) => tracing::debug!(admin = %name, "first admin not set yet; retrying"),
            }
        }
        // Wake on a leadership change, or look again shortly.
        let _ = tokio::time::timeout(Duration::from_millis(300), rx.changed()).await;
    }
}
