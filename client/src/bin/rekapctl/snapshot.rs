//! `rekapctl snapshot save|status`: backups, as `etcdctl snapshot save` and
//! `etcdutl snapshot status`. `save` asks the leader for a consistent cut
//! (after a read barrier: it holds every write acknowledged before the
//! call) and writes it to a file whose every byte is checked; `status`
//! checks a file offline and shows what it holds. `rekap-node restore`
//! seeds a new cluster from it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Subcommand;
use rekap_client::proto as pb;
use rekap_proto::backup;
use serde_json::json;

use crate::Ctx;
use crate::output::{print_json, table};

#[derive(Subcommand)]
pub enum SnapshotCmd {
    /// Save a backup of the whole state to FILE (admin).
    Save { file: PathBuf },
    /// Check a backup file offline and show what it holds.
    Status { file: PathBuf },
}

pub async fn run(ctx: &Ctx, c: SnapshotCmd) -> anyhow::Result<()> {
    match c {
        SnapshotCmd::Save { file } => save(ctx, &file).await,
        SnapshotCmd::Status { file } => status(ctx.json, &file),
    }
}

/// Checks `file` offline; needs no cluster.
pub fn status(json: bool, file: &Path) -> anyhow::Result<()> {
    let v = backup::verify(file).with_context(|| format!("{} fails its checks", file.display()))?;
    show(json, file, &v);
    Ok(())
}

async fn save(ctx: &Ctx, file: &Path) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut stream = ctx.client.save_backup().await?;
    let header = match stream.message().await?.and_then(|c| c.part) {
        Some(pb::backup_chunk::Part::Header(h)) => h,
        _ => bail!("the node sent no backup header"),
    };
    let part = file.with_extension("part");
    let out =
        std::fs::File::create(&part).with_context(|| format!("creating {}", part.display()))?;
    let mut w = backup::Writer::new(std::io::BufWriter::new(out), header)?;
    let written = async {
        while let Some(chunk) = stream.message().await? {
            match chunk.part {
                Some(pb::backup_chunk::Part::Body(b)) => w.body(&b)?,
                _ => bail!("a second header in the stream"),
            }
        }
        let out = w.finish()?.into_inner().map_err(|e| e.into_error())?;
        out.sync_all()?;
        Ok(())
    }
    .await;
    if let Err(e) = written {
        let _ = std::fs::remove_file(&part);
        return Err(e);
    }
    std::fs::rename(&part, file)?;
    let v = backup::verify(file)?;
    if !ctx.json {
        println!(
            "saved {} in {:.1} s",
            file.display(),
            started.elapsed().as_secs_f64()
        );
    }
    show(ctx.json, file, &v);
    Ok(())
}

fn show(json: bool, file: &Path, v: &backup::Verified) {
    let h = &v.header;
    let members: Vec<String> = h
        .members
        .iter()
        .map(|n| {
            let role = if n.voter { "" } else { " (learner)" };
            format!("{}={}{role}", n.node_id, n.addr)
        })
        .collect();
    if json {
        print_json(&json!({
            "file": file.display().to_string(),
            "ok": true,
            "format_version": h.format_version,
            "cluster_id": h.cluster_id,
            "applied_index": h.applied_index,
            "applied_term": h.applied_term,
            "members": members,
            "chain_index": h.chain_index,
            "chain_head": h.chain_head,
            "chain_commands": h.chain_commands,
            "body_bytes": h.body_bytes,
            "body_sha256": h.body_sha256,
            "file_sha256": v.file_sha256,
            "created_unix_ms": h.created_unix_ms,
            "taken_by_node": h.taken_by_node,
            "totals": h.totals.iter().map(|t| json!({
                "contest_id": t.contest_id, "region": t.region.as_ref().map(|r| &r.code), "sah": t.sah, "tidak_sah": t.tidak_sah, "total": t.total,
                "tps_reported": t.tps_reported, "tps_total": t.tps_total,
                "votes": t.candidates.iter().map(|c| json!({"candidate_id": c.candidate_id, "votes": c.votes})).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        }));
        return;
    }
    let rows = vec![
        vec!["file".into(), file.display().to_string()],
        vec!["checks".into(), "ok (body and file SHA-256)".into()],
        vec!["cluster id".into(), h.cluster_id.clone()],
        vec![
            "applied index / term".into(),
            format!("{} / {}", h.applied_index, h.applied_term),
        ],
        vec!["members".into(), members.join(", ")],
        vec![
            "audit chain".into(),
            format!(
                "{} commands, head {} at index {}",
                h.chain_commands, h.chain_head, h.chain_index
            ),
        ],
        vec![
            "body".into(),
            format!("{} bytes, sha256 {}", h.body_bytes, h.body_sha256),
        ],
        vec!["file sha256".into(), v.file_sha256.clone()],
        vec!["taken by node".into(), h.taken_by_node.to_string()],
    ];
    println!("{}", table(&["backup", ""], rows));
    let rows = h
        .totals
        .iter()
        .map(|t| {
            vec![
                t.contest_id.clone(),
                t.region
                    .as_ref()
                    .map_or_else(String::new, |r| r.code.clone()),
                format!("{}/{}", t.tps_reported, t.tps_total),
                t.sah.to_string(),
                t.tidak_sah.to_string(),
                t.total.to_string(),
            ]
        })
        .collect();
    println!(
        "{}",
        table(
            &["contest", "scope", "TPS in", "sah", "tidak sah", "total"],
            rows
        )
    );
    let _ = std::io::stdout().flush();
}
