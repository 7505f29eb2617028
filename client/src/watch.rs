//! A watch that outlives the node serving it. `Tally.Watch` runs on one
//! node at a time (any node, leader or not); when its stream breaks, the
//! watcher moves to the next endpoint and resumes from the last applied
//! index it saw, so it never shows an older view than one it has shown.

use std::time::{Duration, Instant};

use rekap_proto::pb;
use rekap_proto::pb::tally_client::TallyClient;
use tonic::{Status, Streaming};

use crate::{Client, is_retryable};

/// Live views of one region, across reconnects.
pub struct Watcher {
    client: Client,
    region: String,
    contest: String,
    /// The applied index of the last view returned.
    from_index: u64,
    /// Which endpoint to try next.
    pos: usize,
    stream: Option<(String, Streaming<pb::WatchUpdate>)>,
}

impl Client {
    /// Watches `region`'s totals and progress for `contest`. Watchers
    /// start on different endpoints, so they spread over the cluster.
    pub fn watch(&self, region: &str, contest: &str) -> Watcher {
        Watcher {
            client: self.clone(),
            region: region.to_string(),
            contest: contest.to_string(),
            from_index: 0,
            pos: rand::random_range(0..usize::MAX / 2),
            stream: None,
        }
    }
}

impl Watcher {
    /// The endpoint serving the stream now.
    pub fn serving(&self) -> Option<&str> {
        self.stream.as_ref().map(|(a, _)| a.as_str())
    }

    /// Starts from a view seen earlier (its applied index), as after a
    /// restart of the watching program.
    pub fn resume_from(mut self, applied_index: u64) -> Self {
        self.from_index = applied_index;
        self
    }

    /// The next view: the current one first, then each change. Moves to
    /// another node when the stream breaks; gives up after the client's
    /// deadline without any node serving, or at once on a refusal (an
    /// unknown region, no permission).
    pub async fn next(&mut self) -> Result<pb::WatchUpdate, Status> {
        let mut backoff = self.client.opts.backoff_initial;
        let mut give_up = Instant::now() + self.client.opts.deadline;
        loop {
            if let Some((_, s)) = &mut self.stream {
                match s.message().await {
                    Ok(Some(u)) => {
                        self.from_index = self.from_index.max(u.applied_index);
                        return Ok(u);
                    }
                    // The node is shutting down, or the connection broke.
                    Ok(None) => {}
                    Err(e) if is_retryable(&e) => {}
                    Err(e) => return Err(e),
                }
                tracing::debug!(node = ?self.serving(), "watch stream ended; moving on");
                self.stream = None;
                self.pos += 1;
                // A stream that ran for long started the clock long ago.
                give_up = Instant::now() + self.client.opts.deadline;
                backoff = self.client.opts.backoff_initial;
            }
            match self.open().await {
                Ok(opened) => self.stream = Some(opened),
                // A node with all the watchers it takes sends us elsewhere.
                Err(e)
                    if (is_retryable(&e) || e.code() == tonic::Code::ResourceExhausted)
                        && Instant::now() < give_up =>
                {
                    self.pos += 1;
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn open(&self) -> Result<(String, Streaming<pb::WatchUpdate>), Status> {
        let endpoints = self.client.endpoints();
        let addr = endpoints[self.pos % endpoints.len()].clone();
        let req = pb::WatchRequest {
            region_code: self.region.clone(),
            contest_id: self.contest.clone(),
            from_index: self.from_index,
        };
        let stream = TallyClient::new(self.client.channel(&addr)?)
            .watch(req)
            .await?
            .into_inner();
        Ok((addr, stream))
    }
}
