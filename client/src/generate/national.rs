//! A national-scale synthetic election for benchmarks: 34 provinsi × 15
//! kabupaten × 14 kecamatan × 12 desa, exactly 820,000 TPS, and five
//! contests over every TPS, each scoped the way its dapil is:
//!
//! | contest | scope | paslon / parties |
//! |---|---|---|
//! | `PPWP` (president) | nasional | 3 |
//! | `DPR-<provinsi>` | provinsi | 10 |
//! | `DPD-<provinsi>` | provinsi | 20 |
//! | `DPRDP-<kabupaten>` (DPRD provinsi) | kabupaten | 8 |
//! | `DPRDK-<kecamatan>` (DPRD kab/kota) | kecamatan | 8 |
//!
//! Everything is derived from indices, so two runs give identical files.

use std::path::{Path, PathBuf};

use rekap_proto::pb;

use crate::registry::Registry;

pub const PROVINSI: usize = 34;
pub const KABUPATEN_PER_PROVINSI: usize = 15;
pub const KECAMATAN_PER_KABUPATEN: usize = 14;
pub const DESA_PER_KECAMATAN: usize = 12;
pub const TPS: usize = 820_000;

/// One kind of contest: its id prefix, how many levels below nasional its
/// scope sits (0 = nasional), and its number of candidates.
pub struct Kind {
    pub prefix: &'static str,
    pub name: &'static str,
    pub scope_depth: usize,
    pub candidates: usize,
}

pub const KINDS: [Kind; 5] = [
    Kind {
        prefix: "PPWP",
        name: "PRESIDEN DAN WAKIL PRESIDEN",
        scope_depth: 0,
        candidates: 3,
    },
    Kind {
        prefix: "DPR",
        name: "DPR",
        scope_depth: 1,
        candidates: 10,
    },
    Kind {
        prefix: "DPD",
        name: "DPD",
        scope_depth: 1,
        candidates: 20,
    },
    Kind {
        prefix: "DPRDP",
        name: "DPRD PROVINSI",
        scope_depth: 2,
        candidates: 8,
    },
    Kind {
        prefix: "DPRDK",
        name: "DPRD KABUPATEN/KOTA",
        scope_depth: 3,
        candidates: 8,
    },
];

impl Kind {
    /// The contest of this kind covering a TPS with these ancestors
    /// (provinsi, kabupaten, kecamatan codes).
    pub fn contest_for(&self, chain: &[&str; 3]) -> String {
        match self.scope_depth {
            0 => self.prefix.to_string(),
            d => format!("{}-{}", self.prefix, chain[d - 1]),
        }
    }

    fn contest(&self, scope: &str) -> pb::Contest {
        let (contest_id, scope_code) = if self.scope_depth == 0 {
            (self.prefix.to_string(), "ID".to_string())
        } else {
            (format!("{}-{scope}", self.prefix), scope.to_string())
        };
        pb::Contest {
            contest_id,
            name: format!("PEMILIHAN {} {scope}", self.name),
            scope_code,
            candidates: (1..=self.candidates)
                .map(|n| pb::Candidate {
                    candidate_id: format!("{n:02}"),
                    number: n as u32,
                    name: format!("CALON {n:02}"),
                })
                .collect(),
        }
    }
}

fn region(code: &str, parent: &str, level: pb::RegionLevel, name: String) -> pb::Region {
    pb::Region {
        code: code.into(),
        parent_code: parent.into(),
        level: level as i32,
        name,
    }
}

/// The registry: regions, 820,000 TPS (9 or 10 per desa) and every contest.
pub fn registry() -> Registry {
    use pb::RegionLevel::*;
    let desa_total =
        PROVINSI * KABUPATEN_PER_PROVINSI * KECAMATAN_PER_KABUPATEN * DESA_PER_KECAMATAN;
    let (base, extra) = (TPS / desa_total, TPS % desa_total);
    let mut reg = Registry::default();
    reg.contests.push(KINDS[0].contest("ID"));
    let mut desa_index = 0;
    for p in 1..=PROVINSI {
        let prov = format!("{:02}", 10 + p);
        reg.regions
            .push(region(&prov, "ID", Provinsi, format!("PROVINSI {prov}")));
        reg.contests.extend(
            KINDS
                .iter()
                .filter(|k| k.scope_depth == 1)
                .map(|k| k.contest(&prov)),
        );
        for k in 1..=KABUPATEN_PER_PROVINSI {
            let kab = format!("{prov}.{k:02}");
            reg.regions
                .push(region(&kab, &prov, Kabupaten, format!("KABUPATEN {kab}")));
            reg.contests.push(KINDS[3].contest(&kab));
            for c in 1..=KECAMATAN_PER_KABUPATEN {
                let kec = format!("{kab}.{c:02}");
                reg.regions
                    .push(region(&kec, &kab, Kecamatan, format!("KECAMATAN {kec}")));
                reg.contests.push(KINDS[4].contest(&kec));
                for d in 1..=DESA_PER_KECAMATAN {
                    let desa = format!("{kec}.{:04}", 2000 + d);
                    reg.regions
                        .push(region(&desa, &kec, Desa, format!("DESA {desa}")));
                    let n = base + usize::from(desa_index < extra);
                    desa_index += 1;
                    for t in 1..=n {
                        let i = reg.tps.len();
                        reg.tps.push(pb::Tps {
                            tps_id: format!("{desa}-{t:03}"),
                            desa_code: desa.clone(),
                            number: t as u32,
                            dpt: Some(dpt(i) as u32),
                        });
                    }
                }
            }
        }
    }
    reg
}

fn dpt(i: usize) -> usize {
    200 + (i * 37) % 100
}

/// Writes `results-<kind>.csv` for each kind of contest into `dir`, for the
/// TPS whose index `i` satisfies `i * 37 % 100 < share * 100`, as
/// `rekapctl import` reads them. Returns the files and their row counts.
pub fn write_results(
    reg: &Registry,
    share: f64,
    dir: &Path,
) -> anyhow::Result<Vec<(PathBuf, usize)>> {
    let percent = (share.clamp(0.0, 1.0) * 100.0) as usize;
    let mut out = Vec::new();
    for (ki, kind) in KINDS.iter().enumerate() {
        let path = dir.join(format!("results-{}.csv", kind.prefix.to_ascii_lowercase()));
        let mut w = csv::Writer::from_path(&path)?;
        let mut header = vec!["tps_id".to_string(), "contest_id".to_string()];
        header.extend((1..=kind.candidates).map(|n| format!("paslon_{n:02}")));
        header.extend(["sah", "tidak_sah", "total"].map(String::from));
        w.write_record(&header)?;
        let mut rows = 0;
        for (i, t) in reg
            .tps
            .iter()
            .enumerate()
            .filter(|(i, _)| i * 37 % 100 < percent)
        {
            let parts: Vec<&str> = t.desa_code.split('.').collect();
            let chain = [parts[0], &t.desa_code[..5], &t.desa_code[..8]];
            let (votes, sah, tidak_sah) = numbers(i, ki, kind.candidates);
            let mut rec = vec![t.tps_id.clone(), kind.contest_for(&chain)];
            rec.extend(votes.iter().map(u64::to_string));
            rec.extend([sah, tidak_sah, sah + tidak_sah].map(|n| n.to_string()));
            w.write_record(&rec)?;
            rows += 1;
        }
        w.flush()?;
        out.push((path, rows));
    }
    Ok(out)
}

/// Plausible, consistent numbers for TPS `i` in contest kind `k`: turnout of
/// 70–89% of the DPT, a few invalid ballots, votes that sum to sah.
fn numbers(i: usize, k: usize, candidates: usize) -> (Vec<u64>, u64, u64) {
    let turnout = (dpt(i) * (70 + (i + k) % 20) / 100) as u64;
    let tidak_sah = ((i + 3 * k) % 7) as u64;
    let sah = turnout - tidak_sah;
    let weights: Vec<u64> = (0..candidates)
        .map(|j| 1 + ((i * 31 + j * 17 + k) % 10) as u64)
        .collect();
    let sum: u64 = weights.iter().sum();
    let mut votes: Vec<u64> = weights.iter().map(|w| sah * w / sum).collect();
    votes[0] += sah - votes.iter().sum::<u64>();
    (votes, sah, tidak_sah)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn national_registry_has_exactly_820000_tps_and_five_contests_over_each() {
        let reg = registry();
        assert_eq!(reg.tps.len(), TPS);
        let desa = reg
            .regions
            .iter()
            .filter(|r| r.level == pb::RegionLevel::Desa as i32)
            .count();
        assert_eq!(desa, 85_680);
        assert_eq!(reg.contests.len(), 1 + 2 * 34 + 34 * 15 + 34 * 15 * 14);
        assert_eq!(
            reg.contests.iter().map(|c| c.candidates.len()).max(),
            Some(20)
        );
        // Every TPS is covered by exactly one contest of each kind.
        let t = &reg.tps[123_456];
        let scopes: Vec<&str> = reg
            .contests
            .iter()
            .map(|c| c.scope_code.as_str())
            .filter(|s| *s == "ID" || t.desa_code.starts_with(&format!("{s}.")))
            .collect();
        assert_eq!(scopes.len(), 5, "{scopes:?}");
    }

    #[test]
    fn numbers_are_consistent() {
        for i in [0, 1, 99, 819_999] {
            for (k, kind) in KINDS.iter().enumerate() {
                let (votes, sah, tidak_sah) = numbers(i, k, kind.candidates);
                assert_eq!(votes.iter().sum::<u64>(), sah);
                assert!(sah + tidak_sah <= dpt(i) as u64);
            }
        }
    }
}
