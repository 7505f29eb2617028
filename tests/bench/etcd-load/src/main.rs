//! `etcd-load`: closed-loop durable single writes against etcd, printed in
//! the same JSON shape as `rekapctl --json bench`. Every write is a `Put` of
//! a distinct key with a value the size of an encoded TPS result, so both
//! systems move the same bytes per acknowledgement.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use etcd_client::Client;
use hdrhistogram::Histogram;

#[derive(Parser)]
struct Args {
    /// etcd client endpoints, comma-separated (http://host:port).
    #[arg(long, value_delimiter = ',')]
    endpoints: Vec<String>,
    /// Concurrent clients, each with its own connection.
    #[arg(long, short = 'c', default_value_t = 16)]
    clients: usize,
    /// Writes in all.
    #[arg(long, short = 'n', default_value_t = 10_000)]
    count: usize,
    /// Bytes per value (about one encoded C.Hasil submission).
    #[arg(long, default_value_t = 160)]
    value_size: usize,
    /// Write every acknowledgement's wall-clock time (seconds since the
    /// epoch, one per line) here, for a failover's gap.
    #[arg(long)]
    timeline: Option<std::path::PathBuf>,
    /// Retry a failed write (the same key and value) until it succeeds,
    /// as Rekap's client does, instead of stopping: for a failover run.
    #[arg(long)]
    retry: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let run = std::process::id();
    let value = Arc::new(vec![b'x'; a.value_size]);
    let next = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for _ in 0..a.clients.max(1) {
        // etcd-client picks the endpoint per request; the leader forwards.
        clients.push(Client::connect(&a.endpoints, None).await?);
    }
    let started = Instant::now();
    let mut workers = Vec::new();
    for mut client in clients {
        let (next, value, count, retry) = (next.clone(), value.clone(), a.count, a.retry);
        workers.push(tokio::spawn(async move {
            let mut hist = Histogram::<u64>::new(3).expect("histogram");
            let mut done = 0usize;
            let mut acks = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    break;
                }
                let t0 = Instant::now();
                let key = format!("bench/{run}/{i:08}");
                loop {
                    match client.put(key.clone(), value.as_slice(), None).await {
                        Ok(_) => break,
                        Err(_) if retry => tokio::time::sleep(Duration::from_millis(20)).await,
                        Err(e) => return Err(e),
                    }
                }
                hist.record(t0.elapsed().as_micros() as u64).ok();
                acks.push(std::time::SystemTime::now());
                done += 1;
            }
            Ok::<_, etcd_client::Error>((hist, done, acks))
        }));
    }
    let mut hist = Histogram::<u64>::new(3)?;
    let mut done = 0usize;
    let mut acks = Vec::new();
    for w in workers {
        let (h, d, a) = w.await??;
        hist.add(&h)?;
        done += d;
        acks.extend(a);
    }
    if let Some(path) = &a.timeline {
        acks.sort();
        let lines: Vec<String> = acks
            .iter()
            .map(|t| {
                let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
                format!("{:.6}", d.as_secs_f64())
            })
            .collect();
        std::fs::write(path, lines.join("\n") + "\n")?;
    }
    let elapsed = started.elapsed();
    // Every write must be there: count the run's keys back.
    // With --retry a member may be down or restarting: ask until one
    // answers, for up to a minute.
    let asking = std::time::Instant::now();
    let stored = loop {
        let asked = async {
            let mut client = Client::connect(&a.endpoints, None).await?;
            let got = client
                .get(
                    format!("bench/{run}/"),
                    Some(
                        etcd_client::GetOptions::new()
                            .with_prefix()
                            .with_count_only(),
                    ),
                )
                .await?;
            Ok::<_, etcd_client::Error>(got.count() as usize)
        };
        match asked.await {
            Ok(n) => break n,
            Err(_) if a.retry && asking.elapsed() < Duration::from_secs(60) => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => return Err(e.into()),
        }
    };
    let ms = |us: u64| Duration::from_micros(us).as_secs_f64() * 1000.0;
    println!(
        "{}",
        serde_json::json!({
            "clients": a.clients, "submissions": done, "seconds": elapsed.as_secs_f64(),
            "writes_per_sec": done as f64 / elapsed.as_secs_f64(),
            "p50_ms": ms(hist.value_at_quantile(0.5)), "p99_ms": ms(hist.value_at_quantile(0.99)),
            "max_ms": ms(hist.max()), "totals_verified": stored == done,
        })
    );
    anyhow::ensure!(
        stored == done,
        "etcd holds {stored} of {done} acknowledged writes"
    );
    Ok(())
}
