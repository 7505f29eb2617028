//! How a call finds the leader: the known leader first, leader hints
//! followed once, then round robin; retries with backoff until the call's
//! deadline; and hedging, so a leader that froze (rather than died, which
//! breaks the connection at once) costs a client `hedge_after`, not a whole
//! attempt timeout.

use std::collections::HashSet;
use std::future::Future;
use std::time::{Duration, Instant};

use tonic::Status;

use crate::deadline::Timed;
use crate::{
    Client, LEADER_HEADER, LEADER_ID_HEADER, MEMBER_SYNC, NODE_ID_HEADER, header, is_retryable,
};

impl Client {
    /// Node to try for attempt `n`: the known leader first, then round robin.
    fn target(&self, n: usize, hint: &Option<String>) -> String {
        let mut inner = self.inner.lock().expect("client lock");
        if let Some(h) = hint {
            return h.clone();
        }
        if n == 0
            && let Some(l) = &inner.leader
        {
            return l.clone();
        }
        inner.rr = inner.rr.wrapping_add(1);
        inner.endpoints[inner.rr % inner.endpoints.len()].clone()
    }

    /// Believes `addr` leads (or, with `None`, that the leader is unknown).
    fn set_leader(&self, addr: Option<String>) {
        let mut inner = self.inner.lock().expect("client lock");
        if let Some(a) = &addr
            && !inner.endpoints.contains(a)
        {
            inner.endpoints.push(a.clone());
        }
        inner.leader = addr;
    }

    /// Remembers which node answered at `addr`, and returns where to reach
    /// the leader the answer names: through the endpoint this client reached
    /// it by. A leader not reached yet is looked for among the configured
    /// endpoints first; only when all of them are known is its advertised
    /// address used (a node added to the cluster since).
    fn observe(&self, md: &tonic::metadata::MetadataMap, addr: &str) -> Option<String> {
        let mut inner = self.inner.lock().expect("client lock");
        match header(md, NODE_ID_HEADER).and_then(|v| v.parse::<u64>().ok()) {
            Some(id) => {
                inner.via.insert(id, addr.to_string());
                inner.unreachable.remove(addr);
            }
            // No node answered: a refused or timed-out connection.
            None => {
                inner.unreachable.insert(addr.to_string());
            }
        }
        let leader_id = header(md, LEADER_ID_HEADER).and_then(|v| v.parse::<u64>().ok())?;
        if let Some(ep) = inner.via.get(&leader_id) {
            return Some(ep.clone());
        }
        // Every configured endpoint that still answers is known; the leader
        // is elsewhere (a node added since, or all old ones replaced).
        if inner.configured_known() {
            header(md, LEADER_HEADER)
        } else {
            None
        }
    }

    /// Every few seconds, learns the current members' addresses from a node
    /// that answers, and drops learned addresses of removed members, so a
    /// client keeps up when every node it was configured with has been
    /// replaced (etcd's client does the same).
    async fn sync_members(&self, addr: &str) {
        {
            let mut inner = self.inner.lock().expect("client lock");
            // Learn nothing until the configured endpoints are sorted out:
            // behind port mapping they, not the advertised addresses, reach
            // the nodes.
            if inner.synced.is_some_and(|t| t.elapsed() < MEMBER_SYNC) || !inner.configured_known()
            {
                return;
            }
            inner.synced = Some(Instant::now());
        }
        let Ok(status) = self.status_of(addr).await else {
            return;
        };
        if let Some(t) = &status.timing
            && t.client_attempt_ms > 0
            && t.client_hedge_ms > 0
        {
            let ms = |v: u32| Duration::from_millis(u64::from(v));
            self.inner.lock().expect("client lock").learned =
                Some((ms(t.client_attempt_ms), ms(t.client_hedge_ms)));
        }
        if status.members.is_empty() {
            return;
        }
        let mut inner = self.inner.lock().expect("client lock");
        let ids: HashSet<u64> = status.members.iter().map(|m| m.node_id).collect();
        // Endpoints through which this client reaches a current member.
        let reaching: HashSet<String> = inner
            .via
            .iter()
            .filter(|(id, _)| ids.contains(id))
            .map(|(_, a)| a.clone())
            .collect();
        let advertised: HashSet<String> = status.members.iter().map(|m| m.addr.clone()).collect();
        let configured = inner.configured.clone();
        inner
            .endpoints
            .retain(|e| configured.contains(e) || reaching.contains(e) || advertised.contains(e));
        for m in status.members {
            if !inner.via.contains_key(&m.node_id) && !inner.endpoints.contains(&m.addr) {
                inner.endpoints.push(m.addr);
            }
        }
    }

    fn forget_leader(&self, addr: &str) {
        let mut inner = self.inner.lock().expect("client lock");
        if inner.leader.as_deref() == Some(addr) {
            inner.leader = None;
        }
    }

    /// Runs `call` against the cluster with leader-following and retries.
    pub async fn call<T, F, Fut>(&self, call: F) -> Result<T, Status>
    where
        F: FnMut(Timed) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        self.run(call, None, false).await
    }

    /// Like `call`, but one attempt may take the whole deadline: for calls
    /// that wait on purpose (a blocking add-learner waits for the new node
    /// to catch up), which the per-attempt timeout would cut off and send
    /// again and again.
    pub async fn call_patient<T, F, Fut>(&self, call: F) -> Result<T, Status>
    where
        F: FnMut(Timed) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        self.run(call, None, true).await
    }

    /// Like `call`, and an attempt still unanswered after `hedge_after` is
    /// also sent to another node; the first answer wins. Only for calls that
    /// are safe to deliver twice: reads, and writes (they carry their
    /// request id, so a second delivery is answered as a duplicate).
    pub async fn call_hedged<T, F, Fut>(&self, call: F) -> Result<T, Status>
    where
        F: FnMut(Timed) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        self.run(call, self.hedge_after(), false).await
    }

    /// How long one attempt may take: the cluster's timing, once learned
    /// (and followed), else the options'.
    pub(crate) fn attempt_timeout(&self) -> Duration {
        let learned = self.inner.lock().expect("client lock").learned;
        match learned {
            Some((attempt, _)) if self.opts.follow_cluster_timing => attempt,
            _ => self.opts.attempt_timeout,
        }
    }

    /// When a hedged call also goes to another node (never, if the options
    /// say never).
    fn hedge_after(&self) -> Option<Duration> {
        let learned = self.inner.lock().expect("client lock").learned;
        match (self.opts.hedge_after, learned) {
            (Some(_), Some((_, hedge))) if self.opts.follow_cluster_timing => Some(hedge),
            (own, _) => own,
        }
    }

    async fn run<T, F, Fut>(
        &self,
        mut call: F,
        hedge: Option<Duration>,
        patient: bool,
    ) -> Result<T, Status>
    where
        F: FnMut(Timed) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let start = Instant::now();
        let mut backoff = self.opts.backoff_initial;
        let mut hint: Option<String> = None;
        let mut attempt = 0usize;
        loop {
            let target = self.target(attempt, &hint);
            attempt += 1;
            let left = self.opts.deadline.saturating_sub(start.elapsed());
            let per_try = if patient {
                left
            } else {
                self.attempt_timeout().min(left)
            };
            let (addr, result) = self.attempt(&mut call, target, per_try, hedge).await;
            match result {
                Ok(resp) => {
                    let leader = self.observe(resp.metadata(), &addr);
                    self.set_leader(leader);
                    self.sync_members(&addr).await;
                    return Ok(resp.into_inner());
                }
                Err(status) => {
                    let leader = self.observe(status.metadata(), &addr);
                    if !is_retryable(&status) {
                        self.set_leader(leader);
                        return Err(status);
                    }
                    self.forget_leader(&addr);
                    if start.elapsed() + backoff >= self.opts.deadline {
                        return Err(status);
                    }
                    // Follow a hint once; if it fails too, go round the list.
                    // A node that names itself (it won an election while it
                    // held this call for the old leader) is asked again.
                    hint = leader.filter(|l| hint.as_deref() != Some(l));
                    tracing::debug!(%addr, code = ?status.code(), msg = status.message(), ?hint, "retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(self.opts.backoff_max);
                }
            }
        }
    }

    /// One attempt at `addr`, also sent to another node once `hedge` has
    /// passed without an answer. Returns the answer and who gave it.
    async fn attempt<T, F, Fut>(
        &self,
        call: &mut F,
        addr: String,
        per_try: Duration,
        hedge: Option<Duration>,
    ) -> (String, Result<tonic::Response<T>, Status>)
    where
        F: FnMut(Timed) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let first = self.start(call, &addr, per_try);
        let Some(after) = hedge.filter(|h| *h < per_try) else {
            return (addr, first.await);
        };
        let mut first = std::pin::pin!(first);
        tokio::select! {
            r = &mut first => return (addr, r),
            () = tokio::time::sleep(after) => {}
        }
        let Some(other) = self.other_than(&addr) else {
            return (addr, first.await);
        };
        tracing::debug!(%addr, %other, "no answer yet; hedging");
        let second = self.start(call, &other, per_try - after);
        tokio::select! {
            r = &mut first => (addr, r),
            r = second => (other, r),
        }
    }

    /// Starts `call` on `addr`, bounded by `per_try`.
    fn start<T, F, Fut>(
        &self,
        call: &mut F,
        addr: &str,
        per_try: Duration,
    ) -> impl Future<Output = Result<tonic::Response<T>, Status>> + use<T, F, Fut>
    where
        F: FnMut(Timed) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        // Boxed: tonic's call futures are large, and each layer above
        // (timeout, attempt, retry loop, the caller) would copy them inline.
        let fut = self
            .channel(addr)
            .map(|ch| Box::pin(call(Timed::new(ch, per_try))));
        let addr = addr.to_string();
        async move {
            match tokio::time::timeout(per_try, fut?).await {
                Ok(r) => r,
                Err(_) => Err(Status::deadline_exceeded(format!(
                    "{addr} did not answer in {per_try:?}"
                ))),
            }
        }
    }

    /// Another endpoint than `addr`, round robin, skipping unreachable ones.
    fn other_than(&self, addr: &str) -> Option<String> {
        let mut inner = self.inner.lock().expect("client lock");
        let n = inner.endpoints.len();
        for _ in 0..n {
            inner.rr = inner.rr.wrapping_add(1);
            let e = &inner.endpoints[inner.rr % n];
            if e != addr && !inner.unreachable.contains(e) {
                return Some(e.clone());
            }
        }
        None
    }
}
