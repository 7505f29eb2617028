//! The shipped caching front (`deploy/nginx`) in front of a test cluster:
//! Debian's nginx, configured by `deploy/nginx/render.sh` exactly as an
//! office would, with a web certificate from the cluster's CA and the
//! cluster's CA for the nodes. Stopped when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rekap_client::certs::{self, Validity};

use crate::{Cluster, free_port, http, wait_until};

pub struct Front {
    /// Where readers reach it (HTTPS, the cluster's CA).
    pub addr: String,
    dir: tempfile::TempDir,
    child: Child,
}

fn deploy(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy/nginx")
        .join(rel)
}

impl Front {
    /// Starts nginx in front of every node of `cluster`'s HTTP listener.
    pub async fn start(cluster: &Cluster) -> Front {
        assert!(
            Command::new("nginx").arg("-v").output().is_ok(),
            "nginx is needed (Debian's package; tests/run.sh installs it)"
        );
        let dir = tempfile::tempdir().expect("nginx dir");
        // nginx's workers run as nobody when the tests run as root.
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .expect("chmod");
        let web = dir.path().join("web");
        certs::issue_web(
            &cluster.pki.ca_dir(),
            &web,
            &["127.0.0.1".into()],
            Validity::days(1),
        )
        .expect("web certificate");
        let addr = format!("127.0.0.1:{}", free_port());
        let mut render = Command::new("bash");
        render.arg(deploy("render.sh")).args(["--listen", &addr]);
        for id in cluster.running() {
            render.args(["--node", &cluster.http_addr(id)]);
        }
        let p = |f: &str| web.join(f).display().to_string();
        render.args([
            "--ca",
            &p(certs::CA_CERT),
            // The test nodes' certificates all name localhost.
            "--node-name",
            "localhost",
            "--cert",
            &p(certs::WEB_CERT),
            "--key",
            &p(certs::WEB_KEY),
        ]);
        let out = render.output().expect("render.sh runs");
        assert!(
            out.status.success(),
            "render.sh: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let conf = dir.path().join("nginx.conf");
        std::fs::write(&conf, &out.stdout).expect("write nginx.conf");
        let log = std::fs::File::create(dir.path().join("nginx.log")).expect("nginx log");
        let child = Command::new("nginx")
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf)
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("nginx starts");
        let front = Front { addr, dir, child };
        let ca = cluster.pki.ca_dir();
        wait_until("nginx to answer", Duration::from_secs(10), || async {
            http::get_with(&ca, &front.addr, "/metrics", &[])
                .await
                .ok()
                .map(|_| ())
        })
        .await;
        front
    }

    /// nginx's own log (errors and warnings).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("nginx.log")).unwrap_or_default()
    }
}

impl Drop for Front {
    fn drop(&mut self) {
        // SIGTERM: a fast shutdown of master and workers.
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
    }
}
