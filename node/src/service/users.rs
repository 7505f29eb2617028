//! The user and role calls of the `Admin` service: each is one replicated
//! command, so a grant or a revocation takes effect on every node at one
//! log index. Admin only (checked before proposing and again at apply).

use rekap_proto::pb;
use rekap_proto::pb::admin_client::AdminClient;
use rekap_proto::pb::user_admin_request::Op;
use tonic::{Request, Response, Status};

use super::{authorize, unexpected};
use crate::node::Node;
use crate::reply::Failure;
use crate::security::Caller;
use crate::tally::Action;

async fn propose(node: &Node, who: &Caller, op: Op) -> Result<pb::UserResponse, Failure> {
    let cmd = pb::Command {
        kind: Some(pb::command::Kind::UserAdmin(pb::UserAdminRequest {
            op: Some(op),
        })),
        principal: None,
        proposed_at_ms: 0,
    };
    match node.propose(cmd, who).await? {
        pb::CommandResponse {
            kind: Some(pb::command_response::Kind::User(u)),
        } => Ok(u),
        other => Err(unexpected(other)),
    }
}

/// Routes one user change to the leader and proposes it there.
pub async fn change<Req>(
    node: &Node,
    req: Request<Req>,
    op: fn(Req) -> Op,
) -> Result<Response<pb::UserResponse>, Status>
where
    Req: Clone + Send + 'static,
{
    node.route(
        req,
        |r, who| async move { propose(node, &who, op(r)).await },
        |ch, r| async move {
            // The forwarded call is the same change, in its command form.
            let mut admin = AdminClient::new(ch);
            let (md, _, body) = r.into_parts();
            match op(body) {
                Op::Add(b) => admin.add_user(forwarded(md, b)).await,
                Op::Grant(b) => admin.grant_role(forwarded(md, b)).await,
                Op::Revoke(b) => admin.revoke_role(forwarded(md, b)).await,
                Op::SetDisabled(b) => admin.set_user_disabled(forwarded(md, b)).await,
                Op::RevokeCert(b) => admin.revoke_certificate(forwarded(md, b)).await,
            }
        },
    )
    .await
}

/// `body` with the forwarding metadata (hops, deadline, asserted user).
fn forwarded<T>(md: tonic::metadata::MetadataMap, body: T) -> Request<T> {
    let mut r = Request::new(body);
    *r.metadata_mut() = md;
    r
}

/// Every user, after a read barrier (on the leader, or forwarded there).
pub async fn list(
    node: &Node,
    req: Request<pb::ListUsersRequest>,
) -> Result<Response<pb::ListUsersResponse>, Status> {
    node.route(
        req,
        |_r, who| async move {
            node.read_barrier(pb::Consistency::Linearizable as i32)
                .await?;
            authorize(node, &who, Action::Users)?;
            let view = node.sm.try_view()?;
            Ok(pb::ListUsersResponse {
                users: view.tally.users().cloned().collect(),
                applied_index: view.last_applied.map_or(0, |l| l.index),
            })
        },
        |ch, r| async move { AdminClient::new(ch).list_users(r).await },
    )
    .await
}
