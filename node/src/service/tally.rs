//! The public `Tally` service: submissions and reads.

use std::sync::Arc;

use rekap_proto::pb;
use rekap_proto::pb::tally_client::TallyClient;
use tonic::{Request, Response, Status};

use super::{refused, required, unexpected};
use crate::node::{Failure, Node};
use crate::tally::rules;

pub struct TallyService {
    pub node: Arc<Node>,
}

fn submit_cmd(submissions: Vec<pb::Submission>) -> pb::Command {
    pb::Command {
        kind: Some(pb::command::Kind::Submit(pb::SubmitBatchRequest {
            submissions,
        })),
    }
}

async fn submit_batch(
    node: &Node,
    submissions: Vec<pb::Submission>,
) -> Result<pb::SubmitBatchResponse, Failure> {
    rules::check_batch(&submissions).map_err(refused)?;
    // Items that fail a stateless rule are answered here and never reach
    // the log; the rest go as one command.
    let mut items: Vec<Option<pb::BatchItem>> = Vec::with_capacity(submissions.len());
    let mut to_propose = Vec::new();
    for s in submissions {
        match rules::check_submission(&s) {
            Ok(_) => {
                items.push(None);
                to_propose.push(s);
            }
            Err(rej) => items.push(Some(pb::BatchItem {
                result: Some(pb::batch_item::Result::Rejection(rej)),
            })),
        }
    }
    let mut decided = if to_propose.is_empty() {
        Vec::new().into_iter()
    } else {
        match node.propose(submit_cmd(to_propose)).await? {
            pb::CommandResponse {
                kind: Some(pb::command_response::Kind::Submit(b)),
            } => b.items.into_iter(),
            other => return Err(unexpected(other)),
        }
    };
    let items = items
        .into_iter()
        .map(|i| i.or_else(|| decided.next()).unwrap_or_default())
        .collect();
    Ok(pb::SubmitBatchResponse { items })
}

#[tonic::async_trait]
impl pb::tally_server::Tally for TallyService {
    async fn submit(
        &self,
        req: Request<pb::SubmitRequest>,
    ) -> Result<Response<pb::SubmitResponse>, Status> {
        let node = &self.node;
        node.route(
            req,
            |r| async move {
                let s = required(r.submission, "submission")?;
                let mut resp = submit_batch(node, vec![s]).await?;
                match resp.items.pop().and_then(|i| i.result) {
                    Some(pb::batch_item::Result::Outcome(o)) => {
                        Ok(pb::SubmitResponse { outcome: Some(o) })
                    }
                    Some(pb::batch_item::Result::Rejection(rej)) => Err(refused(rej)),
                    None => Err(Failure::Status(Status::internal("empty batch response"))),
                }
            },
            |ch, r| async move { TallyClient::new(ch).submit(r).await },
        )
        .await
    }

    async fn submit_batch(
        &self,
        req: Request<pb::SubmitBatchRequest>,
    ) -> Result<Response<pb::SubmitBatchResponse>, Status> {
        let node = &self.node;
        node.route(
            req,
            |r| async move { submit_batch(node, r.submissions).await },
            |ch, r| async move { TallyClient::new(ch).submit_batch(r).await },
        )
        .await
    }

    async fn get_tps_result(
        &self,
        req: Request<pb::GetTpsResultRequest>,
    ) -> Result<Response<pb::GetTpsResultResponse>, Status> {
        let node = &self.node;
        node.route(
            req,
            |r| async move {
                node.read_barrier(r.consistency).await?;
                let result = node
                    .sm
                    .view()
                    .tally
                    .tps_result(&r.tps_id, &r.contest_id)
                    .map_err(refused)?;
                Ok(pb::GetTpsResultResponse {
                    result: Some(result),
                })
            },
            |ch, r| async move { TallyClient::new(ch).get_tps_result(r).await },
        )
        .await
    }

    async fn get_totals(
        &self,
        req: Request<pb::GetTotalsRequest>,
    ) -> Result<Response<pb::GetTotalsResponse>, Status> {
        let node = &self.node;
        node.route(
            req,
            |r| async move {
                node.read_barrier(r.consistency).await?;
                let view = node.sm.view();
                let totals = view
                    .tally
                    .totals(&r.region_code, &r.contest_id)
                    .map_err(refused)?;
                Ok(pb::GetTotalsResponse {
                    totals: Some(totals),
                    applied_index: view.last_applied.map_or(0, |l| l.index),
                })
            },
            |ch, r| async move { TallyClient::new(ch).get_totals(r).await },
        )
        .await
    }

    async fn get_progress(
        &self,
        req: Request<pb::GetProgressRequest>,
    ) -> Result<Response<pb::GetProgressResponse>, Status> {
        let node = &self.node;
        node.route(
            req,
            |r| async move {
                node.read_barrier(r.consistency).await?;
                let view = node.sm.view();
                let (progress, children) = view
                    .tally
                    .progress(&r.region_code, &r.contest_id)
                    .map_err(refused)?;
                Ok(pb::GetProgressResponse {
                    progress: Some(progress),
                    children,
                    applied_index: view.last_applied.map_or(0, |l| l.index),
                })
            },
            |ch, r| async move { TallyClient::new(ch).get_progress(r).await },
        )
        .await
    }

    async fn list_missing_tps(
        &self,
        req: Request<pb::ListMissingTpsRequest>,
    ) -> Result<Response<pb::ListMissingTpsResponse>, Status> {
        let node = &self.node;
        node.route(
            req,
            |r| async move {
                node.read_barrier(r.consistency).await?;
                let view = node.sm.view();
                let size = if r.page_size == 0 {
                    100
                } else {
                    r.page_size as usize
                };
                let page = view
                    .tally
                    .missing(&r.region_code, &r.contest_id, size, &r.page_token)
                    .map_err(refused)?;
                Ok(pb::ListMissingTpsResponse {
                    tps: page.tps,
                    next_page_token: page.next_page_token,
                    total_missing: page.total_missing,
                    applied_index: view.last_applied.map_or(0, |l| l.index),
                })
            },
            |ch, r| async move { TallyClient::new(ch).list_missing_tps(r).await },
        )
        .await
    }
}
