//! Network: the client side of node-to-node Raft traffic over tonic.
//!
//! Owns the connection pool (one lazily connected, self-reconnecting HTTP/2
//! channel per peer and purpose: replication, heartbeats, snapshots, so a
//! large snapshot never delays a heartbeat), per-RPC deadlines taken from
//! openraft's `RPCOption`, and the mapping of transport failures to
//! openraft's `Unreachable`/`NetworkError`/`Timeout`.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use openraft::base::{BoxFuture, BoxStream};
use openraft::errors::{
    NetworkError, RPCError, ReplicationClosed, StreamingError, Timeout, Unreachable,
};
use openraft::network::{Backoff, RPCOption};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, StreamAppendResult,
    TransferLeaderRequest, TransferLeaderResponse, VoteRequest, VoteResponse,
};
use openraft::{BasicNode, OptionalSend, RPCTypes, RaftNetworkFactory, RaftNetworkV2};
use rekap_proto::pb;
use rekap_proto::pb::raft_client::RaftClient;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

mod append;
pub mod health;
pub mod hint;
mod probe;
mod snapshot;

pub use health::PeerHealth;

use crate::raft::convert as cv;
use crate::raft::{NodeId, TypeConfig, Vote};
use crate::security::Tls;
use crate::store::{SnapshotData, Source};

/// Largest message either side of the Raft service accepts.
/// A full append batch: `max_payload_entries` commands of up to
/// `server::MAX_ADMIN_MESSAGE` each.
pub const MAX_RAFT_MESSAGE: usize = 512 * 1024 * 1024;
const SNAPSHOT_CHUNK: usize = 1024 * 1024;
const SETUP_RETRY_PAUSE: Duration = Duration::from_millis(100);
/// A peer that leaves a request unanswered this long is treated as gone.
const STREAM_IDLE: Duration = Duration::from_secs(5);

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
enum Purpose {
    Replication,
    Heartbeat,
    Snapshot,
    /// Public calls forwarded to the leader.
    Public,
}

/// Channels shared by every connection this node opens to its peers. With
/// TLS they present this node's certificate and trust only the cluster's
/// CAs; after a certificate reload new channels use the new files (open
/// connections keep the session they have).
#[derive(Clone)]
pub struct ChannelPool {
    inner: Arc<Mutex<Pool>>,
    tls: Option<Arc<Tls>>,
    links: Links,
    health: Arc<PeerHealth>,
}

#[derive(Default)]
struct Pool {
    channels: HashMap<(String, Purpose), Channel>,
    /// TLS generation the channels were made with.
    generation: u64,
}

/// How this node's connections to its peers are made.
#[derive(Clone, Copy, Debug)]
pub struct Links {
    /// The local address they leave from (`--source-address`).
    pub source: Option<std::net::IpAddr>,
    /// Bytes per second a snapshot is sent at (`--snapshot-rate`).
    pub snapshot_rate: Option<u64>,
    pub connect_timeout: Duration,
    pub keep_alive_timeout: Duration,
    /// A snapshot transfer fills its link: a keep-alive ping waits behind
    /// everything queued ahead of it, seconds on a thin link, so on the
    /// snapshot connection it may take as long as a snapshot step. With a
    /// heartbeat's allowance, the 2019 state over 4 Mbit/s lost its
    /// connection every 10-20 s, and with it the data still on the wire.
    pub snapshot_keep_alive_timeout: Duration,
}

impl Links {
    pub fn new(
        source: Option<std::net::IpAddr>,
        snapshot_rate: Option<u64>,
        timing: crate::timing::Timing,
    ) -> Links {
        Links {
            source,
            snapshot_rate,
            connect_timeout: timing.connect_timeout(),
            keep_alive_timeout: timing.keep_alive_timeout(),
            snapshot_keep_alive_timeout: Duration::from_millis(
                timing.install_snapshot_timeout_ms(),
            ),
        }
    }
}

impl ChannelPool {
    pub fn new(tls: Option<Arc<Tls>>, links: Links) -> Self {
        ChannelPool {
            inner: Arc::default(),
            tls,
            links,
            health: Arc::default(),
        }
    }

    /// Which peers this node's Raft traffic cannot reach now.
    pub fn health(&self) -> &PeerHealth {
        &self.health
    }

    fn get(&self, addr: &str, purpose: Purpose) -> Result<Channel, tonic::transport::Error> {
        let mut pool = self.inner.lock().expect("pool lock");
        let generation = self.tls.as_ref().map_or(0, |t| t.generation());
        if pool.generation != generation {
            pool.channels.clear();
            pool.generation = generation;
        }
        if let Some(ch) = pool.channels.get(&(addr.to_string(), purpose)) {
            return Ok(ch.clone());
        }
        let keep_alive_timeout = match purpose {
            Purpose::Snapshot => self.links.snapshot_keep_alive_timeout,
            _ => self.links.keep_alive_timeout,
        };
        let ch = endpoint(addr, self.tls.as_deref())?
            .local_address(self.links.source)
            .connect_timeout(self.links.connect_timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(1))
            .keep_alive_timeout(keep_alive_timeout)
            .keep_alive_while_idle(true)
            .connect_lazy();
        pool.channels
            .insert((addr.to_string(), purpose), ch.clone());
        Ok(ch)
    }

    /// Opens (or keeps open) the connections to `addr` that a failover
    /// needs at once, with one health check each: votes (and then appends),
    /// the new leader's heartbeats (its lease) and the calls followers
    /// forward to it. A follower sends nothing on them until an election,
    /// and a TCP and TLS handshake then would cost three round trips on a
    /// WAN link each, one after the other.
    pub async fn warm(&self, addr: &str, within: Duration) {
        let check = |purpose| async move {
            let Ok(ch) = self.get(addr, purpose) else {
                return;
            };
            let mut health = tonic_health::pb::health_client::HealthClient::new(ch);
            let req = tonic_health::pb::HealthCheckRequest {
                service: String::new(),
            };
            let _ = tokio::time::timeout(within, health.check(req)).await;
        };
        tokio::join!(
            check(Purpose::Replication),
            check(Purpose::Heartbeat),
            check(Purpose::Public)
        );
    }

    /// The channel for forwarding public calls to `addr`.
    pub fn public(&self, addr: &str) -> Result<Channel, tonic::transport::Error> {
        self.get(addr, Purpose::Public)
    }
}

/// An endpoint for `addr` (host:port): https with this node's certificate
/// when `tls` is given, plaintext otherwise.
pub fn endpoint(addr: &str, tls: Option<&Tls>) -> Result<Endpoint, tonic::transport::Error> {
    let Some(tls) = tls else {
        return Endpoint::from_shared(format!("http://{addr}"));
    };
    let m = tls.current();
    let cfg = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&m.ca_pem))
        .identity(Identity::from_pem(&m.cert_pem, &m.key_pem));
    Endpoint::from_shared(format!("https://{addr}"))?.tls_config(cfg)
}

/// Builds per-peer connections for openraft.
pub struct NetworkFactory {
    pub node_id: NodeId,
    pub pool: ChannelPool,
    /// This node's own log, to check a follower's hint against (`hint`).
    pub own_log: Option<hint::Own>,
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = PeerConnection;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Self::Network {
        self.connect(target, node, Purpose::Replication)
    }

    async fn new_heartbeat_client(&mut self, target: NodeId, node: &BasicNode) -> Self::Network {
        self.connect(target, node, Purpose::Heartbeat)
    }

    async fn new_snapshot_client(&mut self, target: NodeId, node: &BasicNode) -> Self::Network {
        self.connect(target, node, Purpose::Snapshot)
    }
}

impl NetworkFactory {
    fn connect(&self, target: NodeId, node: &BasicNode, purpose: Purpose) -> PeerConnection {
        PeerConnection {
            me: self.node_id,
            target,
            addr: node.addr.clone(),
            purpose,
            pool: self.pool.clone(),
            own_log: self.own_log.clone(),
        }
    }
}

/// openraft's handle on one peer; cheap, the channel underneath is shared.
pub struct PeerConnection {
    me: NodeId,
    target: NodeId,
    addr: String,
    purpose: Purpose,
    pool: ChannelPool,
    own_log: Option<hint::Own>,
}

type RpcErr = RPCError<TypeConfig>;

impl PeerConnection {
    fn channel(&self) -> Result<Channel, RpcErr> {
        self.pool
            .get(&self.addr, self.purpose)
            .map_err(|e| RPCError::Unreachable(Unreachable::from_string(e)))
    }

    fn client(&self) -> Result<RaftClient<Channel>, RpcErr> {
        Ok(RaftClient::new(self.channel()?)
            .max_decoding_message_size(MAX_RAFT_MESSAGE)
            .max_encoding_message_size(MAX_RAFT_MESSAGE))
    }

    /// Records an RPC's outcome (the peer answered, or not) in the pool's
    /// `PeerHealth`, which logs it.
    fn note<T>(&self, r: Result<T, RpcErr>) -> Result<T, RpcErr> {
        self.pool.health.note(self.target, &self.addr, &r);
        r
    }

    fn failed(&self, e: &RpcErr) {
        self.pool.health.failed(self.target, &self.addr, e)
    }

    fn timeout_err(&self, action: RPCTypes, ttl: Duration) -> RpcErr {
        RPCError::Timeout(Timeout {
            action,
            id: self.me,
            target: self.target,
            timeout: ttl,
        })
    }

    /// Runs one unary call with `hard_ttl` as its deadline, both as the
    /// gRPC timeout header and as a local timer.
    async fn unary<Req, Resp, F, Fut>(
        &self,
        action: RPCTypes,
        option: &RPCOption,
        req: Req,
        call: F,
    ) -> Result<Resp, RpcErr>
    where
        F: FnOnce(RaftClient<Channel>, tonic::Request<Req>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<Resp>, tonic::Status>>,
    {
        let ttl = option.hard_ttl();
        let mut request = tonic::Request::new(req);
        request.set_timeout(ttl);
        let client = self.client().inspect_err(|e| self.failed(e))?;
        self.note(
            match tokio::time::timeout(ttl, call(client, request)).await {
                Err(_) => Err(self.timeout_err(action, ttl)),
                Ok(Err(status)) => Err(status_to_rpc_err(status)),
                Ok(Ok(resp)) => Ok(resp.into_inner()),
            },
        )
    }
}

/// A refused connection means the peer is down: openraft backs off. Other
/// failures are retried as ordinary network errors.
fn status_to_rpc_err(status: tonic::Status) -> RpcErr {
    let short = describe(&status);
    if status.code() == tonic::Code::Unavailable {
        RPCError::Unreachable(Unreachable::from_string(short))
    } else {
        RPCError::Network(NetworkError::from_string(short))
    }
}

/// A status in one short line for the logs and `cluster status`: its
/// message and the innermost cause ("tcp connect error: Connection refused
/// (os error 111)"), not tonic's debug dump of the whole chain.
fn describe(status: &tonic::Status) -> String {
    let mut cause: Option<&dyn std::error::Error> = None;
    let mut next = std::error::Error::source(status);
    while let Some(e) = next {
        cause = Some(e);
        next = e.source();
    }
    match cause {
        Some(c) if !status.message().contains(&c.to_string()) => {
            format!("{}: {c}", status.message())
        }
        _ => status.message().to_string(),
    }
}

fn malformed(e: cv::Malformed) -> RpcErr {
    RPCError::Network(NetworkError::from_string(e))
}

impl RaftNetworkV2<TypeConfig> for PeerConnection {
    type SnapshotData = SnapshotData;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RpcErr> {
        let req = cv::append_request_to_pb(&rpc);
        let resp = self
            .unary(
                RPCTypes::AppendEntries,
                &option,
                req,
                |mut c, r| async move { c.append(r).await },
            )
            .await?;
        cv::append_response_from_pb(resp).map_err(malformed)
    }

    /// Pipelined replication over one bidirectional gRPC stream.
    fn stream_append<'s, S>(
        &'s mut self,
        input: S,
        option: RPCOption,
    ) -> BoxFuture<'s, Result<BoxStream<'s, Result<StreamAppendResult<TypeConfig>, RpcErr>>, RpcErr>>
    where
        S: futures::Stream<Item = AppendEntriesRequest<TypeConfig>>
            + OptionalSend
            + Unpin
            + 'static,
    {
        async move {
            let channel = self.channel().inspect_err(|e| self.failed(e))?;
            let setup = option.hard_ttl().max(Duration::from_secs(1));
            let sent = append::Sent::default();
            let reqs = sent.requests(input);
            let resp = match tokio::time::timeout(setup, append::stream_append(channel, reqs)).await
            {
                Err(_) => return self.note(Err(self.timeout_err(RPCTypes::AppendEntries, setup))),
                Ok(Err(status)) => {
                    // openraft backs off from inside the request stream, which
                    // a refused connection never polls: pause here instead of
                    // letting replication to a dead peer spin.
                    tokio::time::sleep(SETUP_RETRY_PAUSE).await;
                    return self.note(Err(status_to_rpc_err(status)));
                }
                Ok(Ok(r)) => r,
            };
            let watch = append::Unanswered {
                peer: (self.target, self.addr.clone(), self.pool.health.clone()),
                stream: resp.into_inner(),
                sent,
                // Heartbeats carry no entries and move no one's matching point.
                hints: self
                    .own_log
                    .clone()
                    .filter(|_| hint::TAKEN && self.purpose == Purpose::Replication),
                received: 0,
                waiting_since: None,
                timeout: self.timeout_err(RPCTypes::AppendEntries, STREAM_IDLE),
            };
            let out = futures::stream::unfold(watch, |mut w| async move {
                let item = w.next().await?;
                Some((item, w))
            });
            Ok(Box::pin(out) as BoxStream<'s, _>)
        }
        .boxed()
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RpcErr> {
        let req = cv::vote_request_to_pb(&rpc);
        let resp = self
            .unary(RPCTypes::Vote, &option, req, |mut c, r| async move {
                c.vote(r).await
            })
            .await?;
        cv::vote_response_from_pb(resp).map_err(malformed)
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RpcErr> {
        let req = cv::vote_request_to_pb(&rpc);
        let resp = self
            .unary(RPCTypes::Vote, &option, req, |mut c, r| async move {
                c.pre_vote(r).await
            })
            .await?;
        cv::vote_response_from_pb(resp).map_err(malformed)
    }

    /// Streams the snapshot's file in chunks. `soft_ttl` bounds each step
    /// (setup, each chunk), not the whole transfer, so a big snapshot on a
    /// slow link still completes.
    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: openraft::alias::SnapshotOf<TypeConfig, SnapshotData>,
        cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let io = |e: std::io::Error| -> StreamingError<TypeConfig> {
            StreamingError::from(RPCError::<TypeConfig>::Network(NetworkError::from_string(
                e,
            )))
        };
        // A snapshot not written yet (`store::on_demand`) is sent as it is
        // written: its size is unknown (0) until the end.
        let file = Source::open(&snapshot.snapshot).await.map_err(io)?;
        let size = file.size().await.map_err(io)?.unwrap_or(0);
        let step = option.soft_ttl().max(Duration::from_secs(2));
        let transfer = snapshot::Transfer {
            file,
            start: pb::SnapshotStart {
                vote: Some(cv::vote_to_pb(&vote)),
                meta: Some(cv::snapshot_meta_to_pb(&snapshot.meta)),
                size,
                offset: 0,
            },
            step,
            chunk_size: option
                .snapshot_chunk_size()
                .unwrap_or(SNAPSHOT_CHUNK)
                .max(4096),
            rate: self.pool.links.snapshot_rate,
        };
        let client = self.client()?;
        let timeout_err = self.timeout_err(RPCTypes::InstallSnapshot, step);
        let sent = async move {
            snapshot::send(client, transfer).await.map_err(|f| match f {
                snapshot::Failed::Timeout => timeout_err,
                snapshot::Failed::Status(s) => status_to_rpc_err(s),
                snapshot::Failed::Io(e) => RPCError::Network(NetworkError::from_string(e)),
            })
        };
        tokio::select! {
            closed = cancel => Err(StreamingError::Closed(closed)),
            resp = sent => {
                let reply = self.note(resp)?;
                Ok(SnapshotResponse::new(cv::vote_from_pb(reply.vote).map_err(malformed)?))
            }
        }
    }

    async fn transfer_leader(
        &mut self,
        req: TransferLeaderRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<TypeConfig>, RpcErr> {
        let req = cv::transfer_request_to_pb(&req);
        let resp = self
            .unary(
                RPCTypes::TransferLeader,
                &option,
                req,
                |mut c, r| async move { c.transfer_leader(r).await },
            )
            .await?;
        cv::transfer_response_from_pb(resp).map_err(malformed)
    }

    fn backoff(&self) -> Option<Backoff> {
        Some(Backoff::new(std::iter::repeat(Duration::from_millis(200))))
    }
}
