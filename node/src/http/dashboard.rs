//! The public dashboard's pages, from nasional down to one TPS (the JSON
//! API and the live events are in `api`). Region pages are kept rendered
//! (`cache`); every page carries validators and answers `If-None-Match`
//! before rendering. Everything is read from this node's applied state with no
//! leader involved, so the pages keep answering through an election; each
//! says which log index it shows. Read-only: nothing here can change the
//! count.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use rekap_proto::pb;

use super::Pick;
use super::api::{kept, out_of_touch_since_ms};
use super::cache::{Pages, Rendered, Version};
use super::lists::{self, ListPage, TpsPage};
use super::pages::{self, RegionPage, Source};
use crate::node::{Node, now_ms};
use crate::store::SmState;
use rekap_proto::zones::Zone;

const CSS: &str = include_str!("assets/rekap.css");
const JS: &str = include_str!("assets/rekap.js");
/// TPS per page of a list.
const PAGE: usize = 100;

const HTML: &str = "text/html; charset=utf-8";

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
        out_of_touch: out_of_touch_since_ms(node).map(|ms| zone.show(ms)),
        zone,
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
            out_of_touch: out_of_touch_since_ms(node).map(|ms| Zone::Wib.show(ms)),
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
    State(pages): State<Arc<Pages>>,
    Path(code): Path<String>,
    Query(q): Query<Pick>,
    req: HeaderMap,
) -> Response {
    let render = |node: &Node, code: &str, asked| {
        render_region(node, code, asked).map_err(|r| Box::new(r.into_response()))
    };
    kept(&pages, &node, "region", &code, q.pemilihan, &req, render).await
}

fn render_region(node: &Node, code: &str, asked: Option<String>) -> Result<Rendered, Refused> {
    let st = state(node)?;
    let (contests, contest) = pick_contest(node, &st, code, asked)?;
    let lineage = st.tally.lineage(code).map_err(|r| not_found(node, r))?;
    let (totals, children) = st
        .tally
        .children_totals(code, &contest)
        .map_err(|r| not_found(node, r))?;
    let is_desa = lineage
        .last()
        .is_some_and(|r| r.level == pb::RegionLevel::Desa as i32);
    let tps = if is_desa {
        st.tally
            .desa_tps(code, &contest)
            .map_err(|r| not_found(node, r))?
    } else {
        Vec::new()
    };
    let src = source(node, &st, &lineage);
    let version = Version::of(&st, code, &contest, src.out_of_touch.is_some());
    drop(st);
    let page = RegionPage {
        lineage,
        contests,
        contest,
        totals,
        children,
        tps,
    };
    let html = pages::region(&page, &src).into_string();
    Ok(Rendered::new(version, page.contest, HTML, html))
}

pub async fn tps(
    State(node): State<Arc<Node>>,
    State(pages): State<Arc<Pages>>,
    Path(id): Path<String>,
    Query(q): Query<Pick>,
    req: HeaderMap,
) -> Result<Response, Refused> {
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
    let src = source(&node, &st, &lineage);
    // Every revision of a TPS's result changes its desa's sums.
    let version = Version::of(
        &st,
        &tps.desa_code,
        &contest.contest_id,
        src.out_of_touch.is_some(),
    );
    Ok(pages.conditional(&req, version, move || {
        let revisions = st
            .tally
            .tps_history(&id, &contest.contest_id)
            .unwrap_or_default();
        drop(st);
        let page = TpsPage {
            lineage,
            tps,
            contest,
            revisions,
        };
        Html(lists::tps(&page, &src).into_string()).into_response()
    }))
}

/// The two lists a region has: TPS with no result yet, and the janggal
/// queue. One page each, behind the same validator as the region's sums.
#[derive(Clone, Copy)]
enum List {
    Missing,
    Janggal,
}

fn list(
    node: &Node,
    pages: &Pages,
    code: &str,
    q: Pick,
    req: &HeaderMap,
    kind: List,
) -> Result<Response, Refused> {
    let st = state(node)?;
    let token = q.halaman.clone().unwrap_or_default();
    let (_, contest) = pick_contest(node, &st, code, q.pemilihan)?;
    let mut lineage = st.tally.lineage(code).map_err(|r| not_found(node, r))?;
    let src = source(node, &st, &lineage);
    let version = Version::of(&st, code, &contest, src.out_of_touch.is_some());
    let mut page = ListPage {
        region: lineage.pop().unwrap_or_default(),
        contest,
        total: 0,
        missing: Vec::new(),
        janggal: Vec::new(),
        next: None,
    };
    Ok(pages.conditional(req, version, move || {
        let found = match kind {
            List::Missing => st
                .tally
                .missing(code, &page.contest, PAGE, &token)
                .map(|m| {
                    page.total = m.total_missing;
                    page.missing = m.tps;
                    m.next_page_token
                }),
            List::Janggal => st
                .tally
                .janggal_queue(code, &page.contest, PAGE, &token)
                .map(|j| {
                    page.total = j.total_janggal;
                    page.janggal = j.items;
                    j.next_page_token
                }),
        };
        drop(st);
        let next = match found {
            Ok(next) => next,
            Err(r) => return not_found(node, r).into_response(),
        };
        let (slug, html) = match kind {
            List::Missing => (
                "belum-masuk",
                lists::missing as fn(&ListPage, &Source) -> maud::Markup,
            ),
            List::Janggal => (
                "janggal",
                lists::janggal as fn(&ListPage, &Source) -> maud::Markup,
            ),
        };
        page.next = next_link(code, slug, &page.contest, next);
        Html(html(&page, &src).into_string()).into_response()
    }))
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
    State(pages): State<Arc<Pages>>,
    Path(code): Path<String>,
    Query(q): Query<Pick>,
    req: HeaderMap,
) -> Result<Response, Refused> {
    list(&node, &pages, &code, q, &req, List::Missing)
}

pub async fn janggal(
    State(node): State<Arc<Node>>,
    State(pages): State<Arc<Pages>>,
    Path(code): Path<String>,
    Query(q): Query<Pick>,
    req: HeaderMap,
) -> Result<Response, Refused> {
    list(&node, &pages, &code, q, &req, List::Janggal)
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
