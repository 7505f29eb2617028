//! Coalescing of concurrent submissions on the leader. At most a few
//! submission commands are in the log's pipeline at once; submissions that
//! arrive meanwhile wait together and go in as one command per principal,
//! as if the operator had sent them as one `SubmitBatch`. Under load this
//! turns many small log entries (each with its own replication framing,
//! apply step, audit entry and chain hash) into a few large ones; with one
//! writer nothing waits, so nothing is slower.
//!
//! Each submission is still decided on its own, in order, and each caller
//! gets exactly its own items back. Only submissions of the same principal
//! share a command, so the audit chain still names who made each change and
//! authorization at apply sees the same principal as at propose.

use std::sync::{Arc, Weak};

use rekap_proto::pb;
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::node::Node;
use crate::reply::Failure;
use crate::security::Caller;
use crate::tally::rules::MAX_BATCH;

/// Submission commands in flight at once. Enough to keep appends,
/// replication and apply overlapping; anything beyond waits and coalesces.
const IN_FLIGHT: usize = 4;

type Reply = Result<Vec<pb::BatchItem>, Failure>;

struct Pending {
    who: Caller,
    submissions: Vec<pb::Submission>,
    reply: oneshot::Sender<Reply>,
}

/// The leader's submission queue.
pub struct Submits {
    tx: mpsc::UnboundedSender<Pending>,
}

impl Submits {
    /// Starts the queue's task; it ends when `node` is dropped.
    pub fn start(node: Weak<Node>) -> Submits {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(node, rx));
        Submits { tx }
    }

    /// Proposes `submissions` (already checked statelessly and against the
    /// caller's grants) and returns their items, in order.
    pub async fn submit(&self, who: &Caller, submissions: Vec<pb::Submission>) -> Reply {
        let (reply, rx) = oneshot::channel();
        let gone = || Failure::Status(tonic::Status::unavailable("the node is shutting down"));
        self.tx
            .send(Pending {
                who: who.clone(),
                submissions,
                reply,
            })
            .map_err(|_| gone())?;
        rx.await.map_err(|_| gone())?
    }
}

async fn run(node: Weak<Node>, mut rx: mpsc::UnboundedReceiver<Pending>) {
    let permits = Arc::new(Semaphore::new(IN_FLIGHT));
    while let Some(first) = rx.recv().await {
        // Wait for room in the pipeline first: whatever queues up
        // meanwhile joins this round.
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let mut queue = vec![first];
        while let Ok(p) = rx.try_recv() {
            queue.push(p);
        }
        let Some(node) = node.upgrade() else {
            return;
        };
        let mut groups = group(queue).into_iter();
        let Some(g) = groups.next() else { continue };
        tokio::spawn(propose(node.clone(), g, permit));
        for g in groups {
            let Ok(permit) = permits.clone().acquire_owned().await else {
                return;
            };
            tokio::spawn(propose(node.clone(), g, permit));
        }
    }
}

/// Splits the queue into commands: same principal, at most `MAX_BATCH`
/// submissions each, arrival order kept within each.
fn group(queue: Vec<Pending>) -> Vec<Vec<Pending>> {
    let mut groups: Vec<(pb::Principal, usize, Vec<Pending>)> = Vec::new();
    for p in queue {
        let principal = p.who.principal();
        let n = p.submissions.len();
        match groups
            .iter_mut()
            .find(|(who, size, _)| *who == principal && size + n <= MAX_BATCH)
        {
            Some((_, size, members)) => {
                *size += n;
                members.push(p);
            }
            None => groups.push((principal, n, vec![p])),
        }
    }
    groups.into_iter().map(|(_, _, g)| g).collect()
}

async fn propose(node: Arc<Node>, group: Vec<Pending>, _permit: tokio::sync::OwnedSemaphorePermit) {
    let who = group[0].who.clone();
    let counts: Vec<usize> = group.iter().map(|p| p.submissions.len()).collect();
    let (submissions, replies): (Vec<_>, Vec<_>) =
        group.into_iter().map(|p| (p.submissions, p.reply)).unzip();
    let cmd = pb::Command {
        kind: Some(pb::command::Kind::Submit(pb::SubmitBatchRequest {
            submissions: submissions.into_iter().flatten().collect(),
        })),
        principal: None,
        proposed_at_ms: 0,
    };
    let result = match node.propose(cmd, &who).await {
        Ok(pb::CommandResponse {
            kind: Some(pb::command_response::Kind::Submit(b)),
        }) => Ok(b.items),
        Ok(other) => Err(Failure::Status(tonic::Status::internal(format!(
            "unexpected answer to a submission: {other:?}"
        )))),
        Err(f) => Err(f),
    };
    match result {
        Ok(items) => {
            let mut items = items.into_iter();
            for (reply, n) in replies.into_iter().zip(counts) {
                let _ = reply.send(Ok(items.by_ref().take(n).collect()));
            }
        }
        Err(f) => {
            for reply in replies {
                let _ = reply.send(Err(f.clone()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(name: &str, n: usize) -> Pending {
        let (reply, _) = oneshot::channel();
        Pending {
            who: Caller::User {
                name: name.into(),
                serial: "1".into(),
                via: None,
            },
            submissions: (0..n)
                .map(|i| pb::Submission {
                    submission_id: format!("{name}-{i}"),
                    ..Default::default()
                })
                .collect(),
            reply,
        }
    }

    #[test]
    fn groups_share_a_principal_keep_order_and_stay_within_the_batch_limit() {
        let queue = vec![
            pending("a", 1),
            pending("b", 1),
            pending("a", MAX_BATCH - 1),
            pending("a", 2),
            pending("b", 3),
        ];
        let shapes: Vec<Vec<(String, usize)>> = group(queue)
            .iter()
            .map(|g| {
                g.iter()
                    .map(|p| (p.who.principal().name, p.submissions.len()))
                    .collect()
            })
            .collect();
        let s = |n: &str, k: usize| (n.to_string(), k);
        assert_eq!(
            shapes,
            vec![
                vec![s("a", 1), s("a", MAX_BATCH - 1)],
                vec![s("b", 1), s("b", 3)],
                vec![s("a", 2)],
            ]
        );
    }
}
