//! Why this node refuses to serve a call now: the checks on membership and
//! quorum that pick the reason it names in `x-rekap-unavailable` (every one
//! safe to retry with the same submission id; see `reply::Unavailable`).

use openraft::async_runtime::WatchReceiver;
use tonic::Status;

use super::Node;
use crate::raft::{NodeId, TypeConfig};
use crate::reply::{Unavailable, rejection_status};

impl Node {
    /// A user's call forwarded by a node counts only if that node is still
    /// a member: a removed node's certificate stays valid until it expires,
    /// and must not go on acting for users. Rules `node_removed` and
    /// `cluster_member`, as the Raft service applies them (without its
    /// vouching: a forward reaches the leader, which knows every member).
    pub(crate) fn forwarder_is_member(&self, id: NodeId) -> Result<(), Status> {
        use crate::tally::rules::{code, reject};
        let refuse = |rule, msg| {
            Err(rejection_status(&reject(
                code::PERMISSION_DENIED,
                rule,
                msg,
            )))
        };
        if self.sm.is_removed(id) {
            return refuse(
                "node_removed",
                format!("node {id} was removed from this cluster and forwards no calls"),
            );
        }
        // Only the leader's view of the membership is current; a node that
        // lags may not know a member added since, and forwards the call on.
        let m = self.raft.metrics();
        let m = m.borrow_watched();
        let membership = m.membership_config.membership();
        if m.current_leader == Some(self.id) && membership.get_node(&id).is_none() {
            return refuse(
                "cluster_member",
                format!("node {id} is not a member of this cluster"),
            );
        }
        Ok(())
    }

    /// NO_LEADER, or NOT_MEMBER when this node could not lead anyway.
    pub(crate) fn no_leader(&self) -> Status {
        let m = self.metrics();
        let membership = m.membership_config.membership();
        if membership.get_node(&self.id).is_none() {
            Unavailable::NotMember.status(
                "this node is not a member of the cluster (removed, or not added yet) \
                 and knows no leader; send to a member",
            )
        } else if !membership.voter_ids().any(|v| v == self.id) {
            Unavailable::NotMember.status(
                "this node is a learner and knows no leader; send to a voter, \
                 or retry with the same submission id",
            )
        } else {
            Unavailable::NoLeader.status("no leader elected yet; retry with the same submission id")
        }
    }

    /// NO_QUORUM, naming the voters whose last acknowledgement is older
    /// than the lease (or who never acknowledged this leader).
    pub(crate) fn no_quorum(&self, what: &str) -> Status {
        use openraft::Instant as _;
        let m = self.metrics();
        if !m
            .membership_config
            .membership()
            .voter_ids()
            .any(|v| v == self.id)
        {
            // A leader that removed itself keeps leading a membership it is
            // not in until it hands over; nobody acknowledges it any more.
            return Unavailable::NotMember.status(
                "this node was removed from the cluster and takes no calls; send to a member",
            );
        }
        let now = openraft::alias::InstantOf::<TypeConfig>::now();
        let lease = self.timing.lease();
        let acked = m.heartbeat.clone().unwrap_or_default();
        let silent: Vec<String> = m
            .membership_config
            .membership()
            .voter_ids()
            .filter(|id| *id != self.id)
            .filter(|id| {
                acked
                    .get(id)
                    .and_then(|t| t.as_ref())
                    .is_none_or(|t| now >= **t + lease)
            })
            .map(|id| format!("node {id}"))
            .collect();
        Unavailable::NoQuorum.status(format!(
            "{what} (no acknowledgement within {lease:?} from: {}); retry with the same submission id",
            silent.join(", ")
        ))
    }
}
