//! `rekapctl registry ...`: load CSV files, or generate a synthetic set.

use std::path::PathBuf;

use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use rekap_client::generate::Synthetic;
use rekap_client::proto as pb;
use rekap_client::registry::Registry;
use serde_json::json;

use crate::Ctx;
use crate::output::{print_json, table};

#[derive(Subcommand)]
pub enum RegistryCmd {
    /// Load regions.csv, tps.csv, contests.csv and candidates.csv from a directory.
    Load {
        dir: PathBuf,
        /// Rows per replicated chunk.
        #[arg(long, default_value_t = 5000)]
        chunk: usize,
    },
    /// Remove TPS from the registry (refused for a TPS that has results).
    RemoveTps { ids: Vec<String> },
    /// Write a synthetic Kotabaru-like registry as CSV files.
    Generate {
        out: PathBuf,
        /// A national-scale registry instead: 820,000 TPS in 34 provinsi,
        /// five contests over each TPS scoped as dapil are (the shape
        /// options below are then ignored).
        #[arg(long)]
        national: bool,
        #[arg(long, default_value_t = 21)]
        kecamatan: usize,
        #[arg(long, default_value_t = 10)]
        desa_per_kecamatan: usize,
        #[arg(long, default_value_t = 4)]
        tps_per_desa: usize,
        #[arg(long, default_value = "BUPATI-KOTABARU")]
        contest: String,
        /// Prefix for every region code.
        #[arg(long, default_value = "")]
        prefix: String,
        /// Also write demo results for this share of the TPS to <out>/results.csv.
        #[arg(long)]
        demo_results: Option<f64>,
        /// Kabupaten Kotabaru instead, with its real kecamatan and desa
        /// names and the 892 TPS of the 2020 Pilkada (contest
        /// BUPATI-KOTABARU, its two real paslon), built from a 2019 results
        /// file that holds Kotabaru's rows (the repository's
        /// tests/data/pilpres2019_sample.csv does). Demo results are then
        /// the first of that night's results to arrive, with 2019's
        /// numbers (the shape options above are ignored).
        #[arg(long, value_name = "FILE")]
        kotabaru: Option<PathBuf>,
    },
}

pub async fn run(ctx: &Ctx, cmd: RegistryCmd) -> anyhow::Result<()> {
    match cmd {
        RegistryCmd::Load { dir, chunk } => {
            let reg = Registry::read_dir(&dir)?;
            let sum = load(ctx, &reg, chunk, false).await?;
            show(ctx, &sum);
            Ok(())
        }
        RegistryCmd::RemoveTps { ids } => {
            let r = ctx
                .client
                .load_registry(pb::LoadRegistryRequest {
                    remove_tps: ids,
                    ..Default::default()
                })
                .await?;
            println!("{} TPS removed", r.tps_removed);
            Ok(())
        }
        RegistryCmd::Generate {
            out,
            national: true,
            demo_results,
            ..
        } => {
            let reg = rekap_client::generate::national::registry();
            reg.write_dir(&out)?;
            println!(
                "wrote a national registry of {} TPS and {} contests to {}",
                reg.tps.len(),
                reg.contests.len(),
                out.display()
            );
            if let Some(share) = demo_results {
                for (path, n) in rekap_client::generate::national::write_results(&reg, share, &out)?
                {
                    println!("wrote {n} demo results to {}", path.display());
                }
            }
            Ok(())
        }
        RegistryCmd::Generate {
            out,
            kotabaru: Some(file),
            demo_results,
            ..
        } => {
            let rows = rekap_client::generate::pilpres2019::read_rows(&file)?;
            let night = rekap_client::generate::kotabaru::build(&rows, 2020)?;
            night.registry.write_dir(&out)?;
            println!(
                "wrote Kotabaru's registry ({} kecamatan, {} TPS) to {}",
                night.kecamatan.len(),
                night.registry.tps.len(),
                out.display()
            );
            if let Some(share) = demo_results {
                let path = out.join("results.csv");
                let n = night.write_results(share, &path)?;
                println!("wrote {n} demo results to {}", path.display());
            }
            Ok(())
        }
        RegistryCmd::Generate {
            out,
            national: false,
            kecamatan,
            desa_per_kecamatan,
            tps_per_desa,
            contest,
            prefix,
            demo_results,
            kotabaru: None,
        } => {
            let spec = Synthetic {
                prefix,
                kecamatan,
                desa_per_kecamatan,
                tps_per_desa,
                contest_id: contest,
            };
            let reg = spec.build();
            reg.write_dir(&out)?;
            println!(
                "wrote a registry of {} TPS to {}",
                spec.tps_count(),
                out.display()
            );
            if let Some(share) = demo_results {
                let n =
                    write_demo_results(&reg, &spec.contest_id, share, &out.join("results.csv"))?;
                println!(
                    "wrote {n} demo results to {}",
                    out.join("results.csv").display()
                );
            }
            Ok(())
        }
    }
}

/// Loads a registry chunk by chunk, with a progress bar unless `quiet`.
pub async fn load(
    ctx: &Ctx,
    reg: &Registry,
    chunk: usize,
    quiet: bool,
) -> anyhow::Result<pb::LoadRegistryResponse> {
    let chunks = reg.chunks(chunk);
    let bar = if quiet || ctx.json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(chunks.len() as u64)
    };
    bar.set_style(ProgressStyle::with_template(
        "{bar:40} {pos}/{len} chunks {elapsed}",
    )?);
    let mut sum = pb::LoadRegistryResponse::default();
    let add = |r: Result<pb::LoadRegistryResponse, tonic::Status>| {
        let r = r?;
        sum.regions_added += r.regions_added;
        sum.regions_updated += r.regions_updated;
        sum.tps_added += r.tps_added;
        sum.tps_updated += r.tps_updated;
        sum.contests_added += r.contests_added;
        sum.contests_updated += r.contests_updated;
        sum.unchanged += r.unchanged;
        bar.inc(1);
        Ok(())
    };
    let client = &ctx.client;
    super::pipeline::pipelined(
        in_order(chunks),
        |req| async move { client.load_registry(req).await },
        add,
    )
    .await?;
    bar.finish_and_clear();
    Ok(sum)
}

/// Each chunk marked when it must wait for every chunk before it: regions
/// (parents first) and contests each may need the one before, and the
/// first TPS chunk needs all of them. TPS chunks need only those, not each
/// other, so they go several at a time.
fn in_order(chunks: Vec<pb::LoadRegistryRequest>) -> Vec<(pb::LoadRegistryRequest, bool)> {
    let mut after_tps = false;
    chunks
        .into_iter()
        .map(|req| {
            let tps = !req.tps.is_empty();
            let wait = !(tps && after_tps);
            after_tps = tps;
            (req, wait)
        })
        .collect()
}

fn show(ctx: &Ctx, sum: &pb::LoadRegistryResponse) {
    if ctx.json {
        print_json(&json!({
            "regions_added": sum.regions_added, "regions_updated": sum.regions_updated,
            "tps_added": sum.tps_added, "tps_updated": sum.tps_updated,
            "contests_added": sum.contests_added, "contests_updated": sum.contests_updated,
            "unchanged": sum.unchanged,
        }));
    } else {
        let row = |k: &str, a: u64, u: u64| vec![k.to_string(), a.to_string(), u.to_string()];
        println!(
            "{}",
            table(
                &["rows", "added", "updated"],
                vec![
                    row("regions", sum.regions_added, sum.regions_updated),
                    row("tps", sum.tps_added, sum.tps_updated),
                    row("contests", sum.contests_added, sum.contests_updated),
                ]
            )
        );
        println!("{} rows unchanged", sum.unchanged);
    }
}
/// Plausible, rule-abiding results for the first `share` of the TPS,
/// deterministic so the demo looks the same every time.
fn write_demo_results(
    reg: &Registry,
    contest: &str,
    share: f64,
    path: &std::path::Path,
) -> anyhow::Result<usize> {
    let percent = (share.clamp(0.0, 1.0) * 100.0) as usize;
    // Spread the reported TPS over every kecamatan, as on a count night.
    let rows = reg
        .tps
        .iter()
        .enumerate()
        .filter(|(i, _)| i * 37 % 100 < percent)
        .map(|(i, t)| {
            let dpt = t.dpt.unwrap_or(250) as usize;
            let turnout = dpt * (70 + i % 20) / 100;
            let tidak_sah = i % 7;
            let sah = turnout - tidak_sah;
            let p1 = sah * (40 + (i * 37) % 21) / 100;
            let p2 = sah - p1;
            [
                t.tps_id.clone(),
                contest.to_string(),
                p1.to_string(),
                p2.to_string(),
                sah.to_string(),
                tidak_sah.to_string(),
                turnout.to_string(),
            ]
        });
    rekap_client::generate::pilpres2019::write_two_paslon(path, rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_tps_chunks_after_the_first_one_go_without_waiting() {
        let region = || pb::LoadRegistryRequest {
            regions: vec![pb::Region::default()],
            ..Default::default()
        };
        let contests = || pb::LoadRegistryRequest {
            contests: vec![pb::Contest::default()],
            ..Default::default()
        };
        let tps = || pb::LoadRegistryRequest {
            tps: vec![pb::Tps::default()],
            ..Default::default()
        };
        let waits: Vec<bool> = in_order(vec![region(), region(), contests(), tps(), tps(), tps()])
            .into_iter()
            .map(|(_, w)| w)
            .collect();
        assert_eq!(waits, vec![true, true, true, true, false, false]);
    }
}
