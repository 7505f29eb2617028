//! A userspace WAN emulator for the cluster tests (this kernel has no
//! netem). Every node gets a proxy in front of it, and peers and clients
//! reach the node only through it. Each node is an office with two links,
//! its uplink (what it sends) and its downlink (what it receives), and
//! bytes from office A to office B pay A's uplink and B's downlink. A
//! connection's far end is told by its source address: each node's peer
//! traffic leaves from its own 127.0.0.x (`--source-address`); anything
//! else is a client outside every office, with no link of its own.
//!
//! A link has a one-way delay, a jitter, a chance per chunk of a 200–600
//! ms stall (a lost segment stalls a TCP stream until it is resent), and a
//! bandwidth cap shared by all of the office's connections. A cut office
//! black-holes everything, as a dead WAN link does: no reset, nothing
//! answers, and bytes already sent wait until the heal. Streams stay in
//! order, as TCP's are. (Toxiproxy-style crates shape each proxy alone;
//! the offices' shared links and source-aware delays are why this is ours.)

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

/// One direction of an office's link.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Shape {
    pub delay: Duration,
    /// Up to this much more, drawn per chunk.
    pub jitter: Duration,
    /// Chance per chunk of a 200–600 ms stall.
    pub stall_chance: f64,
    /// Bytes per second; unlimited when `None`.
    pub rate: Option<u64>,
}

impl Shape {
    pub fn new(delay_ms: u64, jitter_ms: u64) -> Shape {
        Shape {
            delay: Duration::from_millis(delay_ms),
            jitter: Duration::from_millis(jitter_ms),
            ..Shape::default()
        }
    }

    pub fn stalls(self, chance: f64) -> Shape {
        Shape {
            stall_chance: chance,
            ..self
        }
    }

    /// A cap in megabits per second.
    pub fn mbit(self, mbit: f64) -> Shape {
        Shape {
            rate: Some((mbit * 1e6 / 8.0) as u64),
            ..self
        }
    }
}

#[derive(Default)]
struct Office {
    up: Shape,
    down: Shape,
    cut: bool,
    /// When each direction's cap lets the next byte go.
    up_free: Option<Instant>,
    down_free: Option<Instant>,
}

#[derive(Default)]
struct Links {
    offices: Mutex<HashMap<IpAddr, Office>>,
}

/// The emulated network; its proxies stop when it is dropped.
pub struct Wan {
    links: Arc<Links>,
    rt: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for Wan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Wan")
    }
}

impl Default for Wan {
    fn default() -> Self {
        Wan::new()
    }
}

/// The address node `id`'s peer traffic leaves from.
pub fn office_ip(id: u64) -> IpAddr {
    assert!(id < 240, "node id {id} has no office address");
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 10 + id as u8))
}

impl Wan {
    /// The proxies run on a runtime of their own, so a test that blocks
    /// its own (a `rekapctl` run, say) does not stop the network.
    pub fn new() -> Wan {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("wan")
            .enable_all()
            .build()
            .expect("the WAN's runtime");
        Wan {
            links: Arc::default(),
            rt: Some(rt),
        }
    }

    /// Puts a proxy for node `id` in front of `upstream`; returns the
    /// address peers and clients should use.
    pub fn front(&self, id: u64, upstream: SocketAddr) -> SocketAddr {
        self.front_at(id, "127.0.0.1:0".parse().expect("an address"), upstream)
    }

    /// The same, listening on `listen`.
    pub fn front_at(&self, id: u64, listen: SocketAddr, upstream: SocketAddr) -> SocketAddr {
        let std = std::net::TcpListener::bind(listen)
            .unwrap_or_else(|e| panic!("bind a proxy port {listen}: {e}"));
        std.set_nonblocking(true).expect("nonblocking");
        let addr = std.local_addr().expect("proxy addr");
        self.links
            .offices
            .lock()
            .expect("links")
            .entry(office_ip(id))
            .or_default();
        let links = self.links.clone();
        let rt = self.rt.as_ref().expect("running");
        rt.spawn(async move {
            let listener = TcpListener::from_std(std).expect("tokio listener");
            while let Ok((conn, from)) = listener.accept().await {
                let links = links.clone();
                tokio::spawn(async move {
                    let far = links.office_of(from.ip());
                    let here = Some(office_ip(id));
                    let Ok(node) = TcpStream::connect(upstream).await else {
                        // As a host whose process is gone answers a SYN:
                        // a reset, a round trip later (never over a cut).
                        for (a, b) in [(far, here), (here, far)] {
                            links.wait_uncut(a, b).await;
                            tokio::time::sleep_until(links.arrival(a, b, 1)).await;
                        }
                        let _ = conn.set_zero_linger();
                        return;
                    };
                    let _ = (conn.set_nodelay(true), node.set_nodelay(true));
                    let (cr, cw) = conn.into_split();
                    let (nr, nw) = node.into_split();
                    tokio::join!(
                        pump(links.clone(), cr, nw, far, here),
                        pump(links, nr, cw, here, far)
                    );
                });
            }
        });
        addr
    }

    /// Sets node `id`'s uplink and downlink.
    pub fn shape(&self, id: u64, up: Shape, down: Shape) {
        self.with(id, |o| {
            o.up = up;
            o.down = down;
        });
    }

    /// The same shape both ways.
    pub fn shape_both(&self, id: u64, s: Shape) {
        self.shape(id, s, s);
    }

    /// Cuts node `id`'s office off, or heals it.
    pub fn cut(&self, id: u64, cut: bool) {
        self.with(id, |o| o.cut = cut);
    }

    fn with(&self, id: u64, f: impl FnOnce(&mut Office)) {
        let mut offices = self.links.offices.lock().expect("links");
        f(offices.entry(office_ip(id)).or_default());
    }
}

impl Drop for Wan {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

impl Links {
    fn office_of(&self, ip: IpAddr) -> Option<IpAddr> {
        let offices = self.offices.lock().expect("links");
        offices.contains_key(&ip).then_some(ip)
    }

    fn is_cut(&self, a: Option<IpAddr>, b: Option<IpAddr>) -> bool {
        let offices = self.offices.lock().expect("links");
        [a, b]
            .into_iter()
            .flatten()
            .any(|ip| offices.get(&ip).is_some_and(|o| o.cut))
    }

    async fn wait_uncut(&self, a: Option<IpAddr>, b: Option<IpAddr>) {
        while self.is_cut(a, b) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// When `n` bytes read now from `from` for `to` arrive: each link's
    /// cap (the time to put them on the wire after what it already
    /// carries), then each link's delay, jitter and maybe a stall.
    fn arrival(&self, from: Option<IpAddr>, to: Option<IpAddr>, n: usize) -> Instant {
        let mut offices = self.offices.lock().expect("links");
        let mut rng = rand::rng();
        let mut at = Instant::now();
        let mut flight = Duration::ZERO;
        for (ip, up) in [(from, true), (to, false)] {
            let Some(o) = ip.and_then(|ip| offices.get_mut(&ip)) else {
                continue;
            };
            let (shape, free) = match up {
                true => (o.up, &mut o.up_free),
                false => (o.down, &mut o.down_free),
            };
            if let Some(rate) = shape.rate.filter(|r| *r > 0) {
                let start = free.map_or(at, |f| f.max(at));
                at = start + Duration::from_secs_f64(n as f64 / rate as f64);
                *free = Some(at);
            }
            flight += shape.delay;
            if !shape.jitter.is_zero() {
                flight += shape.jitter.mul_f64(rng.random::<f64>());
            }
            if shape.stall_chance > 0.0 && rng.random::<f64>() < shape.stall_chance {
                flight += Duration::from_millis(rng.random_range(200..600));
            }
        }
        at + flight
    }
}

/// Carries one direction of a connection, in order, each chunk arriving
/// when `Links::arrival` says (never before the one sent ahead of it).
async fn pump(
    links: Arc<Links>,
    mut from_sock: tokio::net::tcp::OwnedReadHalf,
    mut to_sock: tokio::net::tcp::OwnedWriteHalf,
    from: Option<IpAddr>,
    to: Option<IpAddr>,
) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let carrier = links.clone();
    let writer = async move {
        while let Some((due, chunk)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            carrier.wait_uncut(from, to).await;
            if to_sock.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = to_sock.shutdown().await;
    };
    let reader = async move {
        let mut buf = vec![0u8; 16 * 1024];
        let mut last = Instant::now();
        loop {
            links.wait_uncut(from, to).await;
            let n = match from_sock.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            last = links.arrival(from, to, n).max(last);
            if tx.send((last, buf[..n].to_vec())).is_err() {
                break;
            }
        }
    };
    tokio::join!(reader, writer);
}

/// The regional profile: one way, with jitter, and a 1% chance per chunk
/// of a stall, as KPU RI (Jakarta, node 1), KPU Kalimantan Selatan
/// (Banjarmasin, node 2) and KPU Kotabaru (node 3) see each other.
pub const REGIONAL: [(u64, Shape); 3] = [
    (1, regional_link(5, 5)),
    (2, regional_link(15, 15)),
    (3, regional_link(35, 30)),
];

const fn regional_link(delay_ms: u64, jitter_ms: u64) -> Shape {
    Shape {
        delay: Duration::from_millis(delay_ms),
        jitter: Duration::from_millis(jitter_ms),
        stall_chance: 0.01,
        rate: None,
    }
}

/// The README's regional timing (`--heartbeat-interval`,
/// `--election-timeout`): a heartbeat above the worst round trip between
/// voters (Kotabaru–Banjarmasin, 100–190 ms), an election timeout of two.
pub const REGIONAL_TIMING: (u64, u64) = (200, 400);

/// The timing the WAN scenarios run: the regional timing, or
/// `REKAP_WAN_TIMING=H,E` to try another.
pub fn timing() -> (u64, u64) {
    std::env::var("REKAP_WAN_TIMING")
        .ok()
        .and_then(|v| {
            let (h, e) = v.split_once(',')?;
            Some((h.trim().parse().ok()?, e.trim().parse().ok()?))
        })
        .unwrap_or(REGIONAL_TIMING)
}

/// An office on VSAT: 300 ms one way, with 60 ms of jitter.
pub const SATELLITE: Shape = Shape {
    delay: Duration::from_millis(300),
    jitter: Duration::from_millis(60),
    stall_chance: 0.0,
    rate: None,
};

impl Wan {
    /// Puts nodes 1–3 on the regional profile.
    pub fn regional(&self) {
        for (id, shape) in REGIONAL {
            self.shape_both(id, shape);
        }
    }
}

/// `--leader-priority` flags for `ClusterOptions::node_flags`.
pub fn leader_priorities(
    p: &[(u64, u32)],
) -> std::collections::BTreeMap<u64, Vec<(String, String)>> {
    p.iter()
        .map(|(id, prio)| {
            (
                *id,
                vec![("--leader-priority".to_string(), prio.to_string())],
            )
        })
        .collect()
}

/// A cluster started with `opts` behind the WAN, with the regional timing
/// and a registry of `kecamatan` × 100 TPS loaded before nodes 1–3 are put
/// on the regional profile; also every TPS id and every node's address.
pub async fn start_regional(
    opts: crate::ClusterOptions,
    kecamatan: usize,
) -> (crate::Cluster, Arc<Vec<String>>, Vec<String>) {
    let opts = crate::ClusterOptions {
        wan: true,
        timing: Some(timing()),
        ..opts
    };
    let (cluster, tps, endpoints) = crate::start_with_registry(opts, kecamatan).await;
    cluster.wan().regional();
    (cluster, tps, endpoints)
}
