//! `rekapctl result|totals|progress|missing`: the recap views.

use clap::Args;
use rekap_client::proto as pb;
use serde_json::json;

use crate::Ctx;
use crate::output::{percent, print_json, table};

#[derive(Args)]
pub struct RegionArgs {
    /// Region code; "ID" (default) for nasional.
    #[arg(long, default_value = "ID")]
    pub region: String,
    #[arg(long)]
    pub contest: String,
    /// Read this node's local state instead of a linearizable read.
    #[arg(long)]
    pub stale: bool,
}

#[derive(Args)]
pub struct ResultArgs {
    #[arg(long)]
    tps: String,
    #[arg(long)]
    contest: String,
    #[arg(long)]
    stale: bool,
}

#[derive(Args)]
pub struct MissingArgs {
    #[command(flatten)]
    region: RegionArgs,
    /// Most TPS to list (all pages are fetched up to this).
    #[arg(long, default_value_t = 100)]
    limit: usize,
}

pub fn consistency(stale: bool) -> pb::Consistency {
    if stale {
        pb::Consistency::Stale
    } else {
        pb::Consistency::Linearizable
    }
}

fn region_label(r: &Option<pb::Region>) -> String {
    r.as_ref()
        .map_or_else(|| "?".into(), |r| format!("{} {}", r.code, r.name))
}

pub async fn result(ctx: &Ctx, a: ResultArgs) -> anyhow::Result<()> {
    let r = ctx
        .client
        .tps_result(&a.tps, &a.contest, consistency(a.stale))
        .await?;
    let s = r.submission.unwrap_or_default();
    if ctx.json {
        let votes: serde_json::Map<String, serde_json::Value> = s
            .votes
            .iter()
            .map(|v| (v.candidate_id.clone(), json!(v.votes)))
            .collect();
        print_json(&json!({
            "tps_id": s.tps_id, "contest_id": s.contest_id, "votes": votes, "sah": s.sah,
            "tidak_sah": s.tidak_sah, "total": s.total, "submission_id": s.submission_id,
            "revision": r.revision, "log_index": r.log_index,
        }));
    } else {
        let mut rows: Vec<Vec<String>> = s
            .votes
            .iter()
            .map(|v| vec![format!("paslon {}", v.candidate_id), v.votes.to_string()])
            .collect();
        for (k, v) in [
            ("sah", s.sah),
            ("tidak sah", s.tidak_sah),
            ("total", s.total),
        ] {
            rows.push(vec![k.into(), v.map_or("-".into(), |v| v.to_string())]);
        }
        println!(
            "TPS {} {} (revision {}, log index {})",
            s.tps_id, s.contest_id, r.revision, r.log_index
        );
        println!("{}", table(&["", "votes"], rows));
    }
    Ok(())
}

pub async fn totals(ctx: &Ctx, a: RegionArgs) -> anyhow::Result<()> {
    let resp = ctx
        .client
        .totals(&a.region, &a.contest, consistency(a.stale))
        .await?;
    let t = resp.totals.unwrap_or_default();
    if ctx.json {
        print_json(&json!({
            "region": t.region.as_ref().map(|r| &r.code), "contest_id": t.contest_id,
            "candidates": t.candidates.iter().map(|c| json!({"candidate_id": c.candidate_id, "number": c.number, "name": c.name, "votes": c.votes})).collect::<Vec<_>>(),
            "sah": t.sah, "tidak_sah": t.tidak_sah, "total": t.total,
            "tps_reported": t.tps_reported, "tps_total": t.tps_total, "applied_index": resp.applied_index,
        }));
        return Ok(());
    }
    println!("{} — {}", region_label(&t.region), t.contest_id);
    let mut rows: Vec<Vec<String>> = t
        .candidates
        .iter()
        .map(|c| {
            vec![
                format!("{:02} {}", c.number, c.name),
                c.votes.to_string(),
                percent(c.votes, t.sah),
            ]
        })
        .collect();
    rows.push(vec!["sah".into(), t.sah.to_string(), String::new()]);
    rows.push(vec![
        "tidak sah".into(),
        t.tidak_sah.to_string(),
        String::new(),
    ]);
    rows.push(vec!["total".into(), t.total.to_string(), String::new()]);
    println!("{}", table(&["", "votes", "share"], rows));
    println!(
        "TPS reported {}/{} ({})",
        t.tps_reported,
        t.tps_total,
        percent(t.tps_reported, t.tps_total)
    );
    Ok(())
}

pub async fn progress(ctx: &Ctx, a: RegionArgs) -> anyhow::Result<()> {
    let resp = ctx
        .client
        .progress(&a.region, &a.contest, consistency(a.stale))
        .await?;
    let p = resp.progress.unwrap_or_default();
    if ctx.json {
        let one = |p: &pb::RegionProgress| {
            json!({"region": p.region.as_ref().map(|r| &r.code), "name": p.region.as_ref().map(|r| &r.name),
                   "tps_reported": p.tps_reported, "tps_total": p.tps_total})
        };
        print_json(
            &json!({"progress": one(&p), "children": resp.children.iter().map(one).collect::<Vec<_>>(), "applied_index": resp.applied_index}),
        );
        return Ok(());
    }
    let row = |p: &pb::RegionProgress| {
        vec![
            region_label(&p.region),
            p.tps_reported.to_string(),
            p.tps_total.to_string(),
            percent(p.tps_reported, p.tps_total),
        ]
    };
    let mut rows = vec![row(&p)];
    rows.extend(resp.children.iter().map(row));
    println!(
        "{}",
        table(&["region", "reported", "tps", "progress"], rows)
    );
    Ok(())
}

pub async fn missing(ctx: &Ctx, a: MissingArgs) -> anyhow::Result<()> {
    let mut token = String::new();
    let mut tps = Vec::new();
    let mut total;
    loop {
        let req = pb::ListMissingTpsRequest {
            region_code: a.region.region.clone(),
            contest_id: a.region.contest.clone(),
            page_size: (a.limit - tps.len()).min(1000) as u32,
            page_token: token,
            consistency: consistency(a.region.stale) as i32,
        };
        let resp = ctx.client.missing(req).await?;
        total = resp.total_missing;
        tps.extend(resp.tps);
        token = resp.next_page_token;
        if token.is_empty() || tps.len() >= a.limit {
            break;
        }
    }
    if ctx.json {
        print_json(&json!({
            "total_missing": total,
            "tps": tps.iter().map(|t| json!({"tps_id": t.tps_id, "desa_code": t.desa_code, "number": t.number, "dpt": t.dpt})).collect::<Vec<_>>(),
        }));
    } else {
        let rows = tps
            .iter()
            .map(|t| vec![t.tps_id.clone(), t.desa_code.clone(), t.number.to_string()])
            .collect();
        println!("{}", table(&["tps", "desa", "no"], rows));
        println!("{} of {} missing TPS shown", tps.len(), total);
    }
    Ok(())
}
