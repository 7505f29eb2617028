//! An operator's station as a real `rekap-station` process on loopback,
//! with its own outbox file: started, killed with SIGKILL, started again,
//! and talked to as a browser would (form posts, the status JSON).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::{node_binary, wait_until};

pub struct Station {
    /// `127.0.0.1:port` the form is served on.
    pub addr: String,
    pub outbox: PathBuf,
    certs: PathBuf,
    endpoints: String,
    log: PathBuf,
    child: Option<Child>,
}

pub fn station_binary() -> PathBuf {
    node_binary().with_file_name("rekap-station")
}

impl Station {
    /// Starts a station as the user whose TLS files are in `certs`, against
    /// `endpoints` (comma separated), keeping its outbox at `outbox`, and
    /// waits until it serves its pages.
    pub async fn start(certs: &Path, endpoints: &str, outbox: &Path) -> Station {
        let mut s = Station {
            addr: String::new(),
            outbox: outbox.to_path_buf(),
            certs: certs.to_path_buf(),
            endpoints: endpoints.to_string(),
            log: outbox.with_extension("log"),
            child: None,
        };
        s.launch().await;
        s
    }

    async fn launch(&mut self) {
        // The same port again after a restart: a page left open in the
        // browser keeps polling it.
        let listen = if self.addr.is_empty() {
            format!("127.0.0.1:{}", crate::free_port())
        } else {
            self.addr.clone()
        };
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("station log");
        let child = Command::new(station_binary())
            .arg("--certs-dir")
            .arg(&self.certs)
            .arg("--endpoints")
            .arg(&self.endpoints)
            .arg("--listen")
            .arg(&listen)
            .arg("--outbox")
            .arg(&self.outbox)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start rekap-station");
        self.child = Some(child);
        self.addr = listen;
        let addr = self.addr.clone();
        wait_until("the station's pages", Duration::from_secs(20), || {
            let addr = addr.clone();
            async move {
                crate::http::get_plain(&addr, "/status.json")
                    .await
                    .ok()
                    .filter(|(code, _)| *code == 200)
            }
        })
        .await;
    }

    /// Waits until the list page shows `tps` rows: the station has its
    /// slice of the registry (from the cluster, or its cache).
    pub async fn wait_slice(&self, tps: usize) {
        wait_until(
            &format!("the station's slice of {tps} TPS"),
            Duration::from_secs(30),
            || async {
                let (_, page) = crate::http::get_plain(&self.addr, "/").await.ok()?;
                (page.matches("data-key=").count() == tps).then_some(())
            },
        )
        .await;
    }

    /// SIGKILL: no chance to flush or say goodbye.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub async fn restart(&mut self) {
        self.kill9();
        self.launch().await;
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `/status.json`: the link, and each entry's state by `tps|contest`.
    pub async fn status(&self) -> Value {
        let (code, body) = crate::http::get_plain(&self.addr, "/status.json")
            .await
            .expect("status.json");
        assert_eq!(code, 200, "{body}");
        serde_json::from_str(&body).expect("status JSON")
    }

    /// How many entries are in `state` (tersimpan, terkirim, ...).
    pub async fn count(&self, state: &str) -> usize {
        let s = self.status().await;
        s["entries"]
            .as_object()
            .map_or(0, |m| m.values().filter(|e| e["state"] == state).count())
    }

    /// Posts the C.Hasil form of `tps`: the status code and the page.
    pub async fn post(
        &self,
        tps: &str,
        contest: &str,
        fields: &[(String, String)],
    ) -> (u16, String) {
        let mut form = vec![
            ("tps".to_string(), tps.to_string()),
            ("contest".into(), contest.into()),
        ];
        form.extend(fields.iter().cloned());
        let body: Vec<String> = form
            .iter()
            .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
            .collect();
        crate::http::post_form_plain(&self.addr, &format!("/tps/{}", enc(tps)), &body.join("&"))
            .await
            .expect("post the form")
    }

    /// The station's own log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `rekapctl outbox list --json` on this station's outbox.
    pub fn outbox_list(&self) -> Value {
        serde_json::from_slice(&self.rekapctl_outbox(&["--json", "outbox", "list"]))
            .expect("outbox list JSON")
    }

    /// `rekapctl outbox export` (CSV) of this station's outbox.
    pub fn outbox_export(&self) -> String {
        String::from_utf8(self.rekapctl_outbox(&["outbox", "export"])).expect("UTF-8 CSV")
    }

    fn rekapctl_outbox(&self, args: &[&str]) -> Vec<u8> {
        let out = Command::new(node_binary().with_file_name("rekapctl"))
            .args(args)
            .arg("--outbox")
            .arg(&self.outbox)
            .output()
            .expect("run rekapctl outbox");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }
}

impl Drop for Station {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- station log ----\n{}", self.log());
        }
        self.kill9();
    }
}

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// A submission's numbers as the form's fields.
pub fn fields_of(s: &rekap_client::proto::Submission) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = s
        .votes
        .iter()
        .map(|v| (format!("v.{}", v.candidate_id), v.votes.to_string()))
        .collect();
    for (name, v) in [
        ("sah", s.sah),
        ("tidak_sah", s.tidak_sah),
        ("total", s.total),
    ] {
        out.push((name.into(), v.map(|v| v.to_string()).unwrap_or_default()));
    }
    out
}
