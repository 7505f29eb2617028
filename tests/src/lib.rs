//! Test harness: real `rekap-node` processes on loopback, each with its own
//! RocksDB directory, driven through the public client library.
//!
//! The scenario bodies in `tests/` use only this API: start a cluster, stop,
//! kill -9 or restart a node, add a node, wait for a leader or for a
//! condition with a deadline, and get a client for the cluster or one node.

pub mod browser;
pub mod cluster;
pub mod docker;
pub mod http;
pub mod nginx;
pub mod night;
pub mod night_report;
pub mod night_stations;
pub mod night_stations_report;
pub mod ops;
pub mod pki;
pub mod station;
pub mod wan;
pub mod workload;

use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rekap_client::proto as pb;
use rekap_client::{Client, ClientOptions};

pub use crate::cluster::{Cluster, ClusterOptions, NodeProc};
use crate::pki::{AUDITOR, OPERATOR, Pki};

/// What the harness and the checker need of a cluster, whether its nodes
/// run as processes on loopback or as containers.
pub trait Nodes {
    /// Ids of the nodes that should be up.
    fn running(&self) -> Vec<u64>;
    fn addr(&self, id: u64) -> String;
    /// The cluster's certificates.
    fn pki(&self) -> &Pki;
}

impl Nodes for Cluster {
    fn running(&self) -> Vec<u64> {
        Cluster::running(self)
    }

    fn addr(&self, id: u64) -> String {
        Cluster::addr(self, id)
    }

    fn pki(&self) -> &Pki {
        &self.pki
    }
}

/// A client as `user` that talks to one node only.
pub fn client_as_for(nodes: &impl Nodes, user: &str, id: u64) -> Client {
    // Never hedged: its answers must come from this node.
    let opts = ClientOptions {
        deadline: Duration::from_secs(10),
        hedge_after: None,
        ..nodes.pki().options(user)
    };
    Client::with_options([nodes.addr(id)], opts)
}

/// A client (the operator, who also reads everything) that talks to one
/// node only: its reads see that node's state.
pub fn client_for(nodes: &impl Nodes, id: u64) -> Client {
    client_as_for(nodes, OPERATOR, id)
}

/// The auditor's client for one node (audit chain heads).
pub fn auditor_for(nodes: &impl Nodes, id: u64) -> Client {
    client_as_for(nodes, AUDITOR, id)
}

/// Waits until the first admin is in place (the first leader proposes it),
/// then adds the scenario users.
pub async fn setup_users(nodes: &impl Nodes, admin: &Client) {
    wait_until("the first admin", Duration::from_secs(30), || async {
        admin.users().await.ok()
    })
    .await;
    pki::add_users(admin).await;
    let _ = nodes;
}

pub async fn status(nodes: &impl Nodes, id: u64) -> Option<pb::ClusterStatusResponse> {
    client_for(nodes, id).status_of(&nodes.addr(id)).await.ok()
}

/// Waits until a running node reports a leader that itself agrees it leads.
pub async fn wait_for_leader(nodes: &impl Nodes, timeout: Duration) -> u64 {
    wait_until("a leader", timeout, || async {
        for id in nodes.running() {
            if let Some(s) = status(nodes, id).await
                && s.state == "leader"
            {
                return Some(id);
            }
        }
        None
    })
    .await
}

/// Waits until the given nodes have applied at least `index`.
pub async fn wait_applied(nodes: &impl Nodes, ids: &[u64], index: u64, timeout: Duration) {
    for &id in ids {
        wait_until(
            &format!("node {id} to apply {index}"),
            timeout,
            || async move {
                let s = status(nodes, id).await?;
                (s.applied_index.unwrap_or(0) >= index).then_some(())
            },
        )
        .await;
    }
}

/// Polls `f` until it returns `Some`, failing the test after `timeout`.
pub async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    wait_explained(what, timeout, f, String::new).await
}

/// `wait_until`, whose failure also says what `explain` tells of the
/// scenario at that moment (what the calls got so far, say).
pub async fn wait_explained<T, F, Fut>(
    what: &str,
    timeout: Duration,
    mut f: F,
    explain: impl Fn() -> String,
) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}{}",
            explain()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The `rekap-node` binary next to the test executable's target directory.
pub fn node_binary() -> PathBuf {
    if let Ok(p) = std::env::var("REKAP_NODE_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target profile dir");
    let bin = dir.join("rekap-node");
    assert!(
        bin.exists(),
        "{} not found: build it first (cargo build --release -p rekap-node) or set REKAP_NODE_BIN",
        bin.display()
    );
    bin
}

/// A loopback port no listener holds now, and never one this process has
/// handed out before: a node's gRPC and HTTP ports are picked one after
/// the other, and the kernel may offer a just-released port again (a node
/// then failed to start, "address already in use").
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    let mut given = GIVEN.lock().expect("ports lock");
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind an ephemeral port")
            .local_addr()
            .expect("local addr")
            .port();
        if given.insert(port) {
            return port;
        }
    }
}

/// Why a node answered UNAVAILABLE: its `x-rekap-unavailable` reason.
pub fn unavailable_reason(s: &tonic::Status) -> Option<String> {
    s.metadata()
        .get(rekap_node::reply::UNAVAILABLE_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// A started 3-node cluster with a one-kecamatan registry (100 TPS) and
/// one result in, so every node has applied a command of its own term's
/// leader; also the registry's TPS ids.
pub async fn start_with_a_result() -> (Cluster, std::sync::Arc<Vec<String>>) {
    let (cluster, tps, _) = start_with_registry(ClusterOptions::default(), 1).await;
    cluster
        .client_as(pki::OPERATOR)
        .submit(workload::submission(&tps[0], 0))
        .await
        .expect("first submission");
    (cluster, tps)
}

/// A registry of `kecamatan` × 10 desa × 10 TPS in one kabupaten, with the
/// contest `PILKADA` over it.
pub fn synthetic_registry(kecamatan: usize) -> rekap_client::registry::Registry {
    rekap_client::generate::Synthetic {
        prefix: String::new(),
        kecamatan,
        desa_per_kecamatan: 10,
        tps_per_desa: 10,
        contest_id: CONTEST.into(),
    }
    .build()
}

pub const CONTEST: &str = "PILKADA";
/// Code of the synthetic registry's kabupaten.
pub const KABUPATEN: &str = "63.02";

/// A started cluster with a synthetic registry of `kecamatan` × 100 TPS
/// loaded; also every TPS id and every node's address.
pub async fn start_with_registry(
    opts: ClusterOptions,
    kecamatan: usize,
) -> (Cluster, std::sync::Arc<Vec<String>>, Vec<String>) {
    let cluster = Cluster::start(opts).await;
    let reg = synthetic_registry(kecamatan);
    load_registry(&cluster.client(), &reg).await;
    let tps = std::sync::Arc::new(reg.tps.iter().map(|t| t.tps_id.clone()).collect());
    let endpoints = cluster
        .running()
        .into_iter()
        .map(|id| cluster.addr(id))
        .collect();
    (cluster, tps, endpoints)
}

/// Loads `reg` as the admin, then grants the scenario operator and verifier
/// over it.
pub async fn load_registry(admin: &Client, reg: &rekap_client::registry::Registry) {
    for chunk in reg.chunks(2000) {
        admin.load_registry(chunk).await.expect("registry loads");
    }
    pki::grant_over(admin, reg).await;
}
