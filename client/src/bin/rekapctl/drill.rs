//! `rekapctl children|janggal`: drill-down views for recap staff.

use clap::Args;
use rekap_client::proto as pb;
use serde_json::json;

use crate::Ctx;
use crate::output::{percent, print_json, table};
use crate::read::{RegionArgs, consistency};

#[derive(Args)]
pub struct JanggalArgs {
    #[command(flatten)]
    region: RegionArgs,
    /// Most results to list.
    #[arg(long, default_value_t = 100)]
    limit: usize,
}

fn totals_json(t: &pb::RegionTotals) -> serde_json::Value {
    json!({
        "region": t.region.as_ref().map(|r| &r.code), "name": t.region.as_ref().map(|r| &r.name),
        "candidates": t.candidates.iter().map(|c| json!({"candidate_id": c.candidate_id, "votes": c.votes})).collect::<Vec<_>>(),
        "sah": t.sah, "tidak_sah": t.tidak_sah, "total": t.total,
        "tps_reported": t.tps_reported, "tps_total": t.tps_total, "tps_janggal": t.tps_janggal,
    })
}

pub async fn children(ctx: &Ctx, a: RegionArgs) -> anyhow::Result<()> {
    let resp = ctx
        .client
        .children(&a.region, &a.contest, consistency(a.stale))
        .await?;
    let own = resp.totals.unwrap_or_default();
    if ctx.json {
        print_json(
            &json!({"totals": totals_json(&own), "children": resp.children.iter().map(totals_json).collect::<Vec<_>>()}),
        );
        return Ok(());
    }
    let mut header: Vec<String> = vec!["region".into()];
    header.extend(own.candidates.iter().map(|c| format!("{:02}", c.number)));
    header.extend(["sah", "tidak sah", "reported", "progress", "janggal"].map(String::from));
    let row = |t: &pb::RegionTotals| {
        let mut r = vec![
            t.region
                .as_ref()
                .map_or("?".into(), |r| format!("{} {}", r.code, r.name)),
        ];
        r.extend(t.candidates.iter().map(|c| c.votes.to_string()));
        r.extend([
            t.sah.to_string(),
            t.tidak_sah.to_string(),
            format!("{}/{}", t.tps_reported, t.tps_total),
            percent(t.tps_reported, t.tps_total),
            t.tps_janggal.to_string(),
        ]);
        r
    };
    let mut rows = vec![row(&own)];
    rows.extend(resp.children.iter().map(row));
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    println!("{}", table(&header, rows));
    Ok(())
}

pub async fn janggal(ctx: &Ctx, a: JanggalArgs) -> anyhow::Result<()> {
    let mut token = String::new();
    let mut items = Vec::new();
    let mut total;
    loop {
        let resp = ctx
            .client
            .janggal(pb::ListJanggalRequest {
                region_code: a.region.region.clone(),
                contest_id: a.region.contest.clone(),
                page_size: (a.limit - items.len()).clamp(1, 1000) as u32,
                page_token: token,
                consistency: consistency(a.region.stale) as i32,
            })
            .await?;
        total = resp.total_janggal;
        items.extend(resp.items);
        token = resp.next_page_token;
        if token.is_empty() || items.len() >= a.limit {
            break;
        }
    }
    if ctx.json {
        let rows: Vec<_> = items
            .iter()
            .map(|i| {
                let r = i.result.clone().unwrap_or_default();
                json!({"tps_id": i.tps.as_ref().map(|t| &t.tps_id), "revision": r.revision, "janggal": r.janggal})
            })
            .collect();
        print_json(&json!({"total_janggal": total, "items": rows}));
        return Ok(());
    }
    let rows = items
        .iter()
        .map(|i| {
            let r = i.result.clone().unwrap_or_default();
            let s = r.submission.unwrap_or_default();
            vec![
                i.tps.as_ref().map_or(String::new(), |t| t.tps_id.clone()),
                r.revision.to_string(),
                s.total.map_or("-".into(), |t| t.to_string()),
                r.janggal.join(", "),
            ]
        })
        .collect();
    println!("{}", table(&["tps", "rev", "total", "janggal"], rows));
    println!("{} of {} flagged results shown", items.len(), total);
    Ok(())
}
