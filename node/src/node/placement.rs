//! Leader placement: where the leadership sits. Each node has a
//! `--leader-priority`; the leader hands its leadership to the voter with
//! the highest priority above its own once that voter has been answering
//! (within a lease), caught up, and following this leader for
//! `Timing::placement_settle`, so a flapping link does not bounce the
//! leader. Its answers are asked for, not read from the heartbeats: a
//! leader behind a slow link (a satellite voter that won an election) may
//! see every heartbeat time out and must still hand over. The hand-over
//! is openraft's transfer (the target stands at once with the leader's
//! log), never an election race. A leader with priority 0 hands over after
//! one lease: it leads only while no one else can.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::ServerState;

use super::Node;
use crate::raft::NodeId;

/// How often the leader looks.
const TICK: Duration = Duration::from_secs(1);

/// Runs for as long as the node does; acts only while it leads.
pub async fn run(node: Arc<Node>) {
    let mut since: BTreeMap<NodeId, Instant> = BTreeMap::new();
    loop {
        tokio::time::sleep(TICK).await;
        let m = node.metrics();
        if m.state != ServerState::Leader {
            since.clear();
            continue;
        }
        let last = m.last_log_index.unwrap_or(0);
        let mut ready: Vec<(u32, NodeId)> = Vec::new();
        for (id, addr) in node.other_members(true) {
            let better = priority_if_ready(&node, &addr, id, m.current_term, last)
                .await
                .filter(|p| *p > node.leader_priority);
            let Some(priority) = better else {
                since.remove(&id);
                continue;
            };
            let first = *since.entry(id).or_insert_with(Instant::now);
            if first.elapsed() >= settle(&node) {
                ready.push((priority, id));
            }
        }
        // The highest priority; among equals, the lowest id.
        let Some(&(priority, to)) = ready
            .iter()
            .max_by_key(|(p, id)| (*p, std::cmp::Reverse(*id)))
        else {
            continue;
        };
        tracing::info!(
            to,
            their_priority = priority,
            my_priority = node.leader_priority,
            term = m.current_term,
            "handing the leadership to a better-placed voter"
        );
        if let Err(e) = node.begin_handover(to).await {
            tracing::warn!(to, error = %e, "could not hand over the leadership");
        }
        // Whatever came of it, every candidate proves itself again.
        since.clear();
    }
}

/// How long a better voter must have been ready.
fn settle(node: &Node) -> Duration {
    match node.leader_priority {
        0 => node.timing.lease(),
        _ => node.timing.placement_settle(),
    }
}

/// The peer's priority, if it answers within a lease, follows this node at
/// `term`, and has applied close to `last` (this leader's last entry).
async fn priority_if_ready(
    node: &Node,
    addr: &str,
    id: NodeId,
    term: u64,
    last: u64,
) -> Option<u32> {
    let s = node.peer_status(addr, node.timing.lease()).await?;
    let caught_up = s.applied_index.unwrap_or(0) + super::CAUGHT_UP_LAG >= last;
    (s.node_id == id && s.term == term && s.leader_id == Some(node.id) && caught_up)
        .then_some(s.leader_priority)
}
