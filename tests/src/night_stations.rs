//! The Kotabaru night with stations: the seed's night as it went, the
//! whole cluster down from 15:00 to 21:30, while each kecamatan's PPK
//! office keeps typing its TPS into its own `rekap-station`. Every entry's
//! "tersimpan" (saved on the laptop) and "terkirim" (acknowledged by the
//! cluster) time is kept for the chart and the report.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rekap_client::generate::kotabaru::Night;
use rekap_client::proto as pb;

use crate::station::{Station, fields_of};
use crate::{Cluster, wait_until};

/// When the cluster goes down and comes back, on the night's clock.
pub const DOWN: (f64, f64) = (15.0, 21.5);

/// One TPS's entry: night hours it was saved and acknowledged.
#[derive(Debug, Clone)]
pub struct Entry {
    pub kecamatan: String,
    pub tps: String,
    pub tersimpan: f64,
    pub terkirim: Option<f64>,
}

pub struct Outcome {
    pub entries: Vec<Entry>,
    pub real: Duration,
    /// Real seconds from the nodes' restart at 21:30 until every entry
    /// saved before then was acknowledged.
    pub caught_up: f64,
    /// Entries saved before 21:30.
    pub saved_while_down: usize,
}

fn offset(hour: f64, real: Duration) -> Duration {
    real.mul_f64(((hour - 12.0) / 12.0).clamp(0.0, 1.0))
}

fn hour_at(elapsed: Duration, real: Duration) -> f64 {
    12.0 + 12.0 * elapsed.as_secs_f64() / real.as_secs_f64()
}

/// The PPK operator of a kecamatan, as a user name.
pub fn ppk_user(kecamatan: &str) -> String {
    format!("ppk-{}", kecamatan.replace('.', "-"))
}

/// Replays `night` through one station per kecamatan (outboxes in `dir`),
/// with every node down from 15:00 to 21:30. Returns when all is in.
pub async fn replay(cluster: &mut Cluster, night: &Night, real: Duration, dir: &Path) -> Outcome {
    let admin = cluster.client();
    let endpoints: Vec<String> = cluster
        .running()
        .iter()
        .map(|&id| cluster.addr(id))
        .collect();
    let mut stations = BTreeMap::new();
    for code in night.kecamatan.keys() {
        let user = ppk_user(code);
        admin.add_user(&user).await.expect("add the PPK operator");
        admin
            .grant(&user, pb::Role::Operator, vec![code.clone()])
            .await
            .expect("grant the kecamatan");
        let outbox = dir.join(format!("outbox.{user}.sqlite"));
        let _ = std::fs::remove_file(&outbox);
        let st = Station::start(&cluster.pki.user_dir(&user), &endpoints.join(","), &outbox).await;
        stations.insert(code.clone(), Arc::new(st));
    }
    for (code, st) in &stations {
        let want = night
            .arrivals
            .iter()
            .filter(|a| &a.kecamatan == code)
            .count();
        st.wait_slice(want).await;
    }
    let saved: Arc<Mutex<Vec<Entry>>> = Arc::default();
    let start = tokio::time::Instant::now();
    let mut typists = Vec::new();
    for a in &night.arrivals {
        let st = stations[&a.kecamatan].clone();
        let (saved, a) = (saved.clone(), a.clone());
        typists.push(tokio::spawn(async move {
            tokio::time::sleep_until(start + offset(a.at_hour, real)).await;
            let s = &a.submission;
            let (code, body) = st.post(&s.tps_id, &s.contest_id, &fields_of(s)).await;
            assert_eq!(code, 303, "{}: {body}", s.tps_id);
            saved.lock().expect("saved").push(Entry {
                kecamatan: a.kecamatan.clone(),
                tps: s.tps_id.clone(),
                tersimpan: hour_at(start.elapsed(), real),
                terkirim: None,
            });
        }));
    }
    // Every station's states, a few times a second: when each turned.
    let sent: Arc<Mutex<BTreeMap<String, f64>>> = Arc::default();
    let watcher = {
        let (sent, stations) = (sent.clone(), stations.clone());
        tokio::spawn(async move {
            loop {
                for st in stations.values() {
                    let Ok((200, body)) = crate::http::get_plain(&st.addr, "/status.json").await
                    else {
                        continue;
                    };
                    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                    let now = hour_at(start.elapsed(), real);
                    let mut sent = sent.lock().expect("sent");
                    for (k, e) in v["entries"].as_object().into_iter().flatten() {
                        if e["state"] == "terkirim" {
                            let tps = k.split('|').next().unwrap_or_default().to_string();
                            sent.entry(tps).or_insert(now);
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };
    tokio::time::sleep_until(start + offset(DOWN.0, real)).await;
    for id in cluster.running() {
        cluster.kill(id);
    }
    tokio::time::sleep_until(start + offset(DOWN.1, real)).await;
    let back = Instant::now();
    let saved_while_down = saved.lock().expect("saved").len();
    for id in cluster.nodes.keys().copied().collect::<Vec<_>>() {
        cluster.restart(id);
    }
    let caught_up = wait_until(
        "every entry saved by 21:30 acknowledged within a minute",
        Duration::from_secs(60),
        || async {
            let sent = sent.lock().expect("sent");
            let saved = saved.lock().expect("saved");
            let early = saved.iter().filter(|e| e.tersimpan <= DOWN.1);
            early
                .clone()
                .all(|e| sent.contains_key(&e.tps))
                .then(|| back.elapsed().as_secs_f64())
        },
    )
    .await;
    for t in typists {
        t.await.expect("typist");
    }
    wait_until(
        "every entry acknowledged",
        Duration::from_secs(120),
        || async { (sent.lock().expect("sent").len() == night.arrivals.len()).then_some(()) },
    )
    .await;
    watcher.abort();
    let sent = sent.lock().expect("sent").clone();
    let mut entries = saved.lock().expect("saved").clone();
    for e in &mut entries {
        e.terkirim = sent.get(&e.tps).copied();
    }
    Outcome {
        entries,
        real,
        caught_up,
        saved_while_down,
    }
}
