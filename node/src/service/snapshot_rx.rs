//! Receiving a snapshot from the leader, resumably. The bytes go to a file
//! named after the snapshot (its last log id) next to the
//! snapshots; a transfer that breaks leaves it there, and the leader's next
//! try asks how much it holds (`SnapshotResumePoint`) and sends only the
//! rest. A new transfer of any snapshot cancels one still waiting on a dead
//! link, so the two never write the same file. A file that turns out
//! damaged when installed is deleted, and the next try starts from zero.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use openraft::storage::Snapshot;
use rekap_proto::pb;
use tokio::io::{AsyncSeekExt, AsyncWriteExt};
use tonic::{Status, Streaming};

use crate::node::Node;
use crate::raft::convert as cv;
use crate::store::{Received, SnapshotData, Streamed};

/// A snapshot sender that goes quiet this long is given up on.
const CHUNK_IDLE: Duration = Duration::from_secs(30);
const PARTIAL: &str = "partial-";

/// One receive at a time, and a way to end one that waits on a dead link.
pub struct Receiving {
    one_at_a_time: tokio::sync::Mutex<()>,
    generation: tokio::sync::watch::Sender<u64>,
}

impl Default for Receiving {
    fn default() -> Self {
        Receiving {
            one_at_a_time: tokio::sync::Mutex::new(()),
            generation: tokio::sync::watch::Sender::new(0),
        }
    }
}

/// The file a transfer of this snapshot writes to.
fn partial_path(dir: &Path, start: &pb::SnapshotStart) -> PathBuf {
    let id = start
        .meta
        .as_ref()
        .and_then(|m| m.last_log_id.as_ref())
        .map(|l| {
            let (term, node) = l.leader_id.map_or((0, 0), |x| (x.term, x.node_id));
            format!("{term}-{node}-{}", l.index)
        })
        .unwrap_or_else(|| "none".into());
    // Not by size: a file sent as it was written (size 0) is a prefix of
    // the same snapshot sent whole on the next try. Were the bytes ever
    // to differ, the file's hash refuses it and the try after starts at 0.
    dir.join(format!("{PARTIAL}{id}.part"))
}

fn internal(e: std::io::Error) -> Status {
    Status::internal(e.to_string())
}

impl Receiving {
    /// Ends any receive under way (its sender gave up; it would wait for
    /// `CHUNK_IDLE`) and takes the turn.
    async fn take_turn(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.generation.send_modify(|g| *g += 1);
        self.one_at_a_time.lock().await
    }

    /// How many bytes of this snapshot a broken transfer left here.
    pub async fn resume_point(&self, node: &Node, start: &pb::SnapshotStart) -> u64 {
        let _turn = self.take_turn().await;
        let path = partial_path(node.sm.snapshot_dir(), start);
        tokio::fs::metadata(&path)
            .await
            .map_or(0, |m| m.len().min(start.size))
    }

    /// Receives the chunks after `start` into the snapshot's file (from
    /// its offset), fsyncs it, then hands it to openraft.
    pub async fn receive(
        &self,
        node: &Node,
        mut stream: Streaming<pb::SnapshotChunk>,
    ) -> Result<pb::SnapshotReply, Status> {
        let first = stream
            .message()
            .await?
            .ok_or_else(|| Status::invalid_argument("empty snapshot stream"))?;
        let Some(pb::snapshot_chunk::Payload::Start(start)) = first.payload else {
            return Err(Status::invalid_argument(
                "a snapshot stream starts with its metadata",
            ));
        };
        let _turn = self.take_turn().await;
        let mut ended = self.generation.subscribe();
        let dir = node.sm.snapshot_dir();
        let path = partial_path(dir, &start);
        let vote = cv::vote_from_pb(start.vote)?;
        let meta = cv::snapshot_meta_from_pb(start.meta.clone())?;
        let mut file = open_at(dir, &path, start.offset).await?;
        // Received in one piece, the table is built as the bytes arrive;
        // a resumed file is read whole at install instead.
        let mut table = (start.offset == 0).then(|| Streamed::start(dir, meta.clone()));
        tracing::info!(
            size = start.size,
            offset = start.offset,
            "receiving a snapshot"
        );
        let started = std::time::Instant::now();
        let mut received = start.offset;
        loop {
            let next = tokio::select! {
                m = tokio::time::timeout(CHUNK_IDLE, stream.message()) => m,
                _ = ended.changed() => {
                    let _ = file.sync_data().await;
                    return Err(Status::aborted("a newer snapshot transfer took over"));
                }
            };
            let msg = match next {
                Ok(Ok(m)) => m,
                broken => {
                    // Keep what arrived, durably: the next try resumes here.
                    let _ = file.sync_data().await;
                    tracing::info!(
                        received,
                        size = start.size,
                        "a snapshot transfer broke; kept what arrived"
                    );
                    return Err(match broken {
                        Err(_) => Status::deadline_exceeded("snapshot sender went quiet"),
                        Ok(Err(s)) => s,
                        Ok(Ok(_)) => unreachable!("handled above"),
                    });
                }
            };
            let Some(chunk) = msg else { break };
            let Some(pb::snapshot_chunk::Payload::Data(data)) = chunk.payload else {
                return Err(Status::invalid_argument(
                    "only data chunks may follow the metadata",
                ));
            };
            received += data.len() as u64;
            // Size 0: sent as it was written, its size unknown; the file's
            // own trailer and hash decide whether it is whole.
            if start.size > 0 && received > start.size {
                let _ = tokio::fs::remove_file(&path).await;
                return Err(Status::data_loss(format!(
                    "snapshot longer than its {} bytes",
                    start.size
                )));
            }
            file.write_all(&data).await.map_err(internal)?;
            crate::crash::point("snapshot-chunk-received");
            if let Some(t) = &mut table {
                t.feed(data).await;
            }
        }
        if start.size > 0 && received != start.size {
            let _ = file.sync_data().await;
            return Err(Status::data_loss(format!(
                "snapshot truncated: {received} of {} bytes",
                start.size
            )));
        }
        file.sync_all().await.map_err(internal)?;
        tracing::info!(
            bytes = received - start.offset,
            resumed_at = start.offset,
            ms = started.elapsed().as_millis() as u64,
            "snapshot received"
        );
        let table = match table {
            Some(t) => match t.finish().await {
                Ok(t) => Some((meta.clone(), t)),
                Err(e) => {
                    tracing::info!(error = %e, "no table built as it arrived; reading the file");
                    None
                }
            },
            None => None,
        };
        let snapshot = Snapshot {
            meta,
            snapshot: SnapshotData::Received(Arc::new(Received::new(path.clone(), table))),
        };
        let result = node.raft.install_full_snapshot(vote, snapshot).await;
        // Installed, it was moved into place; refused or damaged, it is
        // waste, and the next try starts from zero.
        let _ = tokio::fs::remove_file(&path).await;
        let resp = result.map_err(|e| Status::internal(e.to_string()))?;
        Ok(pb::SnapshotReply {
            vote: Some(cv::vote_to_pb(&resp.vote)),
        })
    }
}

/// Opens the snapshot's file to write at `offset`: a new file at 0 (other
/// snapshots' leftovers are removed then), or the kept one cut to `offset`.
async fn open_at(dir: &Path, path: &Path, offset: u64) -> Result<tokio::fs::File, Status> {
    if offset == 0 {
        remove_partials(dir).await;
        return tokio::fs::File::create(path).await.map_err(internal);
    }
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .await
        .map_err(|e| Status::failed_precondition(format!("no kept transfer to resume: {e}")))?;
    let held = file.metadata().await.map_err(internal)?.len();
    if held < offset {
        return Err(Status::failed_precondition(format!(
            "resume at {offset} but only {held} bytes are kept"
        )));
    }
    file.set_len(offset).await.map_err(internal)?;
    file.seek(std::io::SeekFrom::Start(offset))
        .await
        .map_err(internal)?;
    Ok(file)
}

async fn remove_partials(dir: &Path) {
    let Ok(mut entries) = tokio::fs::read_dir(dir).await else {
        return;
    };
    while let Ok(Some(e)) = entries.next_entry().await {
        if e.file_name().to_string_lossy().starts_with(PARTIAL) {
            let _ = tokio::fs::remove_file(e.path()).await;
        }
    }
}
