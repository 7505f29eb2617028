//! Moving the leadership, and confirming where it went. openraft's
//! transfer only asks the target to stand; an election that was already
//! under way, or a follower whose timer fires meanwhile, can win instead,
//! one term later. So the answer names a leader only once that leader
//! says it leads at the term this node follows it at, and holds its lease
//! (a majority acknowledged it within the lease, so no other node can win
//! an election meanwhile), and this node still follows it at that term.

use std::time::{Duration, Instant};

use openraft::async_runtime::WatchReceiver;
use rekap_proto::pb;
use tonic::Status;

use crate::node::Node;
use crate::raft::NodeId;
use crate::reply::Failure;

/// How long the answer waits for a leader it can confirm.
const CONFIRM_WITHIN: Duration = Duration::from_secs(5);
/// How long one status call to the leader may take.
const ASK_TIMEOUT: Duration = Duration::from_secs(1);

/// Hands the leadership to `to` (this node leads) and waits until the new
/// leader is confirmed, or `CONFIRM_WITHIN` has passed.
pub async fn transfer(node: &Node, to: NodeId) -> Result<pb::TransferLeaderResponse, Failure> {
    let deadline = Instant::now() + CONFIRM_WITHIN;
    if to == node.id {
        // Already there: only confirm it.
        return Ok(confirm(node, to, deadline).await);
    }
    node.begin_handover(to)
        .await
        .map_err(|e| Failure::Status(Status::unavailable(e.to_string())))?;
    // The transfer is under way once someone else leads, or the term moved.
    let term = node.metrics().current_term;
    let _ = node
        .raft
        .wait(Some(CONFIRM_WITHIN))
        .metrics(
            |m| m.current_term > term || m.current_leader.is_some_and(|l| l != node.id),
            "the leadership moved",
        )
        .await;
    Ok(confirm(node, to, deadline).await)
}

/// Waits until this node follows a leader that confirms it leads with its
/// lease at that term, or until `deadline`; says which.
async fn confirm(node: &Node, to: NodeId, deadline: Instant) -> pb::TransferLeaderResponse {
    let mut last = (None, 0);
    while Instant::now() < deadline {
        let (leader, term) = following(node);
        last = (leader, term);
        if let Some(id) = leader
            && leads_with_lease(node, id, term).await
            && following(node) == (Some(id), term)
        {
            tracing::info!(leader = id, term, asked = to, "leadership confirmed");
            return pb::TransferLeaderResponse {
                leader_id: Some(id),
                term,
                confirmed: true,
            };
        }
        let mut rx = node.raft.metrics();
        let left = deadline.saturating_duration_since(Instant::now());
        let _ = tokio::time::timeout(left.min(Duration::from_millis(100)), rx.changed()).await;
    }
    tracing::warn!(asked = to, leader = ?last.0, term = last.1, "could not confirm the new leader");
    pb::TransferLeaderResponse {
        leader_id: last.0,
        term: last.1,
        confirmed: false,
    }
}

/// The leader this node follows, and the term it follows it at.
fn following(node: &Node) -> (Option<NodeId>, u64) {
    let m = node.raft.metrics();
    let m = m.borrow_watched();
    (m.current_leader, m.current_term)
}

/// Whether `id` says it leads at `term` and a majority acknowledged it
/// within its lease.
async fn leads_with_lease(node: &Node, id: NodeId, term: u64) -> bool {
    if id == node.id {
        let m = node.metrics();
        return m.state == openraft::ServerState::Leader
            && m.current_term == term
            && node.quorum_fresh();
    }
    let Some(addr) = node
        .metrics()
        .membership_config
        .membership()
        .get_node(&id)
        .map(|n| n.addr.clone())
    else {
        return false;
    };
    node.peer_status(&addr, ASK_TIMEOUT).await.is_some_and(|s| {
        s.node_id == id && s.state == "leader" && s.term == term && s.quorum == Some(true)
    })
}
