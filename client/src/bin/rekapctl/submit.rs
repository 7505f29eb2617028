//! `rekapctl submit`: one TPS result from the C.Hasil form.

use clap::Args;
use rekap_client::proto as pb;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::Ctx;
use crate::output::print_json;

/// The numbers of a C.Hasil form, as flags.
#[derive(Args)]
pub struct Numbers {
    /// Votes per candidate, e.g. "01=120,02=95".
    #[arg(long)]
    votes: String,
    #[arg(long)]
    sah: i64,
    #[arg(long)]
    tidak_sah: i64,
    #[arg(long)]
    total: i64,
}

impl Numbers {
    pub fn to_submission(&self, tps: &str, contest: &str) -> anyhow::Result<pb::Submission> {
        let mut votes = Vec::new();
        for part in self
            .votes
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            let (cand, n) = part
                .split_once('=')
                .ok_or_else(|| anyhow::anyhow!("--votes wants candidate=votes pairs"))?;
            votes.push(pb::CandidateVotes {
                candidate_id: cand.trim().into(),
                votes: n.trim().parse()?,
            });
        }
        Ok(pb::Submission {
            tps_id: tps.into(),
            contest_id: contest.into(),
            votes,
            sah: Some(self.sah),
            tidak_sah: Some(self.tidak_sah),
            total: Some(self.total),
            ..Default::default()
        })
    }
}

#[derive(Args)]
pub struct SubmitArgs {
    #[arg(long)]
    tps: String,
    #[arg(long)]
    contest: String,
    #[command(flatten)]
    numbers: Numbers,
    /// Submission id; default derived from the TPS, contest and numbers, so
    /// running the same command twice never counts twice.
    #[arg(long)]
    id: Option<String>,
}

pub async fn run(ctx: &Ctx, a: SubmitArgs) -> anyhow::Result<()> {
    let mut s = a.numbers.to_submission(&a.tps, &a.contest)?;
    s.submission_id = a.id.unwrap_or_else(|| {
        let content = format!(
            "{}|{}|{}|{}|{}|{}",
            a.tps, a.contest, a.numbers.votes, a.numbers.sah, a.numbers.tidak_sah, a.numbers.total
        );
        let digest = Sha256::digest(content.as_bytes());
        let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        format!("cli:{hex}")
    });
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
            "original_submission_id": o.original_submission_id, "janggal": o.janggal,
        }));
    } else {
        println!(
            "{status}: TPS {} {} revision {} at log index {} (submission {})",
            o.tps_id, o.contest_id, o.revision, o.log_index, o.original_submission_id
        );
        if !o.janggal.is_empty() {
            println!("janggal: {}", o.janggal.join(", "));
        }
    }
    Ok(())
}
