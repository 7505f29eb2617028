//! `rekap-station`: the operator's entry station. A web form on 127.0.0.1
//! for the C.Hasil sheet of each of the operator's TPS, checked by the
//! node's own rules as it is typed, saved to a durable outbox (SQLite)
//! before it says "tersimpan", and sent to the cluster in the background
//! whenever there is signal. It starts and works with no network, from the
//! registry slice it kept the last time it was online.

mod app;
mod deliver;
mod form;
mod pages;
mod routes;
mod slice;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use anyhow::Context;
use clap::Parser;
use rekap_client::outbox::Outbox;
use tokio::sync::Notify;

use app::{App, Certs, Link};

#[derive(Parser)]
#[command(
    name = "rekap-station",
    version,
    about = "The operator's offline-first C.Hasil entry station (a web form on 127.0.0.1)"
)]
struct Args {
    /// Comma-separated node addresses; any subset of the cluster will do.
    #[arg(
        long,
        env = "REKAP_ENDPOINTS",
        default_value = "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003"
    )]
    endpoints: String,
    /// Folder with your TLS files: ca.crt, client.USER.crt, client.USER.key.
    /// Read again whenever the certificate changes.
    #[arg(long, env = "REKAP_CERTS_DIR")]
    certs_dir: Option<PathBuf>,
    /// Which user certificate in --certs-dir to use (default: the only one).
    #[arg(long, env = "REKAP_USER")]
    user: Option<String>,
    /// Talk plaintext, to nodes started with --insecure (needs --user).
    #[arg(long, env = "REKAP_INSECURE")]
    insecure: bool,
    /// Where the form is served; loopback only (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:7080")]
    listen: SocketAddr,
    /// The outbox file (default: outbox.USER.sqlite in --certs-dir).
    #[arg(long, env = "REKAP_OUTBOX")]
    outbox: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let a = Args::parse();
    anyhow::ensure!(
        a.listen.ip().is_loopback(),
        "--listen {} is not a loopback address: the station serves this laptop only",
        a.listen
    );
    let (dir, user) = match (&a.certs_dir, a.insecure) {
        (Some(dir), false) => {
            let tls = rekap_client::ClientTls::from_dir(dir, a.user.as_deref())?;
            (dir.clone(), tls.user)
        }
        (dir, true) => (
            dir.clone().unwrap_or_else(|| ".".into()),
            a.user.clone().context("--insecure needs --user")?,
        ),
        (None, false) => anyhow::bail!("--certs-dir is required (or --insecure with --user)"),
    };
    let path = a
        .outbox
        .clone()
        .unwrap_or_else(|| dir.join(format!("outbox.{user}.sqlite")));
    let outbox = Outbox::open(&path, &user)?;
    let listener = tokio::net::TcpListener::bind(a.listen)
        .await
        .with_context(|| format!("listening on {}", a.listen))?;
    let addr = listener.local_addr()?;
    let app = Arc::new(App {
        outbox,
        slice: RwLock::new(None),
        link: RwLock::new(Link::default()),
        wake: Notify::new(),
        user: user.clone(),
        certs: Certs {
            dir,
            user: Some(user.clone()),
            endpoints: a
                .endpoints
                .split(',')
                .map(|e| e.trim().to_string())
                .filter(|e| !e.is_empty())
                .collect(),
            insecure: a.insecure,
        },
        origin: addr.to_string(),
    });
    if let Some(s) = deliver::cached_slice(&app) {
        *app.slice.write().expect("slice lock") = Some(Arc::new(s));
    }
    tokio::spawn(deliver::run(app.clone()));
    println!(
        "rekap-station for {user}: http://{addr}/ (outbox {})",
        path.display()
    );
    axum::serve(listener, routes::router(app))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
