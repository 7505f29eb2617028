//! Rekap client library.
//!
//! Give it the addresses of some nodes. It finds the leader, remembers it,
//! and follows the leader hint every node returns (`x-rekap-leader`). When a
//! call fails with UNAVAILABLE, a timeout or a broken connection, it retries
//! on the hinted leader or the next node, with exponential backoff, until
//! the call's deadline. Submissions carry their submission id, so a retry
//! never counts twice. Refusals (invalid input, unknown TPS, conflicts) are
//! returned at once: retrying would not change them.

pub mod certs;
mod deadline;
pub mod generate;
pub mod outbox;
pub mod registry;
mod routing;
mod users;
mod watch;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rekap_proto::pb;
use rekap_proto::pb::admin_client::AdminClient;
use rekap_proto::pb::tally_client::TallyClient;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::deadline::Timed;
use tonic::{Code, Status};

pub use rekap_proto::pb as proto;
pub use rekap_proto::zones;
pub use watch::Watcher;

/// Metadata key with the leader's address, set by every node on every reply.
pub const LEADER_HEADER: &str = "x-rekap-leader";
/// How often the endpoint list is refreshed from the cluster's membership.
const MEMBER_SYNC: Duration = Duration::from_secs(3);

/// Metadata key with the leader's node id.
pub const LEADER_ID_HEADER: &str = "x-rekap-leader-id";
/// Metadata key with the answering node's id.
pub const NODE_ID_HEADER: &str = "x-rekap-node-id";
/// Metadata key naming the rule a refused input broke.
pub const RULE_HEADER: &str = "x-rekap-rule";

/// A user's TLS files: the cluster's CA bundle, the user's certificate and
/// its key.
#[derive(Clone)]
pub struct ClientTls {
    pub ca_pem: Vec<u8>,
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
    /// The user the certificate names.
    pub user: String,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls")
            .field("user", &self.user)
            .finish()
    }
}

impl ClientTls {
    /// Reads `ca.crt`, `client.<user>.crt` and `client.<user>.key` from
    /// `dir`. Without a user name: the only user certificate in `dir`, or,
    /// when there is none, a node's own `node.crt` and `node.key` (a node's
    /// health check uses its own identity).
    pub fn from_dir(dir: &std::path::Path, user: Option<&str>) -> anyhow::Result<ClientTls> {
        use anyhow::Context;
        let read = |name: &str| {
            let p = dir.join(name);
            std::fs::read(&p).with_context(|| format!("reading {}", p.display()))
        };
        install_crypto_provider();
        let (user, cert, key) = match user {
            Some(u) => (
                u.to_string(),
                certs::user_cert_file(u),
                certs::user_key_file(u),
            ),
            None => match only_user_in(dir)? {
                Some(u) => (
                    u.clone(),
                    certs::user_cert_file(&u),
                    certs::user_key_file(&u),
                ),
                None => (
                    "node".to_string(),
                    certs::NODE_CERT.into(),
                    certs::NODE_KEY.into(),
                ),
            },
        };
        Ok(ClientTls {
            ca_pem: read(certs::CA_CERT)?,
            cert_pem: read(&cert)?,
            key_pem: read(&key)?,
            user,
        })
    }

    fn config(&self) -> ClientTlsConfig {
        ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.ca_pem))
            .identity(Identity::from_pem(&self.cert_pem, &self.key_pem))
    }
}

fn only_user_in(dir: &std::path::Path) -> anyhow::Result<Option<String>> {
    let mut users = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))? {
        let name = e?.file_name().to_string_lossy().to_string();
        if let Some(u) = name
            .strip_prefix("client.")
            .and_then(|n| n.strip_suffix(".crt"))
        {
            users.push(u.to_string());
        }
    }
    match users.len() {
        1 => Ok(users.pop()),
        0 if dir.join(certs::NODE_CERT).exists() => Ok(None),
        0 => anyhow::bail!(
            "{} holds no user certificate (client.<user>.crt); make one with rekapctl certs user",
            dir.display()
        ),
        _ => anyhow::bail!(
            "{} holds certificates for several users ({}); say which with --user",
            dir.display(),
            users.join(", ")
        ),
    }
}

/// Installs rustls' ring provider as the process default (once).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// How long one call may take in all, retries included.
    pub deadline: Duration,
    /// How long one attempt may take.
    pub attempt_timeout: Duration,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// Tally calls still unanswered after this also go to another node (a
    /// leader that froze keeps its connections open); `None` never hedges.
    pub hedge_after: Option<Duration>,
    /// TLS with a user certificate; `None` talks plaintext (only to nodes
    /// started with `--insecure`).
    pub tls: Option<ClientTls>,
    /// Replace `attempt_timeout` and `hedge_after` with the cluster's own
    /// (`cluster status` names them, from the nodes' timing) once a node
    /// has told them: a cluster tuned for WAN links needs longer attempts.
    /// `false` keeps the values above.
    pub follow_cluster_timing: bool,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            deadline: Duration::from_secs(30),
            attempt_timeout: Duration::from_secs(5),
            backoff_initial: Duration::from_millis(20),
            backoff_max: Duration::from_millis(150),
            hedge_after: Some(Duration::from_secs(1)),
            tls: None,
            follow_cluster_timing: true,
        }
    }
}

struct Inner {
    endpoints: Vec<String>,
    leader: Option<String>,
    channels: HashMap<String, Channel>,
    /// Node id -> the endpoint this client reached it through. Behind NAT
    /// or port mapping (compose, Kubernetes) a leader's advertised address
    /// may not be reachable from here, but its id still names an endpoint.
    via: HashMap<u64, String>,
    /// The endpoints this client was given.
    configured: Vec<String>,
    /// Endpoints whose last attempt reached no node at all.
    unreachable: HashSet<String>,
    /// Round-robin position while no leader is known.
    rr: usize,
    /// When the endpoint list was last refreshed from the membership.
    synced: Option<Instant>,
    /// The attempt timeout and hedge delay the cluster's timing asks for.
    learned: Option<(Duration, Duration)>,
}

impl Inner {
    /// Whether every configured endpoint has either named its node or
    /// failed to reach any.
    fn configured_known(&self) -> bool {
        self.configured
            .iter()
            .all(|e| self.unreachable.contains(e) || self.via.values().any(|v| v == e))
    }
}

/// A cluster client; cheap to clone, safe to share between tasks.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Mutex<Inner>>,
    opts: ClientOptions,
}

/// The rule named by a refusal, if any.
pub fn rule_of(status: &Status) -> Option<String> {
    status
        .metadata()
        .get(RULE_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Failures another attempt may cure. Everything else is an answer.
/// A connection that broke mid-call (over TLS, tonic reports it as INTERNAL
/// "h2 protocol error") is a transport failure, not an answer.
pub fn is_retryable(status: &Status) -> bool {
    let transport =
        status.code() == Code::Internal && status.message().starts_with("h2 protocol error");
    (transport
        || matches!(
            status.code(),
            Code::Unavailable
                | Code::DeadlineExceeded
                | Code::Cancelled
                | Code::Aborted
                | Code::Unknown
        ))
        && rule_of(status).is_none()
}

impl Client {
    pub fn new(endpoints: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self::with_options(endpoints, ClientOptions::default())
    }

    pub fn with_options(
        endpoints: impl IntoIterator<Item = impl Into<String>>,
        opts: ClientOptions,
    ) -> Self {
        let endpoints: Vec<String> = endpoints.into_iter().map(Into::into).collect();
        assert!(
            !endpoints.is_empty(),
            "a client needs at least one endpoint"
        );
        Client {
            inner: Arc::new(Mutex::new(Inner {
                configured: endpoints.clone(),
                rr: 0,
                synced: None,
                learned: None,
                endpoints,
                leader: None,
                channels: HashMap::new(),
                via: HashMap::new(),
                unreachable: HashSet::new(),
            })),
            opts,
        }
    }

    /// The leader this client currently believes in.
    pub fn leader(&self) -> Option<String> {
        self.inner.lock().expect("client lock").leader.clone()
    }

    pub fn endpoints(&self) -> Vec<String> {
        self.inner.lock().expect("client lock").endpoints.clone()
    }

    /// A channel to one node, shared by every call to it.
    pub fn channel(&self, addr: &str) -> Result<Channel, Status> {
        let mut inner = self.inner.lock().expect("client lock");
        if let Some(ch) = inner.channels.get(addr) {
            return Ok(ch.clone());
        }
        let bad = |e: tonic::transport::Error| {
            Status::invalid_argument(format!("bad endpoint {addr}: {e}"))
        };
        let ep = match &self.opts.tls {
            Some(t) => Endpoint::from_shared(format!("https://{addr}"))
                .map_err(bad)?
                .tls_config(t.config())
                .map_err(bad)?,
            None => Endpoint::from_shared(format!("http://{addr}")).map_err(bad)?,
        };
        let ch = ep
            .connect_timeout(Duration::from_millis(500))
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(2))
            .keep_alive_timeout(Duration::from_secs(3))
            // A stream (an export) may run ahead of the reader by a few
            // messages instead of one 64 KiB window per round trip.
            .initial_stream_window_size(Some(4 << 20))
            .initial_connection_window_size(Some(8 << 20))
            .connect_lazy();
        inner.channels.insert(addr.to_string(), ch.clone());
        Ok(ch)
    }

    pub async fn submit(&self, s: pb::Submission) -> Result<pb::SubmitOutcome, Status> {
        let req = pb::SubmitRequest {
            submission: Some(s),
        };
        let resp = self
            .tally(req, |mut c, r| async move { c.submit(r).await })
            .await?;
        resp.outcome
            .ok_or_else(|| Status::internal("empty submit response"))
    }

    pub async fn submit_batch(
        &self,
        submissions: Vec<pb::Submission>,
    ) -> Result<Vec<pb::BatchItem>, Status> {
        let req = pb::SubmitBatchRequest { submissions };
        let resp = self
            .tally(req, |mut c, r| async move { c.submit_batch(r).await })
            .await?;
        Ok(resp.items)
    }

    pub async fn totals(
        &self,
        region: &str,
        contest: &str,
        consistency: pb::Consistency,
    ) -> Result<pb::GetTotalsResponse, Status> {
        let req = pb::GetTotalsRequest {
            region_code: region.into(),
            contest_id: contest.into(),
            consistency: consistency as i32,
        };
        self.tally(req, |mut c, r| async move { c.get_totals(r).await })
            .await
    }

    pub async fn progress(
        &self,
        region: &str,
        contest: &str,
        consistency: pb::Consistency,
    ) -> Result<pb::GetProgressResponse, Status> {
        let req = pb::GetProgressRequest {
            region_code: region.into(),
            contest_id: contest.into(),
            consistency: consistency as i32,
        };
        self.tally(req, |mut c, r| async move { c.get_progress(r).await })
            .await
    }

    pub async fn missing(
        &self,
        req: pb::ListMissingTpsRequest,
    ) -> Result<pb::ListMissingTpsResponse, Status> {
        self.tally(req, |mut c, r| async move { c.list_missing_tps(r).await })
            .await
    }

    pub async fn tps_result(
        &self,
        tps: &str,
        contest: &str,
        consistency: pb::Consistency,
    ) -> Result<pb::StoredResult, Status> {
        let req = pb::GetTpsResultRequest {
            tps_id: tps.into(),
            contest_id: contest.into(),
            consistency: consistency as i32,
        };
        let resp = self
            .tally(req, |mut c, r| async move { c.get_tps_result(r).await })
            .await?;
        resp.result
            .ok_or_else(|| Status::internal("empty result response"))
    }

    pub async fn correct(&self, req: pb::CorrectRequest) -> Result<pb::CorrectResponse, Status> {
        self.tally(req, |mut c, r| async move { c.correct(r).await })
            .await
    }

    pub async fn clear_flags(
        &self,
        req: pb::ClearFlagsRequest,
    ) -> Result<pb::CorrectResponse, Status> {
        self.tally(req, |mut c, r| async move { c.clear_flags(r).await })
            .await
    }

    pub async fn mark_reviewed(
        &self,
        req: pb::ReviewRequest,
    ) -> Result<pb::CorrectResponse, Status> {
        self.tally(req, |mut c, r| async move { c.mark_reviewed(r).await })
            .await
    }

    pub async fn file_objection(
        &self,
        req: pb::ObjectionRequest,
    ) -> Result<pb::CorrectResponse, Status> {
        self.tally(req, |mut c, r| async move { c.file_objection(r).await })
            .await
    }

    pub async fn history(
        &self,
        tps: &str,
        contest: &str,
        consistency: pb::Consistency,
    ) -> Result<Vec<pb::Revision>, Status> {
        Ok(self.tps_history(tps, contest, consistency).await?.revisions)
    }

    /// A TPS's revisions, with the time zone its office reads them in.
    pub async fn tps_history(
        &self,
        tps: &str,
        contest: &str,
        consistency: pb::Consistency,
    ) -> Result<pb::GetTpsHistoryResponse, Status> {
        let req = pb::GetTpsHistoryRequest {
            tps_id: tps.into(),
            contest_id: contest.into(),
            consistency: consistency as i32,
        };
        self.tally(req, |mut c, r| async move { c.get_tps_history(r).await })
            .await
    }

    /// The caller's own part of the registry (an operator's TPS, the
    /// regions above them and the contests covering them).
    pub async fn operator_slice(&self) -> Result<pb::GetOperatorSliceResponse, Status> {
        let req = pb::GetOperatorSliceRequest {
            consistency: pb::Consistency::Linearizable as i32,
        };
        self.tally(req, |mut c, r| async move { c.get_operator_slice(r).await })
            .await
    }

    pub async fn children(
        &self,
        region: &str,
        contest: &str,
        consistency: pb::Consistency,
    ) -> Result<pb::ListChildrenResponse, Status> {
        let req = pb::ListChildrenRequest {
            region_code: region.into(),
            contest_id: contest.into(),
            consistency: consistency as i32,
        };
        self.tally(req, |mut c, r| async move { c.list_children(r).await })
            .await
    }

    pub async fn janggal(
        &self,
        req: pb::ListJanggalRequest,
    ) -> Result<pb::ListJanggalResponse, Status> {
        self.tally(req, |mut c, r| async move { c.list_janggal(r).await })
            .await
    }

    pub async fn results_page(
        &self,
        req: pb::ListJanggalRequest,
    ) -> Result<pb::ListJanggalResponse, Status> {
        self.tally(req, |mut c, r| async move { c.list_results(r).await })
            .await
    }

    /// Every current result of a region and contest as a stream of chunks,
    /// from one consistent view. Routed like an admin call (never hedged:
    /// two exports at once would only double the work).
    pub async fn export_results(
        &self,
        req: pb::ExportResultsRequest,
    ) -> Result<tonic::Streaming<pb::ListJanggalResponse>, Status> {
        self.call(|ch| {
            let req = req.clone();
            async move { TallyClient::new(ch).export_results(req).await }
        })
        .await
    }

    /// A backup of the whole state as a stream: the header, then the body
    /// in chunks. Routed like an admin call; the leader takes the cut.
    pub async fn save_backup(&self) -> Result<tonic::Streaming<pb::BackupChunk>, Status> {
        self.call_patient(|ch| async move {
            AdminClient::new(ch)
                .save_backup(pb::SaveBackupRequest {})
                .await
        })
        .await
    }

    /// One node's audit chain head (no retries, no forwarding).
    pub async fn chain_head_of(
        &self,
        addr: &str,
        index: Option<u64>,
    ) -> Result<pb::GetChainHeadResponse, Status> {
        let mut admin = AdminClient::new(self.channel(addr)?);
        let mut req = tonic::Request::new(pb::GetChainHeadRequest { index });
        req.set_timeout(self.attempt_timeout());
        Ok(admin.get_chain_head(req).await?.into_inner())
    }

    /// A page of one node's audit log.
    pub async fn audit_log_of(
        &self,
        addr: &str,
        after_index: u64,
        page_size: u32,
    ) -> Result<Vec<pb::AuditEntry>, Status> {
        // One entry is one command, up to a whole registry chunk.
        let mut admin =
            AdminClient::new(self.channel(addr)?).max_decoding_message_size(64 * 1024 * 1024);
        let mut req = tonic::Request::new(pb::ListAuditLogRequest {
            after_index,
            page_size,
        });
        req.set_timeout(self.attempt_timeout());
        Ok(admin.list_audit_log(req).await?.into_inner().entries)
    }

    pub async fn load_registry(
        &self,
        req: pb::LoadRegistryRequest,
    ) -> Result<pb::LoadRegistryResponse, Status> {
        self.admin(|mut c| {
            let r = req.clone();
            async move { c.load_registry(r).await }
        })
        .await
    }

    /// Runs a Tally call with leader-following and retries; `req` is
    /// cloned for each attempt.
    async fn tally<Req, Resp, F, Fut>(&self, req: Req, call: F) -> Result<Resp, Status>
    where
        Req: Clone,
        F: Fn(TallyClient<Timed>, Req) -> Fut,
        Fut: Future<Output = Result<tonic::Response<Resp>, Status>>,
    {
        self.call_hedged(|ch| call(TallyClient::new(ch), req.clone()))
            .await
    }

    /// Runs an admin call with leader-following (membership changes etc.).
    pub async fn admin<T, F, Fut>(&self, call: F) -> Result<T, Status>
    where
        F: Fn(AdminClient<Timed>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        self.call(|ch| call(AdminClient::new(ch))).await
    }

    /// Like `admin`, for a call that waits on purpose: one attempt may take
    /// the whole deadline.
    pub async fn admin_patient<T, F, Fut>(&self, call: F) -> Result<T, Status>
    where
        F: Fn(AdminClient<Timed>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        self.call_patient(|ch| call(AdminClient::new(ch))).await
    }

    /// Asks one specific node for its view of the cluster (no retries).
    pub async fn status_of(&self, addr: &str) -> Result<pb::ClusterStatusResponse, Status> {
        let ch = self.channel(addr)?;
        let mut req = tonic::Request::new(pb::ClusterStatusRequest {});
        req.set_timeout(self.attempt_timeout());
        let mut admin = AdminClient::new(ch);
        match tokio::time::timeout(self.attempt_timeout(), admin.cluster_status(req)).await {
            Ok(r) => r.map(tonic::Response::into_inner),
            Err(_) => Err(Status::deadline_exceeded(format!("{addr} did not answer"))),
        }
    }
}

fn header(md: &tonic::metadata::MetadataMap, key: &str) -> Option<String> {
    md.get(key)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}
