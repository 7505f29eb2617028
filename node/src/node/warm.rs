//! Keeps this node's connections to the other voters open, so a failover
//! (the first vote after a leader dies, the new leader's first heartbeat,
//! the first call a follower forwards to it) does not wait for TCP and TLS
//! handshakes (three round trips each on a WAN link, half a second on the
//! regional one).

use std::sync::Arc;
use std::time::Duration;

use super::Node;

/// How often each connection is checked; an open one costs one health
/// check per period, a dropped one is opened again.
const EVERY: Duration = Duration::from_secs(5);

/// Runs for as long as the node does.
pub async fn run(node: Arc<Node>) {
    loop {
        for (_, addr) in node.other_members(true) {
            node.peers.warm(&addr, node.timing.lease()).await;
        }
        tokio::time::sleep(EVERY).await;
    }
}
