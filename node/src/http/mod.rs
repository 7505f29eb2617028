//! The node's HTTP listener: the public dashboard (pages, a JSON API and
//! live events) and `/metrics` for Prometheus. It is read-only and
//! answers from this node's own state, so it keeps answering while no
//! leader is known: that is when ops staff look. HTTPS with the node's
//! certificate and no client certificate asked for; plain HTTP only on an
//! `--insecure` node. Each connection (HTTP/1.1 or HTTP/2) is served on its
//! own task, its TLS handshake included, so a slow client holds up no one.

mod api;
pub mod cache;
pub mod dashboard;
mod lists;
pub mod metrics;
mod pages;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{FromRef, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_stream::StreamExt;

use api::Streams;
use cache::{Pages, Policy};
use tower_http::compression::CompressionLayer;

use crate::node::Node;
use crate::security::Tls;
use crate::security::acceptor::{self, Conn};

/// A client that has not sent a request's headers by then is dropped (the
/// acceptor bounds the TLS handshake).
const SLOW_CLIENT: Duration = Duration::from_secs(10);

/// The query of a dashboard page: the contest (`pemilihan`) and, for a
/// list, the page token (`halaman`).
#[derive(serde::Deserialize)]
pub struct Pick {
    pemilihan: Option<String>,
    halaman: Option<String>,
}

/// Rendered answers kept per node, at most this many bytes.
const KEPT_BYTES: u64 = 64 << 20;

/// What the routes read: the node, and its kept answers.
#[derive(Clone)]
struct Web {
    node: Arc<Node>,
    pages: Arc<Pages>,
    streams: Arc<Streams>,
}

impl FromRef<Web> for Arc<Streams> {
    fn from_ref(w: &Web) -> Self {
        w.streams.clone()
    }
}

impl FromRef<Web> for Arc<Node> {
    fn from_ref(w: &Web) -> Self {
        w.node.clone()
    }
}

impl FromRef<Web> for Arc<Pages> {
    fn from_ref(w: &Web) -> Self {
        w.pages.clone()
    }
}

/// The routes, over `node`'s state, with `policy` for caches and at most
/// `max_streams` event streams. Answers not kept compressed are compressed
/// as they go (not the event streams).
pub fn router(node: Arc<Node>, policy: Policy, max_streams: usize) -> Router {
    let streams = Arc::new(Streams::new(max_streams));
    let pages = Arc::new(Pages::new(
        policy,
        KEPT_BYTES,
        node.metrics.dashboard.clone(),
        node.metrics.dashboard_checks.clone(),
    ));
    Router::new()
        .route("/metrics", get(scrape))
        .route("/", get(dashboard::home))
        .route("/wilayah/{code}", get(dashboard::region))
        .route("/wilayah/{code}/belum-masuk", get(dashboard::missing))
        .route("/wilayah/{code}/janggal", get(dashboard::janggal))
        .route("/tps/{id}", get(dashboard::tps))
        .route("/api/v1/wilayah/{code}", get(api::region))
        .route("/api/v1/events/{code}", get(api::events))
        .route("/static/rekap.css", get(dashboard::css))
        .route("/static/rekap.js", get(dashboard::js))
        .with_state(Web {
            node,
            pages,
            streams,
        })
        .layer(CompressionLayer::new())
}

/// OpenMetrics to a client that asks for it (Prometheus does), the
/// classic text format to any other.
async fn scrape(State(node): State<Arc<Node>>, headers: HeaderMap) -> Response {
    let open = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"));
    match metrics::render(&node) {
        Ok(body) if open => ([(header::CONTENT_TYPE, metrics::OPENMETRICS)], body).into_response(),
        Ok(body) => (
            [(header::CONTENT_TYPE, metrics::CLASSIC)],
            metrics::to_classic(&body),
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// Serves `app` on `listener` until the task is dropped: over TLS with
/// `tls`, else plaintext. Connections are accepted as the gRPC port's are
/// (`acceptor`); a plaintext one on a TLS listener is closed unanswered.
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<Tls>>,
    app: Router,
) -> anyhow::Result<()> {
    let config = tls.map(|t| t.http_server_config()).transpose()?;
    let secure = config.is_some();
    let mut conns = acceptor::incoming_with(listener, config);
    while let Some(conn) = conns.next().await {
        let conn = match conn {
            Ok(Conn::Plain(_)) if secure => continue,
            Ok(c) => c,
            Err(_) => continue,
        };
        let svc = TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let mut builder = auto::Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(SLOW_CLIENT);
            if let Err(e) = builder.serve_connection(TokioIo::new(conn), svc).await {
                tracing::debug!(error = %e, "HTTP connection ended");
            }
        });
    }
    Ok(())
}
