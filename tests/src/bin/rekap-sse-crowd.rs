//! A crowd of browsers on the live pages, for `tests/bench/dashboard.sh`:
//! opens N server-sent event streams to one node over HTTPS (trusting the
//! cluster's CA), spread over the given paths, holds them and counts the
//! views they receive, until killed or SECS pass. Prints one JSON line a
//! second: streams open, refused (503), failed, views received.
//!
//!   rekap-sse-crowd --addr 127.0.0.1:7562 --ca-dir DIR --streams 10000 \
//!                   --path /api/v1/events/ID?pemilihan=PPWP [--path ...] [--secs 60]

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use futures::StreamExt;
use rekap_tests::http::events;

#[derive(Parser)]
struct Args {
    #[arg(long)]
    addr: String,
    /// The folder with the cluster's ca.crt.
    #[arg(long)]
    ca_dir: PathBuf,
    #[arg(long, default_value_t = 10_000)]
    streams: usize,
    /// Event stream paths; stream i reads path i mod their number.
    #[arg(long, required = true)]
    path: Vec<String>,
    /// Streams opened at once.
    #[arg(long, default_value_t = 64)]
    opening: usize,
    /// Stop after this many seconds (0: run until killed).
    #[arg(long, default_value_t = 0)]
    secs: u64,
}

#[derive(Default)]
struct Counts {
    open: AtomicU64,
    refused: AtomicU64,
    failed: AtomicU64,
    views: AtomicU64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let counts = Arc::new(Counts::default());
    let started = Instant::now();
    let reporter = {
        let counts = counts.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                println!(
                    "{{\"secs\":{:.1},\"open\":{},\"refused\":{},\"failed\":{},\"views\":{}}}",
                    started.elapsed().as_secs_f64(),
                    counts.open.load(Ordering::Relaxed),
                    counts.refused.load(Ordering::Relaxed),
                    counts.failed.load(Ordering::Relaxed),
                    counts.views.load(Ordering::Relaxed),
                );
            }
        })
    };
    let paths = Arc::new(args.path);
    let (ca, addr) = (Arc::new(args.ca_dir), Arc::new(args.addr));
    // Open them, `opening` at a time; each then reads on its own task.
    futures::stream::iter(0..args.streams)
        .for_each_concurrent(args.opening, |i| {
            let (ca, addr, paths, counts) =
                (ca.clone(), addr.clone(), paths.clone(), counts.clone());
            async move {
                let path = &paths[i % paths.len()];
                match events(&ca, &addr, path).await {
                    Ok((200, mut rx)) => {
                        counts.open.fetch_add(1, Ordering::Relaxed);
                        tokio::spawn(async move {
                            while rx.recv().await.is_some() {
                                counts.views.fetch_add(1, Ordering::Relaxed);
                            }
                            counts.open.fetch_sub(1, Ordering::Relaxed);
                            counts.failed.fetch_add(1, Ordering::Relaxed);
                        });
                    }
                    Ok((503, _)) => {
                        counts.refused.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(_) | Err(_) => {
                        counts.failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        })
        .await;
    if args.secs > 0 {
        tokio::time::sleep_until((started + Duration::from_secs(args.secs)).into()).await;
    } else {
        std::future::pending::<()>().await;
    }
    reporter.abort();
    Ok(())
}
