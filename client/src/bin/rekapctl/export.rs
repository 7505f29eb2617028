//! `rekapctl export`: a region's current per-TPS results as CSV or JSON
//! Lines (open data), and optionally the audit log that proves them.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use rekap_client::proto as pb;
use rekap_client::zones::rfc3339_utc;
use serde_json::json;

use crate::Ctx;
use crate::revise::who;

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Csv,
    Jsonl,
}

#[derive(Args)]
pub struct ExportArgs {
    #[arg(long, default_value = "ID")]
    region: String,
    #[arg(long)]
    contest: String,
    #[arg(long, value_enum, default_value = "csv")]
    format: Format,
    /// Results file.
    #[arg(long)]
    out: PathBuf,
    /// Also write the audit log (JSON Lines: index, sequence, command_hex,
    /// head) from the first endpoint's node to this file.
    #[arg(long)]
    audit: Option<PathBuf>,
}

/// A number field, or an empty one.
fn num<W: Write>(w: &mut csv::Writer<W>, v: Option<impl std::fmt::Display>) -> csv::Result<()> {
    use std::fmt::Write as _;
    let mut buf = String::with_capacity(20);
    if let Some(v) = v {
        let _ = write!(buf, "{v}");
    }
    w.write_field(buf)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub async fn run(ctx: &Ctx, a: ExportArgs) -> anyhow::Result<()> {
    let file = std::fs::File::create(&a.out)?;
    let (mut csv_out, mut jsonl) = match a.format {
        Format::Csv => (Some(csv::Writer::from_writer(file)), None),
        Format::Jsonl => (None, Some(std::io::BufWriter::new(file))),
    };
    let mut header_done = false;
    let mut count = 0u64;
    // One stream from one consistent view: every chunk carries the same
    // applied index.
    let mut stream = ctx
        .client
        .export_results(pb::ExportResultsRequest {
            region_code: a.region.clone(),
            contest_id: a.contest.clone(),
            consistency: pb::Consistency::Linearizable as i32,
        })
        .await?;
    let mut view_index = None;
    while let Some(page) = stream.message().await? {
        if *view_index.get_or_insert(page.applied_index) != page.applied_index {
            anyhow::bail!("the export's chunks come from different views of the state");
        }
        for item in page.items {
            let t = item.tps.unwrap_or_default();
            let mut r = item.result.unwrap_or_default();
            let s = r.submission.take().unwrap_or_default();
            count += 1;
            match csv_out.as_mut() {
                Some(w) => {
                    if !header_done {
                        let mut h = vec![
                            "tps_id".to_string(),
                            "desa_code".into(),
                            "tps_no".into(),
                            "revision".into(),
                            "log_index".into(),
                        ];
                        h.extend(s.votes.iter().map(|v| format!("paslon_{}", v.candidate_id)));
                        h.extend(
                            [
                                "sah",
                                "tidak_sah",
                                "total",
                                "janggal",
                                "submission_id",
                                "submitted_by",
                                "changed_by",
                                "submitted_at",
                                "changed_at",
                            ]
                            .map(String::from),
                        );
                        w.write_record(&h)?;
                        header_done = true;
                    }
                    // Field by field: no row of owned strings per result.
                    w.write_field(&t.tps_id)?;
                    w.write_field(&t.desa_code)?;
                    num(w, Some(t.number))?;
                    num(w, Some(r.revision))?;
                    num(w, Some(r.log_index))?;
                    for v in &s.votes {
                        num(w, Some(v.votes))?;
                    }
                    num(w, s.sah)?;
                    num(w, s.tidak_sah)?;
                    num(w, s.total)?;
                    w.write_field(r.janggal.join(";"))?;
                    w.write_field(&s.submission_id)?;
                    w.write_field(who(&r.submitted_by))?;
                    w.write_field(who(&r.changed_by))?;
                    w.write_field(rfc3339_utc(r.submitted_at_ms))?;
                    w.write_field(rfc3339_utc(r.changed_at_ms))?;
                    w.write_record(None::<&[u8]>)?;
                }
                None => {
                    let file = jsonl.as_mut().expect("one of the two outputs");
                    let v = json!({
                        "tps_id": t.tps_id, "desa_code": t.desa_code, "tps_no": t.number,
                        "contest_id": s.contest_id, "revision": r.revision, "log_index": r.log_index,
                        "votes": s.votes.iter().map(|v| (v.candidate_id.clone(), v.votes)).collect::<std::collections::BTreeMap<_, _>>(),
                        "sah": s.sah, "tidak_sah": s.tidak_sah, "total": s.total,
                        "dpt": s.dpt, "dptb": s.dptb, "dpk": s.dpk, "users_total": s.users_total,
                        "ballots_received": s.ballots_received, "ballots_used": s.ballots_used,
                        "janggal": r.janggal, "submission_id": s.submission_id,
                        "submitted_by": who(&r.submitted_by), "changed_by": who(&r.changed_by),
                        "submitted_at": rfc3339_utc(r.submitted_at_ms), "changed_at": rfc3339_utc(r.changed_at_ms),
                    });
                    writeln!(file, "{v}")?;
                }
            }
        }
    }
    if let Some(w) = csv_out.as_mut() {
        w.flush()?;
    }
    if let Some(f) = jsonl.as_mut() {
        f.flush()?;
    }
    eprintln!(
        "{count} results written to {} (state as of log index {})",
        a.out.display(),
        view_index.unwrap_or(0)
    );
    if let Some(path) = a.audit {
        let node = ctx.client.endpoints()[0].clone();
        let mut out = std::io::BufWriter::new(std::fs::File::create(&path)?);
        let (mut after, mut entries) = (0u64, 0u64);
        loop {
            let page = ctx.client.audit_log_of(&node, after, 1000).await?;
            let Some(last) = page.last() else { break };
            after = last.index;
            for e in &page {
                let v = json!({"index": e.index, "sequence": e.sequence, "command_hex": hex(&e.command), "head": e.head});
                writeln!(out, "{v}")?;
                entries += 1;
            }
        }
        out.flush()?;
        let head = ctx.client.chain_head_of(&node, None).await?;
        eprintln!(
            "{entries} audit entries from {node} written to {}; chain head {} at log index {}",
            path.display(),
            head.head,
            head.index
        );
    }
    Ok(())
}
