//! Test harness: real `rekap-node` processes on loopback, each with its own
//! RocksDB directory, driven through the public client library.
//!
//! The scenario bodies in `tests/` use only this API: start a cluster, stop,
//! kill -9 or restart a node, add a node, wait for a leader or for a
//! condition with a deadline, and get a client for the cluster or one node.

pub mod browser;
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

use std::collections::BTreeMap;
use std::fs::File;
use std::future::Future;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rekap_client::proto as pb;
use rekap_client::{Client, ClientOptions};

use crate::pki::{ADMIN, AUDITOR, OPERATOR, Pki};

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
pub async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
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
            "timed out after {timeout:?} waiting for {what}"
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

/// Node `id`'s listen address, and the address others reach it at: its
/// proxy when behind a WAN.
fn with_front(wan: Option<&wan::Wan>, id: u64) -> (u64, String, String) {
    let listen = format!("127.0.0.1:{}", free_port());
    let addr = match wan {
        Some(w) => w
            .front(id, listen.parse().expect("a socket address"))
            .to_string(),
        None => listen.clone(),
    };
    (id, listen, addr)
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

#[derive(Debug, Clone)]
pub struct ClusterOptions {
    pub nodes: usize,
    /// Snapshot (and purge the log) every this many entries.
    pub snapshot_every: u64,
    /// ... or every this many bytes of log.
    pub snapshot_bytes: u64,
    /// `--heartbeat-interval` and `--election-timeout` (ms); the nodes'
    /// defaults when `None`.
    pub timing: Option<(u64, u64)>,
    /// Put every node behind the WAN emulator (`Cluster::wan`); each node's
    /// peer traffic then leaves from its own office address.
    pub wan: bool,
    /// More flags for a node, by id (`--leader-priority`, say).
    pub node_flags: BTreeMap<u64, Vec<(String, String)>>,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            nodes: 3,
            snapshot_every: 20_000,
            snapshot_bytes: 64 << 20,
            timing: None,
            wan: false,
            node_flags: BTreeMap::new(),
        }
    }
}

pub struct NodeProc {
    pub id: u64,
    pub certs: PathBuf,
    /// Where peers and clients reach it (its proxy, behind the WAN).
    pub addr: String,
    /// Where it listens.
    listen: String,
    /// Where it serves HTTPS (`/metrics`).
    pub http: String,
    pub data_dir: PathBuf,
    log: PathBuf,
    initial_cluster: String,
    child: Option<Child>,
    /// This node's own timing, over the cluster's (`set_timing`).
    timing: Option<(u64, u64)>,
}

impl NodeProc {
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }
}

/// A cluster of real node processes; every process is killed on drop.
pub struct Cluster {
    pub nodes: BTreeMap<u64, NodeProc>,
    opts: ClusterOptions,
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub pki: Pki,
    wan: Option<wan::Wan>,
}

impl Cluster {
    /// Starts `opts.nodes` nodes that initialise themselves as one cluster,
    /// and waits until every node answers and they have a leader (a leader
    /// needs only a majority: a scenario that calls a node directly must
    /// not race its start).
    pub async fn start(opts: ClusterOptions) -> Cluster {
        let mut dir = tempfile::Builder::new()
            .prefix("rekap-test-")
            .tempdir()
            .expect("temp dir");
        // `REKAP_KEEP_TEST_DIR=1` keeps the nodes' data and logs to read.
        if std::env::var_os("REKAP_KEEP_TEST_DIR").is_some() {
            dir.disable_cleanup(true);
            eprintln!("keeping {}", dir.path().display());
        }
        let wan = opts.wan.then(wan::Wan::new);
        let addrs: Vec<(u64, String, String)> = (1..=opts.nodes as u64)
            .map(|id| with_front(wan.as_ref(), id))
            .collect();
        let initial = addrs
            .iter()
            .map(|(id, _, a)| format!("{id}={a}"))
            .collect::<Vec<_>>()
            .join(",");
        let pki = Pki::new(dir.path());
        let mut c = Cluster {
            nodes: BTreeMap::new(),
            opts,
            dir,
            bin: node_binary(),
            pki,
            wan,
        };
        for (id, listen, addr) in addrs {
            c.spawn_node(id, listen, addr, initial.clone());
        }
        for id in c.running() {
            let what = format!("node {id} answering");
            wait_until(&what, Duration::from_secs(30), || async {
                status(&c, id).await.map(|_| ())
            })
            .await;
        }
        c.wait_for_leader(Duration::from_secs(30)).await;
        setup_users(&c, &c.client()).await;
        c
    }

    fn spawn_node(&mut self, id: u64, listen: String, addr: String, initial_cluster: String) {
        let data_dir = self.dir.path().join(format!("node-{id}"));
        let log = self.dir.path().join(format!("node-{id}.log"));
        let certs = self.pki.node_dir(id, &["127.0.0.1", "localhost"]);
        let mut n = NodeProc {
            id,
            certs,
            addr,
            listen,
            http: format!("127.0.0.1:{}", free_port()),
            data_dir,
            log,
            initial_cluster,
            child: None,
            timing: None,
        };
        self.launch(&mut n);
        self.nodes.insert(id, n);
    }

    /// A node's command line, as `(flag, value)` pairs.
    fn node_args(&self, n: &NodeProc) -> Vec<(String, String)> {
        [
            ("--id", n.id.to_string()),
            ("--listen", n.listen.clone()),
            ("--advertise", n.addr.clone()),
            ("--http-listen", n.http.clone()),
            ("--data-dir", n.data_dir.display().to_string()),
            ("--initial-cluster", n.initial_cluster.clone()),
            ("--snapshot-every", self.opts.snapshot_every.to_string()),
            ("--snapshot-bytes", self.opts.snapshot_bytes.to_string()),
            ("--certs-dir", n.certs.display().to_string()),
            ("--initial-admin", ADMIN.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .chain(self.wan.as_ref().map(|_| {
            let ip = wan::office_ip(n.id).to_string();
            ("--source-address".to_string(), ip)
        }))
        .chain(
            self.opts
                .node_flags
                .get(&n.id)
                .into_iter()
                .flatten()
                .cloned(),
        )
        .chain(
            n.timing
                .or(self.opts.timing)
                .into_iter()
                .flat_map(|(h, e)| {
                    [
                        ("--heartbeat-interval".to_string(), h.to_string()),
                        ("--election-timeout".to_string(), e.to_string()),
                    ]
                }),
        )
        .collect()
    }

    /// Gives a stopped node its own timing for its next start.
    pub fn set_timing(&mut self, id: u64, timing: (u64, u64)) {
        let n = self.nodes.get_mut(&id).expect("known node");
        assert!(n.child.is_none(), "node {id} is running");
        n.timing = Some(timing);
    }

    /// Runs a stopped node's process with its command line changed by
    /// `edit`, expecting it to refuse to start: waits up to `timeout` for it
    /// to exit and returns its status and everything it wrote.
    pub async fn run_to_exit(
        &self,
        id: u64,
        edit: impl FnOnce(&mut Vec<(String, String)>),
        timeout: Duration,
    ) -> (std::process::ExitStatus, String) {
        let n = &self.nodes[&id];
        assert!(n.child.is_none(), "node {id} is running");
        let mut args = self.node_args(n);
        edit(&mut args);
        let out = self.dir.path().join(format!("node-{id}.refused.log"));
        let file = File::create(&out).expect("output file");
        let mut child = Command::new(&self.bin)
            .args(args.iter().flat_map(|(k, v)| [k, v]))
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("fd"))
            .stderr(file)
            .spawn()
            .expect("spawn rekap-node");
        let start = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().expect("wait") {
                break s;
            }
            if start.elapsed() > timeout {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "node {id} kept running; expected it to refuse to start:\n{}",
                    std::fs::read_to_string(&out).unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        (status, std::fs::read_to_string(&out).unwrap_or_default())
    }

    fn launch(&self, n: &mut NodeProc) {
        let log = File::options()
            .create(true)
            .append(true)
            .open(&n.log)
            .expect("node log");
        let args = self.node_args(n);
        let child = Command::new(&self.bin)
            .args(args.iter().flat_map(|(k, v)| [k, v]))
            .env(
                "RUST_LOG",
                std::env::var("REKAP_TEST_NODE_LOG")
                    .unwrap_or_else(|_| "info,openraft=warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .spawn()
            .expect("spawn rekap-node");
        n.child = Some(child);
    }

    /// Starts a fresh node that belongs to no cluster yet (to be added as a
    /// learner). Returns its id.
    pub fn spawn_joiner(&mut self) -> u64 {
        let id = self.nodes.keys().max().copied().unwrap_or(0) + 1;
        let (_, listen, addr) = with_front(self.wan.as_ref(), id);
        self.spawn_node(id, listen, addr, String::new());
        id
    }

    /// The WAN the nodes are behind (`ClusterOptions::wan`).
    pub fn wan(&self) -> &wan::Wan {
        self.wan
            .as_ref()
            .expect("a cluster started with ClusterOptions::wan")
    }

    pub fn addr(&self, id: u64) -> String {
        self.nodes[&id].addr.clone()
    }

    /// The address of a node's HTTPS listener.
    pub fn http_addr(&self, id: u64) -> String {
        self.nodes[&id].http.clone()
    }

    pub fn running(&self) -> Vec<u64> {
        self.nodes
            .values()
            .filter(|n| n.is_running())
            .map(|n| n.id)
            .collect()
    }

    /// The admin's client, knowing every node's address.
    pub fn client(&self) -> Client {
        self.client_as(ADMIN)
    }

    /// A client as `user`, knowing every node's address.
    pub fn client_as(&self, user: &str) -> Client {
        Client::with_options(
            self.nodes.values().map(|n| n.addr.clone()),
            self.pki.options(user),
        )
    }

    /// A client that talks to one node only (reads see that node's state).
    pub fn client_for(&self, id: u64) -> Client {
        client_for(self, id)
    }

    /// SIGKILL: no chance to flush or say goodbye.
    pub fn kill(&mut self, id: u64) {
        if let Some(mut c) = self.nodes.get_mut(&id).and_then(|n| n.child.take()) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then wait for the process to exit, and return its exit
    /// status. An orderly stop must exit 0 (issue 10): this fails the test
    /// otherwise, or if the node takes more than 15 s (its own bound is 10 s).
    pub async fn stop(&mut self, id: u64) -> std::process::ExitStatus {
        let status = self.stop_status(id).await;
        assert!(
            status.success(),
            "node {id} did not stop cleanly on SIGTERM: {status}\n{}",
            self.log_tail(id, 30)
        );
        status
    }

    /// SIGTERM, then the exit status, whatever it is.
    pub async fn stop_status(&mut self, id: u64) -> std::process::ExitStatus {
        let mut c = self
            .nodes
            .get_mut(&id)
            .and_then(|n| n.child.take())
            .unwrap_or_else(|| panic!("node {id} is not running"));
        let pid = nix::unistd::Pid::from_raw(c.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let start = Instant::now();
        loop {
            if let Some(status) = c.try_wait().expect("wait for node") {
                return status;
            }
            if start.elapsed() > Duration::from_secs(15) {
                let _ = c.kill();
                let _ = c.wait();
                panic!(
                    "node {id} still running 15 s after SIGTERM\n{}",
                    self.log_tail(id, 30)
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Sends `sig` to a running node (SIGHUP: re-read certificates).
    pub fn signal(&self, id: u64, sig: nix::sys::signal::Signal) {
        let child = self.nodes[&id].child.as_ref().expect("node is running");
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, sig).expect("signal the node");
    }

    /// Starts a stopped or killed node again on its data directory.
    pub fn restart(&mut self, id: u64) {
        let mut n = self.nodes.remove(&id).expect("known node");
        assert!(n.child.is_none(), "node {id} is still running");
        self.launch(&mut n);
        self.nodes.insert(id, n);
    }

    /// Forgets a node (after it was removed from the cluster and stopped).
    pub fn forget(&mut self, id: u64) {
        self.kill(id);
        self.nodes.remove(&id);
    }

    pub async fn status(&self, id: u64) -> Option<pb::ClusterStatusResponse> {
        status(self, id).await
    }

    /// Waits until a running node reports a leader that itself agrees it
    /// leads. Returns the leader's id.
    pub async fn wait_for_leader(&self, timeout: Duration) -> u64 {
        wait_for_leader(self, timeout).await
    }

    /// Waits until the given nodes have applied at least `index`.
    pub async fn wait_applied(&self, ids: &[u64], index: u64, timeout: Duration) {
        wait_applied(self, ids, index, timeout).await
    }

    /// Waits for a leader, then for every running node to apply what the
    /// leader had applied (a follower answers from its own state: the
    /// setup must be there first). Returns the leader.
    pub async fn settle(&self, timeout: Duration) -> u64 {
        let leader = self.wait_for_leader(timeout).await;
        let index = self
            .status(leader)
            .await
            .and_then(|s| s.applied_index)
            .unwrap_or(0);
        self.wait_applied(&self.running(), index, timeout).await;
        leader
    }

    /// A plain tonic channel to `addr` as `user`: no retries, no routing,
    /// so a caller sees exactly what that node answered.
    pub fn raw_channel(&self, user: &str, addr: &str) -> tonic::transport::Channel {
        use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
        let tls = self.pki.tls(user);
        let cfg = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&tls.ca_pem))
            .identity(Identity::from_pem(&tls.cert_pem, &tls.key_pem));
        Endpoint::from_shared(format!("https://{addr}"))
            .expect("endpoint")
            .tls_config(cfg)
            .expect("client TLS")
            .connect_lazy()
    }

    /// Runs `rekapctl --json ARGS` as `user` against `endpoints` (comma
    /// separated) and returns what it printed, or panics with its stderr.
    pub fn rekapctl(&self, user: &str, endpoints: &str, args: &[&str]) -> serde_json::Value {
        let bin = node_binary().with_file_name("rekapctl");
        let out = Command::new(&bin)
            .arg("--endpoints")
            .arg(endpoints)
            .arg("--certs-dir")
            .arg(self.pki.user_dir(user))
            .arg("--json")
            .args(args)
            .output()
            .expect("run rekapctl");
        assert!(
            out.status.success(),
            "rekapctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
    }

    /// Everything a node has logged so far.
    pub fn log(&self, id: u64) -> String {
        std::fs::read_to_string(&self.nodes[&id].log).unwrap_or_default()
    }

    /// The last lines of a node's log, for failure messages.
    pub fn log_tail(&self, id: u64, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.nodes[&id].log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let ids: Vec<u64> = self.nodes.keys().copied().collect();
        if std::thread::panicking() {
            for &id in &ids {
                eprintln!("---- node {id} log (tail) ----\n{}", self.log_tail(id, 40));
            }
        }
        for id in ids {
            self.kill(id);
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
