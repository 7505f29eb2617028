//! The internal `Raft` service: hands peers' messages to openraft, but only
//! from callers with a node certificate whose node id belongs to the
//! cluster. A user certificate, even one from the cluster's CA, is refused
//! (hashicorp/consul#792).

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use openraft::async_runtime::WatchReceiver;
use rekap_proto::pb;
use tonic::{Request, Response, Status, Streaming};

use crate::node::Node;
use crate::raft::NodeId;
use crate::raft::convert as cv;
use crate::reply::RULE_HEADER;
use crate::security::{Caller, caller_of};

/// How long a member's word that an unknown node id belongs to the cluster
/// (or does not) is trusted.
const VOUCH_TTL: Duration = Duration::from_secs(10);

pub struct RaftService {
    node: Arc<Node>,
    /// Node ids this node does not know but a member vouched for (true) or
    /// did not (false), and when that was asked.
    vouched: Mutex<HashMap<NodeId, (Instant, bool)>>,
    snapshots: super::snapshot_rx::Receiving,
}

fn denied(rule: &str, msg: String) -> Status {
    let mut s = Status::permission_denied(format!("rule={rule}: {msg}"));
    if let Ok(v) = rule.parse() {
        s.metadata_mut().insert(RULE_HEADER, v);
    }
    s
}

fn fatal(e: impl std::fmt::Display) -> Status {
    Status::unavailable(format!("raft stopped on this node: {e}"))
}

impl RaftService {
    pub fn new(node: Arc<Node>) -> Self {
        RaftService {
            node,
            vouched: Mutex::new(HashMap::new()),
            snapshots: Default::default(),
        }
    }

    /// Admits a caller to the Raft service: a node certificate whose node id
    /// is a member as this node knows it. A node that knows no membership yet
    /// (it is being added) admits any node. A node id it does not know may
    /// still be a member this node has not heard of (it missed the change
    /// that added it): a member it does know must vouch for it.
    async fn admit<T>(&self, req: &Request<T>) -> Result<(), Status> {
        let id = match caller_of(req)? {
            Caller::Insecure => return Ok(()),
            Caller::Node(id) => id,
            Caller::User { name, .. } => {
                return Err(denied(
                    "node_identity",
                    format!("the Raft service takes only node certificates, not user {name:?}"),
                ));
            }
        };
        if self.node.sm.is_removed(id) {
            return Err(denied(
                "node_removed",
                format!("node {id} was removed from this cluster and is never admitted again"),
            ));
        }
        let members: Vec<(NodeId, String)> = {
            let m = self.node.raft.metrics();
            let m = m.borrow_watched();
            m.membership_config
                .membership()
                .nodes()
                .map(|(id, n)| (*id, n.addr.clone()))
                .collect()
        };
        if members.is_empty() || members.iter().any(|(m, _)| *m == id) {
            return Ok(());
        }
        if self.vouch(id, &members).await {
            return Ok(());
        }
        Err(denied(
            "cluster_member",
            format!("node {id} is not a member of this cluster"),
        ))
    }

    async fn vouch(&self, id: NodeId, members: &[(NodeId, String)]) -> bool {
        if let Some((at, ok)) = self.vouched.lock().expect("vouch lock").get(&id)
            && at.elapsed() < VOUCH_TTL
        {
            return *ok;
        }
        let mut ok = false;
        for (m, addr) in members.iter().filter(|(m, _)| *m != self.node.id) {
            let Ok(ch) = self.node.peers.public(addr) else {
                continue;
            };
            let mut req = Request::new(pb::ClusterStatusRequest {});
            req.set_timeout(Duration::from_secs(1));
            let mut admin = pb::admin_client::AdminClient::new(ch);
            let call = admin.cluster_status(req);
            if let Ok(Ok(s)) = tokio::time::timeout(Duration::from_secs(1), call).await
                && s.get_ref().members.iter().any(|x| x.node_id == id)
            {
                tracing::info!(
                    node = id,
                    vouched_by = m,
                    "admitting a member this node had not heard of"
                );
                ok = true;
                break;
            }
        }
        self.vouched
            .lock()
            .expect("vouch lock")
            .insert(id, (Instant::now(), ok));
        ok
    }
}

type AppendStream = Pin<Box<dyn Stream<Item = Result<pb::StreamAppendResponse, Status>> + Send>>;

#[tonic::async_trait]
impl pb::raft_server::Raft for RaftService {
    async fn append(
        &self,
        req: Request<pb::AppendRequest>,
    ) -> Result<Response<pb::AppendResponse>, Status> {
        self.admit(&req).await?;
        let rpc = cv::append_request_from_pb(req.into_inner())?;
        let resp = self.node.raft.append_entries(rpc).await.map_err(fatal)?;
        if matches!(
            resp,
            openraft::raft::AppendEntriesResponse::Success
                | openraft::raft::AppendEntriesResponse::PartialSuccess(_)
        ) {
            self.node.heard_from_leader();
        }
        Ok(Response::new(cv::append_response_to_pb(&resp)))
    }

    type StreamAppendStream = AppendStream;

    async fn stream_append(
        &self,
        req: Request<Streaming<pb::AppendRequest>>,
    ) -> Result<Response<Self::StreamAppendStream>, Status> {
        self.admit(&req).await?;
        // A malformed request ends the input; openraft then ends the output.
        let input = req
            .into_inner()
            .take_while(|r| futures::future::ready(r.is_ok()))
            .filter_map(|r| async move { r.ok().and_then(|r| cv::append_request_from_pb(r).ok()) });
        let node = self.node.clone();
        let output = self.node.raft.stream_append(input).map(move |r| match r {
            Ok(res) => {
                if res.is_ok() {
                    node.heard_from_leader();
                }
                let mut out = cv::stream_result_to_pb(&res);
                if let Ok(acked) = &res {
                    out.durable = crate::network::hint::beyond(*acked, node.durable.get());
                }
                Ok(out)
            }
            Err(f) => Err(fatal(f)),
        });
        Ok(Response::new(Box::pin(output)))
    }

    async fn vote(
        &self,
        req: Request<pb::VoteRequest>,
    ) -> Result<Response<pb::VoteResponse>, Status> {
        self.admit(&req).await?;
        let rpc = cv::vote_request_from_pb(req.into_inner())?;
        let resp = self.node.raft.vote(rpc).await.map_err(fatal)?;
        Ok(Response::new(cv::vote_response_to_pb(&resp)))
    }

    async fn pre_vote(
        &self,
        req: Request<pb::VoteRequest>,
    ) -> Result<Response<pb::VoteResponse>, Status> {
        self.admit(&req).await?;
        let rpc = cv::vote_request_from_pb(req.into_inner())?;
        let resp = self.node.raft.pre_vote(rpc).await.map_err(fatal)?;
        Ok(Response::new(cv::vote_response_to_pb(&resp)))
    }

    async fn install_snapshot(
        &self,
        req: Request<Streaming<pb::SnapshotChunk>>,
    ) -> Result<Response<pb::SnapshotReply>, Status> {
        self.admit(&req).await?;
        self.snapshots
            .receive(&self.node, req.into_inner())
            .await
            .map(Response::new)
    }

    async fn snapshot_resume_point(
        &self,
        req: Request<pb::SnapshotStart>,
    ) -> Result<Response<pb::SnapshotResumeReply>, Status> {
        self.admit(&req).await?;
        let offset = self.snapshots.resume_point(&self.node, req.get_ref()).await;
        Ok(Response::new(pb::SnapshotResumeReply { offset }))
    }

    async fn transfer_leader(
        &self,
        req: Request<pb::RaftTransferLeaderRequest>,
    ) -> Result<Response<pb::RaftTransferLeaderReply>, Status> {
        self.admit(&req).await?;
        let rpc = cv::transfer_request_from_pb(req.into_inner())?;
        let resp = self
            .node
            .raft
            .handle_transfer_leader(rpc)
            .await
            .map_err(fatal)?;
        Ok(Response::new(cv::transfer_response_to_pb(&resp)))
    }
}
