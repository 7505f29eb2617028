//! Warns when a peer runs other timing than this node: a leader's lease is
//! only safe while every voter keeps the same one (`crate::timing`), and a
//! rolling change of the flags is easy to leave half done.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rekap_proto::pb;
use rekap_proto::pb::admin_client::AdminClient;

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
        let members: Vec<(NodeId, String)> = node
            .metrics()
            .membership_config
            .membership()
            .nodes()
            .filter(|(id, _)| **id != node.id)
            .map(|(id, n)| (*id, n.addr.clone()))
            .collect();
        for (id, addr) in members {
            let Some(theirs) = timing_of_peer(&node, &addr).await else {
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

async fn timing_of_peer(node: &Node, addr: &str) -> Option<pb::Timing> {
    let ch = node.peers.public(addr).ok()?;
    let ask = node.timing.lease() * 2 + Duration::from_secs(1);
    let mut req = tonic::Request::new(pb::ClusterStatusRequest {});
    req.set_timeout(ask);
    let resp = tokio::time::timeout(ask, AdminClient::new(ch).cluster_status(req))
        .await
        .ok()?
        .ok()?;
    resp.into_inner().timing
}
