//! `Tally.Watch`: live views of a region served from this node's own
//! state (see `crate::watch`). Never forwarded, never behind a read
//! barrier: a follower serves its watchers itself, so watchers spread over
//! the cluster and keep their streams while a leader is being elected.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use rekap_proto::pb;
use tonic::{Request, Response, Status};

use super::authorize;
use crate::node::Node;
use crate::reply::{Failure, rejection_status};
use crate::security::{Caller, caller_of};
use crate::tally::Action;
use crate::watch::{Refusal, Subscription, View};

pub type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::WatchUpdate, Status>> + Send>>;

/// How long a node that is behind the watcher's `from_index` may take to
/// catch up before the watcher is sent to another node.
const CATCH_UP: Duration = Duration::from_secs(5);

fn status(f: Failure) -> Status {
    match f {
        Failure::Status(s) => s,
        Failure::NotLeader(_) => Status::internal("a watch needs no leader"),
    }
}

/// A follower authorizes against its own state, which may not yet hold a
/// grant (or user) the leader has committed: a refusal is checked again
/// once this node has applied everything it knows to be committed.
async fn authorize_fresh(node: &Node, who: &Caller, action: Action<'_>) -> Result<(), Failure> {
    let Err(first) = authorize(node, who, action) else {
        return Ok(());
    };
    let committed = node.metrics().local_committed.map_or(0, |l| l.index);
    if committed <= node.sm.applied_index()
        || tokio::time::timeout(CATCH_UP, node.sm.wait_applied(committed))
            .await
            .is_err()
    {
        return Err(first);
    }
    authorize(node, who, action)
}

pub async fn watch(
    node: &Arc<Node>,
    req: Request<pb::WatchRequest>,
) -> Result<Response<WatchStream>, Status> {
    let who = caller_of(&req)?;
    let r = req.into_inner();
    let target = || Action::Read {
        target: &r.region_code,
    };
    authorize_fresh(node, &who, target())
        .await
        .map_err(status)?;
    if tokio::time::timeout(CATCH_UP, node.sm.wait_applied(r.from_index))
        .await
        .is_err()
    {
        return Err(Status::unavailable(format!(
            "this node has applied up to index {}, behind from_index {}; watch from another node",
            node.sm.applied_index(),
            r.from_index
        )));
    }
    let sub = node
        .watches
        .subscribe(&r.region_code, &r.contest_id)
        .map_err(|e| match e {
            Refusal::Rejected(rej) => rejection_status(&rej),
            Refusal::Installing(i) => i.into(),
            Refusal::Busy(what) => Status::resource_exhausted(format!(
                "this node serves as many watched {what} as it takes; watch from another node"
            )),
        })?;
    // A watcher that saw this region at `from_index` already has every
    // figure of a view that has not changed since.
    let first = !(r.from_index > 0 && sub.rx.borrow().changed_index <= r.from_index);
    let state = Watching {
        node: node.clone(),
        who,
        region: r.region_code,
        first,
        sub,
    };
    let stream = futures::stream::unfold(Some(state), |state| async move {
        let mut s = state?;
        match s.next().await {
            Ok(Some(v)) => Some((Ok(v.to_pb(s.node.id)), Some(s))),
            Ok(None) => None,
            Err(e) => Some((Err(e), None)),
        }
    });
    Ok(Response::new(Box::pin(stream) as WatchStream))
}

struct Watching {
    node: Arc<Node>,
    who: Caller,
    region: String,
    first: bool,
    sub: Subscription,
}

impl Watching {
    /// The next view to send; `None` when the node stops.
    async fn next(&mut self) -> Result<Option<Arc<View>>, Status> {
        if !std::mem::take(&mut self.first) && !self.sub.changed().await {
            return Ok(None);
        }
        let view = self.sub.rx.borrow_and_update().clone();
        // A permission revoked while the stream is open ends it. During a
        // snapshot install the grant is checked at the next view.
        let action = Action::Read {
            target: &self.region,
        };
        match authorize(&self.node, &self.who, action) {
            Err(Failure::Status(s)) if s.code() != tonic::Code::Unavailable => Err(s),
            _ => Ok(Some(view)),
        }
    }
}
