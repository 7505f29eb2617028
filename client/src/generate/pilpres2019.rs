//! The real 2019 presidential results (KawalPemilu's per-TPS extract, see
//! `shared/data/README.md`) turned into a Rekap registry and a results CSV.
//!
//! Region codes are derived, since the file carries names, not Kemendagri
//! codes: provinsi `NN` (in name order), kabupaten `NN.NN`, kecamatan
//! `NN.NN.NNN`, desa `NN.NN.NNN.D<desa_id>` (KawalPemilu's desa id), and TPS
//! `<desa_id>-<tps_no>`. The one contest is `PPWP-2019` with paslon 01
//! (Joko Widodo - Ma'ruf Amin) and 02 (Prabowo Subianto - Sandiaga Uno).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use anyhow::Context;
use rekap_proto::pb;
use serde::Deserialize;

use crate::registry::Registry;

pub const CONTEST: &str = "PPWP-2019";

/// One row of the extract (only the columns Rekap uses).
#[derive(Debug, Clone, Deserialize)]
pub struct Row {
    pub desa_id: String,
    pub tps_no: String,
    pub provinsi: String,
    pub kabupaten: String,
    pub kecamatan: String,
    pub desa: String,
    pub pas1: String,
    pub pas2: String,
    pub sah: String,
    pub tidak_sah: String,
    pub jumlah: String,
}

impl Row {
    pub fn tps_id(&self) -> String {
        format!("{}-{:0>3}", self.desa_id.trim(), self.tps_no.trim())
    }

    /// The five figures, or `None` when any is missing (not yet digitised).
    pub fn figures(&self) -> Option<[i64; 5]> {
        let n = |s: &str| s.trim().parse::<i64>().ok();
        Some([
            n(&self.pas1)?,
            n(&self.pas2)?,
            n(&self.sah)?,
            n(&self.tidak_sah)?,
            n(&self.jumlah)?,
        ])
    }
}

/// Reads the extract, gzipped or not.
pub fn read_rows(path: &Path) -> anyhow::Result<Vec<Row>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let reader: Box<dyn Read> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::GzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut r = csv::Reader::from_reader(reader);
    r.deserialize()
        .enumerate()
        .map(|(i, row)| row.with_context(|| format!("{} row {}", path.display(), i + 2)))
        .collect()
}

fn region(code: String, parent: String, level: pb::RegionLevel, name: &str) -> pb::Region {
    pb::Region {
        code,
        parent_code: parent,
        level: level as i32,
        name: name.trim().to_string(),
    }
}

/// provinsi -> kabupaten -> kecamatan -> desa id -> desa name.
type Tree<'a> = BTreeMap<&'a str, BTreeMap<&'a str, BTreeMap<&'a str, BTreeMap<&'a str, &'a str>>>>;

/// The registry the rows imply: every provinsi, kabupaten, kecamatan, desa
/// and TPS that appears, and the PPWP contest.
pub fn registry(rows: &[Row]) -> Registry {
    use pb::RegionLevel::*;
    let mut tree: Tree = BTreeMap::new();
    for r in rows {
        tree.entry(r.provinsi.trim())
            .or_default()
            .entry(r.kabupaten.trim())
            .or_default()
            .entry(r.kecamatan.trim())
            .or_default()
            .entry(r.desa_id.trim())
            .or_insert(r.desa.as_str());
    }
    let mut reg = Registry::default();
    let mut desa_code: BTreeMap<&str, String> = BTreeMap::new();
    for (p, (prov, kabs)) in tree.iter().enumerate() {
        let pc = format!("{:02}", p + 1);
        reg.regions
            .push(region(pc.clone(), "ID".into(), Provinsi, prov));
        for (k, (kab, kecs)) in kabs.iter().enumerate() {
            let kc = format!("{pc}.{:02}", k + 1);
            reg.regions
                .push(region(kc.clone(), pc.clone(), Kabupaten, kab));
            for (c, (kec, desas)) in kecs.iter().enumerate() {
                let cc = format!("{kc}.{:03}", c + 1);
                reg.regions
                    .push(region(cc.clone(), kc.clone(), Kecamatan, kec));
                for (id, name) in desas {
                    // A desa id seen under two kecamatan keeps its first place.
                    if desa_code.contains_key(id) {
                        continue;
                    }
                    let dc = format!("{cc}.D{id}");
                    reg.regions.push(region(dc.clone(), cc.clone(), Desa, name));
                    desa_code.insert(id, dc);
                }
            }
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for r in rows {
        let id = r.tps_id();
        if !seen.insert(id.clone()) {
            continue;
        }
        reg.tps.push(pb::Tps {
            tps_id: id,
            desa_code: desa_code[r.desa_id.trim()].clone(),
            number: r.tps_no.trim().parse().unwrap_or(1).max(1),
            dpt: None,
        });
    }
    reg.contests.push(super::contest(
        CONTEST,
        "PEMILIHAN PRESIDEN DAN WAKIL PRESIDEN 2019",
        "ID",
        &[
            "JOKO WIDODO - MA'RUF AMIN",
            "PRABOWO SUBIANTO - SANDIAGA UNO",
        ],
    ));
    reg
}

/// Header of a results CSV (`rekapctl import` format) for a two-paslon
/// contest; the demo results and the 2019 conversion both write it.
pub const TWO_PASLON_RESULTS_HEADER: [&str; 7] = [
    "tps_id",
    "contest_id",
    "paslon_01",
    "paslon_02",
    "sah",
    "tidak_sah",
    "total",
];

/// Writes a two-paslon results file in `rekapctl import` format: one row
/// per item, its cells in `TWO_PASLON_RESULTS_HEADER`'s order. Returns how
/// many rows it wrote.
pub fn write_two_paslon<I, R, S>(path: &Path, rows: I) -> anyhow::Result<usize>
where
    I: IntoIterator<Item = R>,
    R: IntoIterator<Item = S>,
    S: AsRef<[u8]>,
{
    let mut w = csv::Writer::from_path(path)?;
    w.write_record(TWO_PASLON_RESULTS_HEADER)?;
    let mut n = 0;
    for r in rows {
        w.write_record(r)?;
        n += 1;
    }
    w.flush()?;
    Ok(n)
}

/// Writes the results in `rekapctl import` format; incomplete rows keep
/// their empty cells (the import counts and skips them).
pub fn write_results(rows: &[Row], path: &Path) -> anyhow::Result<()> {
    let cells = rows.iter().map(|r| {
        [
            r.tps_id(),
            CONTEST.to_string(),
            r.pas1.trim().to_string(),
            r.pas2.trim().to_string(),
            r.sah.trim().to_string(),
            r.tidak_sah.trim().to_string(),
            r.jumlah.trim().to_string(),
        ]
    });
    write_two_paslon(path, cells)?;
    Ok(())
}
