//! `rekapctl outbox`: a station's outbox read from a terminal. `list` and
//! `export` need no network and no certificate; `retry` queues refused
//! entries again (same submission ids) and sends what waits.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use rekap_client::outbox::sender::{self, DeliverError};
use rekap_client::outbox::{Entry, Outbox};
use rekap_client::zones::rfc3339_utc;
use serde_json::json;

use crate::Ctx;
use crate::output::{opt, print_json, table};

#[derive(Args)]
pub struct Which {
    /// The outbox file (a station's --outbox; by default outbox.USER.sqlite
    /// in its certificates folder).
    #[arg(long, env = "REKAP_OUTBOX")]
    outbox: PathBuf,
}

#[derive(Subcommand)]
pub enum OutboxCmd {
    /// Every entry, in the order it was saved, with its state and receipt.
    List {
        #[command(flatten)]
        which: Which,
        /// Only entries in this state (tersimpan, terkirim, ditolak, konflik).
        #[arg(long)]
        state: Option<String>,
    },
    /// Queue refused entries again (all, or one TPS's) and send what waits.
    Retry {
        #[command(flatten)]
        which: Which,
        #[arg(long)]
        tps: Option<String>,
        /// Only queue them; a running station sends them.
        #[arg(long)]
        no_send: bool,
    },
    /// Every entry as CSV, the operator's record of what they entered.
    Export {
        #[command(flatten)]
        which: Which,
        /// Write here instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

impl OutboxCmd {
    /// Whether the command talks to the cluster at all.
    pub fn needs_cluster(&self) -> bool {
        matches!(self, OutboxCmd::Retry { no_send: false, .. })
    }
}

pub async fn run(ctx: &Ctx, cmd: OutboxCmd) -> anyhow::Result<()> {
    match cmd {
        OutboxCmd::List { which, state } => {
            let (ob, owner) = Outbox::open_existing(&which.outbox)?;
            let entries: Vec<Entry> = ob
                .entries()?
                .into_iter()
                .filter(|e| state.as_deref().is_none_or(|s| e.state.word() == s))
                .collect();
            list(ctx, &owner, &entries);
            Ok(())
        }
        OutboxCmd::Retry {
            which,
            tps,
            no_send,
        } => {
            let (ob, owner) = Outbox::open_existing(&which.outbox)?;
            // Sent as anyone else, an entry would be counted under the
            // wrong author, or refused as out of their scope.
            let me = ctx.opts.tls.as_ref().map(|t| t.user.as_str());
            if !no_send && me.is_some_and(|me| me != owner) {
                anyhow::bail!(
                    "{} is {owner}'s outbox; send it with {owner}'s certificate (--certs-dir), not {}",
                    which.outbox.display(),
                    me.unwrap_or_default()
                );
            }
            let n = ob.requeue(tps.as_deref())?;
            eprintln!("{n} refused entries queued again");
            if no_send {
                return Ok(());
            }
            match sender::deliver(&ob, &ctx.client).await {
                Ok(p) => {
                    println!(
                        "sent: {} acknowledged, {} refused",
                        p.acknowledged, p.refused
                    );
                    Ok(())
                }
                Err(DeliverError::Hold(h)) => anyhow::bail!("entries still wait: {}", h.why),
                Err(e) => Err(e.into()),
            }
        }
        OutboxCmd::Export { which, output } => {
            let (ob, owner) = Outbox::open_existing(&which.outbox)?;
            let out: Box<dyn std::io::Write> = match output {
                Some(p) => Box::new(std::fs::File::create(p)?),
                None => Box::new(std::io::stdout()),
            };
            export(out, &owner, &ob.entries()?)
        }
    }
}

fn list(ctx: &Ctx, owner: &str, entries: &[Entry]) {
    if ctx.json {
        let rows: Vec<_> = entries.iter().map(|e| row_json(owner, e)).collect();
        print_json(&json!(rows));
        return;
    }
    let rows = entries
        .iter()
        .map(|e| {
            vec![
                e.seq.to_string(),
                e.submission.tps_id.clone(),
                e.submission.contest_id.clone(),
                e.state.word().to_string(),
                opt(e.log_index),
                opt(e.revision),
                e.rule.clone().unwrap_or_default(),
                rfc3339_utc(e.saved_at_ms),
                e.submission.submission_id.clone(),
            ]
        })
        .collect();
    println!(
        "{}",
        table(
            &[
                "seq",
                "tps",
                "contest",
                "state",
                "log index",
                "revision",
                "rule",
                "saved at",
                "submission id"
            ],
            rows
        )
    );
}

fn row_json(owner: &str, e: &Entry) -> serde_json::Value {
    let s = &e.submission;
    json!({
        "seq": e.seq, "operator": owner, "submission_id": s.submission_id,
        "tps_id": s.tps_id, "contest_id": s.contest_id, "state": e.state.word(),
        "saved_at": rfc3339_utc(e.saved_at_ms), "sent_at": e.sent_at_ms.map(rfc3339_utc),
        "log_index": e.log_index, "revision": e.revision, "duplicate": e.duplicate,
        "rule": e.rule, "message": e.message, "waiting": e.waiting, "janggal": e.janggal,
        "votes": s.votes.iter().map(|v| (v.candidate_id.clone(), v.votes)).collect::<std::collections::BTreeMap<_, _>>(),
        "sah": s.sah, "tidak_sah": s.tidak_sah, "total": s.total,
    })
}

fn export(out: Box<dyn std::io::Write>, owner: &str, entries: &[Entry]) -> anyhow::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record([
        "seq",
        "operator",
        "submission_id",
        "tps_id",
        "contest_id",
        "votes",
        "sah",
        "tidak_sah",
        "total",
        "state",
        "saved_at",
        "sent_at",
        "log_index",
        "revision",
        "rule",
    ])?;
    for e in entries {
        let s = &e.submission;
        let votes: Vec<String> = s
            .votes
            .iter()
            .map(|v| format!("{}={}", v.candidate_id, v.votes))
            .collect();
        w.write_record([
            e.seq.to_string(),
            owner.to_string(),
            s.submission_id.clone(),
            s.tps_id.clone(),
            s.contest_id.clone(),
            votes.join(";"),
            opt(s.sah),
            opt(s.tidak_sah),
            opt(s.total),
            e.state.word().to_string(),
            rfc3339_utc(e.saved_at_ms),
            e.sent_at_ms.map(rfc3339_utc).unwrap_or_default(),
            e.log_index.map(|v| v.to_string()).unwrap_or_default(),
            e.revision.map(|v| v.to_string()).unwrap_or_default(),
            e.rule.clone().unwrap_or_default(),
        ])?;
    }
    w.flush()?;
    Ok(())
}
