//! `rekapctl correct|clear-flags|review|object|history`: accountable
//! changes to a result and the record of every revision, with who made it.

use clap::{Args, ValueEnum};
use rekap_client::proto as pb;
use rekap_client::zones::{Zone, rfc3339_utc};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::Ctx;
use crate::output::{print_json, table};
use crate::submit::Numbers;

#[derive(Clone, Copy, ValueEnum)]
pub enum Reason {
    EntryError,
    FormMisread,
    /// A recount or a decision of the recap meeting (pleno).
    Recount,
    /// A re-vote (pemungutan suara ulang).
    Psu,
    CourtRuling,
}

impl Reason {
    fn to_pb(self) -> pb::CorrectionReason {
        match self {
            Reason::EntryError => pb::CorrectionReason::EntryError,
            Reason::FormMisread => pb::CorrectionReason::FormMisread,
            Reason::Recount => pb::CorrectionReason::Recount,
            Reason::Psu => pb::CorrectionReason::Psu,
            Reason::CourtRuling => pb::CorrectionReason::CourtRuling,
        }
    }
}

fn reason_name(r: i32) -> &'static str {
    match pb::CorrectionReason::try_from(r).unwrap_or(pb::CorrectionReason::Unspecified) {
        pb::CorrectionReason::EntryError => "entry error",
        pb::CorrectionReason::FormMisread => "form misread",
        pb::CorrectionReason::Recount => "recount/pleno",
        pb::CorrectionReason::Psu => "PSU",
        pb::CorrectionReason::CourtRuling => "court ruling",
        pb::CorrectionReason::Unspecified => "",
    }
}

fn kind_name(k: i32) -> &'static str {
    match pb::RevisionKind::try_from(k).unwrap_or(pb::RevisionKind::Unspecified) {
        pb::RevisionKind::Submitted => "submitted",
        pb::RevisionKind::Corrected => "corrected",
        pb::RevisionKind::FlagsCleared => "flags cleared",
        pb::RevisionKind::Reviewed => "reviewed",
        pb::RevisionKind::Objected => "objection",
        pb::RevisionKind::Unspecified => "?",
    }
}

/// Which revision a change replaces, and why.
#[derive(Args)]
pub struct Change {
    #[arg(long)]
    tps: String,
    #[arg(long)]
    contest: String,
    /// The revision being replaced (the current one; see `history`).
    #[arg(long)]
    replaces: u64,
    #[arg(long, value_enum)]
    reason: Reason,
    /// Who decided, where and why.
    #[arg(long, default_value = "")]
    note: String,
    /// SHA-256 (hex) of the evidence.
    #[arg(long, default_value = "")]
    evidence: String,
    /// Request id; default derived from the change, so rerunning the same
    /// command never applies it twice.
    #[arg(long)]
    id: Option<String>,
}

/// A request id derived from what a change says, so rerunning the same
/// command never applies it twice; `given` wins when set.
fn derived_id(given: &Option<String>, what: &str, content: &str) -> String {
    given.clone().unwrap_or_else(|| {
        let digest = Sha256::digest(format!("{what}|{content}").as_bytes());
        let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        format!("{what}:{hex}")
    })
}

impl Change {
    fn request_id(&self, what: &str, extra: &str) -> String {
        let content = format!(
            "{}|{}|{}|{}|{extra}",
            self.tps, self.contest, self.replaces, self.note
        );
        derived_id(&self.id, what, &content)
    }
}

#[derive(Args)]
pub struct CorrectArgs {
    #[command(flatten)]
    change: Change,
    #[command(flatten)]
    numbers: Numbers,
}

/// A review or an objection: a revision that keeps the numbers.
#[derive(Args)]
pub struct Remark {
    #[arg(long)]
    tps: String,
    #[arg(long)]
    contest: String,
    /// The current revision (see `history`).
    #[arg(long)]
    replaces: u64,
    /// For a review, a note; for an objection, what is wrong (required).
    #[arg(long, default_value = "")]
    text: String,
    /// SHA-256 (hex) of the evidence (objections).
    #[arg(long, default_value = "")]
    evidence: String,
    /// Request id; default derived from the remark, so rerunning it is harmless.
    #[arg(long)]
    id: Option<String>,
}

impl Remark {
    fn request_id(&self, what: &str) -> String {
        let content = format!(
            "{}|{}|{}|{}",
            self.tps, self.contest, self.replaces, self.text
        );
        derived_id(&self.id, what, &content)
    }
}

pub async fn review(ctx: &Ctx, r: Remark) -> anyhow::Result<()> {
    let req = pb::ReviewRequest {
        request_id: r.request_id("review"),
        tps_id: r.tps.clone(),
        contest_id: r.contest.clone(),
        replaces_revision: r.replaces,
        note: r.text.clone(),
    };
    show(ctx, ctx.client.mark_reviewed(req).await?)
}

pub async fn object(ctx: &Ctx, r: Remark) -> anyhow::Result<()> {
    let req = pb::ObjectionRequest {
        request_id: r.request_id("object"),
        tps_id: r.tps.clone(),
        contest_id: r.contest.clone(),
        replaces_revision: r.replaces,
        text: r.text.clone(),
        evidence_sha256: r.evidence.clone(),
    };
    show(ctx, ctx.client.file_objection(req).await?)
}

/// A principal as people read it.
pub fn who(p: &Option<pb::Principal>) -> String {
    p.as_ref().map_or_else(|| "-".into(), |p| p.name.clone())
}

#[derive(Args)]
pub struct HistoryArgs {
    #[arg(long)]
    tps: String,
    #[arg(long)]
    contest: String,
    #[arg(long)]
    stale: bool,
}

pub async fn correct(ctx: &Ctx, a: CorrectArgs) -> anyhow::Result<()> {
    let numbers = a.numbers.to_submission(&a.change.tps, &a.change.contest)?;
    let c = &a.change;
    let req = pb::CorrectRequest {
        request_id: c.request_id("fix", &format!("{numbers:?}")),
        tps_id: c.tps.clone(),
        contest_id: c.contest.clone(),
        replaces_revision: c.replaces,
        reason: c.reason.to_pb() as i32,
        note: c.note.clone(),
        evidence_sha256: c.evidence.clone(),
        submission: Some(numbers),
    };
    show(ctx, ctx.client.correct(req).await?)
}

pub async fn clear_flags(ctx: &Ctx, c: Change) -> anyhow::Result<()> {
    let req = pb::ClearFlagsRequest {
        request_id: c.request_id("clear", ""),
        tps_id: c.tps.clone(),
        contest_id: c.contest.clone(),
        replaces_revision: c.replaces,
        reason: c.reason.to_pb() as i32,
        note: c.note.clone(),
        evidence_sha256: c.evidence.clone(),
    };
    show(ctx, ctx.client.clear_flags(req).await?)
}

fn show(ctx: &Ctx, r: pb::CorrectResponse) -> anyhow::Result<()> {
    let res = r.result.unwrap_or_default();
    if ctx.json {
        print_json(
            &json!({"revision": res.revision, "log_index": res.log_index, "janggal": res.janggal, "duplicate": r.duplicate}),
        );
    } else {
        let what = if r.duplicate {
            "already applied"
        } else {
            "applied"
        };
        println!(
            "{what}: now at revision {} (log index {})",
            res.revision, res.log_index
        );
        if !res.janggal.is_empty() {
            println!("janggal: {}", res.janggal.join(", "));
        }
    }
    Ok(())
}

pub async fn history(ctx: &Ctx, a: HistoryArgs) -> anyhow::Result<()> {
    let consistency = if a.stale {
        pb::Consistency::Stale
    } else {
        pb::Consistency::Linearizable
    };
    let resp = ctx
        .client
        .tps_history(&a.tps, &a.contest, consistency)
        .await?;
    let zone = Zone::from_name(&resp.time_zone).unwrap_or(Zone::Wib);
    let revs = resp.revisions;
    if ctx.json {
        let rows: Vec<_> = revs
            .iter()
            .map(|r| {
                let s = r.submission.clone().unwrap_or_default();
                json!({
                    "revision": r.revision, "kind": kind_name(r.kind), "log_index": r.log_index, "by": who(&r.author),
                    "at": rfc3339_utc(r.at_ms), "at_local": zone.show(r.at_ms),
                    "request_id": s.submission_id, "reason": reason_name(r.reason), "note": r.note,
                    "evidence_sha256": r.evidence_sha256, "janggal": r.janggal,
                    "votes": s.votes.iter().map(|v| json!({"candidate_id": v.candidate_id, "votes": v.votes})).collect::<Vec<_>>(),
                    "sah": s.sah, "tidak_sah": s.tidak_sah, "total": s.total,
                })
            })
            .collect();
        print_json(&json!(rows));
        return Ok(());
    }
    let rows = revs
        .iter()
        .map(|r| {
            let s = r.submission.clone().unwrap_or_default();
            let votes: Vec<String> = s
                .votes
                .iter()
                .map(|v| format!("{}={}", v.candidate_id, v.votes))
                .collect();
            vec![
                r.revision.to_string(),
                kind_name(r.kind).into(),
                who(&r.author),
                zone.show(r.at_ms),
                votes.join(" "),
                format!("{}/{}/{}", opt(s.sah), opt(s.tidak_sah), opt(s.total)),
                reason_name(r.reason).into(),
                r.note.clone(),
                r.janggal.join(", "),
                r.log_index.to_string(),
            ]
        })
        .collect();
    println!(
        "{}",
        table(
            &[
                "rev",
                "kind",
                "by",
                "at",
                "votes",
                "sah/tidak sah/total",
                "reason",
                "note",
                "janggal",
                "log"
            ],
            rows
        )
    );
    Ok(())
}

fn opt(v: Option<i64>) -> String {
    v.map_or("-".into(), |v| v.to_string())
}
