//! What a node asks of the other members: who they are, and their status.
//! Placement, the timing check, the connection warmer and the
//! transfer's confirmation all ask the same way.

use std::time::Duration;

use rekap_proto::pb;
use rekap_proto::pb::admin_client::AdminClient;

use super::Node;
use crate::raft::NodeId;

impl Node {
    /// The other members (voters only, when `voters`), with their addresses.
    pub fn other_members(&self, voters: bool) -> Vec<(NodeId, String)> {
        let m = self.metrics();
        let membership = m.membership_config.membership();
        membership
            .nodes()
            .filter(|(id, _)| **id != self.id)
            .filter(|(id, _)| !voters || membership.voter_ids().any(|v| v == **id))
            .map(|(id, n)| (*id, n.addr.clone()))
            .collect()
    }

    /// The status of the node at `addr`, if it answers within `within`.
    pub async fn peer_status(
        &self,
        addr: &str,
        within: Duration,
    ) -> Option<pb::ClusterStatusResponse> {
        let ch = self.peers.public(addr).ok()?;
        let mut req = tonic::Request::new(pb::ClusterStatusRequest {});
        req.set_timeout(within);
        let resp = tokio::time::timeout(within, AdminClient::new(ch).cluster_status(req))
            .await
            .ok()?
            .ok()?;
        Some(resp.into_inner())
    }
}
