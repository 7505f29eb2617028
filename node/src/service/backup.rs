//! `Admin.SaveBackup`: a cut of the whole state, taken on the leader after
//! a read barrier (a follower forwards the call), streamed as the backup's
//! header and then its body. Cluster operators only: the state holds every
//! user and grant (never a key).

use std::io::Read;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::Stream;
use rekap_proto::backup::{FORMAT_VERSION, hex};
use rekap_proto::pb;
use rekap_proto::pb::admin_client::AdminClient;
use tonic::{Request, Response, Status};

use super::authorize;
use crate::node::Node;
use crate::store::{Cut, StateMachineStore};
use crate::tally::Action;

pub type BackupStream = Pin<Box<dyn Stream<Item = Result<pb::BackupChunk, Status>> + Send>>;

const CHUNK: usize = 1 << 20;

pub async fn save_backup(
    node: &Arc<Node>,
    req: Request<pb::SaveBackupRequest>,
) -> Result<Response<BackupStream>, Status> {
    node.route(
        req,
        |_r, who| async move {
            // On the leader, after the barrier: a follower forwards, and
            // the grant is checked against the state the cut comes from.
            node.read_barrier(pb::Consistency::Linearizable as i32)
                .await?;
            authorize(node, &who, Action::Membership)?;
            // The cut is taken in the stream, not before the answer: a
            // large state takes longer than a call's deadline to write.
            Ok(Box::pin(stream(node.sm.clone(), node.id)) as BackupStream)
        },
        |ch, r| async move {
            let resp = AdminClient::new(ch).save_backup(r).await?;
            Ok(resp.map(|s| Box::pin(s) as BackupStream))
        },
    )
    .await
}

fn header_of(cut: &Cut, node_id: u64) -> pb::BackupHeader {
    let applied = cut.meta.last_log_id.as_ref();
    pb::BackupHeader {
        format_version: FORMAT_VERSION,
        cluster_id: cut.cluster_id.clone(),
        applied_index: applied.map_or(0, |l| l.index),
        applied_term: applied.map_or(0, |l| l.leader_id.term),
        members: {
            let m = cut.meta.last_membership.membership();
            let voters: std::collections::BTreeSet<u64> = m.voter_ids().collect();
            m.nodes()
                .map(|(id, n)| pb::BackupMember {
                    node_id: *id,
                    addr: n.addr.clone(),
                    voter: voters.contains(id),
                })
                .collect()
        },
        totals: cut.totals.clone(),
        chain_index: cut.chain.index,
        chain_head: cut.chain.head.clone(),
        chain_commands: cut.chain.commands,
        body_sha256: hex(&cut.body_sha256),
        body_bytes: cut.body_bytes,
        created_unix_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64),
        taken_by_node: node_id,
    }
}

/// How long the receiver may stop reading before the backup is dropped.
const STALLED: Duration = Duration::from_secs(60);

/// Sends `item`, waiting while the receiver is behind; false once it has
/// gone, or stalled for `STALLED`.
fn send_patiently<T>(tx: &tokio::sync::mpsc::Sender<T>, mut item: T) -> bool {
    use tokio::sync::mpsc::error::TrySendError;
    let since = Instant::now();
    loop {
        match tx.try_send(item) {
            Ok(()) => return true,
            Err(TrySendError::Closed(_)) => return false,
            Err(TrySendError::Full(back)) if since.elapsed() < STALLED => {
                item = back;
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(TrySendError::Full(_)) => return false,
        }
    }
}

/// Takes the cut on a blocking thread, then sends its header and its body
/// in chunks. The cut's file goes with the cut, sent or not.
fn stream(
    sm: StateMachineStore,
    node_id: u64,
) -> impl Stream<Item = Result<pb::BackupChunk, Status>> + Send {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::task::spawn_blocking(move || {
        let send = |part| send_patiently(&tx, Ok(pb::BackupChunk { part: Some(part) }));
        let result = (|| -> std::io::Result<()> {
            let cut = sm.cut()?;
            let header = header_of(&cut, node_id);
            tracing::info!(
                index = header.applied_index,
                bytes = header.body_bytes,
                "backup cut taken"
            );
            if !send(pb::backup_chunk::Part::Header(header)) {
                return Ok(());
            }
            let mut f = std::fs::File::open(&cut.body)?;
            loop {
                let mut buf = vec![0; CHUNK];
                let n = f.read(&mut buf)?;
                if n == 0 {
                    return Ok(());
                }
                buf.truncate(n);
                if !send(pb::backup_chunk::Part::Body(buf)) {
                    return Ok(());
                }
            }
        })();
        if let Err(e) = result {
            tracing::warn!(error = %e, "a backup failed");
            send_patiently(
                &tx,
                Err(Status::internal(format!("taking the backup: {e}"))),
            );
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}
