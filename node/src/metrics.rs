//! One node's Prometheus metrics registry, named as etcd names its own so
//! that ops staff's dashboards and alerts carry over. One registry per node
//! (tests run several nodes in one process; a global recorder would mix
//! them). Counters and histograms are fed where the work happens: fsyncs
//! in the log's fsync thread, applies in the state machine, calls in the
//! service layer, submissions where the leader answers them. Raft's figures
//! and the count per kabupaten are set at each scrape from what the scraper
//! read off the node (`Now`); the HTTP layer only serves the text.

use std::sync::Arc;

use openraft::ServerState;
use openraft::async_runtime::WatchReceiver;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use rekap_proto::pb;

use crate::raft::{Raft, RaftMetrics};
use crate::security::Tls;
use crate::tally::KabupatenCount;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PeerLabels {
    peer: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    method: String,
}

/// A call refused before any handler: `unauthenticated` or
/// `permission_denied`, and the rule its status names.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusalLabels {
    code: &'static str,
    rule: String,
}

/// How the dashboard answered: `rendered` (a new render), `kept` (an
/// answer rendered before), `not_modified` (304), `refused` (an error
/// answer: an unknown region, or a state being installed).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AnswerLabels {
    pub answer: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KabupatenLabels {
    contest: String,
    kabupaten: String,
}

/// One decided submission: `accepted`, `duplicate` or `rejected`, and for a
/// rejection the rule that refused it.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SubmissionLabels {
    outcome: &'static str,
    rule: String,
}

/// What a scrape read off the node.
pub struct Now<'a> {
    pub raft: &'a RaftMetrics,
    /// The state machine's own applied index: Raft's is published late
    /// under load.
    pub applied: u64,
    /// None during a snapshot install: the counts keep their last values.
    pub counts: Option<Vec<KabupatenCount>>,
}

pub struct Metrics {
    registry: Registry,
    has_leader: Gauge,
    is_leader: Gauge,
    leader_changes: Counter,
    dead_leaders: Counter,
    /// Followers' hints this node took as leader (`network::hint`).
    pub hints_taken: Counter,
    /// The dashboard's answers (`http::cache`).
    pub dashboard: Family<AnswerLabels, Counter>,
    /// Kept dashboard answers found current when checked after their tick.
    pub dashboard_checks: Counter,
    term: Gauge,
    last_log: Gauge,
    committed: Gauge,
    applied: Gauge,
    snapshot: Gauge,
    lag: Family<PeerLabels, Gauge>,
    submissions: Family<SubmissionLabels, Counter>,
    calls: Family<MethodLabels, Histogram, fn() -> Histogram>,
    refusals: Family<RefusalLabels, Counter>,
    cert_expiry: Gauge,
    tps_reported: Family<KabupatenLabels, Gauge>,
    tps_missing: Family<KabupatenLabels, Gauge>,
    tps_janggal: Family<KabupatenLabels, Gauge>,
    tls: Option<Arc<Tls>>,
}

fn call_histogram() -> Histogram {
    Histogram::new(crate::store::DISK_BUCKETS)
}

impl Metrics {
    /// Registers every metric; `fsyncs` and `applies` are the stores' own
    /// histograms, `tls` the node's certificates (none when insecure).
    pub fn new(fsyncs: Histogram, applies: Histogram, tls: Option<Arc<Tls>>) -> Metrics {
        let mut m = Metrics {
            registry: Registry::default(),
            has_leader: Gauge::default(),
            is_leader: Gauge::default(),
            leader_changes: Counter::default(),
            dead_leaders: Counter::default(),
            hints_taken: Counter::default(),
            dashboard: Family::default(),
            dashboard_checks: Counter::default(),
            term: Gauge::default(),
            last_log: Gauge::default(),
            committed: Gauge::default(),
            applied: Gauge::default(),
            snapshot: Gauge::default(),
            lag: Family::default(),
            submissions: Family::default(),
            calls: Family::new_with_constructor(call_histogram),
            refusals: Family::default(),
            cert_expiry: Gauge::default(),
            tps_reported: Family::default(),
            tps_missing: Family::default(),
            tps_janggal: Family::default(),
            tls,
        };
        let r = &mut m.registry;
        r.register(
            "rekap_server_has_leader",
            "Whether this node knows a leader (1) or not (0)",
            m.has_leader.clone(),
        );
        r.register(
            "rekap_server_is_leader",
            "Whether this node is the leader (1) or not (0)",
            m.is_leader.clone(),
        );
        r.register(
            "rekap_server_leader_changes_seen",
            "Leaders this node has seen take over",
            m.leader_changes.clone(),
        );
        r.register(
            "rekap_server_dead_leaders_found",
            "Leaders this node found gone (silent, and their address refused connections) and stopped waiting for",
            m.dead_leaders.clone(),
        );
        r.register(
            "rekap_raft_follower_hints_taken",
            "Followers' answers whose named durable log id this node, as leader, took as where their log matches, skipping openraft's search",
            m.hints_taken.clone(),
        );
        r.register("rekap_raft_term", "The current Raft term", m.term.clone());
        r.register(
            "rekap_raft_last_log_index",
            "The last index appended to this node's log",
            m.last_log.clone(),
        );
        r.register(
            "rekap_raft_committed_index",
            "The last index this node knows is committed",
            m.committed.clone(),
        );
        r.register(
            "rekap_raft_applied_index",
            "The last index applied to this node's tally",
            m.applied.clone(),
        );
        r.register(
            "rekap_raft_snapshot_index",
            "The last index in this node's newest snapshot",
            m.snapshot.clone(),
        );
        r.register(
            "rekap_raft_replication_lag_entries",
            "On the leader: entries a peer's log is behind the leader's",
            m.lag.clone(),
        );
        r.register_with_unit(
            "rekap_disk_fsync_duration",
            "Duration of the log's fsyncs (one covers every append since the last)",
            Unit::Seconds,
            fsyncs,
        );
        r.register_with_unit(
            "rekap_apply_duration",
            "Duration of applying one run of committed entries, its write included",
            Unit::Seconds,
            applies,
        );
        r.register(
            "rekap_submissions",
            "Submissions decided by this node as leader, by outcome and refusing rule",
            m.submissions.clone(),
        );
        r.register_with_unit(
            "rekap_grpc_request_duration",
            "Duration of gRPC calls by method, until the answer's headers (for a stream, its start)",
            Unit::Seconds,
            m.calls.clone(),
        );
        r.register(
            "rekap_authorization_refusals",
            "Calls refused as unauthenticated or not permitted, by the rule that refused them",
            m.refusals.clone(),
        );
        if m.tls.is_some() {
            r.register(
                "rekap_tls_certificate_expiry_timestamp_seconds",
                "When this node's certificate expires, in Unix seconds",
                m.cert_expiry.clone(),
            );
        }
        r.register(
            "rekap_http_dashboard_answers",
            "The dashboard's answers: rendered anew, kept (rendered before), not_modified (304), or refused (an error answer)",
            m.dashboard.clone(),
        );
        r.register(
            "rekap_http_dashboard_checks",
            "Kept dashboard answers checked against the state once their tick passed, and found current",
            m.dashboard_checks.clone(),
        );
        r.register(
            "rekap_tps_reported",
            "TPS with a result, per kabupaten and contest",
            m.tps_reported.clone(),
        );
        r.register(
            "rekap_tps_missing",
            "TPS without a result yet, per kabupaten and contest",
            m.tps_missing.clone(),
        );
        r.register(
            "rekap_tps_janggal",
            "TPS whose current result is flagged janggal, per kabupaten and contest",
            m.tps_janggal.clone(),
        );
        m
    }

    /// Records one gRPC call: `path` as called, how long it took, and the
    /// answer's headers (the status of a refusal is in them).
    pub fn observe_call(
        &self,
        path: &str,
        took: std::time::Duration,
        headers: &axum::http::HeaderMap,
    ) {
        let status = headers.get("grpc-status").and_then(|v| v.to_str().ok());
        // An unknown method is not a label: anyone can make up paths.
        let method = match status {
            Some("12") => "unknown",
            _ => path.trim_start_matches('/'),
        };
        self.calls
            .get_or_create(&MethodLabels {
                method: method.to_string(),
            })
            .observe(took.as_secs_f64());
        let code = match status {
            Some("16") => "unauthenticated",
            Some("7") => "permission_denied",
            _ => return,
        };
        let rule = headers
            .get(crate::reply::RULE_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("unknown");
        self.refusals
            .get_or_create(&RefusalLabels {
                code,
                rule: rule.to_string(),
            })
            .inc();
    }

    /// Counts the submissions one call decided.
    pub fn count_items(&self, items: &[pb::BatchItem]) {
        use pb::batch_item::Result as R;
        for item in items {
            let labels = match &item.result {
                Some(R::Outcome(o)) if o.status == pb::SubmitStatus::Duplicate as i32 => {
                    SubmissionLabels {
                        outcome: "duplicate",
                        rule: String::new(),
                    }
                }
                Some(R::Outcome(_)) => SubmissionLabels {
                    outcome: "accepted",
                    rule: String::new(),
                },
                Some(R::Rejection(r)) => SubmissionLabels {
                    outcome: "rejected",
                    rule: r.rule.clone(),
                },
                None => continue,
            };
            self.submissions.get_or_create(&labels).inc();
        }
    }

    /// Counts each new leader this node learns of, until Raft stops.
    /// `node::dead_leader` found its leader's process gone.
    pub fn count_dead_leader(&self) {
        self.dead_leaders.inc();
    }

    pub async fn count_leader_changes(self: Arc<Self>, raft: Raft) {
        let mut rx = raft.metrics();
        let mut seen = None;
        loop {
            let leader = rx.borrow_watched().current_leader;
            if leader.is_some() && leader != seen {
                self.leader_changes.inc();
                seen = leader;
            }
            if rx.changed().await.is_err() {
                return;
            }
        }
    }

    /// The registry in the OpenMetrics text format, with the figures read
    /// off the node at this scrape.
    pub fn render(&self, now: Now) -> Result<String, std::fmt::Error> {
        {
            let m = now.raft;
            let index = |l: Option<&crate::raft::LogId>| l.map_or(0, |l| l.index as i64);
            self.has_leader.set(m.current_leader.is_some() as i64);
            self.is_leader.set((m.state == ServerState::Leader) as i64);
            self.term.set(m.current_term as i64);
            let last = m.last_log_index.unwrap_or(0) as i64;
            self.last_log.set(last);
            self.committed.set(index(m.local_committed.as_ref()));
            // The state machine's own figure: Raft's is published late
            // under load.
            self.applied.set(now.applied as i64);
            self.snapshot.set(index(m.snapshot.as_ref()));
            self.lag.clear();
            for (peer, matched) in m.replication.iter().flatten() {
                if *peer != m.id {
                    let behind = last - index(matched.as_ref());
                    self.lag
                        .get_or_create(&PeerLabels {
                            peer: peer.to_string(),
                        })
                        .set(behind.max(0));
                }
            }
        }
        if let Some(t) = &self.tls {
            self.cert_expiry.set(t.current().own.not_after);
        }
        if let Some(counts) = now.counts {
            for f in [&self.tps_reported, &self.tps_missing, &self.tps_janggal] {
                f.clear();
            }
            for c in counts {
                let labels = KabupatenLabels {
                    contest: c.contest_id,
                    kabupaten: c.region_code,
                };
                self.tps_reported
                    .get_or_create(&labels)
                    .set(c.tps_reported as i64);
                let missing = c.tps_total.saturating_sub(c.tps_reported);
                self.tps_missing.get_or_create(&labels).set(missing as i64);
                self.tps_janggal
                    .get_or_create(&labels)
                    .set(c.tps_janggal as i64);
            }
        }
        let mut out = String::new();
        encode(&mut out, &self.registry)?;
        Ok(out)
    }
}
