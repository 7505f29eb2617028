//! gRPC services: the public `Tally` and `Admin` services, and the internal
//! `Raft` service that carries node-to-node traffic.
//!
//! Owns the translation between gRPC requests and the node: validation that
//! needs no state runs here before anything is proposed, every call goes
//! through `Node::route` (local, forwarded, or UNAVAILABLE with a hint), and
//! refusals become statuses that name their rule.

pub mod admin;
pub mod backup;
pub mod front;
pub mod observe;
pub mod raft;
mod snapshot_rx;
pub mod tally;
pub mod transfer;
pub mod users;
pub mod watch;

use rekap_proto::pb;
use tonic::Status;

use crate::node::Node;
use crate::reply::{Failure, rejection_status};
use crate::security::Caller;
use crate::tally::Action;

/// A request field that must be present.
pub(crate) fn required<T>(v: Option<T>, what: &str) -> Result<T, Failure> {
    v.ok_or_else(|| {
        let rej = crate::tally::rules::invalid("required_field", format!("{what} is required"));
        Failure::Status(rejection_status(&rej))
    })
}

pub(crate) fn refused(rej: pb::Rejection) -> Failure {
    Failure::Status(rejection_status(&rej))
}

/// A command response of the wrong kind means a bug, not bad input.
pub(crate) fn unexpected(resp: pb::CommandResponse) -> Failure {
    match resp.kind {
        Some(pb::command_response::Kind::Rejection(r)) => refused(r),
        other => Failure::Status(Status::internal(format!(
            "unexpected state machine response {other:?}"
        ))),
    }
}

/// Refuses `who` unless the tally's authorization allows `action` now.
pub(crate) fn authorize(node: &Node, who: &Caller, action: Action) -> Result<(), Failure> {
    node.sm
        .try_view()?
        .tally
        .authorize(Some(&who.principal()), &action)
        .map_err(refused)
}
