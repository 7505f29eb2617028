//! `StreamAppend` as the leader sends it: each request goes out as an
//! `AppendRequestOut` (see `raft.proto`), whose bytes are those of the
//! `AppendRequest` the follower decodes, built from the entries' kept
//! encodings instead of from cloned commands. And the answers as the
//! leader reads them (`Unanswered`): with a deadline, and with followers'
//! hints applied (`hint`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use openraft::raft::{AppendEntriesRequest, StreamAppendResult};
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

/// What the leader has put on one stream, for reading its answers.
#[derive(Clone, Default)]
pub(super) struct Sent {
    count: Arc<AtomicU64>,
    /// The term of the requests sent (0 before the first).
    term: Arc<AtomicU64>,
    /// Whether the requests have ended. openraft's probe sends one request
    /// and ends; a pipelined session never ends its requests.
    ended: Arc<AtomicBool>,
}

impl Sent {
    /// `input` as sent on the wire, counted.
    pub(super) fn requests<S>(&self, input: S) -> impl Stream<Item = pb::AppendRequestOut> + use<S>
    where
        S: Stream<Item = AppendEntriesRequest<TypeConfig>>,
    {
        let (count, term, ended) = (self.count.clone(), self.term.clone(), self.ended.clone());
        input
            .map(move |r| {
                count.fetch_add(1, Ordering::Release);
                term.store(r.vote.leader_id.term, Ordering::Release);
                Some(cv::append_request_out(&r))
            })
            .chain(futures::stream::once(async move {
                ended.store(true, Ordering::Release);
                None
            }))
            .filter_map(futures::future::ready)
    }

    fn count(&self) -> u64 {
        self.count.load(Ordering::Acquire)
    }

    /// One request, and no more to come: a probe.
    fn a_probe(&self) -> bool {
        self.ended.load(Ordering::Acquire) && self.count() == 1
    }
}

/// The response side of a replication stream. A live connection to a stuck
/// process (frozen, or its disk hung) would otherwise stall replication to
/// it forever; keepalive only catches dead connections. The deadline runs
/// only while a request is unanswered, so an idle stream stays open.
pub(super) struct Unanswered {
    pub(super) peer: (NodeId, String, Arc<PeerHealth>),
    pub(super) stream: tonic::Streaming<pb::StreamAppendResponse>,
    pub(super) sent: Sent,
    /// The leader's own log, when followers' hints are taken (`hint`).
    pub(super) hints: Option<hint::Own>,
    pub(super) received: u64,
    pub(super) waiting_since: Option<Instant>,
    pub(super) timeout: RpcErr,
}

impl Unanswered {
    fn hinted(
        &self,
        r: pb::StreamAppendResponse,
    ) -> Result<StreamAppendResult<TypeConfig>, RpcErr> {
        let durable = r.durable;
        let res = cv::stream_result_from_pb(r).map_err(malformed)?;
        // Only a probe's answer. In a pipelined session openraft takes an
        // acknowledgement as covering what the session has sent, and one
        // beyond that would let a purge take entries it has still to send.
        let (Ok(acked), Some(own), Some(durable)) = (&res, &self.hints, durable) else {
            return Ok(res);
        };
        if !self.sent.a_probe() {
            return Ok(res);
        }
        let durable = cv::log_id_from_pb(durable).map_err(malformed)?;
        let term = self.sent.term.load(Ordering::Acquire);
        let took = hint::take(*acked, durable, term, |i| own.log.at(i));
        if took != *acked {
            own.taken.inc();
            tracing::debug!(peer = self.peer.0, ?acked, ?took, "follower's hint taken");
        }
        Ok(Ok(took))
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
                    if self.sent.count() <= self.received {
                        self.waiting_since = None;
                    } else if self.waiting_since.get_or_insert_with(Instant::now).elapsed() > STREAM_IDLE {
                        return Some(Err(self.timeout.clone()));
                    }
                }
            }
        }
    }
}
