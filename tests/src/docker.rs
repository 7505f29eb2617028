//! Containers as cluster hosts: each node runs the `rekap-node` image on a
//! Docker network the test creates, at a fixed address on that network, so
//! a kill -9, a freeze (docker pause) or a cut cable (network disconnect) is
//! real. The test process reaches the containers at those addresses.

use std::collections::BTreeMap;
use std::process::Command;

use crate::Nodes;
use crate::pki::{ADMIN, Pki};

const PORT: u16 = 7000;

/// The image the containers run (built by `deploy/image/build.sh`).
pub fn image() -> String {
    std::env::var("REKAP_TEST_IMAGE").unwrap_or_else(|_| "rekap-node:local".into())
}

fn docker(args: &[&str]) -> Result<String, String> {
    let out = Command::new("docker")
        .args(args)
        .output()
        .map_err(|e| format!("docker: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(format!(
            "docker {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn must(args: &[&str]) -> String {
    docker(args).unwrap_or_else(|e| panic!("{e}"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Up,
    Killed,
    Paused,
    CutOff,
}

#[derive(Debug)]
pub struct Host {
    pub id: u64,
    pub name: String,
    pub ip: String,
    pub state: State,
}

/// A cluster of node containers; containers and network go on drop.
pub struct DockerCluster {
    pub net: String,
    pub hosts: BTreeMap<u64, Host>,
    subnet: String,
    image: String,
    /// Certificates; each node's folder is mounted at /certs.
    pki: Pki,
    _dir: tempfile::TempDir,
}

impl DockerCluster {
    /// Creates a network and starts `n` nodes that initialise themselves.
    pub fn start(n: u64) -> DockerCluster {
        let image = image();
        must(&["image", "inspect", "--format", "{{.Id}}", &image]);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let tag = format!("{:08x}", std::process::id() ^ nanos);
        let net = format!("rekap-ft-{tag}");
        // A private /24 for this test alone; try another if one is taken.
        let mut subnet = None;
        for k in 0..40u32 {
            let third = (std::process::id() + k * 7) % 250 + 1;
            let candidate = format!("172.29.{third}");
            if docker(&[
                "network",
                "create",
                "--subnet",
                &format!("{candidate}.0/24"),
                &net,
            ])
            .is_ok()
            {
                subnet = Some(candidate);
                break;
            }
        }
        let subnet = subnet.expect("no free subnet for the test network");
        let dir = tempfile::Builder::new()
            .prefix("rekap-ft-certs-")
            .tempdir()
            .expect("temp dir");
        let mut c = DockerCluster {
            net,
            hosts: BTreeMap::new(),
            subnet,
            image,
            pki: Pki::new(dir.path()),
            _dir: dir,
        };
        let initial = (1..=n)
            .map(|id| format!("{id}={}", c.ip_of(id) + ":7000"))
            .collect::<Vec<_>>()
            .join(",");
        for id in 1..=n {
            c.run(id, &initial);
        }
        c
    }

    fn ip_of(&self, id: u64) -> String {
        format!("{}.{}", self.subnet, 10 + id)
    }

    fn run(&mut self, id: u64, initial: &str) {
        let name = format!("{}-n{id}", self.net);
        let ip = self.ip_of(id);
        let advertise = format!("{ip}:{PORT}");
        // The node's own address for its peers and the test; loopback for
        // the image's health check inside the container.
        let certs = self.pki.node_dir(id, &[&ip, "127.0.0.1"]);
        let mount = format!("{}:/certs:ro", certs.display());
        must(&[
            "run",
            "-d",
            "--name",
            &name,
            "--network",
            &self.net,
            "--ip",
            &ip,
            "-e",
            &format!("REKAP_NODE_ID={id}"),
            "-e",
            &format!("REKAP_ADVERTISE={advertise}"),
            "-e",
            &format!("REKAP_INITIAL_CLUSTER={initial}"),
            "-e",
            &format!("REKAP_INITIAL_ADMIN={ADMIN}"),
            "-v",
            &mount,
            // Snapshots (and their transfer to new and lagging nodes) happen during
            // the run, yet leave a snapshot install time to finish.
            "-e",
            "REKAP_SNAPSHOT_EVERY=5000",
            &self.image,
        ]);
        self.hosts.insert(
            id,
            Host {
                id,
                name,
                ip,
                state: State::Up,
            },
        );
    }

    /// Starts a node that belongs to no cluster yet (to be added as a learner).
    pub fn spawn_joiner(&mut self) -> u64 {
        let id = self.hosts.keys().max().copied().unwrap_or(0) + 1;
        self.run(id, "");
        id
    }

    fn name(&self, id: u64) -> String {
        self.hosts[&id].name.clone()
    }

    fn set(&mut self, id: u64, state: State) {
        self.hosts.get_mut(&id).expect("known host").state = state;
    }

    pub fn kill(&mut self, id: u64) {
        must(&["kill", "-s", "KILL", &self.name(id)]);
        self.set(id, State::Killed);
    }

    pub fn restart(&mut self, id: u64) {
        must(&["start", &self.name(id)]);
        self.set(id, State::Up);
    }

    pub fn pause(&mut self, id: u64) {
        must(&["pause", &self.name(id)]);
        self.set(id, State::Paused);
    }

    pub fn unpause(&mut self, id: u64) {
        must(&["unpause", &self.name(id)]);
        self.set(id, State::Up);
    }

    /// Cuts the node off from every other node and from the clients.
    pub fn disconnect(&mut self, id: u64) {
        must(&[
            "network",
            "disconnect",
            "--force",
            &self.net,
            &self.name(id),
        ]);
        self.set(id, State::CutOff);
    }

    pub fn reconnect(&mut self, id: u64) {
        let ip = self.hosts[&id].ip.clone();
        must(&["network", "connect", "--ip", &ip, &self.net, &self.name(id)]);
        self.set(id, State::Up);
    }

    /// Undoes whatever fault a host is in.
    pub fn heal(&mut self, id: u64) {
        match self.hosts[&id].state {
            State::Up => {}
            State::Killed => self.restart(id),
            State::Paused => self.unpause(id),
            State::CutOff => self.reconnect(id),
        }
    }

    /// Removes a node's container for good (after it left the cluster).
    pub fn destroy(&mut self, id: u64) {
        let _ = docker(&["rm", "-f", "-v", &self.name(id)]);
        self.hosts.remove(&id);
    }

    /// The node's last `lines` log lines. `docker logs` replays the
    /// container's stderr (where the node logs) on its own stderr.
    pub fn logs(&self, id: u64, lines: usize) -> String {
        Command::new("docker")
            .args(["logs", "--tail", &lines.to_string(), &self.name(id)])
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout).into_owned()
                    + &String::from_utf8_lossy(&o.stderr)
            })
            .unwrap_or_default()
    }
}

impl Nodes for DockerCluster {
    fn running(&self) -> Vec<u64> {
        self.hosts
            .values()
            .filter(|h| h.state == State::Up)
            .map(|h| h.id)
            .collect()
    }

    fn addr(&self, id: u64) -> String {
        format!("{}:{PORT}", self.hosts[&id].ip)
    }

    fn pki(&self) -> &Pki {
        &self.pki
    }
}

impl Drop for DockerCluster {
    fn drop(&mut self) {
        let names: Vec<String> = self.hosts.values().map(|h| h.name.clone()).collect();
        if std::thread::panicking() {
            for id in self.hosts.keys() {
                eprintln!("---- node {id} log (tail) ----\n{}", self.logs(*id, 30));
            }
        }
        for n in names {
            let _ = docker(&["unpause", &n]);
            let _ = docker(&["rm", "-f", "-v", &n]);
        }
        let _ = docker(&["network", "rm", &self.net]);
    }
}
