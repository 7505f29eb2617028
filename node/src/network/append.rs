//! `StreamAppend` as the leader sends it: each request goes out as an
//! `AppendRequestOut` (see `raft.proto`), whose bytes are those of the
//! `AppendRequest` the follower decodes, built from the entries' kept
//! encodings instead of from cloned commands. And the answers as the
//! leader reads them (`Unanswered`): with a deadline, and with followers'
//! hints applied (`hint`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use openraft::raft::StreamAppendResult;
use rekap_proto::pb;
use tonic::codec::Streaming;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

use super::{
    MAX_RAFT_MESSAGE, PeerHealth, RpcErr, STREAM_IDLE, hint, malformed, status_to_rpc_err,
};
use crate::raft::convert as cv;
use crate::raft::{NodeId, TypeConfig};

pub async fn stream_append<S>(
    ch: Channel,
    requests: S,
) -> Result<Response<Streaming<pb::StreamAppendResponse>>, Status>
where
    S: Stream<Item = pb::AppendRequestOut> + Send + 'static,
{
    let mut grpc = tonic::client::Grpc::new(ch)
        .max_decoding_message_size(MAX_RAFT_MESSAGE)
        .max_encoding_message_size(MAX_RAFT_MESSAGE);
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(format!("peer not ready: {e}")))?;
    let codec =
        tonic_prost::ProstCodec::<pb::AppendRequestOut, pb::StreamAppendResponse>::default();
    let path = PathAndQuery::from_static("/rekap.v1.Raft/StreamAppend");
    grpc.streaming(Request::new(requests), path, codec).await
}

/// The response side of a replication stream. A live connection to a stuck
/// process (frozen, or its disk hung) would otherwise stall replication to
/// it forever; keepalive only catches dead connections. The deadline runs
/// only while a request is unanswered, so an idle stream stays open.
pub(super) struct Unanswered {
    pub(super) peer: (NodeId, String, Arc<PeerHealth>),
    pub(super) stream: tonic::Streaming<pb::StreamAppendResponse>,
    pub(super) sent: Arc<AtomicU64>,
    /// The leader's own log and the term of the requests sent, when
    /// followers' hints are taken (`hint`).
    pub(super) hints: Option<(hint::Own, Arc<AtomicU64>)>,
    pub(super) received: u64,
    pub(super) waiting_since: Option<Instant>,
    pub(super) timeout: RpcErr,
}

impl Unanswered {
    fn hinted(
        &self,
        r: pb::StreamAppendResponse,
    ) -> Result<StreamAppendResult<TypeConfig>, RpcErr> {
        let durable = r
            .durable
            .map(cv::log_id_from_pb)
            .transpose()
            .map_err(malformed)?;
        let res = cv::stream_result_from_pb(r).map_err(malformed)?;
        Ok(match (res, &self.hints) {
            (Ok(acked), Some((own, term))) => {
                let term = term.load(Ordering::Relaxed);
                let took = hint::take(acked, durable, term, |i| own.log.at(i));
                if took != acked {
                    own.taken.inc();
                    tracing::debug!(peer = self.peer.0, ?acked, ?took, "follower's hint taken");
                }
                Ok(took)
            }
            (res, _) => res,
        })
    }

    pub(super) async fn next(&mut self) -> Option<Result<StreamAppendResult<TypeConfig>, RpcErr>> {
        let item = self.next_unrecorded().await;
        if let Some(r) = &item {
            let (id, addr, health) = &self.peer;
            health.note(*id, addr, r);
        }
        item
    }

    async fn next_unrecorded(&mut self) -> Option<Result<StreamAppendResult<TypeConfig>, RpcErr>> {
        loop {
            tokio::select! {
                item = self.stream.next() => {
                    self.received += 1;
                    self.waiting_since = None;
                    return match item? {
                        Err(status) => Some(Err(status_to_rpc_err(status))),
                        Ok(r) => Some(self.hinted(r)),
                    };
                }
                _ = tokio::time::sleep(Duration::from_millis(250)) => {
                    if self.sent.load(Ordering::Relaxed) <= self.received {
                        self.waiting_since = None;
                    } else if self.waiting_since.get_or_insert_with(Instant::now).elapsed() > STREAM_IDLE {
                        return Some(Err(self.timeout.clone()));
                    }
                }
            }
        }
    }
}
