//! Wiring: starts Raft on the opened storage and serves every gRPC service
//! on one port (Tally, Admin, Raft, health, reflection) until a shutdown is
//! requested, then drains and shuts Raft down.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use openraft::async_runtime::WatchReceiver;
use rekap_proto::pb;
use tokio::net::TcpListener;
use tonic::transport::Server;
use tracing::Instrument;

use crate::config::Config;
use crate::network::{ChannelPool, MAX_RAFT_MESSAGE, NetworkFactory};
use crate::node::Node;
use crate::security::material::Paths;
use crate::security::{self, AuthLayer, Authenticator, Caller, Tls, acceptor};
use crate::service::front::FrontLayer;
use crate::service::observe::ObserveLayer;
use crate::service::{admin::AdminService, raft::RaftService, tally::TallyService};
use crate::shutdown::Shutdown;
use crate::store::{LogStore, StateMachineStore};
use crate::{bootstrap, raft};

/// Largest public request accepted: a full `SubmitBatch` fits easily.
pub const MAX_PUBLIC_MESSAGE: usize = 4 * 1024 * 1024;
/// Registry chunks are bigger than submissions.
pub const MAX_ADMIN_MESSAGE: usize = 8 * 1024 * 1024;
/// A node is healthy ("serving") when it follows a leader and its applied
/// index is within this many entries of the commit index.
const HEALTHY_LAG: u64 = 1000;
/// Calls open at once on one client connection (hyper's default is 200).
const MAX_STREAMS: u32 = 256;
/// Calls a client may cancel before this node picked them up, per
/// connection, before it is sent away (GOAWAY). A node that resumes after
/// a pause (SIGSTOP, a VM stall) reads every call its clients opened and
/// cancelled meanwhile at once; h2's default of 20, its guard against
/// rapid-reset floods (CVE-2023-44487), failed every call on the
/// connection then (issue 11). A client cancels about `streams x pause /
/// deadline` calls meanwhile: 360 in the paused-follower test. The guard
/// still holds for anyone who reaches the port (TLS asks for a client
/// certificate but checks it per call).
const MAX_PENDING_RESETS: usize = 1024;
/// How long in-flight calls get to finish once a shutdown is requested.
const DRAIN: Duration = Duration::from_secs(3);

/// Serves until `shutdown` is requested, then stops serving (in-flight calls
/// get `DRAIN` to finish) and shuts Raft down. The caller stops the runtime
/// and closes the storage afterwards.
pub async fn serve(
    cfg: Config,
    log: LogStore,
    sm: StateMachineStore,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let span = tracing::info_span!("node", id = cfg.id);
    async move {
        let tls = match &cfg.certs_dir {
            Some(dir) => Some(Tls::load(Paths::for_node(dir, cfg.id), cfg.id)?),
            None => {
                tracing::warn!("--insecure: serving plaintext with no authentication and no authorization; anyone who reaches this port can change the count");
                None
            }
        };
        let pool = ChannelPool::new(tls.clone(), crate::network::Links::new(cfg.source_address, cfg.snapshot_rate, cfg.timing));
        let metrics = Arc::new(crate::metrics::Metrics::new(log.fsync_seconds(), sm.apply_seconds(), tls.clone()));
        let network = NetworkFactory {
            node_id: cfg.id,
            pool: pool.clone(),
            own_log: Some(crate::network::hint::Own {
                log: log.log_ids(),
                taken: metrics.hints_taken.clone(),
            }),
        };
        let appended = log.appended();
        let durable = log.durable();
        let raft = raft::Raft::new(cfg.id, raft::config(cfg.snapshot_every, cfg.timing)?, network, log, sm.clone()).await?;
        let node = Arc::new(Node {
            id: cfg.id,
            timing: cfg.timing,
            leader_priority: cfg.leader_priority,
            addr: cfg.advertise.clone(),
            raft: raft.clone(),
            sm: sm.clone(),
            durable,
            peers: pool,
            // Users would shut out every unauthenticated caller: an
            // insecure cluster has none.
            first_admin: std::sync::Mutex::new(
                cfg.initial_admin
                    .clone()
                    .filter(|_| cfg.certs_dir.is_some())
                    .map(|name| (name, Caller::Node(cfg.id))),
            ),
            compaction: {
                let sm = sm.clone();
                raft::compaction::Compaction::new(raft.clone(), appended, cfg.snapshot_bytes, move || {
                    sm.state_bytes()
                })
            },
            metrics: metrics.clone(),
            watches: crate::watch::Hub::new(sm.clone()),
            handover: Default::default(),
            heard_leader: std::sync::Mutex::new(std::time::Instant::now()),
            peer_priorities: Default::default(),
        });

        let (reporter, health) = tonic_health::server::health_reporter();
        let mut tasks = vec![
            tokio::spawn(report_health(node.clone(), reporter).in_current_span()),
            tokio::spawn({
                let node = node.clone();
                async move { node.compaction.run().await }.in_current_span()
            }),
        ];
        if let Some(t) = &tls {
            tasks.push(tokio::spawn(security::watch_files(t.clone(), shutdown.hangups()).in_current_span()));
        }
        tasks.push(tokio::spawn(metrics.clone().count_leader_changes(raft.clone()).in_current_span()));
        tasks.push(tokio::spawn(node.watches.clone().run().in_current_span()));
        tasks.push(tokio::spawn(crate::node::peer_timing::watch(node.clone()).in_current_span()));
        tasks.push(tokio::spawn(crate::node::placement::run(node.clone()).in_current_span()));
        tasks.push(tokio::spawn(crate::node::warm::run(node.clone()).in_current_span()));
        if cfg.probe_dead_leader {
            tasks.push(tokio::spawn(crate::node::dead_leader::run(node.clone()).in_current_span()));
        }
        if let Some(addr) = &cfg.http_listen {
            // Bound here, so a taken port stops the start with its reason.
            let listener = TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding the HTTP listener (--http-listen {addr})"))?;
            tracing::info!(http_listen = %addr, tls = tls.is_some(), "serving /metrics");
            let served = crate::http::serve(listener, tls.clone(), crate::http::router(node.clone(), cfg.http_cache, cfg.http_max_streams));
            tasks.push(tokio::spawn(
                async move {
                    if let Err(e) = served.await {
                        tracing::error!(error = %e, "the HTTP listener stopped");
                    }
                }
                .in_current_span(),
            ));
        }
        // Both versions: older grpcurl releases and IDE plugins ask v1alpha.
        let reflection = || {
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        };
        let (reflection, reflection_alpha) = (reflection().build_v1()?, reflection().build_v1alpha()?);

        let listener = TcpListener::bind(&cfg.listen).await?;
        tracing::info!(listen = %cfg.listen, advertise = %cfg.advertise, data_dir = %cfg.data_dir.display(), timing = %cfg.timing.show(), leader_priority = cfg.leader_priority, "rekap-node serving");
        tasks.push(tokio::spawn(bootstrap::ensure_first_admin(node.clone()).in_current_span()));
        if !cfg.initial_cluster.is_empty() {
            tasks.push(tokio::spawn(
                bootstrap::auto_initialize(node.clone(), cfg.initial_cluster.clone()).in_current_span(),
            ));
        }

        let incoming = acceptor::incoming(listener, tls.clone())?;
        let server = Server::builder()
            .http2_keepalive_interval(Some(Duration::from_secs(5)))
            .http2_keepalive_timeout(Some(Duration::from_secs(10)))
            .max_concurrent_streams(Some(MAX_STREAMS))
            .initial_stream_window_size(Some(4 << 20))
            .initial_connection_window_size(Some(8 << 20))
            .http2_max_pending_accept_reset_streams(Some(MAX_PENDING_RESETS))
            .layer(ObserveLayer(metrics.clone()))
            .layer(AuthLayer(Authenticator::new(tls)))
            .layer(FrontLayer::new(node.clone()))
            .add_service(
                pb::tally_server::TallyServer::new(TallyService::new(node.clone()))
                    .max_decoding_message_size(MAX_PUBLIC_MESSAGE),
            )
            .add_service(
                pb::admin_server::AdminServer::new(AdminService { node: node.clone() })
                    .max_decoding_message_size(MAX_ADMIN_MESSAGE),
            )
            .add_service(
                pb::raft_server::RaftServer::new(RaftService::new(node.clone()))
                    .max_decoding_message_size(MAX_RAFT_MESSAGE)
                    .max_encoding_message_size(MAX_RAFT_MESSAGE),
            )
            .add_service(health)
            .add_service(reflection)
            .add_service(reflection_alpha)
            .serve_with_incoming_shutdown(incoming, shutdown.requested());
        let drained = async {
            shutdown.requested().await;
            node.watches.close();
            tracing::info!("shutting down: draining calls in flight");
            tokio::time::sleep(DRAIN).await;
        };
        tokio::select! {
            served = server => served?,
            _ = drained => tracing::debug!("calls still open after {DRAIN:?}; closing them"),
        }
        shutdown.step("stopping background tasks");
        for t in tasks {
            t.abort();
        }
        shutdown.step("shutting Raft down");
        raft.shutdown().await.ok();
        Ok(())
    }
    .instrument(span)
    .await
}

/// Standard gRPC health: SERVING only with a known leader and a caught-up
/// state machine, so load balancers and orchestrators route around nodes
/// that cannot serve a linearizable answer soon.
async fn report_health(node: Arc<Node>, reporter: tonic_health::server::HealthReporter) {
    let mut rx = node.raft.metrics();
    loop {
        let serving = {
            let m = rx.borrow_watched();
            let committed = m.local_committed.as_ref().map_or(0, |l| l.index);
            let applied = m.last_applied.as_ref().map_or(0, |l| l.index);
            m.current_leader.is_some() && applied + HEALTHY_LAG >= committed
        };
        let status = if serving {
            tonic_health::ServingStatus::Serving
        } else {
            tonic_health::ServingStatus::NotServing
        };
        for svc in ["", "rekap.v1.Tally", "rekap.v1.Admin"] {
            reporter.set_service_status(svc, status).await;
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}
