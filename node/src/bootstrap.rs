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
async fn peer_initialized(addr: &str) -> Option<bool> {
    let ep = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .ok()?
        .connect_timeout(Duration::from_millis(500));
    let ch = tokio::time::timeout(Duration::from_secs(1), ep.connect())
        .await
        .ok()?
        .ok()?;
    let mut req = tonic::Request::new(pb::ClusterStatusRequest {});
    req.set_timeout(Duration::from_secs(1));
    let resp = AdminClient::new(ch).cluster_status(req).await.ok()?;
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
            match peer_initialized(addr).await {
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
