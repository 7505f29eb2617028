//! Sending a snapshot file to a follower over a thin link: the follower
//! keeps what arrived of a broken transfer (`service::raft`), so each try
//! first asks how much it holds and sends only the rest; and the sending
//! is paced to `--snapshot-rate`, so a transfer leaves room for the log
//! stream on the same link. A file still being written is sent as it
//! grows, its size unknown (0) until the end.

use std::time::{Duration, Instant};

use rekap_proto::pb;
use rekap_proto::pb::raft_client::RaftClient;
use tonic::transport::Channel;

use crate::store::Source;

/// What one try sends: the file, its start message, and how.
pub struct Transfer {
    /// Still being written when `start.size` is 0 (`store::on_demand`).
    pub file: Source,
    pub start: pb::SnapshotStart,
    /// The longest wait for one step (a chunk accepted, the resume point).
    pub step: Duration,
    pub chunk_size: usize,
    /// Bytes per second; unpaced when `None`.
    pub rate: Option<u64>,
}

/// Why a try failed: `Timeout` for a step that took too long, otherwise
/// the transport's or the follower's error.
pub enum Failed {
    Timeout,
    Status(tonic::Status),
    Io(std::io::Error),
}

/// Sends the part of the snapshot the follower does not hold yet, and
/// returns its answer.
pub async fn send(
    mut client: RaftClient<Channel>,
    mut t: Transfer,
) -> Result<pb::SnapshotReply, Failed> {
    // A file still being written was never sent before: nothing to resume.
    let offset = if t.start.size == 0 {
        0
    } else {
        resume_point(&mut client, &t.start, t.step).await?
    };
    if offset > 0 {
        tracing::info!(
            offset,
            size = t.start.size,
            "resuming a snapshot transfer where the follower's copy ends"
        );
        t.file.seek(offset).await.map_err(Failed::Io)?;
    }
    t.start.offset = offset;
    // A paced transfer goes in small chunks, so the link sees a steady
    // stream rather than a burst per megabyte.
    let chunk_size = match t.rate {
        Some(rate) => t.chunk_size.min((rate / 10).max(4096) as usize),
        None => t.chunk_size,
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<pb::SnapshotChunk>(4);
    let call = client.install_snapshot(tokio_stream::wrappers::ReceiverStream::new(rx));
    let step = t.step;
    let start = pb::SnapshotChunk {
        payload: Some(pb::snapshot_chunk::Payload::Start(t.start)),
    };
    let send = async move {
        let tx = &tx;
        let put = move |chunk| async move {
            match tokio::time::timeout(step, tx.send(chunk)).await {
                Err(_) => Err(Failed::Timeout),
                Ok(Err(_)) => Err(Failed::Status(tonic::Status::unavailable(
                    "the snapshot stream closed",
                ))),
                Ok(Ok(())) => Ok(()),
            }
        };
        put(start).await?;
        let began = Instant::now();
        let mut sent = 0u64;
        let mut buf = vec![0u8; chunk_size];
        loop {
            let n = t.file.read(&mut buf).await.map_err(Failed::Io)?;
            if n == 0 {
                return Ok(());
            }
            put(pb::SnapshotChunk {
                payload: Some(pb::snapshot_chunk::Payload::Data(buf[..n].to_vec())),
            })
            .await?;
            sent += n as u64;
            if let Some(rate) = t.rate.filter(|r| *r > 0) {
                let due = began + Duration::from_secs_f64(sent as f64 / rate as f64);
                tokio::time::sleep_until(due.into()).await;
            }
        }
    };
    let (sent, resp) = futures::join!(send, call);
    sent?;
    resp.map(|r| r.into_inner()).map_err(Failed::Status)
}

/// How much of this snapshot the follower holds already; 0 from a node
/// that does not keep broken transfers.
async fn resume_point(
    client: &mut RaftClient<Channel>,
    start: &pb::SnapshotStart,
    step: Duration,
) -> Result<u64, Failed> {
    let ask = pb::SnapshotStart {
        vote: start.vote,
        meta: start.meta.clone(),
        size: start.size,
        offset: 0,
    };
    let mut req = tonic::Request::new(ask);
    req.set_timeout(step);
    match tokio::time::timeout(step, client.snapshot_resume_point(req)).await {
        Err(_) => Err(Failed::Timeout),
        Ok(Ok(r)) => Ok(r.into_inner().offset.min(start.size)),
        Ok(Err(s)) if s.code() == tonic::Code::Unimplemented => Ok(0),
        Ok(Err(s)) => Err(Failed::Status(s)),
    }
}
