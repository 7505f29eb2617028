//! The public dashboard's routes: pages from nasional down to one TPS, a
//! JSON API of the same views, and server-sent events that keep a region's
//! page live. Everything is read from this node's applied state with no
//! leader involved, so the pages keep answering through an election; each
//! says which log index it shows. Read-only: nothing here can change the
//! count.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use futures::Stream;
use rekap_proto::pb;
use serde::Deserialize;
use serde_json::{Value, json};

use super::lists::{self, ListPage, TpsPage};
use super::pages::{self, RegionPage, Source};
use crate::node::{Node, now_ms};
use crate::store::SmState;
use crate::watch::{Refusal, View};
use rekap_proto::zones::Zone;

const CSS: &str = include_str!("assets/rekap.css");
const JS: &str = include_str!("assets/rekap.js");
/// TPS per page of a list.
const PAGE: usize = 100;

#[derive(Deserialize)]
pub struct Pick {
    pemilihan: Option<String>,
    halaman: Option<String>,
}

type Page = Result<Html<String>, Refused>;

/// A page that cannot be shown, and why, in the page's words.
pub struct Refused {
    status: StatusCode,
    message: String,
    src: Source,
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let html = pages::not_found(&self.message, &self.src).into_string();
        (self.status, Html(html)).into_response()
    }
}

/// Where a page about the last region of `lineage` comes from, with the
/// time in that region's zone.
fn source(node: &Node, st: &SmState, lineage: &[pb::Region]) -> Source {
    let zone = Zone::of_lineage(lineage);
    Source {
        node_id: node.id,
        applied_index: st.applied_index(),
        at: zone.show(now_ms()),
        zone,
        out_of_touch: node.out_of_touch(),
    }
}

fn refused(node: &Node, status: StatusCode, message: &str) -> Refused {
    Refused {
        status,
        message: message.to_string(),
        src: Source {
            node_id: node.id,
            applied_index: node.sm.applied_index(),
            at: Zone::Wib.show(now_ms()),
            zone: Zone::Wib,
            out_of_touch: node.out_of_touch(),
        },
    }
}

/// The state to read, or a 503 page while a snapshot is being installed.
fn state(node: &Node) -> Result<crate::store::SmView<'_>, Refused> {
    node.sm.try_view().map_err(|e| {
        refused(
            node,
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("Node ini sedang memasang snapshot; coba lagi sebentar. ({e})"),
        )
    })
}

/// The contest to show in `code`: the one asked for, else the first that
/// counts any TPS there.
fn pick_contest(
    node: &Node,
    st: &SmState,
    code: &str,
    asked: Option<String>,
) -> Result<(Vec<pb::Contest>, String), Refused> {
    let contests = st.tally.contests_in(code);
    let asked = asked.filter(|a| !a.is_empty());
    match asked.or_else(|| contests.first().map(|c| c.contest_id.clone())) {
        Some(c) => Ok((contests, c)),
        None => Err(refused(
            node,
            StatusCode::NOT_FOUND,
            "Belum ada pemilihan yang dihitung di wilayah ini.",
        )),
    }
}

fn not_found(node: &Node, rej: pb::Rejection) -> Refused {
    refused(node, StatusCode::NOT_FOUND, &rej.message)
}

pub async fn home() -> Redirect {
    Redirect::to("/wilayah/ID")
}

pub async fn region(
    State(node): State<Arc<Node>>,
    Path(code): Path<String>,
    Query(q): Query<Pick>,
) -> Page {
    let st = state(&node)?;
    let (contests, contest) = pick_contest(&node, &st, &code, q.pemilihan)?;
    let lineage = st.tally.lineage(&code).map_err(|r| not_found(&node, r))?;
    let (totals, children) = st
        .tally
        .children_totals(&code, &contest)
        .map_err(|r| not_found(&node, r))?;
    let is_desa = lineage
        .last()
        .is_some_and(|r| r.level == pb::RegionLevel::Desa as i32);
    let tps = if is_desa {
        st.tally
            .desa_tps(&code, &contest)
            .map_err(|r| not_found(&node, r))?
    } else {
        Vec::new()
    };
    let src = source(&node, &st, &lineage);
    drop(st);
    let page = RegionPage {
        lineage,
        contests,
        contest,
        totals,
        children,
        tps,
    };
    Ok(Html(pages::region(&page, &src).into_string()))
}

pub async fn tps(
    State(node): State<Arc<Node>>,
    Path(id): Path<String>,
    Query(q): Query<Pick>,
) -> Page {
    let st = state(&node)?;
    let tps = st.tally.tps_info(&id).map_err(|r| not_found(&node, r))?;
    let (contests, contest) = pick_contest(&node, &st, &tps.desa_code, q.pemilihan)?;
    let lineage = st
        .tally
        .lineage(&tps.desa_code)
        .map_err(|r| not_found(&node, r))?;
    // The contests of a TPS's desa are those covering it: no second walk.
    let found = contests.into_iter().find(|c| c.contest_id == contest);
    let Some(contest) = found else {
        return Err(refused(
            &node,
            StatusCode::NOT_FOUND,
            "Pemilihan ini tidak ada di TPS ini.",
        ));
    };
    let revisions = st
        .tally
        .tps_history(&id, &contest.contest_id)
        .unwrap_or_default();
    let src = source(&node, &st, &lineage);
    drop(st);
    let page = TpsPage {
        lineage,
        tps,
        contest,
        revisions,
    };
    Ok(Html(lists::tps(&page, &src).into_string()))
}

fn list_page(
    node: &Node,
    st: &SmState,
    code: &str,
    q: Pick,
) -> Result<(ListPage, Source), Refused> {
    let (_, contest) = pick_contest(node, st, code, q.pemilihan)?;
    let mut lineage = st.tally.lineage(code).map_err(|r| not_found(node, r))?;
    let src = source(node, st, &lineage);
    let region = lineage.pop().unwrap_or_default();
    let page = ListPage {
        region,
        contest,
        total: 0,
        missing: Vec::new(),
        janggal: Vec::new(),
        next: None,
    };
    Ok((page, src))
}

fn next_link(code: &str, kind: &str, contest: &str, token: String) -> Option<String> {
    (!token.is_empty()).then(|| {
        let e = pages::enc;
        format!(
            "/wilayah/{}/{kind}?pemilihan={}&halaman={}",
            e(code),
            e(contest),
            e(&token)
        )
    })
}

pub async fn missing(
    State(node): State<Arc<Node>>,
    Path(code): Path<String>,
    Query(q): Query<Pick>,
) -> Page {
    let st = state(&node)?;
    let token = q.halaman.clone().unwrap_or_default();
    let (mut page, src) = list_page(&node, &st, &code, q)?;
    let m = st
        .tally
        .missing(&code, &page.contest, PAGE, &token)
        .map_err(|r| not_found(&node, r))?;
    drop(st);
    page.total = m.total_missing;
    page.missing = m.tps;
    page.next = next_link(&code, "belum-masuk", &page.contest, m.next_page_token);
    Ok(Html(lists::missing(&page, &src).into_string()))
}

pub async fn janggal(
    State(node): State<Arc<Node>>,
    Path(code): Path<String>,
    Query(q): Query<Pick>,
) -> Page {
    let st = state(&node)?;
    let token = q.halaman.clone().unwrap_or_default();
    let (mut page, src) = list_page(&node, &st, &code, q)?;
    let j = st
        .tally
        .janggal_queue(&code, &page.contest, PAGE, &token)
        .map_err(|r| not_found(&node, r))?;
    drop(st);
    page.total = j.total_janggal;
    page.janggal = j.items;
    page.next = next_link(&code, "janggal", &page.contest, j.next_page_token);
    Ok(Html(lists::janggal(&page, &src).into_string()))
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

/// `out_of_touch_ms`: how long the serving node has not heard from a
/// leader, when over a lease (its numbers may lag by that much); null
/// while it is in touch.
pub fn view_json(v: &View, node: &Node) -> Value {
    let node_id = node.id;
    json!({
        "out_of_touch_ms": node.out_of_touch().map(|d| d.as_millis() as u64),
        "applied_index": v.applied_index,
        "changed_index": v.changed_index,
        "node_id": node_id,
        "totals": totals_json(&v.totals),
        "children": v.children.iter().map(totals_json).collect::<Vec<_>>(),
    })
}

fn api_error(status: StatusCode, rule: &str, message: &str) -> Response {
    (status, Json(json!({"rule": rule, "message": message}))).into_response()
}

/// A region's totals and its children's, as JSON.
pub async fn api_region(
    State(node): State<Arc<Node>>,
    Path(code): Path<String>,
    Query(q): Query<Pick>,
) -> Response {
    let Ok(st) = node.sm.try_view() else {
        return api_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "installing_snapshot",
            "this node is installing a snapshot",
        );
    };
    let contest = q
        .pemilihan
        .or_else(|| {
            st.tally
                .contests_in(&code)
                .first()
                .map(|c| c.contest_id.clone())
        })
        .unwrap_or_default();
    match View::compute(&st, &code, &contest) {
        Ok(v) => Json(view_json(&v, &node)).into_response(),
        Err(rej) => api_error(StatusCode::NOT_FOUND, &rej.rule, &rej.message),
    }
}

/// Server-sent events: the region's view now, then each change (at most
/// one per tick), from the watch hub. A browser that reads slowly skips
/// to the newest view.
pub async fn events(
    State(node): State<Arc<Node>>,
    Path(code): Path<String>,
    Query(q): Query<Pick>,
) -> Response {
    let contest = q.pemilihan.unwrap_or_default();
    let sub = match node.watches.subscribe(&code, &contest) {
        Ok(sub) => sub,
        Err(Refusal::Rejected(rej)) => {
            return api_error(StatusCode::NOT_FOUND, &rej.rule, &rej.message);
        }
        Err(Refusal::Installing(_)) => {
            return api_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "installing_snapshot",
                "this node is installing a snapshot",
            );
        }
        Err(Refusal::Busy(what)) => {
            return api_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "watchers",
                &format!("this node serves as many watched {what} as it takes"),
            );
        }
    };
    let stream = futures::stream::unfold((sub, true), move |(mut sub, first)| {
        let node = node.clone();
        async move {
            if !first && !sub.changed().await {
                return None;
            }
            let view = sub.rx.borrow_and_update().clone();
            let event = Event::default()
                .event("view")
                .id(view.applied_index.to_string())
                .data(view_json(&view, &node).to_string());
            Some((Ok::<_, Infallible>(event), (sub, false)))
        }
    });
    sse(stream)
}

fn sse(stream: impl Stream<Item = Result<Event, Infallible>> + Send + 'static) -> Response {
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

pub async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        CSS,
    )
        .into_response()
}

pub async fn js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        JS,
    )
        .into_response()
}
