//! HTTPS GETs against a node's HTTP listener, trusting only the test CA, as
//! Prometheus does when it scrapes a node; plain GETs and form posts to a
//! station on loopback; and reading samples out of the classic text format.

use std::path::Path;
use std::sync::Arc;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::TlsConnector;

/// An answer in full: status, headers and the body as sent (compressed
/// when the server chose so).
pub struct Answer {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

impl Answer {
    /// A header's value, if present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// GETs `path` from `addr` over HTTPS: the status code and the body.
pub async fn get(ca_dir: &Path, addr: &str, path: &str) -> anyhow::Result<(u16, String)> {
    let a = get_with(ca_dir, addr, path, &[]).await?;
    Ok((a.status, String::from_utf8(a.body.to_vec())?))
}

/// Opens a server-sent event stream at `path` over HTTPS: the status, and
/// each event's data as it arrives (the channel closes with the stream).
pub async fn events(
    ca_dir: &Path,
    addr: &str,
    path: &str,
) -> anyhow::Result<(u16, tokio::sync::mpsc::UnboundedReceiver<String>)> {
    let tls = connect(ca_dir, addr).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
    tokio::spawn(conn);
    let req = hyper::Request::builder()
        .uri(path)
        .header(hyper::header::HOST, addr)
        .header(hyper::header::ACCEPT, "text/event-stream")
        .body(Full::new(Bytes::new()))?;
    let resp = sender.send_request(req).await?;
    let status = resp.status().as_u16();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let mut body = resp.into_body();
    tokio::spawn(async move {
        let mut pending = String::new();
        while let Some(Ok(frame)) = body.frame().await {
            let Ok(data) = frame.into_data() else {
                continue;
            };
            pending.push_str(&String::from_utf8_lossy(&data));
            while let Some(end) = pending.find('\n') {
                let line: String = pending.drain(..=end).collect();
                if let Some(d) = line.trim_end().strip_prefix("data:")
                    && tx.send(d.trim_start().to_string()).is_err()
                {
                    return;
                }
            }
        }
    });
    Ok((status, rx))
}

/// A TLS connection to `addr`, trusting only the cluster CA in `ca_dir`.
pub async fn connect(
    ca_dir: &Path,
    addr: &str,
) -> anyhow::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_dir.join(rekap_client::certs::CA_CERT))? {
        roots.add(cert?)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h).to_string();
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    Ok(TlsConnector::from(Arc::new(cfg))
        .connect(ServerName::try_from(host)?, tcp)
        .await?)
}

/// GETs `path` from `addr` over HTTPS with more request `headers`.
pub async fn get_with(
    ca_dir: &Path,
    addr: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> anyhow::Result<Answer> {
    let tls = connect(ca_dir, addr).await?;
    send(tls, addr, hyper::Method::GET, path, String::new(), headers).await
}

/// GETs `path` from `addr` over plain HTTP (a server the test started on
/// loopback): the status code and the body.
pub async fn get_plain(addr: &str, path: &str) -> anyhow::Result<(u16, String)> {
    let io = tokio::net::TcpStream::connect(addr).await?;
    request(io, addr, hyper::Method::GET, path, String::new()).await
}

/// POSTs a form (`application/x-www-form-urlencoded`) over plain HTTP, as
/// a browser on the same page would: the status code and the body.
pub async fn post_form_plain(addr: &str, path: &str, form: &str) -> anyhow::Result<(u16, String)> {
    let io = tokio::net::TcpStream::connect(addr).await?;
    request(io, addr, hyper::Method::POST, path, form.to_string()).await
}

async fn request<IO>(
    io: IO,
    addr: &str,
    method: hyper::Method,
    path: &str,
    form: String,
) -> anyhow::Result<(u16, String)>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let a = send(io, addr, method, path, form, &[]).await?;
    Ok((a.status, String::from_utf8(a.body.to_vec())?))
}

async fn send<IO>(
    io: IO,
    addr: &str,
    method: hyper::Method,
    path: &str,
    form: String,
    headers: &[(&str, &str)],
) -> anyhow::Result<Answer>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
    tokio::spawn(conn);
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header(hyper::header::HOST, addr)
        .header(
            hyper::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        );
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = sender
        .send_request(req.body(Full::new(Bytes::from(form)))?)
        .await?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await?.to_bytes();
    Ok(Answer {
        status,
        headers,
        body,
    })
}

/// The value of sample `name` (labels included, as written) in `text`.
pub fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (n, v) = l.rsplit_once(' ')?;
        if n == name { v.parse().ok() } else { None }
    })
}

/// How many answers of kind `answer` (rendered, kept, not_modified,
/// refused) the dashboard of the node at `addr` has given, by its metrics.
pub async fn dashboard_answers(ca_dir: &Path, addr: &str, answer: &str) -> f64 {
    scraped(
        ca_dir,
        addr,
        &format!("rekap_http_dashboard_answers_total{{answer=\"{answer}\"}}"),
    )
    .await
}

/// How many kept dashboard answers the node at `addr` has checked against
/// the state once their tick passed, and kept on.
pub async fn dashboard_checks(ca_dir: &Path, addr: &str) -> f64 {
    scraped(ca_dir, addr, "rekap_http_dashboard_checks_total").await
}

/// One sample of the node's `/metrics` (0 when absent).
async fn scraped(ca_dir: &Path, addr: &str, series: &str) -> f64 {
    let a = get_with(ca_dir, addr, "/metrics", &[])
        .await
        .expect("metrics");
    let text = String::from_utf8(a.body.to_vec()).expect("text");
    sample(&text, series).unwrap_or(0.0)
}
