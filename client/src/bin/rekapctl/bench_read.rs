//! `rekapctl bench-read`: closed-loop reads of one region's totals, as
//! observers refresh them. C readers each wait for an answer before asking
//! again, for a fixed time, at the consistency asked for. Run it beside
//! `rekapctl bench` to see what reads cost writers and the reverse.

use std::time::{Duration, Instant};

use clap::Args;
use hdrhistogram::Histogram;
use rekap_client::Client;
use serde_json::json;

use crate::Ctx;
use crate::output::{print_json, table};
use crate::read::consistency;

#[derive(Args)]
pub struct ReadBenchArgs {
    /// Region whose totals are read (default: nasional).
    #[arg(long, default_value = "ID")]
    region: String,
    #[arg(long)]
    contest: String,
    /// Concurrent readers.
    #[arg(long, short = 'c', default_value_t = 1)]
    clients: usize,
    /// How long to read.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Pause between one reader's reads, in milliseconds (0: none).
    #[arg(long, default_value_t = 0)]
    interval_ms: u64,
    /// Read each node's local state instead of linearizable reads.
    #[arg(long)]
    stale: bool,
}

pub async fn run(ctx: &Ctx, a: ReadBenchArgs) -> anyhow::Result<()> {
    let contest = a.contest;
    let consistency = consistency(a.stale);
    let until = Instant::now() + Duration::from_secs_f64(a.seconds);
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..a.clients.max(1) {
        let client = Client::with_options(ctx.client.endpoints(), ctx.opts.clone());
        let (region, contest, pause) = (
            a.region.clone(),
            contest.clone(),
            Duration::from_millis(a.interval_ms),
        );
        workers.push(tokio::spawn(async move {
            let mut hist = Histogram::<u64>::new(3).expect("histogram");
            while Instant::now() < until {
                let t0 = Instant::now();
                client.totals(&region, &contest, consistency).await?;
                hist.record(t0.elapsed().as_micros() as u64).ok();
                if !pause.is_zero() {
                    tokio::time::sleep(pause).await;
                }
            }
            Ok::<_, tonic::Status>(hist)
        }));
    }
    let mut hist = Histogram::<u64>::new(3)?;
    for w in workers {
        hist.add(&w.await??)?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let ms = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
    let rate = hist.len() as f64 / elapsed;
    if ctx.json {
        print_json(&json!({
            "clients": a.clients, "reads": hist.len(), "seconds": elapsed, "reads_per_sec": rate,
            "p50_ms": ms(0.5), "p99_ms": ms(0.99), "max_ms": hist.max() as f64 / 1000.0,
        }));
    } else {
        println!(
            "{}",
            table(
                &["clients", "reads", "reads/s", "p50 ms", "p99 ms", "max ms"],
                vec![vec![
                    a.clients.to_string(),
                    hist.len().to_string(),
                    format!("{rate:.0}"),
                    format!("{:.2}", ms(0.5)),
                    format!("{:.2}", ms(0.99)),
                    format!("{:.2}", hist.max() as f64 / 1000.0),
                ]]
            )
        );
    }
    Ok(())
}
