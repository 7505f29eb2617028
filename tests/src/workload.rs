//! A continuous submission load with a history of outcomes, and the checker
//! that proves every acknowledged submission is present exactly once.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rekap_client::proto as pb;
use rekap_client::{Client, ClientOptions, is_retryable};

use crate::{CONTEST, KABUPATEN, Nodes, auditor_for, client_for, wait_applied, wait_for_leader};

/// What became of each submission.
#[derive(Debug, Default)]
pub struct History {
    /// TPS id -> (sah, when acknowledged).
    pub acked: BTreeMap<String, (i64, Instant)>,
    /// Timed out or failed retryably: applied or not, we cannot tell.
    pub unknown: BTreeSet<String>,
    /// Refused with an answer: definitely not applied.
    pub failed: Vec<(String, String)>,
    /// How long each acknowledged submission took, retries included.
    pub latencies: Vec<Duration>,
}

impl History {
    /// Time from the last acknowledgement before `t` to the first after it.
    pub fn gap_around(&self, t: Instant) -> Option<Duration> {
        let before = self
            .acked
            .values()
            .map(|(_, at)| *at)
            .filter(|at| *at <= t)
            .max()?;
        let after = self
            .acked
            .values()
            .map(|(_, at)| *at)
            .filter(|at| *at > t)
            .min()?;
        Some(after - before)
    }

    /// The `q` quantile (0.5, 0.99) of the acknowledged submissions' latency.
    pub fn latency(&self, q: f64) -> Duration {
        let mut l = self.latencies.clone();
        l.sort();
        l.get(((l.len() as f64 * q) as usize).min(l.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    }

    /// The longest time without an acknowledgement around `t`: from the
    /// last one before `t` to the first of a run that resumed after it,
    /// skipping answers that were already on their way at `t` (behind an
    /// emulated WAN a dead leader's last answers arrive after its death).
    pub fn longest_pause_after(&self, t: Instant, window: Duration) -> Option<Duration> {
        let mut at: Vec<Instant> = self.acked.values().map(|(_, at)| *at).collect();
        at.sort();
        at.windows(2)
            .filter(|w| w[1] > t && w[0] < t + window)
            .map(|w| w[1] - w[0])
            .max()
    }

    pub fn acked_after(&self, t: Instant) -> usize {
        self.acked.values().filter(|(_, at)| *at > t).count()
    }
}

pub fn submission(tps: &str, n: usize) -> pb::Submission {
    let v1 = (n * 7 % 200) as i64;
    let v2 = (n * 13 % 150) as i64;
    let ts = (n % 9) as i64;
    pb::Submission {
        submission_id: format!("w:{tps}"),
        tps_id: tps.into(),
        contest_id: CONTEST.into(),
        votes: vec![
            pb::CandidateVotes {
                candidate_id: "01".into(),
                votes: v1,
            },
            pb::CandidateVotes {
                candidate_id: "02".into(),
                votes: v2,
            },
        ],
        sah: Some(v1 + v2),
        tidak_sah: Some(ts),
        total: Some(v1 + v2 + ts),
        ..Default::default()
    }
}

/// The next TPS's submission as a plain tonic request with `deadline`, for
/// scenarios that call one node without the client library: the TPS id,
/// its sah, and the request.
pub fn next_raw_submit(
    tps: &[String],
    next: &AtomicUsize,
    deadline: Duration,
) -> (String, i64, tonic::Request<pb::SubmitRequest>) {
    let i = next.fetch_add(1, Ordering::Relaxed);
    let t = tps.get(i).expect("registry big enough").clone();
    let s = submission(&t, i);
    let sah = s.sah.unwrap_or(0);
    let mut req = tonic::Request::new(pb::SubmitRequest {
        submission: Some(s),
    });
    req.set_timeout(deadline);
    (t, sah, req)
}

/// `clients` tasks submitting one TPS after another until stopped or out of TPS.
pub struct Workload {
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicUsize>,
    /// Index of the next TPS to submit, and how many there are.
    next: Arc<AtomicUsize>,
    total: usize,
    tasks: Vec<tokio::task::JoinHandle<History>>,
}

impl Workload {
    /// Submits as the scenario operator of `nodes`' certificates.
    pub fn start(
        nodes: &impl Nodes,
        endpoints: Vec<String>,
        tps: Arc<Vec<String>>,
        clients: usize,
    ) -> Workload {
        let base = nodes.pki().options(crate::pki::OPERATOR);
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(AtomicUsize::new(0));
        let next = Arc::new(AtomicUsize::new(0));
        let total = tps.len();
        let tasks = (0..clients)
            .map(|_| {
                let (stop, acked, next, tps) =
                    (stop.clone(), acked.clone(), next.clone(), tps.clone());
                let client = Client::with_options(
                    endpoints.clone(),
                    ClientOptions {
                        deadline: Duration::from_secs(20),
                        ..base.clone()
                    },
                );
                tokio::spawn(async move {
                    let mut h = History::default();
                    while !stop.load(Ordering::Relaxed) {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(t) = tps.get(i) else { break };
                        let s = submission(t, i);
                        let sah = s.sah.unwrap_or(0);
                        let sent = Instant::now();
                        match client.submit(s).await {
                            Ok(_) => {
                                h.latencies.push(sent.elapsed());
                                h.acked.insert(t.clone(), (sah, Instant::now()));
                                acked.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) if is_retryable(&e) => {
                                h.unknown.insert(t.clone());
                            }
                            Err(e) => h
                                .failed
                                .push((t.clone(), format!("{:?}: {}", e.code(), e.message()))),
                        }
                    }
                    h
                })
            })
            .collect();
        Workload {
            stop,
            acked,
            next,
            total,
            tasks,
        }
    }

    pub fn acked(&self) -> usize {
        self.acked.load(Ordering::Relaxed)
    }

    /// Waits until at least `n` more submissions are acknowledged.
    pub async fn wait_acked(&self, n: usize, timeout: Duration) {
        let target = self.acked() + n;
        crate::wait_until(
            &format!("{target} acknowledged submissions"),
            timeout,
            || async {
                assert!(
                    self.next.load(Ordering::Relaxed) < self.total || self.acked() >= target,
                    "the workload submitted all {} TPS of its registry; give it a bigger one",
                    self.total
                );
                (self.acked() >= target).then_some(())
            },
        )
        .await;
    }

    pub async fn stop(self) -> History {
        self.stop.store(true, Ordering::Relaxed);
        let mut all = History::default();
        for t in self.tasks {
            let h = t.await.expect("workload task");
            all.acked.extend(h.acked);
            all.unknown.extend(h.unknown);
            all.failed.extend(h.failed);
            all.latencies.extend(h.latencies);
        }
        all
    }
}

/// What one node holds, read from its local state.
#[derive(Debug, PartialEq, Eq)]
pub struct NodeTally {
    pub present: BTreeSet<String>,
    pub sah: u64,
    pub tps_reported: u64,
    pub applied_index: u64,
}

/// Checks node `id` against the history: every acknowledged submission is
/// present with its numbers, nothing present was never submitted, and the
/// node's aggregates equal the sum of what it holds (so nothing counted
/// twice). Returns what the node holds, for comparison across nodes.
pub async fn check_node(
    cluster: &impl Nodes,
    id: u64,
    all_tps: &[String],
    history: &History,
) -> NodeTally {
    let c = client_for(cluster, id);
    let mut held: BTreeMap<String, pb::StoredResult> = BTreeMap::new();
    let mut token = String::new();
    loop {
        let page = c
            .results_page(pb::ListJanggalRequest {
                region_code: KABUPATEN.into(),
                contest_id: CONTEST.into(),
                page_size: 1000,
                page_token: token,
                consistency: pb::Consistency::Stale as i32,
            })
            .await
            .expect("results page");
        for item in page.items {
            let tps = item.tps.expect("tps").tps_id;
            assert!(
                held.insert(tps.clone(), item.result.expect("result"))
                    .is_none(),
                "node {id} lists TPS {tps} twice"
            );
        }
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    let known: BTreeSet<&String> = all_tps.iter().collect();
    for t in history.acked.keys() {
        assert!(
            held.contains_key(t),
            "node {id} lost acknowledged submission for TPS {t}"
        );
    }
    let mut sah_sum = 0u64;
    for (t, r) in &held {
        assert!(known.contains(t), "node {id} holds unknown TPS {t}");
        assert!(
            history.acked.contains_key(t) || history.unknown.contains(t),
            "node {id} holds a result for TPS {t} that was never submitted"
        );
        let s = r.submission.as_ref().expect("submission");
        assert_eq!(
            s.submission_id,
            format!("w:{t}"),
            "node {id} TPS {t} holds a foreign submission"
        );
        if let Some((sah, _)) = history.acked.get(t) {
            assert_eq!(
                s.sah,
                Some(*sah),
                "node {id} TPS {t} holds other numbers than acknowledged"
            );
        }
        sah_sum += s.sah.unwrap_or(0) as u64;
    }
    let totals = c
        .totals(KABUPATEN, CONTEST, pb::Consistency::Stale)
        .await
        .expect("totals");
    let t = totals.totals.expect("totals body");
    assert_eq!(
        t.tps_reported,
        held.len() as u64,
        "node {id}: TPS reported != results held"
    );
    assert_eq!(
        t.sah, sah_sum,
        "node {id}: sah total != sum of results held (counted twice?)"
    );
    NodeTally {
        present: held.into_keys().collect(),
        sah: t.sah,
        tps_reported: t.tps_reported,
        applied_index: totals.applied_index,
    }
}

/// Waits until every running node has applied the leader's commit index,
/// then checks each and asserts they hold the same tally.
pub async fn check_all(
    cluster: &impl Nodes,
    all_tps: &[String],
    history: &History,
) -> Vec<NodeTally> {
    assert!(
        history.failed.is_empty(),
        "submissions refused: {:?}",
        &history.failed[..history.failed.len().min(5)]
    );
    let leader = wait_for_leader(cluster, Duration::from_secs(30)).await;
    // A linearizable read through the leader fixes the point every node must reach.
    let c = client_for(cluster, leader);
    let t = c
        .totals(KABUPATEN, CONTEST, pb::Consistency::Linearizable)
        .await
        .expect("leader totals");
    let ids = cluster.running();
    wait_applied(cluster, &ids, t.applied_index, Duration::from_secs(60)).await;
    let mut out: Vec<NodeTally> = Vec::new();
    for &id in &ids {
        let n = check_node(cluster, id, all_tps, history).await;
        if let Some(first) = out.first() {
            assert_eq!(
                first.present, n.present,
                "nodes disagree on which TPS reported"
            );
            assert_eq!(
                (first.sah, first.tps_reported),
                (n.sah, n.tps_reported),
                "nodes disagree on totals"
            );
        }
        out.push(n);
    }
    check_chains(cluster, &ids).await;
    out
}

/// Once quiet, every node reports the same applied index and the same
/// audit chain head there.
pub async fn check_chains(cluster: &impl Nodes, ids: &[u64]) {
    let applied = crate::wait_until(
        "every node to apply the same index",
        Duration::from_secs(30),
        || async {
            let mut seen = BTreeSet::new();
            for &id in ids {
                let h = auditor_for(cluster, id)
                    .chain_head_of(&cluster.addr(id), None)
                    .await
                    .ok()?;
                seen.insert(h.applied_index);
            }
            (seen.len() == 1).then(|| seen.into_iter().next().expect("one index"))
        },
    )
    .await;
    let mut heads = Vec::new();
    for &id in ids {
        let h = auditor_for(cluster, id)
            .chain_head_of(&cluster.addr(id), Some(applied))
            .await
            .expect("chain head");
        heads.push((id, h.index, h.head));
    }
    let first = &heads[0];
    for h in &heads[1..] {
        assert_eq!(
            (h.1, &h.2),
            (first.1, &first.2),
            "audit chains differ at applied index {applied}: {heads:?}"
        );
    }
}
