//! The dashboard's JSON API and its server-sent events: a region's totals
//! and its children's, as an answer (kept rendered, see `cache`) or as a
//! live stream of views from the watch hub. Read from this node's applied
//! state with no leader involved.

use std::borrow::Cow;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use rekap_proto::pb;
use serde_json::{Value, json};

use super::Pick;
use super::cache::{Key, Made, Pages, Rendered, Version};
use super::pages;
use crate::node::{Node, now_ms};
use crate::watch::{Refusal, View};

/// How long a client refused for want of room should wait before asking
/// again (another node, through a balancer).
const RETRY_AFTER_S: u64 = 5;
/// An event stream sends at most one view this often: plenty for a
/// person, and a quarter of the watch tick's work per stream.
pub const SSE_EVERY: Duration = Duration::from_secs(1);

/// The event streams open on this node, and how many it takes.
pub struct Streams {
    open: Arc<AtomicUsize>,
    max: usize,
}

/// One open stream, counted until dropped.
struct Open(Arc<AtomicUsize>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Streams {
    pub fn new(max: usize) -> Self {
        Streams {
            open: Arc::default(),
            max,
        }
    }

    fn admit(&self) -> Option<Open> {
        if self.open.fetch_add(1, Ordering::Relaxed) >= self.max {
            self.open.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        Some(Open(self.open.clone()))
    }
}

/// 503 with `Retry-After`: a balancer (deploy/nginx) or the browser tries
/// again, on another node.
fn full(what: &str) -> Response {
    let mut r = api_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "watchers",
        &format!("this node serves as many {what} as it takes; try another node"),
    );
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_S));
    r
}

fn totals_json(t: &pb::RegionTotals) -> Value {
    let r = t.region.clone().unwrap_or_default();
    json!({
        "code": r.code, "name": r.name, "level": pages::level_name(r.level),
        "candidates": t.candidates.iter().map(|c| json!({
            "candidate_id": c.candidate_id, "number": c.number, "name": c.name, "votes": c.votes,
        })).collect::<Vec<_>>(),
        "sah": t.sah, "tidak_sah": t.tidak_sah, "total": t.total,
        "tps_reported": t.tps_reported, "tps_total": t.tps_total, "tps_janggal": t.tps_janggal,
    })
}

/// How a view's JSON begins on a node in touch with its leader.
const IN_TOUCH: &str = r#"{"out_of_touch_since_ms":null,"#;

/// The view as the API and the event streams send it.
/// `out_of_touch_since_ms`: when the serving node last heard from a leader
/// (Unix ms), while that is longer ago than a lease (its numbers may lag
/// by that much); null while it is in touch. A time, not a duration, so an
/// answer kept or cached stays true. The view's JSON, as a node in touch
/// sends it, is made once for every stream and answer; only a node out of
/// touch writes its own.
pub fn view_json<'v>(v: &'v View, node: &Node) -> Cow<'v, str> {
    let in_touch = v.json.get_or_init(|| {
        let figures = json!({
            "applied_index": v.applied_index,
            "changed_index": v.changed_index,
            "node_id": node.id,
            "totals": totals_json(&v.totals),
            "children": v.children.iter().map(totals_json).collect::<Vec<_>>(),
        })
        .to_string();
        // `figures` is an object: "{...}".
        format!("{IN_TOUCH}{}", &figures[1..])
    });
    match out_of_touch_since_ms(node) {
        None => Cow::Borrowed(in_touch),
        Some(ms) => {
            let rest = &in_touch[IN_TOUCH.len()..];
            Cow::Owned(format!(r#"{{"out_of_touch_since_ms":{ms},{rest}"#))
        }
    }
}

/// When this node last heard from a leader, if longer ago than a lease.
pub fn out_of_touch_since_ms(node: &Node) -> Option<i64> {
    node.out_of_touch().map(|d| now_ms() - d.as_millis() as i64)
}

fn api_error(status: StatusCode, rule: &str, message: &str) -> Response {
    (status, Json(json!({"rule": rule, "message": message}))).into_response()
}

fn installing() -> Response {
    api_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "installing_snapshot",
        "this node is installing a snapshot",
    )
}

/// The version now of `region`'s figures for `contest`, if the state can
/// be read.
pub fn current(node: &Node, region: &str, contest: &str) -> Option<Version> {
    let st = node.sm.try_view().ok()?;
    Some(Version::of(
        &st,
        region,
        contest,
        node.out_of_touch().is_some(),
    ))
}

/// A region's totals and its children's, as JSON.
pub async fn region(
    State(node): State<Arc<Node>>,
    State(pages): State<Arc<Pages>>,
    Path(code): Path<String>,
    Query(q): Query<Pick>,
    req: HeaderMap,
) -> Response {
    kept(&pages, &node, "api", &code, q.pemilihan, &req, render).await
}

/// The answer of `route` about region `code` for the contest `asked`,
/// kept (`Pages::serve`): `render` makes it anew.
pub async fn kept(
    pages: &Pages,
    node: &Node,
    route: &'static str,
    code: &str,
    asked: Option<String>,
    req: &HeaderMap,
    render: impl FnOnce(&Node, &str, Option<String>) -> Made,
) -> Response {
    let key = Key {
        route,
        region: code.to_string(),
        contest: asked.clone().unwrap_or_default(),
    };
    pages
        .serve(
            key,
            req,
            |contest| current(node, code, contest),
            || render(node, code, asked),
        )
        .await
}

fn render(node: &Node, code: &str, asked: Option<String>) -> Made {
    let st = node.sm.try_view().map_err(|_| Box::new(installing()))?;
    let contest = asked
        .filter(|a| !a.is_empty())
        .or_else(|| {
            st.tally
                .contests_in(code)
                .first()
                .map(|c| c.contest_id.clone())
        })
        .unwrap_or_default();
    let v = View::compute(&st, code, &contest)
        .map_err(|rej| Box::new(api_error(StatusCode::NOT_FOUND, &rej.rule, &rej.message)))?;
    let out_of_touch = node.out_of_touch().is_some();
    let version = Version::of(&st, code, &contest, out_of_touch);
    drop(st);
    let body = view_json(&v, node).into_owned();
    Ok(Rendered::new(version, contest, "application/json", body))
}

/// Server-sent events: the region's view now, then the newest view after
/// each change, at most one per `SSE_EVERY`, from the watch hub. A browser
/// that reads slowly skips to the newest view. Over the node's cap (its
/// own for event streams, or the hub's), 503 with `Retry-After`.
pub async fn events(
    State(node): State<Arc<Node>>,
    State(streams): State<Arc<Streams>>,
    Path(code): Path<String>,
    Query(q): Query<Pick>,
) -> Response {
    let Some(open) = streams.admit() else {
        return full("event streams");
    };
    let contest = q.pemilihan.unwrap_or_default();
    let sub = match node.watches.subscribe(&code, &contest) {
        Ok(sub) => sub,
        Err(Refusal::Rejected(rej)) => {
            return api_error(StatusCode::NOT_FOUND, &rej.rule, &rej.message);
        }
        Err(Refusal::Installing(_)) => return installing(),
        Err(Refusal::Busy(what)) => return full(&format!("watched {what}")),
    };
    let stream = futures::stream::unfold((sub, None, open), move |(mut sub, last, open)| {
        let node = node.clone();
        async move {
            if let Some(last) = last {
                if !sub.changed().await {
                    return None;
                }
                tokio::time::sleep_until(last + SSE_EVERY).await;
            }
            let view = sub.rx.borrow_and_update().clone();
            let event = Event::default()
                .event("view")
                .id(view.applied_index.to_string())
                .data(view_json(&view, &node));
            Some((
                Ok::<_, Infallible>(event),
                (sub, Some(tokio::time::Instant::now()), open),
            ))
        }
    });
    sse(stream)
}

fn sse(stream: impl Stream<Item = Result<Event, Infallible>> + Send + 'static) -> Response {
    let mut r = Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response();
    // nginx passes an event stream on as it comes only when told so.
    r.headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    r
}
