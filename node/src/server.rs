//! Wiring: opens storage, starts Raft, serves every gRPC service on one
//! port (Tally, Admin, Raft, health, reflection) until SIGINT/SIGTERM.

use std::sync::Arc;
use std::time::Duration;

use openraft::async_runtime::WatchReceiver;
use rekap_proto::pb;
use tokio::net::TcpListener;
use tonic::transport::Server;
use tracing::Instrument;

use crate::config::Config;
use crate::network::{ChannelPool, MAX_RAFT_MESSAGE, NetworkFactory};
use crate::node::Node;
use crate::service::{admin::AdminService, raft::RaftService, tally::TallyService};
use crate::{bootstrap, raft, store};

/// Largest public request accepted: a full `SubmitBatch` fits easily.
pub const MAX_PUBLIC_MESSAGE: usize = 4 * 1024 * 1024;
/// Registry chunks are bigger than submissions.
pub const MAX_ADMIN_MESSAGE: usize = 8 * 1024 * 1024;
/// A node is healthy ("serving") when it follows a leader and its applied
/// index is within this many entries of the commit index.
const HEALTHY_LAG: u64 = 1000;

pub async fn run(cfg: Config) -> anyhow::Result<()> {
    let span = tracing::info_span!("node", id = cfg.id);
    async move {
        let (log, sm) = store::open(&cfg.data_dir)?;
        let pool = ChannelPool::default();
        let network = NetworkFactory {
            node_id: cfg.id,
            pool: pool.clone(),
        };
        let raft = raft::Raft::new(cfg.id, raft::config(cfg.snapshot_every)?, network, log, sm.clone()).await?;
        let node = Arc::new(Node {
            id: cfg.id,
            addr: cfg.advertise.clone(),
            raft: raft.clone(),
            sm,
            peers: pool,
        });

        let (reporter, health) = tonic_health::server::health_reporter();
        tokio::spawn(report_health(node.clone(), reporter).in_current_span());
        let reflection = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
            .build_v1()?;

        let listener = TcpListener::bind(&cfg.listen).await?;
        tracing::info!(listen = %cfg.listen, advertise = %cfg.advertise, data_dir = %cfg.data_dir.display(), "rekap-node serving");
        if !cfg.initial_cluster.is_empty() {
            tokio::spawn(bootstrap::auto_initialize(node.clone(), cfg.initial_cluster.clone()).in_current_span());
        }

        Server::builder()
            .tcp_nodelay(true)
            .http2_keepalive_interval(Some(Duration::from_secs(5)))
            .add_service(
                pb::tally_server::TallyServer::new(TallyService { node: node.clone() })
                    .max_decoding_message_size(MAX_PUBLIC_MESSAGE),
            )
            .add_service(
                pb::admin_server::AdminServer::new(AdminService { node: node.clone() })
                    .max_decoding_message_size(MAX_ADMIN_MESSAGE),
            )
            .add_service(
                pb::raft_server::RaftServer::new(RaftService { node: node.clone() })
                    .max_decoding_message_size(MAX_RAFT_MESSAGE)
                    .max_encoding_message_size(MAX_RAFT_MESSAGE),
            )
            .add_service(health)
            .add_service(reflection)
            .serve_with_incoming_shutdown(tokio_stream::wrappers::TcpListenerStream::new(listener), shutdown_signal())
            .await?;
        tracing::info!("shutting down");
        raft.shutdown().await.ok();
        Ok(())
    }
    .instrument(span)
    .await
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
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
