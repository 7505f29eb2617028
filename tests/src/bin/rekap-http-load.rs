//! Readers at a set pace, for `tests/bench/dashboard.sh`: GETs one path
//! from one node over HTTPS (trusting the cluster's CA) at RATE requests a
//! second for SECS seconds, spread over CONNECTIONS keep-alive connections,
//! whether or not the server keeps up (an open loop, as a crowd of browsers
//! is). wrk instead sends as fast as answers come back, which measures the
//! most a node can serve but not the latency at a given load.
//!
//! Each request has a due time (start + i / RATE), and its latency counts
//! from that time, not from when it was sent: a server that falls behind
//! is charged for the wait of every request queued behind the slow one
//! (no coordinated omission). Prints one line:
//! `answered/s p50_ms p99_ms p999_ms errors not_modified`.
//!
//!   rekap-http-load --addr 127.0.0.1:7562 --ca-dir DIR --path /wilayah/ID \
//!                   --rate 10000 --secs 10 [--connections 32] [--revalidate]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use rekap_tests::http::connect;

#[derive(Parser)]
struct Args {
    #[arg(long)]
    addr: String,
    /// The folder with the cluster's ca.crt.
    #[arg(long)]
    ca_dir: PathBuf,
    #[arg(long)]
    path: String,
    /// Requests a second, in all.
    #[arg(long)]
    rate: f64,
    #[arg(long, default_value_t = 10)]
    secs: u64,
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Send If-None-Match with the newest ETag this connection was given.
    #[arg(long)]
    revalidate: bool,
}

/// What one connection saw: latencies in microseconds, from due time to
/// the whole body read.
#[derive(Default)]
struct Seen {
    latencies: Vec<u32>,
    errors: u64,
    not_modified: u64,
}

type Sender = hyper::client::conn::http1::SendRequest<Empty<Bytes>>;

async fn open(args: &Args) -> anyhow::Result<Sender> {
    let tls = connect(&args.ca_dir, &args.addr).await?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
    tokio::spawn(conn);
    Ok(sender)
}

/// One GET; Ok(status, etag) once the body is read in full.
async fn get(
    sender: &mut Sender,
    args: &Args,
    etag: Option<&str>,
) -> anyhow::Result<(u16, Option<String>)> {
    sender.ready().await?;
    let mut req = hyper::Request::builder()
        .uri(args.path.as_str())
        .header(hyper::header::HOST, args.addr.as_str())
        .header(hyper::header::ACCEPT_ENCODING, "gzip, br");
    if let Some(tag) = etag {
        req = req.header(hyper::header::IF_NONE_MATCH, tag);
    }
    let resp = sender.send_request(req.body(Empty::new())?).await?;
    let status = resp.status().as_u16();
    let tag = resp
        .headers()
        .get(hyper::header::ETAG)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    resp.into_body().collect().await?;
    Ok((status, tag))
}

/// Connection `k` of `n` sends requests k, k + n, k + 2n, ... each at its
/// due time, or at once when it is already late.
async fn run(args: Arc<Args>, k: usize, start: Instant) -> Seen {
    let mut seen = Seen::default();
    let total = (args.rate * args.secs as f64) as usize;
    let mut sender = open(&args).await.ok();
    let mut etag: Option<String> = None;
    for i in (k..total).step_by(args.connections) {
        let due = start + Duration::from_secs_f64(i as f64 / args.rate);
        tokio::time::sleep_until(due.into()).await;
        if sender.is_none() {
            match open(&args).await {
                Ok(s) => sender = Some(s),
                Err(_) => {
                    seen.errors += 1;
                    continue;
                }
            }
        }
        let s = sender.as_mut().expect("opened above");
        let tag = if args.revalidate {
            etag.as_deref()
        } else {
            None
        };
        match get(s, &args, tag).await {
            Ok((status, new_tag)) if status < 400 => {
                seen.latencies
                    .push(due.elapsed().as_micros().min(u32::MAX as u128) as u32);
                if status == 304 {
                    seen.not_modified += 1;
                }
                if new_tag.is_some() {
                    etag = new_tag;
                }
            }
            Ok(_) => seen.errors += 1,
            Err(_) => {
                seen.errors += 1;
                sender = None;
            }
        }
    }
    seen
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Arc::new(Args::parse());
    anyhow::ensure!(
        args.rate > 0.0 && args.connections > 0,
        "rate and connections must be positive"
    );
    // Open every connection before the clock starts, so the handshakes are
    // not counted as the server's latency.
    let start = Instant::now() + Duration::from_millis(500);
    let tasks: Vec<_> = (0..args.connections)
        .map(|k| tokio::spawn(run(args.clone(), k, start)))
        .collect();
    let mut all = Seen::default();
    for t in tasks {
        let s = t.await?;
        all.latencies.extend(s.latencies);
        all.errors += s.errors;
        all.not_modified += s.not_modified;
    }
    let elapsed = start.elapsed().as_secs_f64();
    all.latencies.sort_unstable();
    let pct = |p: f64| -> f64 {
        let l = &all.latencies;
        if l.is_empty() {
            return f64::NAN;
        }
        l[((l.len() - 1) as f64 * p).round() as usize] as f64 / 1000.0
    };
    println!(
        "{:.0} {:.2} {:.2} {:.2} {} {}",
        all.latencies.len() as f64 / elapsed,
        pct(0.50),
        pct(0.99),
        pct(0.999),
        all.errors,
        all.not_modified
    );
    Ok(())
}
