//! Warns when a peer runs other timing than this node: a leader's lease is
//! only safe while every voter keeps the same one (`crate::timing`), and a
//! rolling change of the flags is easy to leave half done. Keeps the
//! peers' leader priorities on the way (`Node::peer_priorities`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rekap_proto::pb;

use super::Node;
use crate::raft::NodeId;

/// How often the members are asked; a mismatch is logged once per change.
const EVERY: Duration = Duration::from_secs(30);

/// Runs for as long as the node does.
pub async fn watch(node: Arc<Node>) {
    let mine = node.timing.to_pb();
    let mut told: HashMap<NodeId, pb::Timing> = HashMap::new();
    loop {
        let ask = node.timing.lease() * 2 + Duration::from_secs(1);
        for (id, addr) in node.other_members(false) {
            let Some(status) = node
                .peer_status(&addr, ask)
                .await
                .filter(|s| s.node_id == id)
            else {
                continue;
            };
            // Kept for `dead_leader`, which picks who stands first by it.
            node.peer_priorities
                .lock()
                .expect("priorities lock")
                .insert(id, status.leader_priority);
            let Some(theirs) = status.timing else {
                continue;
            };
            if theirs == mine {
                told.remove(&id);
            } else if told.get(&id) != Some(&theirs) {
                tracing::warn!(
                    peer = id,
                    %addr,
                    theirs = show(&theirs),
                    mine = show(&mine),
                    "a peer runs other timing: give every node the same --heartbeat-interval and \
                     --election-timeout (a leader's lease is only safe then)"
                );
                told.insert(id, theirs);
            }
        }
        tokio::time::sleep(EVERY).await;
    }
}

fn show(t: &pb::Timing) -> String {
    format!(
        "{}/{}-{} ms",
        t.heartbeat_interval_ms, t.election_timeout_ms, t.lease_ms
    )
}
