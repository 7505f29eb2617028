//! The `Admin` service: registry loading and cluster membership.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use openraft::{BasicNode, ChangeMembers, ServerState};
use rekap_proto::pb;
use rekap_proto::pb::admin_client::AdminClient;
use tonic::{Request, Response, Status};

use super::{authorize, refused, required, unexpected, users};
use crate::node::{Node, write_failure};
use crate::raft::{NodeId, RaftMetrics};
use crate::reply::Failure;
use crate::security::{Caller, caller_of};
use crate::tally::Action;
use crate::tally::rules;
use rekap_proto::pb::user_admin_request::Op;

/// About how many bytes of commands one `ListAuditLog` page carries; a
/// single command can be larger (a registry chunk), up to the admin limit.
const AUDIT_PAGE_BYTES: usize = 2 * 1024 * 1024;

/// How long a blocking `AddLearner` waits for the learner to catch up.
const LEARNER_CATCH_UP: Duration = Duration::from_secs(120);

pub struct AdminService {
    pub node: Arc<Node>,
}

pub fn members_of(m: &RaftMetrics, alive: Duration) -> Vec<pb::Member> {
    let membership = m.membership_config.membership();
    let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
    let ok = (m.state == ServerState::Leader).then(|| healthy(m, alive));
    membership
        .nodes()
        .map(|(id, n)| pb::Member {
            node_id: *id,
            addr: n.addr.clone(),
            role: if voters.contains(id) {
                "voter"
            } else {
                "learner"
            }
            .to_string(),
            matched_index: m
                .replication
                .as_ref()
                .and_then(|r| r.get(id).cloned().flatten())
                .map(|l| l.index),
            healthy: ok.as_ref().map(|ok| ok.contains(id)),
        })
        .collect()
}

fn state_name(s: ServerState) -> &'static str {
    match s {
        ServerState::Leader => "leader",
        ServerState::Follower => "follower",
        ServerState::Candidate => "candidate",
        ServerState::Learner => "learner",
        ServerState::Shutdown => "shutdown",
    }
}

/// Nodes the leader currently hears from (within `alive`, the timing's
/// `alive_within`) and that are close to its log; the leader itself too.
fn healthy(m: &RaftMetrics, alive: Duration) -> BTreeSet<NodeId> {
    let last = m.last_log_index.unwrap_or(0);
    let mut out = BTreeSet::from([m.id]);
    let (Some(repl), Some(hb)) = (m.replication.as_ref(), m.heartbeat.as_ref()) else {
        return out;
    };
    for (id, matched) in repl {
        let close = matched
            .as_ref()
            .is_some_and(|l| l.index + crate::node::CAUGHT_UP_LAG >= last);
        let alive = hb
            .get(id)
            .cloned()
            .flatten()
            .is_some_and(|t| openraft::Instant::elapsed(&*t) < alive);
        if close && alive {
            out.insert(*id);
        }
    }
    out
}

/// A refusal outside `Node::route`, as the status it carries.
fn status(f: Failure) -> Status {
    match f {
        Failure::Status(s) => s,
        Failure::NotLeader(_) => Status::unavailable("not the leader"),
    }
}

fn precondition(rule: &str, msg: String) -> Failure {
    refused(rules::reject(rules::code::FAILED_PRECONDITION, rule, msg))
}

impl AdminService {
    /// Refuses a change whose new voter set would not have a majority of
    /// nodes that are alive and caught up: committing it would stall.
    fn check_quorum(&self, new_voters: &BTreeSet<NodeId>) -> Result<(), Failure> {
        if new_voters.is_empty() {
            return Err(precondition(
                "quorum_kept",
                "the cluster must keep at least one voter".into(),
            ));
        }
        let m = self.node.metrics();
        if m.state != ServerState::Leader {
            return Err(Failure::NotLeader(self.node.leader()));
        }
        let ok = healthy(&m, self.node.timing.alive_within());
        let good = new_voters.iter().filter(|id| ok.contains(id)).count();
        if good * 2 <= new_voters.len() {
            return Err(precondition(
                "quorum_kept",
                format!(
                    "only {good} of the new voters {new_voters:?} are alive and caught up; a majority is needed"
                ),
            ));
        }
        Ok(())
    }

    async fn change(
        &self,
        change: pb::change_membership_request::Change,
    ) -> Result<pb::MembershipResponse, Failure> {
        use pb::change_membership_request::Change;
        let m = self.node.metrics();
        // Health and catch-up are the leader's knowledge: decide there.
        if m.state != ServerState::Leader {
            return Err(Failure::NotLeader(self.node.leader()));
        }
        let membership = m.membership_config.membership().clone();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let known: BTreeSet<NodeId> = membership.nodes().map(|(id, _)| *id).collect();
        let members = match change {
            Change::Promote(ids) => {
                let ids: BTreeSet<NodeId> = ids.node_ids.into_iter().collect();
                if let Some(id) = ids.iter().find(|id| !known.contains(id)) {
                    return Err(refused(rules::reject(
                        rules::code::NOT_FOUND,
                        "member_exists",
                        format!("node {id} is not a member; add it as a learner first"),
                    )));
                }
                let ok = healthy(&m, self.node.timing.alive_within());
                if let Some(id) = ids
                    .iter()
                    .find(|id| !voters.contains(id) && !ok.contains(id))
                {
                    return Err(precondition(
                        "learner_caught_up",
                        format!("learner {id} has not caught up with the leader's log"),
                    ));
                }
                let new_voters: BTreeSet<NodeId> = voters.union(&ids).copied().collect();
                self.check_quorum(&new_voters)?;
                ChangeMembers::AddVoterIds(ids)
            }
            Change::Remove(ids) => {
                let ids: BTreeSet<NodeId> = ids.node_ids.into_iter().collect();
                if let Some(id) = ids.iter().find(|id| !known.contains(id)) {
                    return Err(refused(rules::reject(
                        rules::code::NOT_FOUND,
                        "member_exists",
                        format!("node {id} is not a member"),
                    )));
                }
                let new_voters: BTreeSet<NodeId> = voters.difference(&ids).copied().collect();
                self.check_quorum(&new_voters)?;
                let removed_voters: BTreeSet<NodeId> = ids.intersection(&voters).copied().collect();
                if removed_voters.is_empty() {
                    ChangeMembers::RemoveNodes(ids)
                } else {
                    // Learners named alongside voters are dropped in a second step.
                    let learners: BTreeSet<NodeId> = ids.difference(&voters).copied().collect();
                    if !learners.is_empty() {
                        self.node
                            .raft
                            .change_membership(ChangeMembers::RemoveNodes(learners), false)
                            .await
                            .map_err(write_failure)?;
                    }
                    ChangeMembers::RemoveVoters(removed_voters)
                }
            }
        };
        let resp = self
            .node
            .raft
            .change_membership(members, false)
            .await
            .map_err(write_failure)?;
        Ok(pb::MembershipResponse {
            log_index: resp.log_id.index,
            members: members_of(&self.node.metrics(), self.node.timing.alive_within()),
        })
    }
}

#[tonic::async_trait]
impl pb::admin_server::Admin for AdminService {
    async fn load_registry(
        &self,
        req: Request<pb::LoadRegistryRequest>,
    ) -> Result<Response<pb::LoadRegistryResponse>, Status> {
        let node = &self.node;
        node.route(
            req,
            |r, who| async move {
                let cmd = pb::Command {
                    kind: Some(pb::command::Kind::LoadRegistry(r)),
                    principal: None,
                    proposed_at_ms: 0,
                };
                match node.propose(cmd, &who).await? {
                    pb::CommandResponse {
                        kind: Some(pb::command_response::Kind::LoadRegistry(resp)),
                    } => Ok(resp),
                    other => Err(unexpected(other)),
                }
            },
            |ch, r| async move { AdminClient::new(ch).load_registry(r).await },
        )
        .await
    }

    type SaveBackupStream = super::backup::BackupStream;

    async fn save_backup(
        &self,
        req: Request<pb::SaveBackupRequest>,
    ) -> Result<Response<Self::SaveBackupStream>, Status> {
        super::backup::save_backup(&self.node, req).await
    }

    async fn cluster_status(
        &self,
        req: Request<pb::ClusterStatusRequest>,
    ) -> Result<Response<pb::ClusterStatusResponse>, Status> {
        let node = &self.node;
        authorize(node, &caller_of(&req)?, Action::Status).map_err(status)?;
        let m = node.metrics();
        let leader = node.leader();
        let initialized = node.raft.is_initialized().await.unwrap_or(false);
        let usage = node.sm.usage();
        Ok(Response::new(pb::ClusterStatusResponse {
            node_id: node.id,
            addr: node.addr.clone(),
            state: state_name(m.state).to_string(),
            term: m.current_term,
            leader_id: leader.as_ref().map(|l| l.0),
            leader_addr: leader.map(|l| l.1).unwrap_or_default(),
            members: members_of(&m, node.timing.alive_within()),
            last_log_index: m.last_log_index,
            committed_index: m.local_committed.map(|l| l.index),
            applied_index: m.last_applied.map(|l| l.index),
            snapshot_index: m.snapshot.map(|l| l.index),
            purged_index: m.purged.map(|l| l.index),
            joint: m.membership_config.membership().get_joint_config().len() > 1,
            initialized,
            db_table_bytes: usage.table_bytes,
            db_memtable_bytes: usage.memtable_bytes,
            db_cache_bytes: usage.cache_bytes,
            quorum: (m.state == ServerState::Leader).then(|| node.quorum_fresh()),
            timing: Some(node.timing.to_pb()),
            leader_priority: node.leader_priority,
            cluster_id: node
                .sm
                .try_view()
                .map(|st| st.tally.cluster_id().to_string())
                .unwrap_or_default(),
            unreachable: node
                .peers
                .health()
                .down()
                .into_iter()
                .map(|d| pb::UnreachablePeer {
                    node_id: d.node_id,
                    addr: d.addr,
                    down_ms: d.for_.as_millis() as u64,
                    failed_attempts: d.attempts,
                    last_error: d.last_error,
                })
                .collect(),
        }))
    }

    async fn init_cluster(
        &self,
        req: Request<pb::InitClusterRequest>,
    ) -> Result<Response<pb::InitClusterResponse>, Status> {
        let node = &self.node;
        let who = caller_of(&req)?;
        if node.raft.is_initialized().await.unwrap_or(true) {
            // A no-op that tells no more than ClusterStatus does.
            authorize(node, &who, Action::Status).map_err(status)?;
            return Ok(Response::new(pb::InitClusterResponse {
                already_initialized: true,
            }));
        }
        let mut members: BTreeMap<NodeId, BasicNode> = req
            .into_inner()
            .members
            .into_iter()
            .map(|m| (m.node_id, BasicNode { addr: m.addr }))
            .collect();
        if members.is_empty() {
            members.insert(
                node.id,
                BasicNode {
                    addr: node.addr.clone(),
                },
            );
        }
        let already_initialized = crate::bootstrap::initialize(&node.raft, members).await?;
        if !already_initialized && let Caller::User { name, .. } = &who {
            // The CA-signed caller who initialised the cluster administers it
            // (unless the node was configured with --initial-admin).
            node.offer_first_admin(name.clone(), who.clone());
        }
        Ok(Response::new(pb::InitClusterResponse {
            already_initialized,
        }))
    }

    async fn add_learner(
        &self,
        req: Request<pb::AddLearnerRequest>,
    ) -> Result<Response<pb::MembershipResponse>, Status> {
        let node = &self.node;
        node.route(
            req,
            |r, who| async move {
                node.lead_or_forward()?;
                authorize(node, &who, Action::Membership)?;
                let n = required(r.node, "node")?;
                tracing::info!(by = %who.principal().name, node = n.node_id, addr = %n.addr, "adding a learner");
                if node.sm.is_removed(n.node_id) {
                    return Err(refused(rules::reject(
                        rules::code::FAILED_PRECONDITION,
                        "node_id_removed",
                        format!("node id {} was removed from this cluster; node ids are never reused, give the new node a new id", n.node_id),
                    )));
                }
                if n.addr.is_empty() {
                    return Err(refused(rules::invalid(
                        "required_field",
                        "node.addr is required",
                    )));
                }
                let m = node.metrics();
                if m.membership_config
                    .membership()
                    .voter_ids()
                    .any(|v| v == n.node_id)
                {
                    return Err(refused(rules::reject(
                        rules::code::ALREADY_EXISTS,
                        "member_exists",
                        format!("node {} is already a voter", n.node_id),
                    )));
                }
                let id = n.node_id;
                // A new node (not one already in the membership) starts from
                // a fresh snapshot rather than replaying a long log.
                if !m.membership_config.membership().learner_ids().any(|l| l == id) {
                    node.compaction
                        .before_new_node(LEARNER_CATCH_UP)
                        .await
                        .map_err(|e| Failure::Status(Status::unavailable(format!("building a snapshot for the new node: {e}"))))?;
                }
                let resp = node
                    .raft
                    .add_learner(id, BasicNode { addr: n.addr }, false)
                    .await
                    .map_err(write_failure)?;
                if r.blocking {
                    // Caught up the way a promote will judge it: it holds the
                    // entry that added it, answers the leader, and is close to
                    // the leader's log.
                    let want = resp.log_id.index;
                    node.raft
                        .wait(Some(LEARNER_CATCH_UP))
                        .metrics(
                            |m| {
                                let holds = m
                                    .replication
                                    .as_ref()
                                    .and_then(|r| r.get(&id).cloned().flatten())
                                    .is_some_and(|l| l.index >= want);
                                holds && healthy(m, node.timing.alive_within()).contains(&id)
                            },
                            "learner caught up",
                        )
                        .await
                        .map_err(|e| {
                            Failure::Status(Status::deadline_exceeded(format!(
                                "learner {id} was added but has not caught up yet: {e}"
                            )))
                        })?;
                }
                Ok(pb::MembershipResponse {
                    log_index: resp.log_id.index,
                    members: members_of(&node.metrics(), node.timing.alive_within()),
                })
            },
            |ch, r| async move { AdminClient::new(ch).add_learner(r).await },
        )
        .await
    }

    async fn change_membership(
        &self,
        req: Request<pb::ChangeMembershipRequest>,
    ) -> Result<Response<pb::MembershipResponse>, Status> {
        self.node
            .route(
                req,
                |r, who| async move {
                    self.node.lead_or_forward()?;
                    authorize(&self.node, &who, Action::Membership)?;
                    let change = required(r.change, "change")?;
                    tracing::info!(by = %who.principal().name, ?change, "changing membership");
                    self.change(change).await
                },
                |ch, r| async move { AdminClient::new(ch).change_membership(r).await },
            )
            .await
    }

    async fn transfer_leader(
        &self,
        req: Request<pb::TransferLeaderRequest>,
    ) -> Result<Response<pb::TransferLeaderResponse>, Status> {
        let node = &self.node;
        node.route(
            req,
            |r, who| async move {
                node.lead_or_forward()?;
                authorize(node, &who, Action::Membership)?;
                tracing::info!(by = %who.principal().name, to = r.to_node_id, "transferring leadership");
                let m = node.metrics();
                if m.state != ServerState::Leader {
                    return Err(Failure::NotLeader(node.leader()));
                }
                if !m
                    .membership_config
                    .membership()
                    .voter_ids()
                    .any(|v| v == r.to_node_id)
                {
                    return Err(refused(rules::reject(
                        rules::code::FAILED_PRECONDITION,
                        "target_is_voter",
                        format!("node {} is not a voter", r.to_node_id),
                    )));
                }
                super::transfer::transfer(node, r.to_node_id).await
            },
            |ch, r| async move { AdminClient::new(ch).transfer_leader(r).await },
        )
        .await
    }

    async fn get_chain_head(
        &self,
        req: Request<pb::GetChainHeadRequest>,
    ) -> Result<Response<pb::GetChainHeadResponse>, Status> {
        authorize(&self.node, &caller_of(&req)?, Action::Audit).map_err(status)?;
        let head = self
            .node
            .sm
            .chain_head(req.into_inner().index)
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(head))
    }

    async fn list_audit_log(
        &self,
        req: Request<pb::ListAuditLogRequest>,
    ) -> Result<Response<pb::ListAuditLogResponse>, Status> {
        authorize(&self.node, &caller_of(&req)?, Action::Audit).map_err(status)?;
        let r = req.into_inner();
        let size = if r.page_size == 0 {
            100
        } else {
            r.page_size.min(1000) as usize
        };
        let entries = self
            .node
            .sm
            .audit_entries(r.after_index, size, AUDIT_PAGE_BYTES)
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(pb::ListAuditLogResponse { entries }))
    }

    async fn add_user(
        &self,
        req: Request<pb::AddUserRequest>,
    ) -> Result<Response<pb::UserResponse>, Status> {
        users::change(&self.node, req, Op::Add).await
    }

    async fn grant_role(
        &self,
        req: Request<pb::GrantRoleRequest>,
    ) -> Result<Response<pb::UserResponse>, Status> {
        users::change(&self.node, req, Op::Grant).await
    }

    async fn revoke_role(
        &self,
        req: Request<pb::RevokeRoleRequest>,
    ) -> Result<Response<pb::UserResponse>, Status> {
        users::change(&self.node, req, Op::Revoke).await
    }

    async fn set_user_disabled(
        &self,
        req: Request<pb::SetUserDisabledRequest>,
    ) -> Result<Response<pb::UserResponse>, Status> {
        users::change(&self.node, req, Op::SetDisabled).await
    }

    async fn revoke_certificate(
        &self,
        req: Request<pb::RevokeCertificateRequest>,
    ) -> Result<Response<pb::UserResponse>, Status> {
        users::change(&self.node, req, Op::RevokeCert).await
    }

    async fn list_users(
        &self,
        req: Request<pb::ListUsersRequest>,
    ) -> Result<Response<pb::ListUsersResponse>, Status> {
        users::list(&self.node, req).await
    }
}
