//! A follower that resumes after a pause serves its backlog. 120 callers
//! share one HTTP/2 connection to a follower, which forwards their
//! submissions to the leader. The follower is frozen (SIGSTOP) with every
//! caller's call in flight; each call that runs past its deadline is
//! cancelled by the client (an RST_STREAM), as any gRPC client does. At
//! SIGCONT the follower reads every stream opened and cancelled meanwhile
//! at once. With h2's default guard against rapid resets (20 such streams)
//! it answered GOAWAY and every call on the connection failed (issue 11).
//! Now no call fails with a connection-level error after the resume, and
//! every acknowledged submission is counted once.
//!
//! A raw tonic client, not the Rekap client library: the library retries
//! elsewhere, which would hide a connection-level failure.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use rekap_client::proto as pb;
use rekap_tests::pki::OPERATOR;
use rekap_tests::workload::{History, check_all, next_raw_submit};
use rekap_tests::{ClusterOptions, start_with_registry, wait_explained, wait_until};

const CALLERS: usize = 120;
/// Each call's deadline; the client cancels a call that runs past it.
const CALL_DEADLINE: Duration = Duration::from_secs(1);
const PAUSE: Duration = Duration::from_secs(3);

enum Outcome {
    Acked,
    /// The call's deadline passed and the client cancelled it.
    CancelledByClient,
    Failed(tonic::Status),
}

impl Outcome {
    /// What the call got, for the scenario's account; none if acknowledged.
    fn kind(&self) -> Option<String> {
        match self {
            Outcome::Acked => None,
            Outcome::CancelledByClient => Some("cancelled by the client".into()),
            Outcome::Failed(s) => Some(format!("{:?}: {}", s.code(), s.message())),
        }
    }
}

struct Call {
    tps: String,
    sah: i64,
    ended: Instant,
    outcome: Outcome,
}

/// The call's deadline passed (tonic cancels it: CANCELLED "Timeout
/// expired"): not a failure of the connection.
fn expired(s: &tonic::Status, took: Duration) -> bool {
    matches!(
        s.code(),
        tonic::Code::Cancelled | tonic::Code::DeadlineExceeded
    ) && took + Duration::from_millis(50) >= CALL_DEADLINE
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_resumed_after_a_pause_serves_its_backlog() {
    let (cluster, tps, _) = start_with_registry(ClusterOptions::default(), 40).await;
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    let follower = cluster
        .running()
        .into_iter()
        .find(|id| *id != leader)
        .expect("a follower");
    // One connection, shared by every caller, as a client app holds it.
    let ch = cluster.raw_channel(OPERATOR, &cluster.addr(follower));

    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicUsize::new(0));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let acked = Arc::new(AtomicUsize::new(0));
    // What calls got other than an acknowledgement, by kind, so a scenario
    // that never gets going says why.
    let others = Arc::new(std::sync::Mutex::new(std::collections::BTreeMap::<
        String,
        usize,
    >::new()));
    let callers: Vec<_> = (0..CALLERS)
        .map(|_| {
            let (stop, next, in_flight, acked, others, tps, ch) = (
                stop.clone(),
                next.clone(),
                in_flight.clone(),
                acked.clone(),
                others.clone(),
                tps.clone(),
                ch.clone(),
            );
            tokio::spawn(async move {
                let mut calls = Vec::new();
                let mut client = pb::tally_client::TallyClient::new(ch);
                while !stop.load(Ordering::Relaxed) {
                    let (t, sah, req) = next_raw_submit(&tps, &next, CALL_DEADLINE);
                    in_flight.fetch_add(1, Ordering::Relaxed);
                    let started = Instant::now();
                    // tonic's channel enforces the deadline and cancels the
                    // stream; the outer timer is only a backstop.
                    let r = tokio::time::timeout(2 * CALL_DEADLINE, client.submit(req)).await;
                    in_flight.fetch_sub(1, Ordering::Relaxed);
                    let outcome = match r {
                        Err(_) => Outcome::CancelledByClient,
                        Ok(Ok(_)) => {
                            acked.fetch_add(1, Ordering::Relaxed);
                            Outcome::Acked
                        }
                        Ok(Err(s)) if expired(&s, started.elapsed()) => Outcome::CancelledByClient,
                        Ok(Err(s)) => Outcome::Failed(s),
                    };
                    if let Some(k) = outcome.kind() {
                        *others.lock().expect("others").entry(k).or_default() += 1;
                    }
                    calls.push(Call {
                        tps: t,
                        sah,
                        ended: Instant::now(),
                        outcome,
                    });
                }
                calls
            })
        })
        .collect();

    wait_explained(
        "the follower forwards submissions",
        Duration::from_secs(30),
        || async { (acked.load(Ordering::Relaxed) >= 2 * CALLERS).then_some(()) },
        || {
            format!(
                ": {} acknowledged; the others got {:?}",
                acked.load(Ordering::Relaxed),
                others.lock().expect("others")
            )
        },
    )
    .await;
    cluster.signal(follower, Signal::SIGSTOP);
    let held = wait_until(
        "at least 100 calls in flight through the frozen follower",
        Duration::from_secs(5),
        || async {
            let n = in_flight.load(Ordering::Relaxed);
            (n >= 100).then_some(n)
        },
    )
    .await;
    tokio::time::sleep(PAUSE).await; // the pause itself, not a wait for a condition
    let resumed = Instant::now();
    cluster.signal(follower, Signal::SIGCONT);
    let acked_at_resume = acked.load(Ordering::Relaxed);
    wait_until(
        "the resumed follower serves again",
        Duration::from_secs(30),
        || async { (acked.load(Ordering::Relaxed) >= acked_at_resume + 2 * CALLERS).then_some(()) },
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    let mut calls = Vec::new();
    for c in callers {
        calls.extend(c.await.expect("caller"));
    }

    let after: Vec<&Call> = calls.iter().filter(|c| c.ended >= resumed).collect();
    let failed: Vec<String> = after
        .iter()
        .filter_map(|c| match &c.outcome {
            Outcome::Failed(_) => c.outcome.kind(),
            _ => None,
        })
        .collect();
    let ok_after = after
        .iter()
        .filter(|c| matches!(c.outcome, Outcome::Acked))
        .count();
    let cancelled = calls
        .iter()
        .filter(|c| matches!(c.outcome, Outcome::CancelledByClient))
        .count();
    eprintln!(
        "{held} calls in flight at the pause; {cancelled} cancelled by the client; \
         after the resume {} calls ended: {ok_after} acknowledged, {} failed",
        after.len(),
        failed.len()
    );
    let mut kinds: std::collections::BTreeMap<&str, usize> = Default::default();
    for f in &failed {
        *kinds.entry(f.as_str()).or_default() += 1;
    }
    eprintln!("failures after the resume: {kinds:?}");
    assert!(
        cancelled >= 100,
        "the pause left {cancelled} cancelled calls for the follower to read; the scenario needs at least 100"
    );
    assert!(
        failed.is_empty(),
        "{} calls failed after the resume, e.g. {:?}",
        failed.len(),
        &failed[..failed.len().min(5)]
    );

    let mut history = History::default();
    for c in &calls {
        match c.outcome {
            Outcome::Acked => {
                history.acked.insert(c.tps.clone(), (c.sah, c.ended));
            }
            _ => {
                history.unknown.insert(c.tps.clone());
            }
        }
    }
    check_all(&cluster, &tps, &history).await;
}
