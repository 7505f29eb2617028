//! `rekapctl cluster ...`: status and membership.

use clap::Subcommand;
use rekap_client::proto as pb;
use serde_json::json;

use crate::Ctx;
use crate::output::{opt, print_json, table};

#[derive(Subcommand)]
pub enum ClusterCmd {
    /// Every reachable node's view: role, term, leader, log positions.
    Status,
    /// Initialise a pristine cluster (normally automatic with --initial-cluster).
    Init {
        /// Voters as id=host:port; default: the first endpoint's node alone.
        #[arg(long = "member")]
        members: Vec<String>,
    },
    /// Add a node as a learner and wait until it has caught up.
    AddLearner {
        #[arg(long)]
        id: u64,
        #[arg(long)]
        addr: String,
        /// Return as soon as the learner is added.
        #[arg(long)]
        no_wait: bool,
    },
    /// Make learners voters.
    Promote { ids: Vec<u64> },
    /// Remove nodes (voters or learners) from the cluster.
    Remove { ids: Vec<u64> },
    /// Hand leadership to another voter.
    TransferLeader { id: u64 },
}

fn members_table(members: &[pb::Member]) -> String {
    table(
        &["id", "addr", "role", "matched"],
        members
            .iter()
            .map(|m| {
                vec![
                    m.node_id.to_string(),
                    m.addr.clone(),
                    m.role.clone(),
                    opt(m.matched_index),
                ]
            })
            .collect(),
    )
}

fn members_json(members: &[pb::Member]) -> serde_json::Value {
    json!(members
        .iter()
        .map(|m| json!({"id": m.node_id, "addr": m.addr, "role": m.role, "matched_index": m.matched_index}))
        .collect::<Vec<_>>())
}

/// "heartbeat/election-lease ms", or "?" from a node too old to say.
fn timing_text(t: Option<&pb::Timing>) -> String {
    t.map_or("?".into(), |t| {
        format!(
            "{}/{}-{} ms",
            t.heartbeat_interval_ms, t.election_timeout_ms, t.lease_ms
        )
    })
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
}

pub async fn run(ctx: &Ctx, cmd: ClusterCmd) -> anyhow::Result<()> {
    let c = &ctx.client;
    match cmd {
        ClusterCmd::Status => {
            let mut rows = Vec::new();
            let mut out = Vec::new();
            let probes = crate::discover::discover(c).await;
            let health = health_lines(&probes);
            for probe in probes {
                let addr = match &probe.advertised {
                    Some(adv) => format!("{} (advertised {adv})", probe.addr),
                    None => probe.addr.clone(),
                };
                match probe.answer {
                    Ok(s) => {
                        rows.push(vec![
                            s.node_id.to_string(),
                            addr.clone(),
                            s.state.clone(),
                            s.term.to_string(),
                            opt(s.leader_id),
                            opt(s.last_log_index),
                            opt(s.committed_index),
                            opt(s.applied_index),
                            opt(s.snapshot_index),
                            opt(s.purged_index),
                            mib(s.db_table_bytes),
                            mib(s.db_memtable_bytes),
                            mib(s.db_cache_bytes),
                            timing_text(s.timing.as_ref()),
                            s.leader_priority.to_string(),
                        ]);
                        out.push(json!({
                            "node_id": s.node_id, "addr": addr, "state": s.state, "term": s.term,
                            "leader_id": s.leader_id, "leader_addr": s.leader_addr,
                            "last_log_index": s.last_log_index, "committed_index": s.committed_index,
                            "applied_index": s.applied_index, "snapshot_index": s.snapshot_index,
                            "purged_index": s.purged_index, "joint": s.joint, "initialized": s.initialized,
                            "db_table_bytes": s.db_table_bytes, "db_memtable_bytes": s.db_memtable_bytes,
                            "db_cache_bytes": s.db_cache_bytes,
                            "members": members_json(&s.members),
                            "quorum": s.quorum,
                            "leader_priority": s.leader_priority,
                            "timing": s.timing.as_ref().map(|t| json!({
                                "heartbeat_interval_ms": t.heartbeat_interval_ms,
                                "election_timeout_ms": t.election_timeout_ms,
                                "lease_ms": t.lease_ms,
                            })),
                            "unreachable": s.unreachable.iter().map(|p| json!({
                                "node_id": p.node_id, "addr": p.addr, "down_ms": p.down_ms,
                                "failed_attempts": p.failed_attempts, "last_error": p.last_error,
                            })).collect::<Vec<_>>(),
                        }));
                    }
                    Err(e) => {
                        rows.push(vec![
                            opt(probe.node_id),
                            addr.clone(),
                            format!("unreachable ({:?})", e.code()),
                        ]);
                        out.push(json!({
                            "node_id": probe.node_id, "addr": probe.addr,
                            "advertised": probe.advertised, "error": e.message(),
                        }));
                    }
                }
            }
            if ctx.json {
                print_json(&json!(out));
            } else {
                println!(
                    "{}",
                    table(
                        &[
                            "id",
                            "addr",
                            "state",
                            "term",
                            "leader",
                            "last log",
                            "committed",
                            "applied",
                            "snapshot",
                            "purged",
                            "db files",
                            "memtables",
                            "caches",
                            "timing",
                            "priority"
                        ],
                        rows
                    )
                );
                for line in health {
                    println!("{line}");
                }
            }
        }
        ClusterCmd::Init { members } => {
            let mut req = pb::InitClusterRequest::default();
            for m in &members {
                let (id, addr) = m
                    .split_once('=')
                    .ok_or_else(|| anyhow::anyhow!("--member wants id=host:port"))?;
                req.members.push(pb::NodeAddr {
                    node_id: id.parse()?,
                    addr: addr.into(),
                });
            }
            let first = c.endpoints()[0].clone();
            if req.members.is_empty() {
                let me = c.status_of(&first).await?;
                req.members.push(pb::NodeAddr {
                    node_id: me.node_id,
                    addr: me.addr,
                });
            }
            let ch = c.channel(&first)?;
            let resp = pb::admin_client::AdminClient::new(ch)
                .init_cluster(req)
                .await?
                .into_inner();
            if ctx.json {
                print_json(&json!({"already_initialized": resp.already_initialized}));
            } else if resp.already_initialized {
                println!("already initialised; nothing changed");
            } else {
                println!("cluster initialised");
            }
        }
        ClusterCmd::AddLearner { id, addr, no_wait } => {
            let req = pb::AddLearnerRequest {
                node: Some(pb::NodeAddr { node_id: id, addr }),
                blocking: !no_wait,
            };
            // Blocking, it returns when the node caught up: that may take
            // the whole --timeout, not one attempt's few seconds.
            let resp = c
                .admin_patient(|mut a| {
                    let req = req.clone();
                    async move { a.add_learner(req).await }
                })
                .await?;
            show_membership(ctx, &resp);
        }
        ClusterCmd::Promote { ids } | ClusterCmd::Remove { ids } if ids.is_empty() => {
            anyhow::bail!("name at least one node id")
        }
        ClusterCmd::Promote { ids } => {
            let req = pb::ChangeMembershipRequest {
                change: Some(pb::change_membership_request::Change::Promote(
                    pb::NodeIds { node_ids: ids },
                )),
            };
            let resp = c
                .admin(|mut a| {
                    let req = req.clone();
                    async move { a.change_membership(req).await }
                })
                .await?;
            show_membership(ctx, &resp);
        }
        ClusterCmd::Remove { ids } => {
            let req = pb::ChangeMembershipRequest {
                change: Some(pb::change_membership_request::Change::Remove(pb::NodeIds {
                    node_ids: ids,
                })),
            };
            let resp = c
                .admin(|mut a| {
                    let req = req.clone();
                    async move { a.change_membership(req).await }
                })
                .await?;
            show_membership(ctx, &resp);
        }
        ClusterCmd::TransferLeader { id } => {
            let req = pb::TransferLeaderRequest { to_node_id: id };
            let resp = c
                .admin(|mut a| async move { a.transfer_leader(req).await })
                .await?;
            if ctx.json {
                print_json(&json!({
                    "leader_id": resp.leader_id, "term": resp.term, "confirmed": resp.confirmed,
                }));
            } else if resp.confirmed {
                println!(
                    "leader is now {} (term {}, holding its lease)",
                    opt(resp.leader_id),
                    resp.term
                );
            }
            // A script must not take an unconfirmed or other leader for
            // the one it asked for.
            match (resp.confirmed, resp.leader_id) {
                (true, Some(l)) if l == id => {}
                (true, l) => anyhow::bail!(
                    "the transfer to {id} lost a race with an election: node {} leads (term {})",
                    opt(l),
                    resp.term
                ),
                (false, l) => anyhow::bail!(
                    "could not confirm a new leader in time (last seen: node {} at term {}); \
                     see `rekapctl cluster status`",
                    opt(l),
                    resp.term
                ),
            }
        }
    }
    Ok(())
}

fn show_membership(ctx: &Ctx, resp: &pb::MembershipResponse) {
    if ctx.json {
        print_json(&json!({"log_index": resp.log_index, "members": members_json(&resp.members)}));
    } else {
        println!("membership committed at log index {}", resp.log_index);
        println!("{}", members_table(&resp.members));
    }
}

/// What is wrong, in words, from the nodes' own views: no leader, a
/// leader without its majority, peers a node cannot reach.
fn health_lines(answers: &[crate::discover::Probe]) -> Vec<String> {
    let up: Vec<&pb::ClusterStatusResponse> = answers
        .iter()
        .filter_map(|p| p.answer.as_ref().ok())
        .collect();
    let mut out = Vec::new();
    let leaders: Vec<_> = up.iter().filter(|s| s.state == "leader").collect();
    if leaders.is_empty() {
        out.push("NO LEADER: no answering node leads; writes wait for an election".to_string());
    }
    for s in &leaders {
        if s.quorum == Some(false) {
            let silent: Vec<String> = s
                .members
                .iter()
                .filter(|m| m.role == "voter" && m.healthy == Some(false))
                .map(|m| format!("node {}", m.node_id))
                .collect();
            out.push(format!(
                "QUORUM LOST: node {} leads term {} but no majority acknowledged it within its lease \
                 (silent or far behind: {}); it takes no writes",
                s.node_id,
                s.term,
                silent.join(", ")
            ));
        }
    }
    for s in &up {
        for p in &s.unreachable {
            out.push(format!(
                "node {} cannot reach node {} ({}) for {:.0} s, {} failed attempts: {}",
                s.node_id,
                p.node_id,
                p.addr,
                p.down_ms as f64 / 1000.0,
                p.failed_attempts,
                p.last_error
            ));
        }
    }
    // A lease read is safe only while every voter keeps the same lease.
    let mut timings: Vec<(String, u64)> = up
        .iter()
        .map(|s| (timing_text(s.timing.as_ref()), s.node_id))
        .collect();
    timings.sort();
    let kinds: std::collections::BTreeSet<&str> = timings.iter().map(|t| t.0.as_str()).collect();
    if kinds.len() > 1 {
        let each: Vec<String> = timings
            .iter()
            .map(|(t, id)| format!("node {id} {t}"))
            .collect();
        out.push(format!(
            "TIMING MISMATCH: {}; give every node the same --heartbeat-interval and --election-timeout              (a leader's lease is only safe then)",
            each.join(", ")
        ));
    }
    let silent = answers.iter().filter(|p| p.answer.is_err()).count();
    if silent > 0 {
        out.push(format!("{silent} node(s) did not answer this status call"));
    }
    if out.is_empty() {
        out.push("healthy: one leader with its majority, every peer reachable".to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(
        addr: &str,
        answer: Result<pb::ClusterStatusResponse, tonic::Status>,
    ) -> crate::discover::Probe {
        crate::discover::Probe {
            addr: addr.into(),
            node_id: answer.as_ref().ok().map(|s| s.node_id),
            advertised: None,
            answer,
        }
    }

    fn member(id: u64, healthy: Option<bool>) -> pb::Member {
        pb::Member {
            node_id: id,
            addr: format!("n{id}:7001"),
            role: "voter".into(),
            healthy,
            ..Default::default()
        }
    }

    #[test]
    fn a_leader_without_its_majority_and_its_unreachable_peers_are_named() {
        let leader = pb::ClusterStatusResponse {
            node_id: 3,
            state: "leader".into(),
            term: 7,
            quorum: Some(false),
            members: vec![
                member(1, Some(false)),
                member(2, Some(false)),
                member(3, Some(true)),
            ],
            unreachable: vec![pb::UnreachablePeer {
                node_id: 1,
                addr: "n1:7001".into(),
                down_ms: 65_000,
                failed_attempts: 1300,
                last_error: "tcp connect error".into(),
            }],
            ..Default::default()
        };
        let answers = vec![
            probe("n3:7001", Ok(leader)),
            probe("n1:7001", Err(tonic::Status::unavailable("refused"))),
        ];
        let lines = health_lines(&answers);
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(
            lines[0].starts_with("QUORUM LOST: node 3 leads term 7"),
            "{}",
            lines[0]
        );
        assert!(
            lines[0].contains("(silent or far behind: node 1, node 2)"),
            "{}",
            lines[0]
        );
        assert_eq!(
            lines[1],
            "node 3 cannot reach node 1 (n1:7001) for 65 s, 1300 failed attempts: tcp connect error"
        );
        assert_eq!(lines[2], "1 node(s) did not answer this status call");
    }

    #[test]
    fn a_healthy_cluster_says_so_and_a_leaderless_one_too() {
        let ok = pb::ClusterStatusResponse {
            node_id: 1,
            state: "leader".into(),
            quorum: Some(true),
            ..Default::default()
        };
        let lines = health_lines(&[probe("n1:7001", Ok(ok))]);
        assert_eq!(
            lines,
            ["healthy: one leader with its majority, every peer reachable"]
        );
        let follower = pb::ClusterStatusResponse {
            node_id: 2,
            state: "follower".into(),
            ..Default::default()
        };
        let lines = health_lines(&[probe("n2:7001", Ok(follower))]);
        assert!(lines[0].starts_with("NO LEADER"), "{lines:?}");
    }

    #[test]
    fn nodes_with_different_timing_are_named() {
        let with = |id: u64, hb: u32, e: u32| pb::ClusterStatusResponse {
            node_id: id,
            state: if id == 1 { "leader" } else { "follower" }.into(),
            quorum: Some(true),
            timing: Some(pb::Timing {
                heartbeat_interval_ms: hb,
                election_timeout_ms: e,
                lease_ms: e + 2 * hb,
                ..Default::default()
            }),
            ..Default::default()
        };
        let same = vec![
            probe("n1:7001", Ok(with(1, 50, 250))),
            probe("n2:7001", Ok(with(2, 50, 250))),
        ];
        assert!(!health_lines(&same).iter().any(|l| l.contains("TIMING")));
        let apart = vec![
            probe("n1:7001", Ok(with(1, 50, 250))),
            probe("n2:7001", Ok(with(2, 100, 1000))),
        ];
        let lines = health_lines(&apart);
        let mismatch = lines
            .iter()
            .find(|l| l.starts_with("TIMING MISMATCH"))
            .expect("named");
        assert!(
            mismatch.contains("node 2 100/1000-1200 ms")
                && mismatch.contains("node 1 50/250-350 ms"),
            "{mismatch}"
        );
    }
}
