//! The real 2019 presidential results (KawalPemilu's per-TPS extract, see
//! `shared/data/README.md`) turned into a Rekap registry and a results CSV.
//!
//! Region codes are derived, since the file carries names, not Kemendagri
//! codes: provinsi `NN` (in name order), kabupaten `NN.NN`, kecamatan
//! `NN.NN.NNN`, desa `NN.NN.NNN.D<desa_id>` (KawalPemilu's desa id), and TPS
//! `<desa_id>-<tps_no>`. The one contest is `PPWP-2019` with paslon 01
//! (Joko Widodo - Ma'ruf Amin) and 02 (Prabowo Subianto - Sandiaga Uno).

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::Context;
use rekap_proto::pb;
use rustc_hash::FxHashSet;
use serde::Deserialize;

use crate::registry::Registry;

pub const CONTEST: &str = "PPWP-2019";

/// One row of the extract (only the columns Rekap uses): owned (`Row`), or
/// borrowed from a reused CSV record (`Row<&str>`) when streaming.
#[derive(Debug, Clone, Deserialize)]
pub struct Row<S = String> {
    pub desa_id: S,
    pub tps_no: S,
    pub provinsi: S,
    pub kabupaten: S,
    pub kecamatan: S,
    pub desa: S,
    pub pas1: S,
    pub pas2: S,
    pub sah: S,
    pub tidak_sah: S,
    pub jumlah: S,
}

impl<S: AsRef<str>> Row<S> {
    pub fn tps_id(&self) -> String {
        format!(
            "{}-{:0>3}",
            self.desa_id.as_ref().trim(),
            self.tps_no.as_ref().trim()
        )
    }

    /// The five figures, or `None` when any is missing (not yet digitised).
    pub fn figures(&self) -> Option<[i64; 5]> {
        let n = |s: &S| s.as_ref().trim().parse::<i64>().ok();
        Some([
            n(&self.pas1)?,
            n(&self.pas2)?,
            n(&self.sah)?,
            n(&self.tidak_sah)?,
            n(&self.jumlah)?,
        ])
    }

    /// The row's cells in `TWO_PASLON_RESULTS_HEADER`'s order; incomplete
    /// rows keep their empty cells (the import counts and skips them).
    fn result_cells(&self) -> [String; 7] {
        let t = |s: &S| s.as_ref().trim().to_string();
        [
            self.tps_id(),
            CONTEST.to_string(),
            t(&self.pas1),
            t(&self.pas2),
            t(&self.sah),
            t(&self.tidak_sah),
            t(&self.jumlah),
        ]
    }
}

fn open(path: &Path) -> anyhow::Result<csv::Reader<Box<dyn Read>>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let reader: Box<dyn Read> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::GzDecoder::new(file))
    } else {
        Box::new(file)
    };
    Ok(csv::Reader::from_reader(reader))
}

/// Reads the extract, gzipped or not.
pub fn read_rows(path: &Path) -> anyhow::Result<Vec<Row>> {
    open(path)?
        .deserialize()
        .enumerate()
        .map(|(i, row)| row.with_context(|| format!("{} row {}", path.display(), i + 2)))
        .collect()
}

/// What `convert` wrote.
pub struct Conversion {
    /// The results file in the output folder.
    pub results: PathBuf,
    pub rows: usize,
    pub incomplete: usize,
    pub registry: Registry,
}

/// Turns the extract into the registry's files and `results.csv` in `out`,
/// one row at a time: the rows are never all held (829k rows of eleven
/// strings took 500 MiB and a fifth of the conversion's time in page
/// faults and frees).
pub fn convert(input: &Path, out: &Path) -> anyhow::Result<Conversion> {
    let mut csv = open(input)?;
    let headers = csv.headers()?.clone();
    std::fs::create_dir_all(out)?;
    let results_path = out.join("results.csv");
    let mut results = results_writer(&results_path)?;
    let mut builder = RegistryBuilder::default();
    let (mut rows, mut incomplete) = (0, 0);
    let mut rec = csv::StringRecord::new();
    while csv.read_record(&mut rec)? {
        let row: Row<&str> = rec
            .deserialize(Some(&headers))
            .with_context(|| format!("{} row {}", input.display(), rows + 2))?;
        builder.add(&row);
        results.write_record(row.result_cells())?;
        rows += 1;
        incomplete += usize::from(row.figures().is_none());
    }
    results.flush()?;
    let registry = builder.finish();
    registry.write_dir(out)?;
    Ok(Conversion {
        results: results_path,
        rows,
        incomplete,
        registry,
    })
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
type Tree = BTreeMap<String, BTreeMap<String, BTreeMap<String, BTreeMap<String, String>>>>;

/// The registry the rows imply, built one row at a time: every provinsi,
/// kabupaten, kecamatan, desa and TPS that appears, and the PPWP contest.
#[derive(Default)]
pub struct RegistryBuilder {
    tree: Tree,
    /// TPS in the order they first appear: id, desa id, number.
    tps: Vec<(String, String, u32)>,
    /// FxHash: SipHash over 829k ids was a tenth of the conversion.
    seen: FxHashSet<String>,
}

/// The map's entry for `key`, made only when it is new: most rows repeat
/// the names of the row before.
fn child<'m, V: Default>(m: &'m mut BTreeMap<String, V>, key: &str) -> &'m mut V {
    if !m.contains_key(key) {
        m.insert(key.to_string(), V::default());
    }
    m.get_mut(key).expect("just inserted")
}

impl RegistryBuilder {
    pub fn add<S: AsRef<str>>(&mut self, r: &Row<S>) {
        let desas = child(
            child(
                child(&mut self.tree, r.provinsi.as_ref().trim()),
                r.kabupaten.as_ref().trim(),
            ),
            r.kecamatan.as_ref().trim(),
        );
        let desa_id = r.desa_id.as_ref().trim();
        if !desas.contains_key(desa_id) {
            desas.insert(desa_id.to_string(), r.desa.as_ref().to_string());
        }
        let id = r.tps_id();
        if self.seen.insert(id.clone()) {
            let number = r.tps_no.as_ref().trim().parse().unwrap_or(1).max(1);
            self.tps.push((id, desa_id.to_string(), number));
        }
    }

    pub fn finish(self) -> Registry {
        use pb::RegionLevel::*;
        let mut reg = Registry::default();
        let mut desa_code: HashMap<&str, String> = HashMap::new();
        for (p, (prov, kabs)) in self.tree.iter().enumerate() {
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
                        if desa_code.contains_key(id.as_str()) {
                            continue;
                        }
                        let dc = format!("{cc}.D{id}");
                        reg.regions.push(region(dc.clone(), cc.clone(), Desa, name));
                        desa_code.insert(id, dc);
                    }
                }
            }
        }
        for (tps_id, desa_id, number) in self.tps {
            reg.tps.push(pb::Tps {
                tps_id,
                desa_code: desa_code[desa_id.as_str()].clone(),
                number,
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
}

/// The registry the rows imply (`RegistryBuilder` over all of them).
pub fn registry(rows: &[Row]) -> Registry {
    let mut b = RegistryBuilder::default();
    for r in rows {
        b.add(r);
    }
    b.finish()
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
    let mut w = results_writer(path)?;
    let mut n = 0;
    for r in rows {
        w.write_record(r)?;
        n += 1;
    }
    w.flush()?;
    Ok(n)
}

fn results_writer(path: &Path) -> anyhow::Result<csv::Writer<std::fs::File>> {
    let mut w = csv::Writer::from_path(path)?;
    w.write_record(TWO_PASLON_RESULTS_HEADER)?;
    Ok(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Streaming gives exactly the files the rows held in memory give.
    #[test]
    fn convert_writes_what_the_rows_imply() {
        let sample =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/pilpres2019_sample.csv");
        let rows = read_rows(&sample).unwrap();
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let done = convert(&sample, a.path()).unwrap();
        registry(&rows).write_dir(b.path()).unwrap();
        write_two_paslon(
            &b.path().join("results.csv"),
            rows.iter().map(Row::result_cells),
        )
        .unwrap();
        assert_eq!(done.rows, rows.len());
        assert_eq!(
            done.incomplete,
            rows.iter().filter(|r| r.figures().is_none()).count()
        );
        assert!(done.registry.tps.len() > 100 && done.incomplete > 0);
        for f in [
            "regions.csv",
            "tps.csv",
            "contests.csv",
            "candidates.csv",
            "results.csv",
        ] {
            let read = |d: &tempfile::TempDir| std::fs::read(d.path().join(f)).unwrap();
            assert_eq!(read(&a), read(&b), "{f}");
        }
    }
}
