//! `StreamAppend` as the leader sends it: each request goes out as an
//! `AppendRequestOut` (see `raft.proto`), whose bytes are those of the
//! `AppendRequest` the follower decodes, built from the entries' kept
//! encodings instead of from cloned commands.

use futures::Stream;
use rekap_proto::pb;
use tonic::codec::Streaming;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

use super::MAX_RAFT_MESSAGE;

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
