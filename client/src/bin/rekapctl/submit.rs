//! `rekapctl submit`: one TPS result from the C.Hasil form.

use clap::Args;
use rekap_client::proto as pb;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::Ctx;
use crate::output::print_json;

#[derive(Args)]
pub struct SubmitArgs {
    #[arg(long)]
    tps: String,
    #[arg(long)]
    contest: String,
    /// Votes per candidate, e.g. "01=120,02=95".
    #[arg(long)]
    votes: String,
    #[arg(long)]
    sah: i64,
    #[arg(long)]
    tidak_sah: i64,
    #[arg(long)]
    total: i64,
    /// Submission id; default derived from the TPS, contest and numbers, so
    /// running the same command twice never counts twice.
    #[arg(long)]
    id: Option<String>,
}

pub async fn run(ctx: &Ctx, a: SubmitArgs) -> anyhow::Result<()> {
    let mut votes = Vec::new();
    for part in a.votes.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (cand, n) = part
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--votes wants candidate=votes pairs"))?;
        votes.push(pb::CandidateVotes {
            candidate_id: cand.trim().into(),
            votes: n.trim().parse()?,
        });
    }
    let id = a.id.unwrap_or_else(|| {
        let content = format!(
            "{}|{}|{}|{}|{}|{}",
            a.tps, a.contest, a.votes, a.sah, a.tidak_sah, a.total
        );
        let digest = Sha256::digest(content.as_bytes());
        let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        format!("cli:{hex}")
    });
    let s = pb::Submission {
        submission_id: id,
        tps_id: a.tps,
        contest_id: a.contest,
        votes,
        sah: Some(a.sah),
        tidak_sah: Some(a.tidak_sah),
        total: Some(a.total),
    };
    let o = ctx.client.submit(s).await?;
    let status = if o.status == pb::SubmitStatus::Duplicate as i32 {
        "duplicate"
    } else {
        "accepted"
    };
    if ctx.json {
        print_json(&json!({
            "status": status, "submission_id": o.submission_id, "tps_id": o.tps_id,
            "contest_id": o.contest_id, "revision": o.revision, "log_index": o.log_index,
            "original_submission_id": o.original_submission_id,
        }));
    } else {
        println!(
            "{status}: TPS {} {} revision {} at log index {} (submission {})",
            o.tps_id, o.contest_id, o.revision, o.log_index, o.original_submission_id
        );
    }
    Ok(())
}
