//! The internal `Raft` service: hands peers' messages to openraft.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use openraft::storage::Snapshot;
use rekap_proto::pb;
use tokio::io::AsyncWriteExt;
use tonic::{Request, Response, Status, Streaming};

use crate::node::Node;
use crate::raft::convert as cv;
use crate::store::SnapshotFile;
use crate::store::snapshot::temp_name;

/// A snapshot sender that goes quiet this long is given up on.
const CHUNK_IDLE: Duration = Duration::from_secs(30);

pub struct RaftService {
    pub node: Arc<Node>,
}

fn fatal(e: impl std::fmt::Display) -> Status {
    Status::unavailable(format!("raft stopped on this node: {e}"))
}

impl RaftService {
    /// Receives the chunks into a temporary file next to the snapshots,
    /// fsyncs it, then hands it to openraft.
    async fn receive_snapshot(
        &self,
        mut stream: Streaming<pb::SnapshotChunk>,
    ) -> Result<pb::SnapshotReply, Status> {
        let first = stream
            .message()
            .await?
            .ok_or_else(|| Status::invalid_argument("empty snapshot stream"))?;
        let Some(pb::snapshot_chunk::Payload::Start(start)) = first.payload else {
            return Err(Status::invalid_argument(
                "a snapshot stream starts with its metadata",
            ));
        };
        let vote = cv::vote_from_pb(start.vote)?;
        let meta = cv::snapshot_meta_from_pb(start.meta)?;
        let path = temp_name(self.node.sm.snapshot_dir(), "recv");
        let result = async {
            let mut file = tokio::fs::File::create(&path)
                .await
                .map_err(|e| Status::internal(e.to_string()))?;
            let mut received = 0u64;
            loop {
                let msg = tokio::time::timeout(CHUNK_IDLE, stream.message())
                    .await
                    .map_err(|_| Status::deadline_exceeded("snapshot sender went quiet"))??;
                let Some(chunk) = msg else { break };
                let Some(pb::snapshot_chunk::Payload::Data(data)) = chunk.payload else {
                    return Err(Status::invalid_argument(
                        "only data chunks may follow the metadata",
                    ));
                };
                received += data.len() as u64;
                file.write_all(&data)
                    .await
                    .map_err(|e| Status::internal(e.to_string()))?;
            }
            if received != start.size {
                return Err(Status::data_loss(format!(
                    "snapshot truncated: {received} of {} bytes",
                    start.size
                )));
            }
            file.sync_all()
                .await
                .map_err(|e| Status::internal(e.to_string()))?;
            let snapshot = Snapshot {
                meta,
                snapshot: SnapshotFile { path: path.clone() },
            };
            let resp = self
                .node
                .raft
                .install_full_snapshot(vote, snapshot)
                .await
                .map_err(fatal)?;
            Ok(pb::SnapshotReply {
                vote: Some(cv::vote_to_pb(&resp.vote)),
            })
        }
        .await;
        // Installed snapshots were moved into place; anything left is waste.
        let _ = tokio::fs::remove_file(&path).await;
        result
    }
}

type AppendStream = Pin<Box<dyn Stream<Item = Result<pb::StreamAppendResponse, Status>> + Send>>;

#[tonic::async_trait]
impl pb::raft_server::Raft for RaftService {
    async fn append(
        &self,
        req: Request<pb::AppendRequest>,
    ) -> Result<Response<pb::AppendResponse>, Status> {
        let rpc = cv::append_request_from_pb(req.into_inner())?;
        let resp = self.node.raft.append_entries(rpc).await.map_err(fatal)?;
        Ok(Response::new(cv::append_response_to_pb(&resp)))
    }

    type StreamAppendStream = AppendStream;

    async fn stream_append(
        &self,
        req: Request<Streaming<pb::AppendRequest>>,
    ) -> Result<Response<Self::StreamAppendStream>, Status> {
        // A malformed request ends the input; openraft then ends the output.
        let input = req
            .into_inner()
            .take_while(|r| futures::future::ready(r.is_ok()))
            .filter_map(|r| async move { r.ok().and_then(|r| cv::append_request_from_pb(r).ok()) });
        let output = self.node.raft.stream_append(input).map(|r| match r {
            Ok(res) => Ok(cv::stream_result_to_pb(&res)),
            Err(f) => Err(fatal(f)),
        });
        Ok(Response::new(Box::pin(output)))
    }

    async fn vote(
        &self,
        req: Request<pb::VoteRequest>,
    ) -> Result<Response<pb::VoteResponse>, Status> {
        let rpc = cv::vote_request_from_pb(req.into_inner())?;
        let resp = self.node.raft.vote(rpc).await.map_err(fatal)?;
        Ok(Response::new(cv::vote_response_to_pb(&resp)))
    }

    async fn pre_vote(
        &self,
        req: Request<pb::VoteRequest>,
    ) -> Result<Response<pb::VoteResponse>, Status> {
        let rpc = cv::vote_request_from_pb(req.into_inner())?;
        let resp = self.node.raft.pre_vote(rpc).await.map_err(fatal)?;
        Ok(Response::new(cv::vote_response_to_pb(&resp)))
    }

    async fn install_snapshot(
        &self,
        req: Request<Streaming<pb::SnapshotChunk>>,
    ) -> Result<Response<pb::SnapshotReply>, Status> {
        self.receive_snapshot(req.into_inner())
            .await
            .map(Response::new)
    }

    async fn transfer_leader(
        &self,
        req: Request<pb::RaftTransferLeaderRequest>,
    ) -> Result<Response<pb::RaftTransferLeaderReply>, Status> {
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
