//! The running node: its Raft handle, its state machine, and the routing
//! every public call goes through (serve locally, forward to the leader with
//! a hop limit, or fail UNAVAILABLE with a leader hint).

use std::future::Future;
use std::time::{Duration, Instant};

use openraft::ReadPolicy;
use openraft::async_runtime::WatchReceiver;
use openraft::errors::{ClientWriteError, LinearizableReadError, RaftError};
use rekap_proto::pb;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};
use tracing::Instrument;

pub mod dead_leader;
pub mod peer_timing;
mod peers;
pub mod placement;
mod refusals;
pub mod warm;

use crate::network::ChannelPool;
use crate::raft::{NodeId, Raft, RaftMetrics, TypeConfig};
use crate::reply::{
    Failure, HOPS_HEADER, NODE_ID_HEADER, RULE_HEADER, Unavailable, rejection_status,
};
use crate::security::{Caller, caller_of};
use crate::store::StateMachineStore;
use rekap_proto::identity::{ON_BEHALF_OF_HEADER, ON_BEHALF_SERIAL_HEADER};

/// A request forwarded this many times is not forwarded again: leadership
/// is moving and the client should retry.
pub const MAX_HOPS: u32 = 2;

pub struct Node {
    pub id: NodeId,
    /// Every consensus duration: how long a call waits for a leader, how
    /// stale a pending proposal's majority may grow, the lease (`timing`).
    pub timing: crate::timing::Timing,
    /// Where this node should lead, against the others (`placement`).
    pub leader_priority: u32,
    pub addr: String,
    pub raft: Raft,
    pub sm: StateMachineStore,
    /// The newest log id this node's log holds on disk: a follower's answer
    /// to a new leader names it (`network::hint`).
    pub durable: crate::store::Durable,
    /// Channels to other nodes' public services, for forwarding.
    pub peers: ChannelPool,
    /// Who becomes the first admin when this node leads a cluster that has
    /// no users yet, and on whose behalf it proposes that.
    pub first_admin: std::sync::Mutex<Option<(String, Caller)>>,
    /// When to snapshot and purge the log (`raft::compaction`).
    pub compaction: crate::raft::compaction::Compaction,
    /// What `/metrics` shows.
    pub metrics: std::sync::Arc<crate::metrics::Metrics>,
    /// Live views of watched regions (`Tally.Watch`, the dashboard).
    pub watches: crate::watch::Hub,
    /// When this node, leading at the term given, last handed over its
    /// leadership (`begin_handover`).
    pub handover: std::sync::Mutex<Option<(u64, Instant)>>,
    /// When this node last took entries or a heartbeat from a leader (its
    /// start, until then): how stale its local reads may be
    /// (`out_of_touch`).
    pub heard_leader: std::sync::Mutex<Instant>,
    /// The other members' `--leader-priority`, as `peer_timing` last
    /// heard them.
    pub peer_priorities: std::sync::Mutex<std::collections::HashMap<NodeId, u32>>,
}

/// A voter whose log trails the leader's by more than this is not counted
/// as caught up (for a membership change's quorum, or to take the lead).
pub(crate) const CAUGHT_UP_LAG: u64 = 1000;

impl Node {
    /// Names the first admin, unless one is named already (by configuration).
    pub fn offer_first_admin(&self, name: String, on_behalf_of: Caller) {
        let mut slot = self.first_admin.lock().expect("first admin lock");
        if slot.is_none() {
            *slot = Some((name, on_behalf_of));
        }
    }

    pub fn metrics(&self) -> RaftMetrics {
        self.raft.metrics().borrow_watched().clone()
    }

    /// A span naming this node, its term and the leader it follows. At
    /// debug level: an enabled span formats its fields on every call, which
    /// showed in the write path's profile.
    pub fn span(&self) -> tracing::Span {
        if !tracing::enabled!(tracing::Level::DEBUG) {
            return tracing::Span::none();
        }
        let m = self.raft.metrics();
        let m = m.borrow_watched();
        tracing::debug_span!("rpc", node = self.id, term = m.current_term, leader = ?m.current_leader)
    }

    /// The current leader's id and address, as this node knows it.
    pub fn leader(&self) -> Option<(NodeId, String)> {
        let m = self.raft.metrics();
        let m = m.borrow_watched();
        let id = m.current_leader?;
        let addr = m
            .membership_config
            .membership()
            .get_node(&id)
            .map(|n| n.addr.clone())?;
        Some((id, addr))
    }

    /// Serves `req` here, or forwards it to the leader when this node is
    /// not the leader.
    pub async fn route<Req, Resp, L, LF, R, RF>(
        &self,
        req: Request<Req>,
        local: L,
        remote: R,
    ) -> Result<Response<Resp>, Status>
    where
        Req: Clone,
        L: FnOnce(Req, Caller) -> LF,
        LF: Future<Output = Result<Resp, Failure>>,
        R: Fn(Channel, Request<Req>) -> RF,
        RF: Future<Output = Result<Response<Resp>, Status>>,
    {
        let hops: u32 = req
            .metadata()
            .get(HOPS_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let caller = caller_of(&req)?;
        if let Caller::User { via: Some(id), .. } = &caller {
            self.forwarder_is_member(*id).inspect_err(|_| {
                tracing::warn!(node = id, "refused a call forwarded by a non-member");
            })?;
        }
        // A deadline, not a budget: time spent here waiting for a leader
        // comes out of what the forward may take.
        let deadline = Instant::now()
            + crate::forward::forward_budget(req.metadata(), self.timing.forward_default());
        let body = req.into_inner();
        self.await_lease().await;
        // The leader serves its calls itself, so it keeps no copy of the
        // request for forwarding (a copy of every submission otherwise).
        let (body, spare) = if self.leads() {
            (body, None)
        } else {
            (body.clone(), Some(body))
        };
        let result = match local(body, caller.clone()).instrument(self.span()).await {
            Ok(r) => Ok(r),
            Err(Failure::Status(s)) => Err(s),
            // This node led when the call came. openraft refuses a new
            // proposal with an empty forward when the leader's quorum lease
            // has expired: still leading, it has lost its majority.
            Err(Failure::NotLeader(_)) if spare.is_none() && self.leads() => Err(self.no_quorum(
                "this node leads but has not heard from a majority within its lease",
            )),
            Err(Failure::NotLeader(_)) if spare.is_none() => Err(Unavailable::LeadershipMoved.status(
                "leadership moved while this node was serving the call; retry with the same submission id",
            )),
            Err(Failure::NotLeader(known)) => {
                let body = spare.expect("kept when not leading");
                // Only a call that needs the leader waits for an election;
                // stale reads and status are answered here at once.
                let leader = match known {
                    Some(l) => Some(l),
                    None => self.await_leader(None).await,
                };
                match leader {
                    Some((id, addr)) if id != self.id && hops >= MAX_HOPS => {
                        Err(Unavailable::LeadershipMoved.status(format!(
                            "leadership is moving (hop limit {MAX_HOPS} reached); retry, leader hint {addr}"
                        )))
                    }
                    Some((id, addr)) if id != self.id => {
                        // Boxed: the forwarding future is large, and inline
                        // it would be copied with every call, forwarded or not.
                        Box::pin(self.forward_following(
                            body,
                            &caller,
                            (hops + 1, deadline),
                            (id, addr),
                            remote,
                        ))
                        .await
                    }
                    _ => Err(self.no_leader()),
                }
            }
        };
        // The answer's x-rekap-* headers are set in front of the services
        // (`service::front`), for every method alike.
        result.map(Response::new)
    }

    /// A new leader has no lease until a follower answers its first
    /// heartbeat, and openraft refuses proposals until then. A call that
    /// arrives meanwhile asks for a heartbeat now and waits for the lease,
    /// up to one lease, instead of being turned away (on a WAN the client's
    /// backoff would add to every failover). A leader that had a majority
    /// and lost it answers at once (`no_quorum`).
    async fn await_lease(&self) {
        let new_leader = {
            let m = self.raft.metrics();
            let m = m.borrow_watched();
            m.current_leader == Some(self.id) && m.last_quorum_acked.is_none()
        };
        if !new_leader || self.quorum_fresh() {
            return;
        }
        // Heartbeats go out every H; the lease need not wait for the next.
        let _ = self.raft.trigger().heartbeat().await;
        let lease = self.timing.lease();
        let _ = self
            .raft
            .wait(Some(lease))
            .metrics(
                move |m| m.current_leader != Some(m.id) || quorum_acked_within(m, lease),
                "the leader's lease",
            )
            .await;
    }

    /// Waits (up to the timing's leader wait) until this node knows of a leader other
    /// than `not`, and returns it.
    async fn await_leader(&self, not: Option<NodeId>) -> Option<(NodeId, String)> {
        let _ = self
            .raft
            .wait(Some(self.timing.leader_wait()))
            .metrics(
                |m| m.current_leader.is_some() && m.current_leader != not,
                "a leader is known",
            )
            .await;
        self.leader().filter(|(id, _)| Some(*id) != not)
    }

    /// Forwards to the leader, and follows leadership while waiting: when
    /// this node learns of a new leader (the old one died or froze), or the
    /// old one cannot be reached, the call goes to the new one at once
    /// instead of hanging or sending the client away. Safe because every
    /// write carries its request id: a second delivery is a duplicate.
    async fn forward_following<Req, Resp, R, RF>(
        &self,
        body: Req,
        caller: &Caller,
        (hops, deadline): (u32, Instant),
        mut leader: (NodeId, String),
        remote: R,
    ) -> Result<Resp, Status>
    where
        Req: Clone,
        R: Fn(Channel, Request<Req>) -> RF,
        RF: Future<Output = Result<Response<Resp>, Status>>,
    {
        // At most two re-forwards: each needs the leadership to move.
        for attempt in 0..=2 {
            let (id, addr) = leader.clone();
            let wait = self.raft.wait(None);
            let moved = wait.metrics(move |m| m.current_leader != Some(id), "the leader changes");
            let failed = tokio::select! {
                r = self.forward(body.clone(), caller, (hops, deadline), &addr, &remote) => match r {
                    Err(s) if leader_lost(&s) => s,
                    other => return other,
                },
                _ = moved => Unavailable::LeadershipMoved.status(format!("leader {addr} was replaced; retry")),
            };
            if attempt == 2 {
                return Err(failed);
            }
            match self.await_leader(Some(id)).await {
                Some(next) if next.0 != self.id => {
                    tracing::debug!(from = id, to = next.0, "leader changed while forwarding");
                    leader = next;
                }
                // The answer names this node as the leader: the client asks
                // here again at once.
                Some(_) => {
                    return Err(Unavailable::LeadershipMoved
                        .status("this node was elected while it held the call; retry here"));
                }
                None => return Err(failed),
            }
        }
        unreachable!("the last attempt returns")
    }

    async fn forward<Req, Resp, R, RF>(
        &self,
        body: Req,
        caller: &Caller,
        (hops, deadline): (u32, Instant),
        addr: &str,
        remote: &R,
    ) -> Result<Resp, Status>
    where
        R: Fn(Channel, Request<Req>) -> RF,
        RF: Future<Output = Result<Response<Resp>, Status>>,
    {
        let budget = deadline.saturating_duration_since(Instant::now());
        if budget.is_zero() {
            return Err(Unavailable::LeaderUnreachable.status(format!(
                "the call's time ran out before it could reach leader {addr}; retry"
            )));
        }
        let ch = self.peers.public(addr).map_err(|e| {
            Unavailable::LeaderUnreachable.status(format!("cannot reach leader {addr}: {e}"))
        })?;
        let mut req = Request::new(body);
        req.metadata_mut()
            .insert(HOPS_HEADER, MetadataValue::from(hops));
        // The leader must judge the user, not this node: assert who it is.
        if let Caller::User { name, serial, .. } = caller {
            for (k, v) in [
                (ON_BEHALF_OF_HEADER, name),
                (ON_BEHALF_SERIAL_HEADER, serial),
            ] {
                let v = MetadataValue::try_from(v.as_str())
                    .map_err(|_| Status::invalid_argument("principal is not ASCII"))?;
                req.metadata_mut().insert(k, v);
            }
        }
        req.set_timeout(budget);
        tracing::debug!(leader = addr, hops, ?budget, "forwarding to leader");
        match tokio::time::timeout(budget, remote(ch, req)).await {
            // A status the leader did not send (it names itself in each) is
            // the transport's: the connection to it failed or broke.
            Ok(Err(s)) if s.metadata().get(NODE_ID_HEADER).is_none() && leader_lost(&s) => {
                Err(Unavailable::LeaderUnreachable
                    .status(format!("cannot reach leader {addr}: {}", s.message())))
            }
            // The leader no longer takes calls from this node: retryable,
            // so the client moves on to a member.
            Ok(Err(s)) if not_member_any_more(&s) => Err(Unavailable::NotMember.status(format!(
                "this node is no longer a member of the cluster ({}); send to a member",
                s.message()
            ))),
            Ok(r) => r.map(Response::into_inner),
            Err(_) => Err(Unavailable::LeaderUnreachable
                .status(format!("leader {addr} did not answer in time; retry"))),
        }
    }

    /// Proposes a command on behalf of `who` and waits until it is
    /// committed and applied.
    pub async fn propose(
        &self,
        mut cmd: pb::Command,
        who: &Caller,
    ) -> Result<pb::CommandResponse, Failure> {
        cmd.principal = Some(who.principal());
        self.lead_or_forward()?;
        cmd.proposed_at_ms = now_ms();
        // Refused here, a command never reaches the log (nor the audit
        // chain); the state machine decides again at apply.
        self.sm
            .try_view()?
            .tally
            .check_command(&cmd)
            .map_err(|rej| Failure::Status(rejection_status(&rej)))?;
        let cmd = std::sync::Arc::new(crate::raft::Cmd::new(cmd));
        let write = self.raft.client_write(cmd);
        tokio::pin!(write);
        // openraft keeps a proposal pending while its leader has no
        // majority, for as long as that lasts; the caller is told instead.
        loop {
            tokio::select! {
                r = &mut write => return r.map(|resp| resp.data).map_err(write_failure),
                // Twice the lease, after which openraft itself refuses new
                // proposals, so metrics that lag under load do not turn a
                // slow commit into an error.
                _ = tokio::time::sleep(self.timing.quorum_check()) => {
                    if self.leads() && self.quorum_lost_for(self.timing.pending_limit()) {
                        return Err(Failure::Status(self.no_quorum(
                            "outcome unknown: this node leads but lost its majority while the \
                             proposal was pending, which may still commit once they are back",
                        )));
                    }
                }
            }
        }
    }

    /// True when a majority has acknowledged this leader before, but not
    /// within `window`.
    fn quorum_lost_for(&self, window: Duration) -> bool {
        let m = self.raft.metrics();
        let m = m.borrow_watched();
        m.last_quorum_acked.is_some() && !quorum_acked_within(&m, window)
    }

    /// Fails with `NotLeader` (so `route` forwards) unless this node leads:
    /// the leader has applied every change it acknowledged, so its checks
    /// see every grant and revocation a client was told about.
    pub fn lead_or_forward(&self) -> Result<(), Failure> {
        if self.leads() {
            Ok(())
        } else {
            Err(Failure::NotLeader(self.leader()))
        }
    }

    /// Whether a majority acknowledged this leader within its lease, as
    /// `cluster status` reports it.
    pub fn quorum_fresh(&self) -> bool {
        let m = self.raft.metrics();
        let m = m.borrow_watched();
        quorum_acked_within(&m, self.timing.lease())
    }

    /// Hands the leadership to `to`. Openraft's transfer lets the others
    /// vote for `to` at once, lease or not, so this node stops serving
    /// lease reads until the hand-over has settled either way.
    pub async fn begin_handover(
        &self,
        to: NodeId,
    ) -> Result<(), openraft::errors::Fatal<TypeConfig>> {
        let term = self.metrics().current_term;
        *self.handover.lock().expect("handover lock") = Some((term, Instant::now()));
        self.raft.trigger().transfer_leader(to).await
    }

    /// Whether a hand-over begun at this term may still elect another
    /// leader: until a leader wait and a lease have passed (after that a
    /// node that voted for another no longer acknowledges this one).
    fn handing_over(&self) -> bool {
        let Some((term, at)) = *self.handover.lock().expect("handover lock") else {
            return false;
        };
        term == self.metrics().current_term
            && at.elapsed() < self.timing.leader_wait() + self.timing.lease()
    }

    /// A follower or learner took entries or a heartbeat from its leader.
    pub fn heard_from_leader(&self) {
        *self.heard_leader.lock().expect("heard lock") = Instant::now();
    }

    /// How long this node has gone without hearing from a leader, when that
    /// is longer than a lease: its local state (the dashboard, stale reads)
    /// may lag by that much. `None` while it leads or is in touch.
    pub fn out_of_touch(&self) -> Option<Duration> {
        if self.leads() {
            return None;
        }
        let since = *self.heard_leader.lock().expect("heard lock");
        Some(since.elapsed()).filter(|d| *d > self.timing.lease())
    }

    /// Whether this node leads, as Raft's metrics say.
    fn leads(&self) -> bool {
        self.raft.metrics().borrow_watched().current_leader == Some(self.id)
    }

    /// A lease read without asking Raft's core, which is busy under write
    /// load: true when Raft's metrics (which only lag, so err on the safe
    /// side) show this node leading, a quorum's acknowledgement within the
    /// lease (so no other leader can exist, as openraft's own lease read
    /// reasons), and an entry of this term applied here (so everything
    /// earlier leaders committed is applied). Every write this leader
    /// acknowledged was applied here before its answer, so the state as it
    /// is now holds every write acknowledged before the read arrived.
    fn holds_lease(&self) -> bool {
        if self.handing_over() {
            return false;
        }
        let m = self.raft.metrics();
        let m = m.borrow_watched();
        m.current_leader == Some(self.id)
            && m.state == openraft::ServerState::Leader
            && quorum_acked_within(&m, self.timing.lease())
            && m.last_applied
                .as_ref()
                .is_some_and(|l| l.leader_id.term == m.current_term)
    }

    /// Waits until a read here would be linearizable; a stale read skips
    /// the wait. On the leader a lease read needs no round trip while a
    /// quorum acknowledged it within the lease (they do, every heartbeat or
    /// append); only when that is stale does it fall back to ReadIndex,
    /// which asks the followers. Either way it waits until the state machine
    /// has applied everything committed when the read arrived.
    pub async fn read_barrier(&self, consistency: i32) -> Result<(), Failure> {
        if consistency == pb::Consistency::Stale as i32 || self.holds_lease() {
            return Ok(());
        }
        // A hand-over lets the followers vote for the new leader within
        // this one's lease: only asking them is safe until it settles.
        let policy = match self.handing_over() {
            true => ReadPolicy::ReadIndex,
            false => ReadPolicy::LeaseRead,
        };
        let r = match self.raft.get_read_linearizer(policy).await {
            Err(RaftError::APIError(LinearizableReadError::QuorumNotEnough(_))) => {
                self.raft.get_read_linearizer(ReadPolicy::ReadIndex).await
            }
            other => other,
        };
        match r {
            Ok(lin) => {
                // Applied here, as the state machine says: Raft's metrics
                // would say it later, after its core got round to it.
                self.sm.wait_applied(lin.read_log_id().index()).await;
                Ok(())
            }
            Err(e) => match e.forward_to_leader() {
                Some(f) => Err(Failure::NotLeader(leader_of(f))),
                None if matches!(
                    e,
                    RaftError::APIError(LinearizableReadError::QuorumNotEnough(_))
                ) =>
                {
                    Err(Failure::Status(self.no_quorum(
                        "this node leads but no majority confirmed its leadership for a linearizable read",
                    )))
                }
                None => Err(Failure::Status(Status::unavailable(format!(
                    "cannot confirm leadership: {e}"
                )))),
            },
        }
    }
}

/// This node's wall clock (Unix ms): as a leader, the time its revisions
/// record.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Whether a majority acknowledged this node as leader within `window`.
fn quorum_acked_within(m: &RaftMetrics, window: Duration) -> bool {
    use openraft::Instant as _;
    // A lone voter is its own majority: openraft never lets its lease
    // lapse, and stops moving its acknowledgement time after the election.
    let mut voters = m.membership_config.membership().voter_ids();
    if voters.next() == Some(m.id) && voters.next().is_none() {
        return true;
    }
    let now = openraft::alias::InstantOf::<TypeConfig>::now();
    m.last_quorum_acked
        .as_ref()
        .is_some_and(|acked| now < **acked + window)
}

/// A forward that failed because the leader went away (its connection
/// broke, or it says it no longer leads), not because of the request.
fn leader_lost(s: &Status) -> bool {
    use tonic::Code;
    match s.code() {
        Code::Unavailable | Code::Cancelled | Code::Unknown => true,
        Code::Internal => s.message().contains("h2 protocol error"),
        _ => false,
    }
}

/// The leader refused this node as a forwarder (`Node::forwarder_is_member`).
fn not_member_any_more(s: &Status) -> bool {
    s.code() == tonic::Code::PermissionDenied
        && matches!(
            s.metadata().get(RULE_HEADER).and_then(|v| v.to_str().ok()),
            Some("node_removed" | "cluster_member")
        )
}

fn leader_of(f: &openraft::errors::ForwardToLeader<TypeConfig>) -> Option<(NodeId, String)> {
    Some((f.leader_id?, f.leader_node.as_ref()?.addr.clone()))
}

/// Maps a failed write: not-leader (including an entry discarded by a
/// leader change, whose outcome is unknown) becomes a forward, since every
/// command is safe to retry.
pub fn write_failure(e: RaftError<TypeConfig, ClientWriteError<TypeConfig>>) -> Failure {
    if let Some(f) = e.forward_to_leader() {
        return Failure::NotLeader(leader_of(f));
    }
    match e {
        RaftError::APIError(ClientWriteError::ChangeMembershipError(c)) => Failure::Status(
            Status::failed_precondition(format!("rule=membership_change: {c}")),
        ),
        RaftError::APIError(other) => {
            Failure::Status(Status::failed_precondition(other.to_string()))
        }
        RaftError::Fatal(f) => Failure::Status(Status::unavailable(format!(
            "raft stopped on this node: {f}"
        ))),
    }
}
