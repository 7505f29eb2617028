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
    let rows = pilpres2019::read_rows(&a.input)?;
    let reg = pilpres2019::registry(&rows);
    reg.write_dir(&a.out)?;
    pilpres2019::write_results(&rows, &a.out.join("results.csv"))?;
    let incomplete = rows.iter().filter(|r| r.figures().is_none()).count();
    println!(
        "{} rows: registry of {} regions and {} TPS, results in {} ({} incomplete rows kept for the import to count)",
        rows.len(),
        reg.regions.len(),
        reg.tps.len(),
        a.out.join("results.csv").display(),
        incomplete
    );
    Ok(())
}
