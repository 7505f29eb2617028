//! What every answer of the public services carries, and how a refusal is
//! worded. Owns the `x-rekap-*` headers (which node answered, whom it takes
//! for the leader, the rule that refused a call, why a call is
//! unavailable), the mapping from a tally `Rejection` to a gRPC status, and
//! `Failure`, the reason a call could not be served here. It sits below
//! the node, the services, security and the HTTP layer, and imports none
//! of them, so each can name a refusal the same way.

use rekap_proto::pb;
use tonic::Status;
use tonic::metadata::MetadataValue;

/// The leader's advertised address, as the answering node knows it.
pub const LEADER_HEADER: &str = "x-rekap-leader";
pub const LEADER_ID_HEADER: &str = "x-rekap-leader-id";
/// The answering node's own id, so a client behind NAT or port mapping can
/// tell which of its endpoints reaches which node.
pub const NODE_ID_HEADER: &str = "x-rekap-node-id";
/// How many times a call was forwarded already.
pub const HOPS_HEADER: &str = "x-rekap-hops";
/// The rule that refused a call, machine-readable.
pub const RULE_HEADER: &str = "x-rekap-rule";
/// Why a call got UNAVAILABLE, machine-readable (see `Unavailable`).
pub const UNAVAILABLE_HEADER: &str = "x-rekap-unavailable";

/// Why a call could not be served here.
#[derive(Clone)]
pub enum Failure {
    Status(Status),
    /// This node is not the leader; `Some` names the leader (id, address)
    /// to forward to.
    NotLeader(Option<(u64, String)>),
}

impl From<Status> for Failure {
    fn from(s: Status) -> Self {
        Failure::Status(s)
    }
}

impl From<crate::store::Installing> for Failure {
    fn from(e: crate::store::Installing) -> Self {
        Failure::Status(e.into())
    }
}

/// The gRPC status for a refused input, naming its rule.
pub fn rejection_status(rej: &pb::Rejection) -> Status {
    let code = tonic::Code::from_i32(rej.code);
    let mut s = Status::new(code, format!("rule={}: {}", rej.rule, rej.message));
    if let Ok(v) = MetadataValue::try_from(rej.rule.as_str()) {
        s.metadata_mut().insert(RULE_HEADER, v);
    }
    s
}

/// A refusal with `code` and `rule` that no tally rule decided (the
/// transport's, or a layer's in front of the services).
pub fn refusal(code: tonic::Code, rule: &'static str, message: impl std::fmt::Display) -> Status {
    let mut s = Status::new(code, format!("rule={rule}: {message}"));
    s.metadata_mut()
        .insert(RULE_HEADER, MetadataValue::from_static(rule));
    s
}

/// Why a node could not serve a call that needs the leader. Every one is
/// safe to retry with the same submission id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unavailable {
    /// No leader is known here, even after waiting for an election.
    NoLeader,
    /// A leader is known but this node could not reach it in time.
    LeaderUnreachable,
    /// This node leads but has not heard from a majority within its lease,
    /// so it takes no new proposals.
    NoQuorum,
    /// Leadership moved while the call was being served or forwarded.
    LeadershipMoved,
    /// This node is a learner or not a member (removed, or not yet added)
    /// and knows no leader to forward to.
    NotMember,
}

impl Unavailable {
    pub fn as_str(self) -> &'static str {
        match self {
            Unavailable::NoLeader => "no_leader",
            Unavailable::LeaderUnreachable => "leader_unreachable",
            Unavailable::NoQuorum => "no_quorum",
            Unavailable::LeadershipMoved => "leadership_moved",
            Unavailable::NotMember => "not_member",
        }
    }

    /// UNAVAILABLE with this reason in `x-rekap-unavailable`.
    pub fn status(self, message: impl Into<String>) -> Status {
        let mut s = Status::unavailable(message);
        s.metadata_mut().insert(
            UNAVAILABLE_HEADER,
            MetadataValue::from_static(self.as_str()),
        );
        s
    }
}
