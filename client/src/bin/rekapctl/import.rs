//! `rekapctl import`: submit a results CSV in batches.
//!
//! Columns: `tps_id,contest_id,sah,tidak_sah,total` and one `paslon_<id>`
//! column per candidate. Each row's submission id is derived from its TPS,
//! contest and numbers, so rerunning an import (or resuming one that was
//! interrupted) never counts anything twice.

use std::collections::BTreeMap;
use std::path::PathBuf;

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
    /// Submissions per SubmitBatch request.
    #[arg(long, default_value_t = 500)]
    batch: usize,
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

fn read_rows(file: &PathBuf) -> anyhow::Result<Vec<pb::Submission>> {
    let mut r = csv::Reader::from_path(file)?;
    let headers = r.headers()?.clone();
    let mut out = Vec::new();
    for (i, rec) in r.records().enumerate() {
        let rec = rec?;
        let mut row: BTreeMap<&str, &str> = BTreeMap::new();
        for (h, v) in headers.iter().zip(rec.iter()) {
            row.insert(h, v.trim());
        }
        let get = |k: &str| row.get(k).copied().unwrap_or("");
        let num = |k: &str| -> anyhow::Result<Option<i64>> {
            let v = get(k);
            if v.is_empty() {
                Ok(None)
            } else {
                Ok(Some(
                    v.parse()
                        .map_err(|e| anyhow::anyhow!("row {}: {k}: {e}", i + 2))?,
                ))
            }
        };
        let mut votes = Vec::new();
        for (h, v) in &row {
            if let Some(id) = h.strip_prefix("paslon_") {
                votes.push(pb::CandidateVotes {
                    candidate_id: id.to_string(),
                    votes: v
                        .parse()
                        .map_err(|e| anyhow::anyhow!("row {}: {h}: {e}", i + 2))?,
                });
            }
        }
        let mut s = pb::Submission {
            submission_id: String::new(),
            tps_id: get("tps_id").into(),
            contest_id: get("contest_id").into(),
            votes,
            sah: num("sah")?,
            tidak_sah: num("tidak_sah")?,
            total: num("total")?,
        };
        s.submission_id = derived_id(&s);
        out.push(s);
    }
    Ok(out)
}

pub async fn run(ctx: &Ctx, a: ImportArgs) -> anyhow::Result<()> {
    let rows = read_rows(&a.file)?;
    let bar = if ctx.json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(rows.len() as u64)
    };
    bar.set_style(ProgressStyle::with_template(
        "{bar:40} {pos}/{len} rows {per_sec} eta {eta}",
    )?);
    let (mut accepted, mut duplicate) = (0u64, 0u64);
    let mut rejected: BTreeMap<String, u64> = BTreeMap::new();
    for chunk in rows.chunks(a.batch.clamp(1, 1000)) {
        let items = ctx.client.submit_batch(chunk.to_vec()).await?;
        for item in items {
            match item.result {
                Some(pb::batch_item::Result::Outcome(o))
                    if o.status == pb::SubmitStatus::Duplicate as i32 =>
                {
                    duplicate += 1
                }
                Some(pb::batch_item::Result::Outcome(_)) => accepted += 1,
                Some(pb::batch_item::Result::Rejection(r)) => {
                    *rejected.entry(r.rule).or_default() += 1
                }
                None => *rejected.entry("no_answer".into()).or_default() += 1,
            }
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    if ctx.json {
        print_json(
            &json!({"rows": rows.len(), "accepted": accepted, "already_present": duplicate, "rejected": rejected}),
        );
    } else {
        let mut out = vec![
            vec!["accepted".to_string(), accepted.to_string()],
            vec!["already present".to_string(), duplicate.to_string()],
        ];
        out.extend(
            rejected
                .iter()
                .map(|(rule, n)| vec![format!("rejected: {rule}"), n.to_string()]),
        );
        println!("{}", table(&["rows", "count"], out));
    }
    Ok(())
}
