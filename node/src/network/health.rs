//! Peer reachability as this node's own Raft traffic sees it, and the one
//! place that logs it. openraft logs every failed replication or heartbeat
//! RPC (about 26 WARN lines a second per dead peer; `main` filters those
//! out), so an outage of one office's link would bury every other node's
//! log. Here a peer going down is logged once, then summarised at a growing
//! interval ("peer 1 unreachable for 5m, 2900 failed attempts"), and its
//! recovery once. `ClusterStatus` shows the peers that are down now.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::raft::NodeId;

/// When to summarise a peer that is still down, counted from its first
/// failure; after the last, every `REPORT_EVERY`.
const REPORT_AT: [Duration; 5] = [
    Duration::from_secs(10),
    Duration::from_secs(30),
    Duration::from_secs(60),
    Duration::from_secs(120),
    Duration::from_secs(300),
];
const REPORT_EVERY: Duration = Duration::from_secs(600);
/// A peer that flaps (down, up, down) is announced again only this long
/// after its last announcement; its summaries still come.
const REANNOUNCE_AFTER: Duration = Duration::from_secs(10);
/// An outage whose last attempt is older than this is not reported: this
/// node stopped calling the peer (a candidate that became a follower), so
/// it no longer knows.
const STALE: Duration = Duration::from_secs(5);

/// A peer that failed since it last answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Down {
    pub node_id: NodeId,
    pub addr: String,
    /// Time since the first failure of this outage.
    pub for_: Duration,
    pub attempts: u64,
    pub last_error: String,
}

struct Outage {
    /// Whether this outage was logged: its end is logged only then.
    announced: bool,
    addr: String,
    since: Instant,
    last_attempt: Instant,
    attempts: u64,
    last_error: String,
    reports: usize,
}

#[derive(Default)]
pub struct PeerHealth {
    inner: Mutex<Peers>,
}

#[derive(Default)]
struct Peers {
    down: HashMap<NodeId, Outage>,
    announced: HashMap<NodeId, Instant>,
}

/// What a failure or success should log, decided under the lock and
/// logged outside it.
#[derive(Debug, PartialEq, Eq)]
enum Report {
    Quiet,
    Down,
    StillDown { for_: Duration, attempts: u64 },
    Back { after: Duration, attempts: u64 },
}

impl PeerHealth {
    /// An RPC to `peer` succeeded.
    fn answered(&self, peer: NodeId) {
        let report = self.note_answer(peer, Instant::now());
        if let Some(Report::Back { after, attempts }) = report {
            tracing::info!(
                "peer {peer} reachable again after {}, {attempts} failed attempts",
                human(after)
            );
        }
    }

    /// An RPC to `peer` at `addr` failed with `error`.
    pub fn failed(&self, peer: NodeId, addr: &str, error: &dyn std::fmt::Display) {
        let error = error.to_string();
        match self.note_failure(peer, addr, &error, Instant::now()) {
            Report::Down => tracing::warn!("peer {peer} ({addr}) unreachable: {error}"),
            Report::StillDown { for_, attempts } => tracing::warn!(
                "peer {peer} ({addr}) unreachable for {}, {attempts} failed attempts; last error: {error}",
                human(for_)
            ),
            _ => {}
        }
    }

    /// Records an RPC's outcome: `peer` answered, or the call failed.
    pub fn note<T, E: std::fmt::Display>(&self, peer: NodeId, addr: &str, r: &Result<T, E>) {
        match r {
            Ok(_) => self.answered(peer),
            Err(e) => self.failed(peer, addr, e),
        }
    }

    /// Peers that have failed since they last answered, by id.
    pub fn down(&self) -> Vec<Down> {
        let now = Instant::now();
        let peers = self.inner.lock().expect("peer health lock");
        let mut out: Vec<Down> = peers
            .down
            .iter()
            .filter(|(_, o)| now.saturating_duration_since(o.last_attempt) < STALE)
            .map(|(id, o)| Down {
                node_id: *id,
                addr: o.addr.clone(),
                for_: now.saturating_duration_since(o.since),
                attempts: o.attempts,
                last_error: o.last_error.clone(),
            })
            .collect();
        out.sort_by_key(|d| d.node_id);
        out
    }

    fn note_answer(&self, peer: NodeId, now: Instant) -> Option<Report> {
        let mut peers = self.inner.lock().expect("peer health lock");
        let o = peers.down.remove(&peer)?;
        if !o.announced || now.saturating_duration_since(o.last_attempt) >= STALE {
            return None;
        }
        Some(Report::Back {
            after: now.saturating_duration_since(o.since),
            attempts: o.attempts,
        })
    }

    fn note_failure(&self, peer: NodeId, addr: &str, error: &str, now: Instant) -> Report {
        let mut guard = self.inner.lock().expect("peer health lock");
        let peers = &mut *guard;
        if let Some(o) = peers.down.get_mut(&peer)
            && now.saturating_duration_since(o.last_attempt) < STALE
        {
            o.last_attempt = now;
            o.attempts += 1;
            error.clone_into(&mut o.last_error);
            let due = REPORT_AT.get(o.reports).copied().unwrap_or_else(|| {
                REPORT_AT[REPORT_AT.len() - 1]
                    + REPORT_EVERY * (o.reports + 1 - REPORT_AT.len()) as u32
            });
            let for_ = now.saturating_duration_since(o.since);
            if for_ < due {
                return Report::Quiet;
            }
            o.reports += 1;
            o.announced = true;
            return Report::StillDown {
                for_,
                attempts: o.attempts,
            };
        }
        let recent = peers
            .announced
            .get(&peer)
            .is_some_and(|t| now.saturating_duration_since(*t) < REANNOUNCE_AFTER);
        peers.down.insert(
            peer,
            Outage {
                announced: !recent,
                addr: addr.to_string(),
                since: now,
                last_attempt: now,
                attempts: 1,
                last_error: error.to_string(),
                reports: 0,
            },
        );
        if recent {
            return Report::Quiet;
        }
        peers.announced.insert(peer, now);
        Report::Down
    }
}

/// Leaves out openraft's WARN line for each failed peer RPC, which
/// `PeerHealth` reports instead: replication and heartbeat failures, the
/// progress update each replication failure causes, and failed (pre-)vote
/// requests. Matched by module and message, for the pinned openraft, so
/// its other warnings (snapshots, storage, membership) still show. At
/// debug level openraft logs every attempt anyway.
pub struct QuietPeerErrors;

/// openraft modules whose WARN lines may be per-RPC failures.
const NOISY: [&str; 4] = [
    "openraft::replication",
    "openraft::core::heartbeat::worker",
    "openraft::engine::handler::replication_handler",
    "openraft::core::raft_core",
];
/// What those lines say (from openraft 0.10.0-alpha.37's sources; the
/// heartbeat worker's lines start with the worker's name).
const NOISE: [&str; 5] = [
    "ReplicationCore recv RPCError",
    "failed to send a heartbeat",
    "heartbeat stream returned no response",
    "update progress error",
    "while requesting ",
];

fn may_be_noise(meta: &tracing::Metadata<'_>) -> bool {
    *meta.level() == tracing::Level::WARN && NOISY.contains(&meta.target())
}

/// Whether a log message is one of openraft's per-RPC failure lines.
pub fn is_peer_rpc_noise(message: &str) -> bool {
    NOISE.iter().any(|p| message.contains(p))
}

impl<S> tracing_subscriber::layer::Filter<S> for QuietPeerErrors {
    fn enabled(
        &self,
        _: &tracing::Metadata<'_>,
        _: &tracing_subscriber::layer::Context<'_, S>,
    ) -> bool {
        true
    }

    /// No limit of its own, so the `EnvFilter` beside it sets the level.
    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::TRACE)
    }

    fn callsite_enabled(
        &self,
        meta: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        if may_be_noise(meta) {
            tracing::subscriber::Interest::sometimes()
        } else {
            tracing::subscriber::Interest::always()
        }
    }

    fn event_enabled(
        &self,
        event: &tracing::Event<'_>,
        _: &tracing_subscriber::layer::Context<'_, S>,
    ) -> bool {
        if !may_be_noise(event.metadata()) {
            return true;
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        !is_peer_rpc_noise(&message.0)
    }
}

struct Message(String);

impl tracing::field::Visit for Message {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            use std::fmt::Write;
            let _ = write!(self.0, "{value:?}");
        }
    }
}

/// "42s", "5m 3s", "2h 10m".
pub fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {}s", s / 60, s % 60),
        _ => format!("{}h {}m", s / 3600, s % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Failures every 40 ms (a heartbeat's pace) for `secs`, then an answer.
    fn outage(h: &PeerHealth, start: Instant, secs: u64) -> Vec<Report> {
        let mut reports: Vec<Report> = (0..secs * 25)
            .map(|i| h.note_failure(1, "n1:1", "refused", start + Duration::from_millis(40 * i)))
            .filter(|r| *r != Report::Quiet)
            .collect();
        reports.extend(h.note_answer(1, start + Duration::from_secs(secs)));
        reports
    }

    #[test]
    fn an_hour_down_is_a_handful_of_lines() {
        let h = PeerHealth::default();
        let reports = outage(&h, Instant::now(), 3600);
        let at: Vec<u64> = reports
            .iter()
            .filter_map(|r| match r {
                Report::StillDown { for_, .. } => Some(for_.as_secs()),
                _ => None,
            })
            .collect();
        assert_eq!(reports[0], Report::Down);
        assert_eq!(at, [10, 30, 60, 120, 300, 900, 1500, 2100, 2700, 3300]);
        assert_eq!(
            reports.last(),
            Some(&Report::Back {
                after: Duration::from_secs(3600),
                attempts: 90_000
            })
        );
    }

    #[test]
    fn counts_attempts_and_keeps_the_last_error() {
        let h = PeerHealth::default();
        let t = Instant::now();
        h.note_failure(2, "n2:1", "refused", t);
        h.note_failure(2, "n2:1", "timed out", t);
        let down = h.down();
        assert_eq!(down.len(), 1);
        assert_eq!((down[0].node_id, down[0].attempts), (2, 2));
        assert_eq!(down[0].last_error, "timed out");
        assert_eq!(h.note_answer(3, t), None, "a peer that never failed");
        assert!(h.note_answer(2, t).is_some());
        assert!(h.down().is_empty());
    }

    #[test]
    fn a_flapping_peer_is_announced_once_per_interval() {
        let h = PeerHealth::default();
        let t = Instant::now();
        let (mut announced, mut backs) = (0, 0);
        for i in 0..50u64 {
            let at = t + Duration::from_millis(200 * i);
            if h.note_failure(1, "n1:1", "refused", at) == Report::Down {
                announced += 1;
            }
            if h.note_answer(1, at + Duration::from_millis(100)).is_some() {
                backs += 1;
            }
        }
        // 10 s of flapping: announced at 0, then again once 10 s passed;
        // only the announced outage's end is logged.
        assert_eq!(announced, 1);
        assert_eq!(backs, 1);
        let later = t + REANNOUNCE_AFTER + Duration::from_secs(1);
        assert_eq!(h.note_failure(1, "n1:1", "refused", later), Report::Down);
    }

    #[test]
    fn an_outage_nobody_tries_any_more_is_forgotten() {
        let h = PeerHealth::default();
        let t = Instant::now() - STALE - Duration::from_secs(60);
        h.note_failure(1, "n1:1", "refused", t);
        assert!(h.down().is_empty(), "no attempt for a minute");
        assert_eq!(h.note_answer(1, t + STALE + Duration::from_secs(60)), None);
        // A later failure starts a new outage, counted from 1.
        h.note_failure(1, "n1:1", "refused", t);
        h.note_failure(1, "n1:1", "refused", t + STALE * 2);
        assert_eq!(h.inner.lock().unwrap().down[&1].attempts, 1);
    }

    #[test]
    fn openrafts_per_rpc_failure_lines_are_recognised_and_nothing_else() {
        for line in [
            "ReplicationCore recv RPCError: Unreachable node: ..., when:(...)",
            "update progress error: Unreachable node: tcp connect error",
            "while requesting pre-vote, error: Unreachable node, target: 1",
            "timeout while requesting vote: timeout after 400ms",
            "HeartbeatWorker(id=2, target=1) failed to send a heartbeat: Err(...)",
        ] {
            assert!(is_peer_rpc_noise(line), "{line}");
        }
        for line in [
            "failed to get snapshot from state machine: disk",
            "target node 3 not found in progress tracker",
            "error sending transfer_leader: refused, target: 3",
        ] {
            assert!(!is_peer_rpc_noise(line), "{line}");
        }
    }

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(human(Duration::from_secs(42)), "42s");
        assert_eq!(human(Duration::from_secs(303)), "5m 3s");
        assert_eq!(human(Duration::from_secs(7800)), "2h 10m");
    }
}
