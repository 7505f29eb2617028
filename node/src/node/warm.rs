//! Keeps this node's connections to the other voters open, so the first
//! vote after a leader dies does not wait for a TCP and TLS handshake
//! (three round trips on a WAN link, half a second on the regional one).

use std::sync::Arc;
use std::time::Duration;

use super::Node;

/// How often each connection is checked; an open one costs one health
/// check per period, a dropped one is opened again.
const EVERY: Duration = Duration::from_secs(5);

/// Runs for as long as the node does.
pub async fn run(node: Arc<Node>) {
    loop {
        let m = node.metrics();
        let voters: Vec<String> = m
            .membership_config
            .membership()
            .voter_ids()
            .filter(|id| *id != node.id)
            .filter_map(|id| {
                m.membership_config
                    .membership()
                    .get_node(&id)
                    .map(|n| n.addr.clone())
            })
            .collect();
        for addr in voters {
            node.peers.warm(&addr, node.timing.lease()).await;
        }
        tokio::time::sleep(EVERY).await;
    }
}
