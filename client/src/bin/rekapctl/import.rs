//! `rekapctl import`: submit a results CSV in batches.
//!
//! Columns: `tps_id,contest_id,sah,tidak_sah,total` and one `paslon_<id>`
//! column per candidate. Each row's submission id is derived from its TPS,
//! contest and numbers, so rerunning an import (or resuming one that was
//! interrupted) never counts anything twice. Rows missing any vote, sah,
//! tidak sah or total are incomplete: counted and skipped, never sent.
//! Refused rows are written, with their rule, to a rejects file.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use rekap_client::proto as pb;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::Ctx;
use crate::output::{print_json, table};

#[derive(Args)]
pub struct ImportArgs {
    file: PathBuf,
    /// Submissions per SubmitBatch request (at most 1000).
    #[arg(long, default_value_t = 500)]
    batch: usize,
    /// Where to write refused rows (default: <file>.rejects.csv).
    #[arg(long)]
    rejects: Option<PathBuf>,
}

/// A stable id for a result row: same row, same id, on any machine.
pub fn derived_id(s: &pb::Submission) -> String {
    let mut h = Sha256::new();
    h.update(format!(
        "{}|{}|{:?}|{:?}|{:?}",
        s.tps_id, s.contest_id, s.sah, s.tidak_sah, s.total
    ));
    for v in &s.votes {
        h.update(format!("|{}={}", v.candidate_id, v.votes));
    }
    let hex: String = h.finalize()[..12]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("imp:{hex}")
}

/// A row of the file: a submission, or why it is incomplete.
struct Parsed {
    line: usize,
    submission: Option<pb::Submission>,
}

fn read_rows(file: &PathBuf) -> anyhow::Result<Vec<Parsed>> {
    let mut r = csv::Reader::from_path(file)?;
    let headers = r.headers()?.clone();
    let mut out = Vec::new();
    for (i, rec) in r.records().enumerate() {
        let rec = rec?;
        let line = i + 2;
        let row: BTreeMap<&str, &str> = headers.iter().zip(rec.iter().map(str::trim)).collect();
        let get = |k: &str| row.get(k).copied().unwrap_or("");
        let num = |k: &str| -> anyhow::Result<Option<i64>> {
            let v = get(k);
            if v.is_empty() {
                return Ok(None);
            }
            Ok(Some(
                v.parse()
                    .map_err(|e| anyhow::anyhow!("line {line}: {k}: {e}"))?,
            ))
        };
        let mut votes = Vec::new();
        let mut complete = true;
        for (h, v) in &row {
            if let Some(id) = h.strip_prefix("paslon_") {
                match num(h)? {
                    Some(n) => votes.push(pb::CandidateVotes {
                        candidate_id: id.to_string(),
                        votes: n,
                    }),
                    None => complete = false,
                }
                let _ = v;
            }
        }
        let (sah, tidak_sah, total) = (num("sah")?, num("tidak_sah")?, num("total")?);
        complete &= sah.is_some() && tidak_sah.is_some() && total.is_some() && !votes.is_empty();
        let submission = complete.then(|| {
            let mut s = pb::Submission {
                tps_id: get("tps_id").into(),
                contest_id: get("contest_id").into(),
                votes,
                sah,
                tidak_sah,
                total,
                ..Default::default()
            };
            s.submission_id = derived_id(&s);
            s
        });
        out.push(Parsed { line, submission });
    }
    Ok(out)
}

/// The rows in batches of at most `size`, each marked when it holds a
/// (TPS, contest) that an earlier batch holds too; such a batch starts at
/// that row.
fn batches(rows: &[Parsed], size: usize) -> Vec<(&[Parsed], bool)> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    let (mut start, mut barrier) = (0, false);
    for (i, p) in rows.iter().enumerate() {
        let s = p.submission.as_ref().expect("complete row");
        let again = !seen.insert((s.tps_id.as_str(), s.contest_id.as_str()));
        if i > start && (again || i - start == size) {
            out.push((&rows[start..i], barrier));
            (start, barrier) = (i, false);
        }
        barrier |= again;
    }
    if start < rows.len() {
        out.push((&rows[start..], barrier));
    }
    out
}

/// Counts one batch's answers, and writes its refused rows.
fn tally(
    sum: &mut Summary,
    rejects: &mut csv::Writer<std::fs::File>,
    chunk: &[Parsed],
    items: Vec<pb::BatchItem>,
) -> anyhow::Result<()> {
    for (p, item) in chunk.iter().zip(items) {
        let s = p.submission.as_ref().expect("complete row");
        match item.result {
            Some(pb::batch_item::Result::Outcome(o)) => {
                if o.status == pb::SubmitStatus::Duplicate as i32 {
                    sum.already_present += 1;
                } else {
                    sum.accepted += 1;
                }
                sum.flagged += u64::from(!o.janggal.is_empty());
            }
            Some(pb::batch_item::Result::Rejection(r)) => {
                *sum.rejected.entry(r.rule.clone()).or_default() += 1;
                rejects.write_record([
                    p.line.to_string(),
                    s.tps_id.clone(),
                    s.contest_id.clone(),
                    format!("{:?}", tonic::Code::from_i32(r.code)),
                    r.rule,
                    r.message,
                ])?;
            }
            None => *sum.rejected.entry("no_answer".into()).or_default() += 1,
        }
    }
    Ok(())
}

#[derive(Default)]
struct Summary {
    accepted: u64,
    already_present: u64,
    flagged: u64,
    incomplete: u64,
    rejected: BTreeMap<String, u64>,
}

pub async fn run(ctx: &Ctx, a: ImportArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let rows = read_rows(&a.file)?;
    let rejects_path = a.rejects.clone().unwrap_or_else(|| {
        let mut p = a.file.clone().into_os_string();
        p.push(".rejects.csv");
        p.into()
    });
    let mut rejects = csv::Writer::from_path(&rejects_path)?;
    rejects.write_record(["line", "tps_id", "contest_id", "code", "rule", "message"])?;
    let bar = if ctx.json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(rows.len() as u64)
    };
    bar.set_style(ProgressStyle::with_template(
        "{bar:40} {pos}/{len} rows {per_sec} eta {eta}",
    )?);
    let mut sum = Summary::default();
    let (complete, incomplete): (Vec<_>, Vec<_>) =
        rows.into_iter().partition(|p| p.submission.is_some());
    sum.incomplete = incomplete.len() as u64;
    bar.inc(sum.incomplete);
    // A row for a TPS already sent waits until everything before it is
    // answered, so it is decided after its earlier row, as in the file.
    let client = &ctx.client;
    super::pipeline::pipelined(
        batches(&complete, a.batch.clamp(1, 1000)),
        |chunk| {
            let batch: Vec<pb::Submission> =
                chunk.iter().filter_map(|p| p.submission.clone()).collect();
            async move { (chunk, client.submit_batch(batch).await) }
        },
        |(chunk, items)| {
            tally(&mut sum, &mut rejects, chunk, items?)?;
            bar.inc(chunk.len() as u64);
            Ok(())
        },
    )
    .await?;
    rejects.flush()?;
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    let total_rows = complete.len() as u64 + sum.incomplete;
    if ctx.json {
        print_json(&json!({
            "rows": total_rows, "accepted": sum.accepted, "already_present": sum.already_present,
            "flagged": sum.flagged, "incomplete": sum.incomplete, "rejected": sum.rejected,
            "seconds": secs, "rows_per_sec": total_rows as f64 / secs, "rejects_file": rejects_path,
        }));
    } else {
        let mut out = vec![
            vec!["accepted".to_string(), sum.accepted.to_string()],
            vec![
                "already present".to_string(),
                sum.already_present.to_string(),
            ],
            vec![
                "  of which flagged janggal".to_string(),
                sum.flagged.to_string(),
            ],
            vec![
                "incomplete (skipped)".to_string(),
                sum.incomplete.to_string(),
            ],
        ];
        out.extend(
            sum.rejected
                .iter()
                .map(|(rule, n)| vec![format!("rejected: {rule}"), n.to_string()]),
        );
        println!("{}", table(&["rows", "count"], out));
        println!(
            "{total_rows} rows in {secs:.1} s ({:.0} rows/s); refused rows in {}",
            total_rows as f64 / secs,
            rejects_path.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(line: usize, tps: &str) -> Parsed {
        Parsed {
            line,
            submission: Some(pb::Submission {
                tps_id: tps.into(),
                contest_id: "PPWP".into(),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn a_repeated_tps_starts_a_batch_that_waits_for_the_ones_before() {
        let rows: Vec<Parsed> = ["a", "b", "c", "d", "b", "e", "f"]
            .iter()
            .enumerate()
            .map(|(i, t)| row(i + 2, t))
            .collect();
        let shape: Vec<(Vec<usize>, bool)> = batches(&rows, 3)
            .iter()
            .map(|(c, barrier)| (c.iter().map(|p| p.line).collect(), *barrier))
            .collect();
        assert_eq!(
            shape,
            vec![
                (vec![2, 3, 4], false),
                (vec![5], false),
                (vec![6, 7, 8], true),
            ]
        );
    }
}
