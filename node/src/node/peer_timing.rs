//! Warns when a peer runs other timing than this node: a leader's lease is
//! only safe while every voter keeps the same one (`crate::timing`), and a
//! rolling change of the flags is easy to leave half done.

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
        tokio::time::sleep(EVERY).await;
        let ask = node.timing.lease() * 2 + Duration::from_secs(1);
        for (id, addr) in node.other_members(false) {
            let Some(theirs) = node.peer_status(&addr, ask).await.and_then(|s| s.timing) else {
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
    }
}

fn show(t: &pb::Timing) -> String {
    format!(
        "{}/{}-{} ms",
        t.heartbeat_interval_ms, t.election_timeout_ms, t.lease_ms
    )
}
