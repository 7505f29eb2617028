//! The public `Tally` service: submissions and reads.

use std::future::Future;
use std::sync::Arc;

use rekap_proto::pb;
use rekap_proto::pb::tally_client::TallyClient;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

use super::{refused, required, unexpected};
use crate::coalesce::Submits;
use crate::node::Node;
use crate::reply::{Failure, rejection_status};
use crate::security::Caller;
use crate::store::SmState;
use crate::tally::{Action, JanggalPage, TallyState, revise, rules};

pub struct TallyService {
    pub node: Arc<Node>,
    /// The leader's submission queue (see `coalesce`).
    submits: Submits,
}

impl TallyService {
    /// The service, and its submission queue's task (which ends when the
    /// node is dropped).
    pub fn new(node: Arc<Node>) -> TallyService {
        let submits = Submits::start(Arc::downgrade(&node));
        TallyService { node, submits }
    }
}

async fn submit_batch(
    node: &Node,
    queue: &Submits,
    who: &Caller,
    submissions: Vec<pb::Submission>,
) -> Result<pb::SubmitBatchResponse, Failure> {
    rules::check_batch(&submissions).map_err(refused)?;
    // Items are authorized on the leader, against every grant it acknowledged.
    node.lead_or_forward()?;
    // Items that fail a stateless rule are answered here and never reach
    // the log; the rest go as one command.
    let mut items: Vec<Option<pb::BatchItem>> = Vec::with_capacity(submissions.len());
    let mut to_propose = Vec::new();
    let principal = who.principal();
    {
        let view = node.sm.try_view()?;
        let allowed = |s: &pb::Submission| {
            rules::check_submission(s)?;
            view.tally.check_submission_auth(Some(&principal), s)
        };
        for s in submissions {
            match allowed(&s) {
                Ok(_) => {
                    items.push(None);
                    to_propose.push(s);
                }
                Err(rej) => items.push(Some(pb::BatchItem {
                    result: Some(pb::batch_item::Result::Rejection(rej)),
                })),
            }
        }
    }
    let mut decided = if to_propose.is_empty() {
        Vec::new().into_iter()
    } else {
        queue.submit(who, to_propose).await?.into_iter()
    };
    let items: Vec<pb::BatchItem> = items
        .into_iter()
        .map(|i| i.or_else(|| decided.next()).unwrap_or_default())
        .collect();
    node.metrics.count_items(&items);
    Ok(pb::SubmitBatchResponse { items })
}

type ExportStream =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<pb::ListJanggalResponse, Status>> + Send>>;

type PageFn = fn(&TallyState, &str, &str, usize, &str) -> Result<JanggalPage, pb::Rejection>;

/// A page of results (flagged, or all) in a region.
fn paged(
    st: &SmState,
    r: pb::ListJanggalRequest,
    page: PageFn,
) -> Result<pb::ListJanggalResponse, pb::Rejection> {
    let p = page(
        &st.tally,
        &r.region_code,
        &r.contest_id,
        page_size(r.page_size),
        &r.page_token,
    )?;
    Ok(pb::ListJanggalResponse {
        items: p.items,
        next_page_token: p.next_page_token,
        total_janggal: p.total_janggal,
        applied_index: applied(st),
    })
}

fn page_size(requested: u32) -> usize {
    if requested == 0 {
        100
    } else {
        requested as usize
    }
}

fn applied(st: &SmState) -> u64 {
    st.last_applied.map_or(0, |l| l.index)
}

/// A read: here after a ReadIndex barrier (or at once when stale), or
/// forwarded to the leader when this node cannot confirm it is current.
/// The caller's read permission is checked after the barrier, against the
/// state the answer comes from (a revocation applied before the read wins).
async fn read<Req, Resp, R, RF>(
    node: &Node,
    req: Request<Req>,
    consistency_and_target: impl Fn(&Req) -> (i32, &str),
    read: impl FnOnce(&SmState, Req) -> Result<Resp, pb::Rejection>,
    remote: R,
) -> Result<Response<Resp>, Status>
where
    Req: Clone,
    R: Fn(Channel, Request<Req>) -> RF,
    RF: Future<Output = Result<Response<Resp>, Status>>,
{
    node.route(
        req,
        |r, who| async move {
            let (consistency, target) = consistency_and_target(&r);
            node.read_barrier(consistency).await?;
            let view = node.sm.try_view()?;
            view.tally
                .authorize(Some(&who.principal()), &Action::Read { target })
                .map_err(refused)?;
            read(&view, r).map_err(refused)
        },
        remote,
    )
    .await
}

/// Proposes a correction or flag clearing and unwraps its answer.
async fn propose_correction(
    node: &Node,
    who: &Caller,
    kind: pb::command::Kind,
) -> Result<pb::CorrectResponse, Failure> {
    let cmd = pb::Command {
        kind: Some(kind),
        principal: None,
        proposed_at_ms: 0,
    };
    match node.propose(cmd, who).await? {
        pb::CommandResponse {
            kind: Some(pb::command_response::Kind::Correct(r)),
        } => Ok(r),
        other => Err(unexpected(other)),
    }
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
            |r, who| async move {
                let s = required(r.submission, "submission")?;
                let mut resp = submit_batch(node, &self.submits, &who, vec![s]).await?;
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
            |r, who| async move { submit_batch(node, &self.submits, &who, r.submissions).await },
            |ch, r| async move { TallyClient::new(ch).submit_batch(r).await },
        )
        .await
    }

    async fn get_tps_result(
        &self,
        req: Request<pb::GetTpsResultRequest>,
    ) -> Result<Response<pb::GetTpsResultResponse>, Status> {
        read(
            &self.node,
            req,
            |r| (r.consistency, &r.tps_id),
            |st, r| {
                let result = st.tally.tps_result(&r.tps_id, &r.contest_id)?;
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
        read(
            &self.node,
            req,
            |r| (r.consistency, &r.region_code),
            |st, r| {
                Ok(pb::GetTotalsResponse {
                    totals: Some(st.tally.totals(&r.region_code, &r.contest_id)?),
                    applied_index: applied(st),
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
        read(
            &self.node,
            req,
            |r| (r.consistency, &r.region_code),
            |st, r| {
                let (progress, children) = st.tally.progress(&r.region_code, &r.contest_id)?;
                Ok(pb::GetProgressResponse {
                    progress: Some(progress),
                    children,
                    applied_index: applied(st),
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
        read(
            &self.node,
            req,
            |r| (r.consistency, &r.region_code),
            |st, r| {
                let page = st.tally.missing(
                    &r.region_code,
                    &r.contest_id,
                    page_size(r.page_size),
                    &r.page_token,
                )?;
                Ok(pb::ListMissingTpsResponse {
                    tps: page.tps,
                    next_page_token: page.next_page_token,
                    total_missing: page.total_missing,
                    applied_index: applied(st),
                })
            },
            |ch, r| async move { TallyClient::new(ch).list_missing_tps(r).await },
        )
        .await
    }

    async fn correct(
        &self,
        req: Request<pb::CorrectRequest>,
    ) -> Result<Response<pb::CorrectResponse>, Status> {
        let node = &self.node;
        node.route(
            req,
            |r, who| async move {
                rules::check_correction(&r.request_id, r.reason).map_err(refused)?;
                let mut numbers = required(r.submission.clone(), "submission")?;
                numbers.submission_id = r.request_id.clone();
                numbers.tps_id = r.tps_id.clone();
                numbers.contest_id = r.contest_id.clone();
                rules::check_submission(&numbers).map_err(refused)?;
                propose_correction(node, &who, pb::command::Kind::Correct(r)).await
            },
            |ch, r| async move { TallyClient::new(ch).correct(r).await },
        )
        .await
    }

    async fn clear_flags(
        &self,
        req: Request<pb::ClearFlagsRequest>,
    ) -> Result<Response<pb::CorrectResponse>, Status> {
        let node = &self.node;
        node.route(
            req,
            |r, who| async move {
                rules::check_correction(&r.request_id, r.reason).map_err(refused)?;
                propose_correction(node, &who, pb::command::Kind::ClearFlags(r)).await
            },
            |ch, r| async move { TallyClient::new(ch).clear_flags(r).await },
        )
        .await
    }

    async fn mark_reviewed(
        &self,
        req: Request<pb::ReviewRequest>,
    ) -> Result<Response<pb::CorrectResponse>, Status> {
        let node = &self.node;
        node.route(
            req,
            |r, who| async move {
                rules::check_id("request_id", &r.request_id).map_err(refused)?;
                propose_correction(node, &who, pb::command::Kind::Review(r)).await
            },
            |ch, r| async move { TallyClient::new(ch).mark_reviewed(r).await },
        )
        .await
    }

    async fn file_objection(
        &self,
        req: Request<pb::ObjectionRequest>,
    ) -> Result<Response<pb::CorrectResponse>, Status> {
        let node = &self.node;
        node.route(
            req,
            |r, who| async move {
                revise::check_objection(&r).map_err(refused)?;
                propose_correction(node, &who, pb::command::Kind::Objection(r)).await
            },
            |ch, r| async move { TallyClient::new(ch).file_objection(r).await },
        )
        .await
    }

    async fn get_tps_history(
        &self,
        req: Request<pb::GetTpsHistoryRequest>,
    ) -> Result<Response<pb::GetTpsHistoryResponse>, Status> {
        read(
            &self.node,
            req,
            |r| (r.consistency, &r.tps_id),
            |st, r| {
                let revisions = st.tally.tps_history(&r.tps_id, &r.contest_id)?;
                let time_zone = st.tally.zone_of(&r.tps_id).name().to_string();
                Ok(pb::GetTpsHistoryResponse {
                    revisions,
                    time_zone,
                })
            },
            |ch, r| async move { TallyClient::new(ch).get_tps_history(r).await },
        )
        .await
    }

    async fn get_operator_slice(
        &self,
        req: Request<pb::GetOperatorSliceRequest>,
    ) -> Result<Response<pb::GetOperatorSliceResponse>, Status> {
        let node = &self.node;
        node.route(
            req,
            |r, who| async move {
                node.read_barrier(r.consistency).await?;
                let view = node.sm.try_view()?;
                let mut slice = view
                    .tally
                    .operator_slice(&who.principal())
                    .map_err(refused)?;
                slice.applied_index = applied(&view);
                Ok(slice)
            },
            |ch, r| async move { TallyClient::new(ch).get_operator_slice(r).await },
        )
        .await
    }

    async fn list_children(
        &self,
        req: Request<pb::ListChildrenRequest>,
    ) -> Result<Response<pb::ListChildrenResponse>, Status> {
        read(
            &self.node,
            req,
            |r| (r.consistency, &r.region_code),
            |st, r| {
                let (totals, children) = st.tally.children_totals(&r.region_code, &r.contest_id)?;
                Ok(pb::ListChildrenResponse {
                    totals: Some(totals),
                    children,
                    applied_index: applied(st),
                })
            },
            |ch, r| async move { TallyClient::new(ch).list_children(r).await },
        )
        .await
    }

    async fn list_janggal(
        &self,
        req: Request<pb::ListJanggalRequest>,
    ) -> Result<Response<pb::ListJanggalResponse>, Status> {
        read(
            &self.node,
            req,
            |r| (r.consistency, &r.region_code),
            |st, r| paged(st, r, TallyState::janggal_queue),
            |ch, r| async move { TallyClient::new(ch).list_janggal(r).await },
        )
        .await
    }

    type ExportResultsStream = ExportStream;

    /// Streams from one snapshot of the state on a blocking thread; a
    /// client that stops reading stops the scan.
    async fn export_results(
        &self,
        req: Request<pb::ExportResultsRequest>,
    ) -> Result<Response<ExportStream>, Status> {
        let node = &self.node;
        node.route(
            req,
            |r, who| async move {
                node.read_barrier(r.consistency).await?;
                {
                    let view = node.sm.try_view()?;
                    let target = Action::Read {
                        target: &r.region_code,
                    };
                    view.tally
                        .authorize(Some(&who.principal()), &target)
                        .map_err(refused)?;
                    // An unknown region or contest is a status, not a
                    // broken stream.
                    view.tally
                        .totals(&r.region_code, &r.contest_id)
                        .map_err(refused)?;
                }
                let (tx, rx) = tokio::sync::mpsc::channel(4);
                let sm = node.sm.clone();
                tokio::task::spawn_blocking(move || {
                    let sent = sm.export(&r.region_code, &r.contest_id, |msg| {
                        tx.blocking_send(Ok(msg)).is_ok()
                    });
                    let err = match sent {
                        Ok(Ok(())) => return,
                        Ok(Err(rej)) => rejection_status(&rej),
                        Err(e) => Status::internal(format!("export failed: {e}")),
                    };
                    let _ = tx.blocking_send(Err(err));
                });
                Ok(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx)) as ExportStream)
            },
            |ch, r| async move {
                let resp = TallyClient::new(ch).export_results(r).await?;
                Ok(resp.map(|s| Box::pin(s) as ExportStream))
            },
        )
        .await
    }

    type WatchStream = super::watch::WatchStream;

    async fn watch(
        &self,
        req: Request<pb::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        super::watch::watch(&self.node, req).await
    }

    async fn list_results(
        &self,
        req: Request<pb::ListJanggalRequest>,
    ) -> Result<Response<pb::ListJanggalResponse>, Status> {
        read(
            &self.node,
            req,
            |r| (r.consistency, &r.region_code),
            |st, r| paged(st, r, TallyState::results_page),
            |ch, r| async move { TallyClient::new(ch).list_results(r).await },
        )
        .await
    }
}
