//! Failover without waiting out a dead leader's lease. openraft's leased
//! vote makes a follower wait a lease and then its own election timeout
//! after the last heartbeat (L + [E, L), 1.2-1.6 s at the regional 200/400)
//! before it stands, because a silent leader may only be slow or cut off,
//! and may still be serving lease reads. A leader whose process is gone
//! (kill -9, a crash, the OOM killer) on a host that is still up is
//! different: its address refuses connections. A follower that has not
//! heard from its leader for 1.25 heartbeats (one is late), and at most
//! once a heartbeat, opens a fresh connection to it; when that is refused
//! (or closed or reset before it answers, not merely left unanswered) and
//! the leader is still silent, the follower drops the leader's lease the
//! way openraft's own leadership transfer does, so
//! it votes at once. The best-placed survivor (highest
//! `--leader-priority`, then lowest id) then asks for a pre-vote at once,
//! the next one a heartbeat later, and so on. A pre-vote is only granted
//! by a voter that has seen the refusal too (or whose lease ran out): one
//! follower's mistake cannot depose a leader.
//!
//! A frozen leader (SIGSTOP, a long pause) or a cut link answers nothing,
//! which proves nothing: those fail over on the timers as before. The
//! assumption is that a live leader never refuses its peers; a firewall
//! that rejects (rather than drops) a live leader's traffic to a majority
//! of voters would break it for up to one lease. `--probe-dead-leader
//! false` turns this off.

use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::ServerState;
use openraft::raft::TransferLeaderRequest;

use super::Node;
use crate::raft::NodeId;

/// Runs for as long as the node does.
pub async fn run(node: Arc<Node>) {
    let h = node.timing.heartbeat();
    // One heartbeat is late; at least 50 ms late, so a busy loopback's
    // jitter is no cause.
    let late = h + (h / 4).max(Duration::from_millis(50));
    let mut probed: Option<Instant> = None;
    loop {
        tokio::time::sleep(h / 4).await;
        let m = node.metrics();
        let Some(leader) = m.current_leader.filter(|l| *l != node.id) else {
            continue;
        };
        if m.state != ServerState::Follower {
            continue;
        }
        let heard = *node.heard_leader.lock().expect("heard lock");
        // At most one probe a heartbeat: each is a TLS handshake.
        if heard.elapsed() < late || probed.is_some_and(|p| p.elapsed() < h) {
            continue;
        }
        let Some((_, addr)) = node.leader().filter(|(id, _)| *id == leader) else {
            continue;
        };
        probed = Some(Instant::now());
        if !node
            .peers
            .refuses(&addr, node.timing.connect_timeout())
            .await
        {
            continue;
        }
        // Only if nothing came from it meanwhile, at the same term.
        let now = node.metrics();
        if *node.heard_leader.lock().expect("heard lock") != heard
            || now.vote != m.vote
            || now.current_leader != Some(leader)
        {
            continue;
        }
        tracing::warn!(
            leader,
            %addr,
            silent_ms = heard.elapsed().as_millis() as u64,
            "the leader's address refuses connections and it has gone silent: its process is gone; \
             dropping its lease to fail over at once"
        );
        node.metrics.count_dead_leader();
        // A transfer to the dead leader itself: openraft drops the lease
        // and, since this node is not the target, does nothing else.
        let drop_lease = TransferLeaderRequest::new(m.vote, leader, None);
        if let Err(e) = node.raft.handle_transfer_leader(drop_lease).await {
            tracing::warn!(error = %e, "could not drop the dead leader's lease");
            continue;
        }
        let turn = turn(&node, leader);
        stand_in_turn(&node, leader, turn).await;
    }
}

/// Asks for a pre-vote after those better placed have had their turn, one
/// heartbeat each, and again every half heartbeat (a voter that has not
/// seen the refusal yet says no at once) while the dead leader is the one
/// this node knows, for at most two leases (by then openraft's own
/// timer has stood).
async fn stand_in_turn(node: &Node, dead: NodeId, turn: u32) {
    let h = node.timing.heartbeat();
    tokio::time::sleep(h * turn).await;
    let until = Instant::now() + 2 * node.timing.lease();
    while Instant::now() < until {
        let m = node.metrics();
        if m.current_leader != Some(dead) || m.state != ServerState::Follower {
            return;
        }
        tracing::info!(dead, turn, "asking for a pre-vote");
        if node.raft.trigger().elect(true).await.is_err() {
            return;
        }
        tokio::time::sleep(h / 2).await;
    }
}

/// How many of the other surviving voters are better placed than this one.
fn turn(node: &Node, dead: NodeId) -> u32 {
    let priorities = node.peer_priorities.lock().expect("priorities lock");
    let mine = (node.leader_priority, node.id);
    let better = node
        .other_members(true)
        .into_iter()
        .filter(|(id, _)| *id != dead)
        .filter(|(id, _)| {
            let theirs = priorities.get(id).copied().unwrap_or(1);
            before((theirs, *id), mine)
        })
        .count();
    better as u32
}

/// Whether (priority, id) `a` stands before `b`: higher priority first,
/// then the lower id.
fn before(a: (u32, NodeId), b: (u32, NodeId)) -> bool {
    a.0 > b.0 || (a.0 == b.0 && a.1 < b.1)
}

#[cfg(test)]
mod tests {
    use super::before;

    #[test]
    fn the_higher_priority_stands_first_then_the_lower_id() {
        assert!(before((3, 5), (2, 1)));
        assert!(!before((2, 1), (3, 5)));
        assert!(before((2, 1), (2, 2)));
        assert!(!before((2, 2), (2, 1)));
        assert!(!before((0, 1), (1, 9)), "priority 0 stands last");
    }
}
