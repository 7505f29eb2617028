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

/// GETs `path` from `addr` over HTTPS: the status code and the body.
pub async fn get(ca_dir: &Path, addr: &str, path: &str) -> anyhow::Result<(u16, String)> {
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
    let tls = TlsConnector::from(Arc::new(cfg))
        .connect(ServerName::try_from(host)?, tcp)
        .await?;
    request(tls, addr, hyper::Method::GET, path, String::new()).await
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
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
    tokio::spawn(conn);
    let req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header(hyper::header::HOST, addr)
        .header(
            hyper::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(Full::new(Bytes::from(form)))?;
    let resp = send.send_request(req).await?;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await?.to_bytes();
    Ok((status, String::from_utf8(body.to_vec())?))
}

/// The value of sample `name` (labels included, as written) in `text`.
pub fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (n, v) = l.rsplit_once(' ')?;
        if n == name { v.parse().ok() } else { None }
    })
}
