//! The station's HTTP routes on 127.0.0.1. Saving runs the rules first and
//! answers only once the outbox has the entry on disk; everything else
//! reads the outbox and the cached slice, so no page waits on the network.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Form, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Json, Redirect, Response};
use axum::routing::{get, post};
use axum::{Router, middleware};
use rekap_client::outbox::sender::now_ms;
use rekap_client::outbox::{Entry, OutboxError, State as EntryState};
use serde::Deserialize;
use serde_json::json;

use crate::app::App;
use crate::form;
use crate::pages::{self, FormPage, form_href, key, state_text};
use crate::slice::Slice;

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/tps/{id}", get(show).post(save))
        .route("/periksa", post(check))
        .route("/status.json", get(status))
        .route("/static/station.js", get(js))
        .route("/static/station.css", get(css))
        .layer(middleware::from_fn_with_state(app.clone(), same_origin))
        .with_state(app)
}

/// The pages answer only under the station's own host name (a page from
/// elsewhere cannot reach them by DNS rebinding), and take posts only
/// from themselves (no other site's form can queue an entry).
async fn same_origin(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let port = app.origin.rsplit(':').next().unwrap_or("");
    let ours = |h: &str| h == app.origin || h == format!("localhost:{port}");
    if !ours(host) {
        return (StatusCode::MISDIRECTED_REQUEST, "not this station's host").into_response();
    }
    let foreign_post = req.method() == axum::http::Method::POST
        && req
            .headers()
            .get(header::ORIGIN)
            .and_then(|o| o.to_str().ok())
            .is_some_and(|o| !o.strip_prefix("http://").is_some_and(ours));
    if foreign_post {
        return (StatusCode::FORBIDDEN, "posted from another origin").into_response();
    }
    next.run(req).await
}

/// The latest entry of each TPS and contest.
fn latest(app: &App) -> Result<HashMap<String, Entry>, OutboxError> {
    Ok(app
        .outbox
        .entries()?
        .into_iter()
        .map(|e| (key(&e.submission.tps_id, &e.submission.contest_id), e))
        .collect())
}

fn outbox_failure(app: &App, e: OutboxError) -> Response {
    let page = pages::message(
        &app.user,
        &app.link(),
        "Outbox tidak terbaca",
        &e.to_string(),
    );
    (StatusCode::INTERNAL_SERVER_ERROR, Html(page.into_string())).into_response()
}

async fn index(State(app): State<Arc<App>>) -> Response {
    let entries = match latest(&app) {
        Ok(e) => e,
        Err(e) => return outbox_failure(&app, e),
    };
    let slice = app.slice();
    Html(pages::index(&app.user, &app.link(), slice.as_deref(), &entries).into_string())
        .into_response()
}

#[derive(Deserialize)]
struct Which {
    pemilihan: Option<String>,
    #[serde(default)]
    tersimpan: Option<String>,
}

/// The TPS and contest a request is about, from the cached slice.
fn find<'a>(
    slice: &'a Slice,
    tps: &str,
    contest: Option<&str>,
) -> Option<(
    &'a rekap_client::proto::Tps,
    &'a rekap_client::proto::Contest,
)> {
    let t = slice.tps(tps)?;
    let mine = slice.contests_of(t);
    let c = match contest {
        Some(id) => mine.into_iter().find(|c| c.contest_id == id)?,
        None => mine.into_iter().next()?,
    };
    Some((t, c))
}

fn not_in_slice(app: &App, tps: &str) -> Response {
    let page = pages::message(
        &app.user,
        &app.link(),
        "TPS tidak ada dalam daftar Anda",
        &format!(
            "TPS {tps} tidak (lagi) berada dalam wilayah tugas Anda menurut daftar TPS terakhir dari server. Entri yang sudah tersimpan tetap ada di outbox."
        ),
    );
    (StatusCode::NOT_FOUND, Html(page.into_string())).into_response()
}

async fn show(
    State(app): State<Arc<App>>,
    Path(tps): Path<String>,
    Query(q): Query<Which>,
) -> Response {
    let notice = q.tersimpan.map(|_| {
        (
            "Tersimpan di laptop ini. Dikirim otomatis saat ada sinyal.".to_string(),
            "saved",
        )
    });
    let answer = Answer {
        values: HashMap::new(),
        verdict: None,
        notice,
        code: StatusCode::OK,
    };
    render(&app, &tps, q.pemilihan.as_deref(), answer)
}

/// What a form page says besides the sheet: the values to put back, the
/// check's verdict, a notice above it, and the HTTP status.
struct Answer {
    values: HashMap<String, String>,
    verdict: Option<form::Verdict>,
    notice: Option<(String, &'static str)>,
    code: StatusCode,
}

/// The form again, with what was typed, and why it was not saved.
fn not_saved(
    app: &App,
    tps: &str,
    contest: &str,
    posted: HashMap<String, String>,
    verdict: Option<form::Verdict>,
    why: String,
    code: StatusCode,
) -> Response {
    let answer = Answer {
        values: posted,
        verdict,
        notice: Some((why, "error")),
        code,
    };
    render(app, tps, Some(contest), answer)
}

fn render(app: &App, tps: &str, contest: Option<&str>, a: Answer) -> Response {
    let Some(slice) = app.slice() else {
        return index_unavailable(app);
    };
    let Some((t, c)) = find(&slice, tps, contest) else {
        return not_in_slice(app, tps);
    };
    let entries = match latest(app) {
        Ok(e) => e,
        Err(e) => return outbox_failure(app, e),
    };
    let page = FormPage {
        tps: t,
        contest: c,
        entry: entries.get(&key(&t.tps_id, &c.contest_id)),
        values: a.values,
        verdict: a.verdict,
        notice: a.notice,
        next: next_empty(&slice, &entries, &t.tps_id, &c.contest_id),
    };
    (
        a.code,
        Html(pages::tps_form(&app.user, &app.link(), &slice, page).into_string()),
    )
        .into_response()
}

fn index_unavailable(app: &App) -> Response {
    let page = pages::message(
        &app.user,
        &app.link(),
        "Daftar TPS belum ada",
        "Sambungkan stasiun ke jaringan sekali untuk mengunduh daftar TPS Anda.",
    );
    (StatusCode::SERVICE_UNAVAILABLE, Html(page.into_string())).into_response()
}

/// The next TPS (in list order) with nothing entered for this contest.
fn next_empty(
    slice: &Slice,
    entries: &HashMap<String, Entry>,
    after: &str,
    contest: &str,
) -> Option<(String, String)> {
    let order: Vec<_> = slice
        .by_desa()
        .into_iter()
        .flat_map(|(_, desa, tps)| tps.into_iter().map(move |t| (desa.clone(), t)))
        .collect();
    let at = order.iter().position(|(_, t)| t.tps_id == after)?;
    order[at + 1..]
        .iter()
        .chain(order[..at].iter())
        .find(|(_, t)| {
            slice.contests_of(t).iter().any(|c| c.contest_id == contest)
                && entries
                    .get(&key(&t.tps_id, contest))
                    .is_none_or(|e| e.state == EntryState::Ditolak)
        })
        .map(|(desa, t)| {
            (
                form_href(&t.tps_id, contest),
                format!("TPS {:03} {desa}", t.number),
            )
        })
}

async fn save(
    State(app): State<Arc<App>>,
    Path(tps): Path<String>,
    Form(posted): Form<HashMap<String, String>>,
) -> Response {
    let contest = posted.get("contest").cloned();
    let Some(slice) = app.slice() else {
        return index_unavailable(&app);
    };
    let Some((_, c)) = find(&slice, &tps, contest.as_deref()) else {
        return not_in_slice(&app, &tps);
    };
    let contest = c.contest_id.clone();
    if let Some(r) = slice.reported(&tps, &contest) {
        let why = format!(
            "BELUM disimpan: hasil TPS ini sudah tercatat di Rekap (revisi {}, oleh {}); perbaikan diajukan melalui verifikator",
            r.revision, r.author
        );
        return not_saved(
            &app,
            &tps,
            &contest,
            posted,
            None,
            why,
            StatusCode::CONFLICT,
        );
    }
    let (mut s, verdict) = form::read(&slice, &tps, &contest, &posted);
    if !verdict.ok() {
        let why = "Belum disimpan: perbaiki angka yang ditandai.".to_string();
        let code = StatusCode::UNPROCESSABLE_ENTITY;
        return not_saved(&app, &tps, &contest, posted, Some(verdict), why, code);
    }
    s.submission_id = new_submission_id();
    s.operator_id = app.user.clone();
    s.client_time_ms = Some(now_ms());
    match app.outbox.save(s, now_ms()) {
        Ok(_) => {
            app.wake.notify_one();
            Redirect::to(&format!("{}&tersimpan=1", form_href(&tps, &contest))).into_response()
        }
        Err(e) => {
            let code = match e {
                OutboxError::Full { .. } => StatusCode::INSUFFICIENT_STORAGE,
                OutboxError::Taken { .. } => StatusCode::CONFLICT,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            not_saved(
                &app,
                &tps,
                &contest,
                posted,
                None,
                format!("BELUM tersimpan: {e}"),
                code,
            )
        }
    }
}

/// A fresh submission id: random, so two stations never collide, and
/// fixed once saved, so every resend is the same submission.
fn new_submission_id() -> String {
    let n: u128 = rand::random();
    format!("st:{:024x}", n >> 32)
}

/// The live check of a half-filled form: the same verdict saving gives.
async fn check(
    State(app): State<Arc<App>>,
    Form(posted): Form<HashMap<String, String>>,
) -> Response {
    let Some(slice) = app.slice() else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    let tps = posted.get("tps").cloned().unwrap_or_default();
    let contest = posted.get("contest").cloned().unwrap_or_default();
    let (_, verdict) = form::read(&slice, &tps, &contest, &posted);
    Json(json!({
        "ok": verdict.ok(),
        "html": pages::verdict_box(Some(&verdict)).into_string(),
        "verdict": verdict,
    }))
    .into_response()
}

/// Every entry's state, for the pages to turn without a reload.
async fn status(State(app): State<Arc<App>>) -> Response {
    let entries = match latest(&app) {
        Ok(e) => e,
        Err(e) => {
            return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response();
        }
    };
    let counts: HashMap<&str, usize> = match app.slice() {
        Some(slice) => pages::counts(&slice, &entries).into_iter().collect(),
        None => HashMap::new(),
    };
    let states: serde_json::Map<String, serde_json::Value> = entries
        .iter()
        .map(|(k, e)| {
            let (text, class) = state_text(Some(e), None);
            (
                k.clone(),
                json!({"text": text, "state": class, "log_index": e.log_index}),
            )
        })
        .collect();
    let mut h = HeaderMap::new();
    h.insert(header::CACHE_CONTROL, "no-store".parse().expect("header"));
    (
        h,
        Json(json!({"link": app.link(), "entries": states, "counts": counts})),
    )
        .into_response()
}

async fn js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        pages::JS,
    )
}

async fn css() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        pages::CSS,
    )
}
