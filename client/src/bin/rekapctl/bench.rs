//! `rekapctl bench`: closed-loop write load. C clients each submit one
//! result, wait for the acknowledgement, and submit the next, until N unique
//! submissions are acknowledged. Registers its own synthetic registry (codes
//! prefixed per run), so it can run against a cluster that holds real data.
//!
//! With TLS, run it as an admin (it loads the registry) and name an operator
//! certificate folder with `--operator-certs-dir`: the bench grants that
//! operator its registry's kecamatan and submits as the operator, so the
//! figures include authentication and authorization as deployed.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use hdrhistogram::Histogram;
use rand::Rng;
use rekap_client::generate::Synthetic;
use rekap_client::proto as pb;
use rekap_client::{Client, ClientOptions};
use serde_json::json;

use crate::Ctx;
use crate::output::{print_json, table};

#[derive(Args)]
pub struct BenchArgs {
    /// Concurrent clients.
    #[arg(long, short = 'c', default_value_t = 16)]
    clients: usize,
    /// Unique submissions in all.
    #[arg(long, short = 'n', default_value_t = 10_000)]
    count: usize,
    /// Submissions per request (1 = `Submit`, more = `SubmitBatch`).
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Certificate folder of the operator who submits (with TLS).
    #[arg(long)]
    operator_certs_dir: Option<std::path::PathBuf>,
    /// Write the wall-clock time of every acknowledgement (Unix seconds, one
    /// per line) here, so a fault run can see the gap a failover leaves.
    #[arg(long)]
    timeline: Option<std::path::PathBuf>,
}

pub async fn run(ctx: &Ctx, a: BenchArgs) -> anyhow::Result<()> {
    let run_id: u32 = rand::rng().random_range(0..1_000_000);
    let prefix = format!("B{run_id:06}-");
    let per_kec = 100;
    let spec = Synthetic {
        prefix: prefix.clone(),
        kecamatan: a.count.div_ceil(per_kec).max(1),
        desa_per_kecamatan: 10,
        tps_per_desa: 10,
        contest_id: format!("BENCH-{run_id:06}"),
    };
    let reg = spec.build();
    eprintln!(
        "loading a registry of {} TPS (prefix {prefix})",
        reg.tps.len()
    );
    super::registry::load(ctx, &reg, 5000, true).await?;
    let opts = writer_options(ctx, &a, &reg).await?;

    let tps: Arc<Vec<String>> = Arc::new(
        reg.tps
            .iter()
            .take(a.count)
            .map(|t| t.tps_id.clone())
            .collect(),
    );
    let next = Arc::new(AtomicUsize::new(0));
    let endpoints = ctx.client.endpoints();
    let batch = a.batch.max(1);
    // A region the writer may read: the first TPS's desa.
    let desa = reg
        .tps
        .first()
        .map(|t| t.desa_code.clone())
        .unwrap_or_default();
    // Every client connected to the leader before the clock starts, as
    // etcd-load's are: with TLS, 64 handshakes inside a 10,000-write run
    // were most of its p99 (46-51 ms; 20 ms over 50,000 writes).
    let mut clients = Vec::new();
    for _ in 0..a.clients.max(1) {
        let client = Client::with_options(endpoints.clone(), opts.clone());
        client
            .totals(&desa, &spec.contest_id, pb::Consistency::Linearizable)
            .await?;
        clients.push(client);
    }
    let started = Instant::now();
    let mut workers = Vec::new();
    for client in clients {
        let (tps, next, contest) = (tps.clone(), next.clone(), spec.contest_id.clone());
        workers.push(tokio::spawn(async move {
            let mut hist = Histogram::<u64>::new(3).expect("histogram");
            let (mut sah_sum, mut done) = (0u64, 0usize);
            let mut acks = Vec::new();
            loop {
                let start = next.fetch_add(batch, Ordering::Relaxed);
                if start >= tps.len() {
                    break;
                }
                let items: Vec<pb::Submission> = tps[start..(start + batch).min(tps.len())]
                    .iter()
                    .map(|t| submission(t, &contest))
                    .collect();
                sah_sum += items.iter().map(|s| s.sah.unwrap_or(0) as u64).sum::<u64>();
                let n = items.len();
                let t0 = Instant::now();
                if n == 1 {
                    client
                        .submit(items.into_iter().next().expect("one item"))
                        .await?;
                } else {
                    client.submit_batch(items).await?;
                }
                hist.record(t0.elapsed().as_micros() as u64).ok();
                acks.push(std::time::SystemTime::now());
                done += n;
            }
            Ok::<_, tonic::Status>((hist, sah_sum, done, acks))
        }));
    }
    let mut hist = Histogram::<u64>::new(3)?;
    let (mut sah_sum, mut done) = (0u64, 0usize);
    let mut acks = Vec::new();
    for w in workers {
        let (h, s, d, a) = w.await??;
        hist.add(&h)?;
        sah_sum += s;
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
    let kab = format!("{prefix}63.02");
    let totals = ctx
        .client
        .totals(&kab, &spec.contest_id, pb::Consistency::Linearizable)
        .await?
        .totals
        .unwrap_or_default();
    let verified = totals.sah == sah_sum && totals.tps_reported == done as u64;
    let ms = |us: u64| Duration::from_micros(us).as_secs_f64() * 1000.0;
    let rate = done as f64 / elapsed.as_secs_f64();
    if ctx.json {
        print_json(&json!({
            "clients": a.clients, "submissions": done, "batch": batch, "seconds": elapsed.as_secs_f64(),
            "writes_per_sec": rate, "p50_ms": ms(hist.value_at_quantile(0.5)), "p99_ms": ms(hist.value_at_quantile(0.99)),
            "max_ms": ms(hist.max()), "totals_verified": verified, "contest": spec.contest_id,
        }));
    } else {
        println!(
            "{}",
            table(
                &[
                    "clients",
                    "submissions",
                    "batch",
                    "seconds",
                    "writes/s",
                    "p50 ms",
                    "p99 ms",
                    "max ms",
                    "totals"
                ],
                vec![vec![
                    a.clients.to_string(),
                    done.to_string(),
                    batch.to_string(),
                    format!("{:.2}", elapsed.as_secs_f64()),
                    format!("{rate:.0}"),
                    format!("{:.2}", ms(hist.value_at_quantile(0.5))),
                    format!("{:.2}", ms(hist.value_at_quantile(0.99))),
                    format!("{:.2}", ms(hist.max())),
                    if verified {
                        "verified".into()
                    } else {
                        format!("MISMATCH sah {} != {}", totals.sah, sah_sum)
                    },
                ]]
            )
        );
    }
    if !verified {
        anyhow::bail!("cluster totals do not match what was acknowledged");
    }
    Ok(())
}

/// The writers' options: the operator's certificate with TLS, after
/// granting the operator the bench registry's kecamatan.
async fn writer_options(
    ctx: &Ctx,
    a: &BenchArgs,
    reg: &rekap_client::registry::Registry,
) -> anyhow::Result<ClientOptions> {
    if ctx.opts.tls.is_none() {
        return Ok(ctx.opts.clone());
    }
    let dir = a.operator_certs_dir.as_ref().ok_or_else(|| {
        anyhow::anyhow!(
            "with TLS, --operator-certs-dir names the operator who submits (an admin cannot)"
        )
    })?;
    let tls = rekap_client::ClientTls::from_dir(dir, None)?;
    ctx.client.add_user(&tls.user).await?;
    let kecamatan: Vec<String> = reg
        .regions
        .iter()
        .filter(|r| r.level == pb::RegionLevel::Kecamatan as i32)
        .map(|r| r.code.clone())
        .collect();
    for chunk in kecamatan.chunks(2000) {
        ctx.client
            .grant(&tls.user, pb::Role::Operator, chunk.to_vec())
            .await?;
    }
    Ok(ClientOptions {
        tls: Some(tls),
        ..ctx.opts.clone()
    })
}

fn submission(tps: &str, contest: &str) -> pb::Submission {
    let mut rng = rand::rng();
    let (v1, v2, ts): (i64, i64, i64) = (
        rng.random_range(0..150),
        rng.random_range(0..150),
        rng.random_range(0..10),
    );
    pb::Submission {
        submission_id: format!("bench:{tps}"),
        tps_id: tps.into(),
        contest_id: contest.into(),
        votes: vec![
            pb::CandidateVotes {
                candidate_id: "01".into(),
                votes: v1,
            },
            pb::CandidateVotes {
                candidate_id: "02".into(),
                votes: v2,
            },
        ],
        sah: Some(v1 + v2),
        tidak_sah: Some(ts),
        total: Some(v1 + v2 + ts),
        ..Default::default()
    }
}
