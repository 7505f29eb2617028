//! The node's HTTP listener: `/metrics` for Prometheus. It is read-only and
//! answers from this node's own state, so it keeps answering while no
//! leader is known: that is when ops staff look. HTTPS with the node's
//! certificate and no client certificate asked for; plain HTTP only on an
//! `--insecure` node. Each connection (HTTP/1.1 or HTTP/2) is served on its
//! own task, its TLS handshake included, so a slow client holds up no one.

pub mod metrics;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::node::Node;
use crate::security::Tls;

/// A client that has not finished its TLS handshake, or sent a request's
/// headers, by then is dropped.
const SLOW_CLIENT: Duration = Duration::from_secs(10);

/// The routes, over `node`'s state.
pub fn router(node: Arc<Node>) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .with_state(node)
}

/// OpenMetrics to a client that asks for it (Prometheus does), the
/// classic text format to any other.
async fn scrape(State(node): State<Arc<Node>>, headers: HeaderMap) -> Response {
    let open = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"));
    match node.metrics.render(&node) {
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
/// `tls`, else plaintext.
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<Tls>>,
    app: Router,
) -> anyhow::Result<()> {
    let acceptor = match &tls {
        Some(t) => Some(TlsAcceptor::from(t.http_server_config()?)),
        None => None,
    };
    loop {
        let (tcp, remote) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors and the like: pause, go on.
                tracing::warn!(error = %e, "HTTP accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let (app, acceptor) = (app.clone(), acceptor.clone());
        tokio::spawn(async move {
            let svc = TowerToHyperService::new(app);
            let mut builder = auto::Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(SLOW_CLIENT);
            let served = match acceptor {
                None => builder.serve_connection(TokioIo::new(tcp), svc).await,
                Some(a) => match tokio::time::timeout(SLOW_CLIENT, a.accept(tcp)).await {
                    Ok(Ok(s)) => builder.serve_connection(TokioIo::new(s), svc).await,
                    Ok(Err(e)) => {
                        tracing::debug!(%remote, error = %e, "HTTP: TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%remote, "HTTP: TLS handshake timed out");
                        return;
                    }
                },
            };
            if let Err(e) = served {
                tracing::debug!(%remote, error = %e, "HTTP connection ended");
            }
        });
    }
}
