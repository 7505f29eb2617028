//! The Kotabaru night replayed on a cluster of real nodes: 892 TPS results
//! arrive on an evening's curve compressed into `real` seconds (12:00 to
//! 24:00), submitted by five offices through their own node first; the
//! leader is killed at 15:00 and stays down, the next leader is killed at
//! 18:00 and comes back at 19:00. No operator does anything but submit and
//! retry. Every acknowledgement's time is kept for the chart and report
//! (`night_report`).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rekap_client::generate::kotabaru::Night;
use rekap_client::{Client, ClientOptions};

use crate::Cluster;
use crate::pki::OPERATOR;

/// A fault on the night's clock.
#[derive(Debug, Clone)]
pub struct Fault {
    pub hour: f64,
    pub what: String,
}

/// One acknowledged result.
#[derive(Debug, Clone)]
pub struct Ack {
    pub kecamatan: String,
    /// On the night's clock, and in real seconds since the start.
    pub hour: f64,
    pub real: f64,
    /// How long its operator waited for it, from the first try (real s).
    pub waited: f64,
}

pub struct Outcome {
    pub acks: Vec<Ack>,
    pub faults: Vec<Fault>,
    /// Submissions that failed for good (should be none).
    pub failed: Vec<String>,
    pub real: Duration,
}

impl Outcome {
    /// The longest stretch with no acknowledgement, between the first and
    /// the last: (real seconds, night minutes, night hour it ended).
    pub fn longest_gap(&self) -> (f64, f64, f64) {
        let mut t: Vec<(f64, f64)> = self.acks.iter().map(|a| (a.real, a.hour)).collect();
        t.sort_by(|a, b| a.0.total_cmp(&b.0));
        t.windows(2)
            .map(|w| (w[1].0 - w[0].0, (w[1].1 - w[0].1) * 60.0, w[1].1))
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .unwrap_or_default()
    }

    /// The longest any operator waited for an acknowledgement: (real
    /// seconds, night minutes, the night's hour it came).
    pub fn longest_wait(&self) -> (f64, f64, f64) {
        let per_hour = 12.0 / self.real.as_secs_f64();
        self.acks
            .iter()
            .map(|a| (a.waited, a.waited * per_hour * 60.0, a.hour))
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .unwrap_or_default()
    }
}

/// Night hours (12.0 to 24.0) to an offset from the start.
fn offset(hour: f64, real: Duration) -> Duration {
    real.mul_f64(((hour - 12.0) / 12.0).clamp(0.0, 1.0))
}

fn hour_at(elapsed: Duration, real: Duration) -> f64 {
    12.0 + 12.0 * elapsed.as_secs_f64() / real.as_secs_f64()
}

/// Replays `night` on `cluster` (whose registry is the night's, with the
/// scenario operator granted over it). Returns when every result is in.
pub async fn replay(cluster: &mut Cluster, night: &Night, real: Duration) -> Outcome {
    let ids = cluster.running();
    let addrs: Vec<String> = ids.iter().map(|&id| cluster.addr(id)).collect();
    // Office k goes through node k first; the library follows the leader.
    let offices: Vec<Client> = (0..addrs.len())
        .map(|k| {
            let mut eps = addrs.clone();
            eps.rotate_left(k);
            Client::with_options(
                eps,
                ClientOptions {
                    deadline: Duration::from_secs(20),
                    ..cluster.pki.options(OPERATOR)
                },
            )
        })
        .collect();
    let kec_index: Vec<&String> = night.kecamatan.keys().collect();
    let acks = Arc::new(Mutex::new(Vec::new()));
    let failed = Arc::new(Mutex::new(Vec::new()));
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::new();
    for a in &night.arrivals {
        let k = kec_index
            .iter()
            .position(|c| **c == a.kecamatan)
            .unwrap_or(0);
        let client = offices[k % offices.len()].clone();
        let (acks, failed, a) = (acks.clone(), failed.clone(), a.clone());
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until(start + offset(a.at_hour, real)).await;
            let tried = tokio::time::Instant::now();
            // An operator retries until it goes through: with the same
            // submission id, so nothing counts twice.
            for _ in 0..20 {
                match client.submit(a.submission.clone()).await {
                    Ok(_) => {
                        let e = start.elapsed();
                        acks.lock().expect("acks").push(Ack {
                            kecamatan: a.kecamatan.clone(),
                            hour: hour_at(e, real),
                            real: e.as_secs_f64(),
                            waited: tried.elapsed().as_secs_f64(),
                        });
                        return;
                    }
                    Err(e) if rekap_client::is_retryable(&e) => continue,
                    Err(e) => {
                        failed
                            .lock()
                            .expect("failed")
                            .push(format!("{}: {e:?}", a.submission.tps_id));
                        return;
                    }
                }
            }
            failed
                .lock()
                .expect("failed")
                .push(format!("{}: gave up", a.submission.tps_id));
        }));
    }
    let mut faults = Vec::new();
    let at = |h: f64| start + offset(h, real);
    tokio::time::sleep_until(at(15.0)).await;
    let first = cluster.wait_for_leader(Duration::from_secs(30)).await;
    cluster.kill(first);
    faults.push(Fault {
        hour: hour_at(start.elapsed(), real),
        what: format!("kill -9 of node {first}, the leader; it stays down"),
    });
    tokio::time::sleep_until(at(18.0)).await;
    let second = cluster.wait_for_leader(Duration::from_secs(30)).await;
    cluster.kill(second);
    faults.push(Fault {
        hour: hour_at(start.elapsed(), real),
        what: format!("kill -9 of node {second}, the leader then"),
    });
    tokio::time::sleep_until(at(19.0)).await;
    cluster.restart(second);
    faults.push(Fault {
        hour: hour_at(start.elapsed(), real),
        what: format!("node {second} starts again on its data"),
    });
    let deadline = Instant::now() + real + Duration::from_secs(120);
    for t in tasks {
        let left = deadline.saturating_duration_since(Instant::now());
        tokio::time::timeout(left, t)
            .await
            .expect("every result is in within two minutes of the night's end")
            .expect("submitter");
    }
    let acks = acks.lock().expect("acks").clone();
    let failed = failed.lock().expect("failed").clone();
    Outcome {
        acks,
        faults,
        failed,
        real,
    }
}
