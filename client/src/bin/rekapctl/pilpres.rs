//! `rekapctl pilpres2019`: turn the real 2019 per-TPS file into a registry
//! and a results CSV, ready for `registry load` and `import`.

use std::path::PathBuf;

use clap::Args;
use rekap_client::generate::pilpres2019;

use crate::Ctx;

#[derive(Args)]
pub struct PilpresArgs {
    /// The extract, e.g. ../shared/data/pilpres2019_tps.csv.gz.
    input: PathBuf,
    /// Directory for regions.csv, tps.csv, contests.csv, candidates.csv and results.csv.
    #[arg(long)]
    out: PathBuf,
}

pub async fn run(_ctx: &Ctx, a: PilpresArgs) -> anyhow::Result<()> {
    let done = pilpres2019::convert(&a.input, &a.out)?;
    println!(
        "{} rows: registry of {} regions and {} TPS, results in {} ({} incomplete rows kept for the import to count)",
        done.rows,
        done.registry.regions.len(),
        done.registry.tps.len(),
        done.results.display(),
        done.incomplete
    );
    Ok(())
}
