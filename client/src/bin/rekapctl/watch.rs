//! `rekapctl watch`: a live view of a region's progress and totals, redrawn
//! on every change the cluster sends (`Tally.Watch`). On a terminal the
//! screen is redrawn in place; otherwise each view is printed in turn, or
//! as one JSON line with `--json`.

use std::io::{IsTerminal, Write};

use clap::Args;
use rekap_client::proto as pb;
use serde_json::json;

use crate::Ctx;
use crate::output::{percent, table};

#[derive(Args)]
pub struct WatchArgs {
    /// Region code; "ID" (default) for nasional.
    #[arg(long, default_value = "ID")]
    region: String,
    #[arg(long)]
    contest: String,
    /// Stop after this many views (0: watch until interrupted).
    #[arg(long, default_value_t = 0)]
    count: u64,
    /// Stop once every TPS of the region has reported.
    #[arg(long)]
    until_complete: bool,
    /// Resume from the applied index of a view seen before.
    #[arg(long, default_value_t = 0)]
    from_index: u64,
}

pub async fn run(ctx: &Ctx, a: WatchArgs) -> anyhow::Result<()> {
    let mut w = ctx
        .client
        .watch(&a.region, &a.contest)
        .resume_from(a.from_index);
    let redraw = !ctx.json && std::io::stdout().is_terminal();
    let mut shown = 0u64;
    loop {
        let u = w.next().await?;
        let served_by = w.serving().unwrap_or("?").to_string();
        let mut out = std::io::stdout().lock();
        if ctx.json {
            writeln!(out, "{}", as_json(&u))?;
        } else {
            if redraw {
                // Clear the screen and go home, as watch(1) does.
                write!(out, "\x1b[2J\x1b[H")?;
            }
            writeln!(out, "{}", render(&u, &served_by))?;
        }
        out.flush()?;
        shown += 1;
        let t = u.totals.unwrap_or_default();
        let complete = t.tps_total > 0 && t.tps_reported == t.tps_total;
        if (a.count > 0 && shown >= a.count) || (a.until_complete && complete) {
            return Ok(());
        }
    }
}

fn name(r: &Option<pb::Region>) -> String {
    r.as_ref()
        .map_or_else(|| "?".into(), |r| format!("{} {}", r.code, r.name))
}

/// A bar of `width` cells for `part` of `whole`.
fn bar(part: u64, whole: u64, width: usize) -> String {
    let filled = if whole == 0 {
        0
    } else {
        ((part as f64 / whole as f64) * width as f64).round() as usize
    };
    let filled = filled.min(width);
    format!("{}{}", "█".repeat(filled), "░".repeat(width - filled))
}

fn render(u: &pb::WatchUpdate, served_by: &str) -> String {
    let t = u.totals.clone().unwrap_or_default();
    let now = time::OffsetDateTime::now_utc();
    let mut s = format!(
        "{} — {}   as of log index {} (node {} at {}), {:02}:{:02}:{:02} UTC\n",
        name(&t.region),
        t.contest_id,
        u.applied_index,
        u.node_id,
        served_by,
        now.hour(),
        now.minute(),
        now.second()
    );
    let mut rows: Vec<Vec<String>> = t
        .candidates
        .iter()
        .map(|c| {
            vec![
                format!("{:02} {}", c.number, c.name),
                c.votes.to_string(),
                percent(c.votes, t.sah),
                bar(c.votes, t.sah, 20),
            ]
        })
        .collect();
    for (k, v) in [
        ("sah", t.sah),
        ("tidak sah", t.tidak_sah),
        ("total", t.total),
    ] {
        rows.push(vec![k.into(), v.to_string(), String::new(), String::new()]);
    }
    s += &table(&["paslon", "suara", "share", ""], rows);
    s += &format!(
        "\nTPS masuk {}/{} ({}), janggal {}\n",
        t.tps_reported,
        t.tps_total,
        percent(t.tps_reported, t.tps_total),
        t.tps_janggal
    );
    let rows = u
        .children
        .iter()
        .map(|c| {
            vec![
                name(&c.region),
                format!("{}/{}", c.tps_reported, c.tps_total),
                percent(c.tps_reported, c.tps_total),
                bar(c.tps_reported, c.tps_total, 20),
            ]
        })
        .collect();
    s += &table(&["wilayah", "TPS masuk", "progress", ""], rows);
    s
}

fn as_json(u: &pb::WatchUpdate) -> serde_json::Value {
    let one = |t: &pb::RegionTotals| {
        json!({
            "region": t.region.as_ref().map(|r| &r.code),
            "name": t.region.as_ref().map(|r| &r.name),
            "votes": t.candidates.iter().map(|c| json!({"candidate_id": c.candidate_id, "votes": c.votes})).collect::<Vec<_>>(),
            "sah": t.sah, "tidak_sah": t.tidak_sah, "total": t.total,
            "tps_reported": t.tps_reported, "tps_total": t.tps_total, "tps_janggal": t.tps_janggal,
        })
    };
    let t = u.totals.clone().unwrap_or_default();
    json!({
        "applied_index": u.applied_index,
        "changed_index": u.changed_index,
        "node_id": u.node_id,
        "totals": one(&t),
        "children": u.children.iter().map(one).collect::<Vec<_>>(),
    })
}
