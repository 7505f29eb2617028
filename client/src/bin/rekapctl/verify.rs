//! `rekapctl verify`: do all nodes hold the same audit chain?
//!
//! Asks every node for its applied index, compares the chain heads at the
//! lowest index all of them have applied, and on disagreement searches for
//! the first log index where the chains part.

use std::collections::BTreeMap;

use serde_json::json;

use crate::Ctx;
use crate::output::{print_json, table};

/// Every reachable node's address.
async fn nodes(ctx: &Ctx) -> Vec<String> {
    crate::discover::discover(&ctx.client)
        .await
        .into_iter()
        .filter(|p| p.answer.is_ok())
        .map(|p| p.addr)
        .collect()
}

async fn heads_at(
    ctx: &Ctx,
    addrs: &[String],
    index: u64,
) -> anyhow::Result<BTreeMap<String, (u64, String)>> {
    let mut out = BTreeMap::new();
    for a in addrs {
        let h = ctx.client.chain_head_of(a, Some(index)).await?;
        out.insert(a.clone(), (h.index, h.head));
    }
    Ok(out)
}

fn agree(heads: &BTreeMap<String, (u64, String)>) -> bool {
    let mut it = heads.values();
    let first = it.next();
    it.all(|h| Some(h) == first)
}

pub async fn run(ctx: &Ctx) -> anyhow::Result<()> {
    let addrs = nodes(ctx).await;
    let mut latest = BTreeMap::new();
    for a in &addrs {
        match ctx.client.chain_head_of(a, None).await {
            Ok(h) => {
                latest.insert(a.clone(), h);
            }
            Err(e) => eprintln!("{a}: unreachable ({:?}), left out", e.code()),
        }
    }
    let live: Vec<String> = latest.keys().cloned().collect();
    anyhow::ensure!(!live.is_empty(), "no node answered");
    let common = latest.values().map(|h| h.applied_index).min().unwrap_or(0);
    let at = heads_at(ctx, &live, common).await?;
    let ok = agree(&at);
    let mut divergence = None;
    if !ok {
        // The chains agree at 0; find the first index where they do not.
        let (mut lo, mut hi) = (0u64, common);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if agree(&heads_at(ctx, &live, mid).await?) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        divergence = Some(hi);
    }
    if ctx.json {
        print_json(&json!({
            "agree": ok, "compared_at_index": common, "first_divergence_at": divergence,
            "nodes": at.iter().map(|(a, (i, h))| json!({"addr": a, "applied_index": latest[a].applied_index, "chain_index": i, "head": h, "commands": latest[a].commands})).collect::<Vec<_>>(),
        }));
    } else {
        let rows = at
            .iter()
            .map(|(a, (i, h))| {
                vec![
                    a.clone(),
                    latest[a].applied_index.to_string(),
                    i.to_string(),
                    h.clone(),
                ]
            })
            .collect();
        println!(
            "{}",
            table(
                &["node", "applied", "chain index", "head at compared index"],
                rows
            )
        );
        match divergence {
            None => println!(
                "agree: all {} nodes hold the same audit chain up to log index {common}",
                live.len()
            ),
            Some(i) => println!("DIVERGE: the chains first differ at log index {i}"),
        }
    }
    anyhow::ensure!(ok, "audit chains diverge");
    Ok(())
}
