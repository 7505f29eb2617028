//! Node configuration from flags, environment (`REKAP_*`) and an optional
//! TOML file. Flags and environment win over the file.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, bail};
use serde::Deserialize;

use crate::raft::NodeId;

/// A node's settings as flags (the binary's `Cli` holds them).
#[derive(clap::Args, Debug, Default)]
pub struct Args {
    /// TOML file with any of the settings below (keys as the long flags, with '_').
    #[arg(long, env = "REKAP_CONFIG")]
    pub config: Option<PathBuf>,
    /// This node's id: a positive integer, unique in the cluster and never
    /// reused; or `ordinal` for the hostname's trailing number + 1 (a
    /// Kubernetes StatefulSet pod rekap-0 is node 1).
    #[arg(long, env = "REKAP_NODE_ID")]
    pub id: Option<String>,
    /// Address to listen on for gRPC (clients and peers).
    #[arg(long, env = "REKAP_LISTEN")]
    pub listen: Option<String>,
    /// Address to serve HTTP on: `/metrics` for Prometheus. HTTPS with the
    /// node's certificate (no client certificate asked: it is read-only
    /// and public); plain HTTP only with --insecure. Off when not given.
    #[arg(long, env = "REKAP_HTTP_LISTEN")]
    pub http_listen: Option<String>,
    /// How long browsers and caches (nginx, a CDN) may reuse a dashboard
    /// answer without asking again, in seconds (default 2).
    #[arg(long, env = "REKAP_HTTP_MAX_AGE")]
    pub http_max_age: Option<u32>,
    /// How long after that a cache may still serve the answer while it
    /// asks for a newer one, in seconds (default 10).
    #[arg(long, env = "REKAP_HTTP_STALE_WHILE_REVALIDATE")]
    pub http_stale_while_revalidate: Option<u32>,
    /// The most live event streams (the dashboard's live pages) this node
    /// holds open (default 20,000); one more is refused with 503 and
    /// Retry-After, which a balancer in front takes to another node.
    #[arg(long, env = "REKAP_HTTP_MAX_STREAMS")]
    pub http_max_streams: Option<usize>,
    /// Address other nodes and clients use to reach this node (default: --listen).
    #[arg(long, env = "REKAP_ADVERTISE")]
    pub advertise: Option<String>,
    /// Directory for the RocksDB database and snapshots.
    #[arg(long, env = "REKAP_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Members of a new cluster, as "1=host:port,2=host:port,3=host:port".
    /// The same list on every initial node; empty for a node that will join.
    #[arg(long, env = "REKAP_INITIAL_CLUSTER")]
    pub initial_cluster: Option<String>,
    /// Build a snapshot every this many log entries (default 20,000).
    #[arg(long, env = "REKAP_SNAPSHOT_EVERY")]
    pub snapshot_every: Option<u64>,
    /// Also build one once this many bytes of log were appended since the
    /// last (default 64 MiB). The log is kept back to the snapshot before
    /// the newest, so at most two intervals of it are on disk.
    #[arg(long, env = "REKAP_SNAPSHOT_BYTES")]
    pub snapshot_bytes: Option<u64>,
    /// Directory with this node's TLS files: `ca.crt` (one or more CA
    /// certificates), `node.crt` and `node.key` (made by `rekapctl certs
    /// node`), or `node-<id>.crt` and `node-<id>.key`. Re-read on SIGHUP
    /// and when a file changes.
    #[arg(long, env = "REKAP_CERTS_DIR")]
    pub certs_dir: Option<PathBuf>,
    /// This cluster's name, recorded in every data directory at creation: a
    /// node refuses a directory of another cluster (give each its own).
    #[arg(long, env = "REKAP_CLUSTER_NAME")]
    pub cluster_name: Option<String>,
    /// Serve plaintext, with no authentication and no authorization. For
    /// benchmarks and experiments only; never on an election network.
    #[arg(long, env = "REKAP_INSECURE")]
    pub insecure: bool,
    /// How often the leader sends heartbeats, in ms (default 50). Must
    /// exceed the longest round trip between voters, with room for jitter:
    /// an answer that takes longer does not count (README, "Tuning").
    #[arg(long, env = "REKAP_HEARTBEAT_INTERVAL")]
    pub heartbeat_interval: Option<u64>,
    /// The shortest time a follower waits without hearing from a leader
    /// before it stands for election, in ms (default 250; at least 5
    /// heartbeats, about ten round trips). The same on every node.
    #[arg(long, env = "REKAP_ELECTION_TIMEOUT")]
    pub election_timeout: Option<u64>,
    /// Where this node should lead, against the other nodes (default 1).
    /// A leader hands the leadership to a healthy, caught-up voter with a
    /// higher priority once it has been so for a while; 0 means "never
    /// lead while another node can" (an office on satellite).
    #[arg(long, env = "REKAP_LEADER_PRIORITY")]
    pub leader_priority: Option<u32>,
    /// Whether a follower that stops hearing from its leader checks that
    /// the leader's address still takes connections, and fails over at
    /// once when it refuses them (its process is gone; default true). Set
    /// false where a middlebox may reset connections to a live leader
    /// (README, "Tuning").
    #[arg(long, env = "REKAP_PROBE_DEAD_LEADER", action = clap::ArgAction::Set)]
    pub probe_dead_leader: Option<bool>,
    /// The most a snapshot is sent at, per second, to each node that
    /// catches up by snapshot: "4mbit", "512kib", "2mib", or bytes. Keeps a
    /// transfer over a thin link from starving the log stream beside it.
    /// Unlimited when not given.
    #[arg(long, env = "REKAP_SNAPSHOT_RATE")]
    pub snapshot_rate: Option<String>,
    /// The local IP address this node's connections to other nodes leave
    /// from (a host with several interfaces or addresses). The system's
    /// choice when not given.
    #[arg(long, env = "REKAP_SOURCE_ADDRESS")]
    pub source_address: Option<std::net::IpAddr>,
    /// The user who administers a new cluster (the name in their
    /// certificate). Needed with --initial-cluster; set once, when the
    /// cluster first elects a leader.
    #[arg(long, env = "REKAP_INITIAL_ADMIN")]
    pub initial_admin: Option<String>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    id: Option<NodeId>,
    listen: Option<String>,
    http_listen: Option<String>,
    http_max_age: Option<u32>,
    http_stale_while_revalidate: Option<u32>,
    http_max_streams: Option<usize>,
    advertise: Option<String>,
    data_dir: Option<PathBuf>,
    initial_cluster: Option<String>,
    snapshot_every: Option<u64>,
    snapshot_bytes: Option<u64>,
    certs_dir: Option<PathBuf>,
    cluster_name: Option<String>,
    insecure: Option<bool>,
    initial_admin: Option<String>,
    heartbeat_interval: Option<u64>,
    election_timeout: Option<u64>,
    leader_priority: Option<u32>,
    probe_dead_leader: Option<bool>,
    source_address: Option<std::net::IpAddr>,
    snapshot_rate: Option<String>,
}

/// The resolved settings.
#[derive(Debug, Clone)]
pub struct Config {
    pub id: NodeId,
    pub listen: String,
    pub http_listen: Option<String>,
    /// `Cache-Control` of the dashboard's answers.
    pub http_cache: crate::http::cache::Policy,
    pub http_max_streams: usize,
    pub advertise: String,
    pub data_dir: PathBuf,
    pub initial_cluster: BTreeMap<NodeId, String>,
    pub snapshot_every: u64,
    pub snapshot_bytes: u64,
    /// `None` only with `--insecure`.
    pub certs_dir: Option<PathBuf>,
    pub initial_admin: Option<String>,
    pub cluster_name: String,
    pub timing: crate::timing::Timing,
    pub leader_priority: u32,
    /// `node::dead_leader`.
    pub probe_dead_leader: bool,
    pub source_address: Option<std::net::IpAddr>,
    /// Bytes per second.
    pub snapshot_rate: Option<u64>,
}

impl Config {
    pub fn resolve(args: Args) -> anyhow::Result<Config> {
        let file: FileConfig = match &args.config {
            Some(p) => toml::from_str(
                &std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
            )
            .with_context(|| format!("parsing {}", p.display()))?,
            None => FileConfig::default(),
        };
        let id = match args.id {
            Some(s) => parse_id(&s)?,
            None => file.id.context("--id (REKAP_NODE_ID) is required")?,
        };
        if id == 0 {
            bail!("node id 0 is reserved; use a positive id");
        }
        let listen = args
            .listen
            .or(file.listen)
            .unwrap_or_else(|| "127.0.0.1:7000".into());
        let http_listen = args.http_listen.or(file.http_listen);
        let default_cache = crate::http::cache::Policy::default();
        let http_cache = crate::http::cache::Policy {
            max_age: args
                .http_max_age
                .or(file.http_max_age)
                .unwrap_or(default_cache.max_age),
            stale_while_revalidate: args
                .http_stale_while_revalidate
                .or(file.http_stale_while_revalidate)
                .unwrap_or(default_cache.stale_while_revalidate),
        };
        let advertise = args
            .advertise
            .or(file.advertise)
            .unwrap_or_else(|| listen.clone());
        let data_dir = args
            .data_dir
            .or(file.data_dir)
            .context("--data-dir (REKAP_DATA_DIR) is required")?;
        let initial_cluster = parse_cluster(
            &args
                .initial_cluster
                .or(file.initial_cluster)
                .unwrap_or_default(),
        )?;
        if !initial_cluster.is_empty() && initial_cluster.get(&id) != Some(&advertise) {
            bail!("--initial-cluster must list this node as {id}={advertise}");
        }
        let snapshot_every = args
            .snapshot_every
            .or(file.snapshot_every)
            .unwrap_or(20_000)
            .max(10);
        let snapshot_bytes = args
            .snapshot_bytes
            .or(file.snapshot_bytes)
            .unwrap_or(64 << 20)
            .max(1 << 20);
        let insecure = args.insecure || file.insecure.unwrap_or(false);
        let certs_dir = match (args.certs_dir.or(file.certs_dir), insecure) {
            (_, true) => None,
            (Some(d), false) => Some(d),
            (None, false) => bail!(
                "--certs-dir (REKAP_CERTS_DIR) is required: nodes serve TLS only (make the files with `rekapctl certs`); --insecure serves plaintext with no authentication"
            ),
        };
        let initial_admin = args.initial_admin.or(file.initial_admin);
        if let Some(a) = &initial_admin
            && !rekap_proto::identity::valid_user_name(a)
        {
            bail!("--initial-admin {a:?} is not a valid user name");
        }
        if !insecure && !initial_cluster.is_empty() && initial_admin.is_none() {
            bail!(
                "--initial-admin (REKAP_INITIAL_ADMIN) is required with --initial-cluster: name the user (as in their certificate) who administers the new cluster"
            );
        }
        let cluster_name = args
            .cluster_name
            .or(file.cluster_name)
            .unwrap_or_else(|| "rekap".into());
        let default = crate::timing::Timing::default();
        let timing = crate::timing::Timing::new(
            args.heartbeat_interval
                .or(file.heartbeat_interval)
                .unwrap_or(default.heartbeat_ms()),
            args.election_timeout
                .or(file.election_timeout)
                .unwrap_or(default.election_ms()),
        )?;
        let snapshot_rate = args
            .snapshot_rate
            .or(file.snapshot_rate)
            .map(|r| parse_rate(&r))
            .transpose()?;
        Ok(Config {
            snapshot_rate,
            timing,
            leader_priority: args.leader_priority.or(file.leader_priority).unwrap_or(1),
            probe_dead_leader: args
                .probe_dead_leader
                .or(file.probe_dead_leader)
                .unwrap_or(true),
            source_address: args.source_address.or(file.source_address),
            cluster_name,
            id,
            listen,
            http_listen,
            http_cache,
            http_max_streams: args
                .http_max_streams
                .or(file.http_max_streams)
                .unwrap_or(20_000),
            advertise,
            data_dir,
            initial_cluster,
            snapshot_every,
            snapshot_bytes,
            certs_dir,
            initial_admin,
        })
    }
}

/// A rate per second: bytes, or with a unit (kib, mib, gib; kbit, mbit,
/// gbit). Case does not matter.
fn parse_rate(s: &str) -> anyhow::Result<u64> {
    let t = s.trim().to_ascii_lowercase();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .with_context(|| format!("--snapshot-rate {s:?} does not start with a number"))?;
    let per = match unit.trim() {
        "" | "b" => 1.0,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "kbit" => 1e3 / 8.0,
        "mbit" => 1e6 / 8.0,
        "gbit" => 1e9 / 8.0,
        other => bail!(
            "--snapshot-rate {s:?}: unknown unit {other:?} (use kib, mib, gib, kbit, mbit or gbit)"
        ),
    };
    let rate = (n * per) as u64;
    if rate < 4096 {
        bail!("--snapshot-rate {s:?} is under 4 KiB per second: a snapshot would never arrive");
    }
    Ok(rate)
}

/// A node id, or `ordinal`: the hostname's trailing number + 1.
fn parse_id(s: &str) -> anyhow::Result<NodeId> {
    if s != "ordinal" {
        return s
            .parse()
            .with_context(|| format!("node id {s:?} is not a positive integer"));
    }
    let host = std::env::var("HOSTNAME")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .context("REKAP_NODE_ID=ordinal needs the hostname")?;
    let ordinal: NodeId = host
        .trim()
        .rsplit('-')
        .next()
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("hostname {host:?} does not end in -<ordinal>"))?;
    Ok(ordinal + 1)
}

pub fn parse_cluster(s: &str) -> anyhow::Result<BTreeMap<NodeId, String>> {
    let mut out = BTreeMap::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (id, addr) = part
            .split_once('=')
            .with_context(|| format!("initial cluster entry {part:?} is not id=host:port"))?;
        let id: NodeId = id
            .trim()
            .parse()
            .with_context(|| format!("bad node id in {part:?}"))?;
        if out.insert(id, addr.trim().to_string()).is_some() {
            bail!("node {id} is listed twice in the initial cluster");
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::parse_rate;

    #[test]
    fn rates_are_read_with_their_units() {
        assert_eq!(parse_rate("4mbit").unwrap(), 500_000);
        assert_eq!(parse_rate("512KiB").unwrap(), 512 * 1024);
        assert_eq!(parse_rate("2 mib").unwrap(), 2 * 1024 * 1024);
        assert_eq!(parse_rate("100000").unwrap(), 100_000);
        assert!(
            parse_rate("1kbit")
                .unwrap_err()
                .to_string()
                .contains("under 4 KiB")
        );
        assert!(
            parse_rate("4 furlongs")
                .unwrap_err()
                .to_string()
                .contains("unknown unit")
        );
        assert!(parse_rate("fast").is_err());
    }
}
