//! A cluster of real `rekap-node` processes on loopback: start, stop,
//! kill -9 and restart nodes, add one, give one its own flags, timing or
//! environment, and read their logs.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rekap_client::Client;
use rekap_client::proto as pb;

use crate::pki::{ADMIN, Pki};
use crate::{
    client_for, free_port, node_binary, setup_users, status, wait_applied, wait_for_leader,
    wait_until, wan,
};

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
    /// More environment for its process (`set_env`).
    env: Vec<(String, String)>,
}

impl NodeProc {
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }
}

fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
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
            c.spawn_node(id, listen, addr, initial.clone(), Vec::new());
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

    fn spawn_node(
        &mut self,
        id: u64,
        listen: String,
        addr: String,
        initial_cluster: String,
        env: Vec<(String, String)>,
    ) {
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
            env,
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
            .envs(n.env.iter().map(|(k, v)| (k, v)))
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
        self.spawn_joiner_with_env(&[])
    }

    /// Like `spawn_joiner`, with more environment for the process (its
    /// crash points, `FAILPOINTS`, say). Kept for its restarts, until
    /// `set_env` changes it.
    pub fn spawn_joiner_with_env(&mut self, env: &[(&str, &str)]) -> u64 {
        let id = self.nodes.keys().max().copied().unwrap_or(0) + 1;
        let (_, listen, addr) = with_front(self.wan.as_ref(), id);
        self.spawn_node(id, listen, addr, String::new(), owned(env));
        id
    }

    /// Gives a stopped node this environment (over the harness's own) for
    /// its next starts.
    pub fn set_env(&mut self, id: u64, env: &[(&str, &str)]) {
        let n = self.nodes.get_mut(&id).expect("known node");
        assert!(n.child.is_none(), "node {id} is running");
        n.env = owned(env);
    }

    /// Waits up to `timeout` for a node's process to end by itself, and
    /// returns how it ended.
    pub async fn wait_exit(&mut self, id: u64, timeout: Duration) -> std::process::ExitStatus {
        let start = Instant::now();
        loop {
            let n = self.nodes.get_mut(&id).expect("known node");
            let child = n.child.as_mut().expect("node is running");
            if let Some(status) = child.try_wait().expect("wait for node") {
                n.child = None;
                return status;
            }
            assert!(
                start.elapsed() < timeout,
                "node {id} still running after {timeout:?}\n{}",
                self.log_tail(id, 30)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
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
