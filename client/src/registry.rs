//! The registry as CSV files: what `rekapctl registry load` reads and the
//! generators (`generate/`) write.
//!
//! A registry directory holds four files (header row first):
//! - `regions.csv`: `code,parent_code,level,name`; level is one of
//!   `provinsi`, `kabupaten`, `kecamatan`, `desa`; a provinsi's parent is
//!   `ID` (nasional) or empty.
//! - `tps.csv`: `tps_id,desa_code,number,dpt`; dpt may be empty (unknown).
//! - `contests.csv`: `contest_id,name,scope_code`; scope `ID` for nasional.
//! - `candidates.csv`: `contest_id,candidate_id,number,name` (the paslon).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, bail};
use rekap_proto::pb;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default)]
pub struct Registry {
    pub regions: Vec<pb::Region>,
    pub tps: Vec<pb::Tps>,
    pub contests: Vec<pb::Contest>,
}

#[derive(Serialize, Deserialize)]
struct RegionRow {
    code: String,
    parent_code: String,
    level: String,
    name: String,
}

#[derive(Serialize, Deserialize)]
struct TpsRow {
    tps_id: String,
    desa_code: String,
    number: u32,
    dpt: Option<u32>,
}

#[derive(Serialize, Deserialize)]
struct ContestRow {
    contest_id: String,
    name: String,
    scope_code: String,
}

#[derive(Serialize, Deserialize)]
struct CandidateRow {
    contest_id: String,
    candidate_id: String,
    number: u32,
    name: String,
}

pub fn level_from_name(s: &str) -> anyhow::Result<pb::RegionLevel> {
    Ok(match s.trim().to_ascii_lowercase().as_str() {
        "provinsi" => pb::RegionLevel::Provinsi,
        "kabupaten" | "kota" => pb::RegionLevel::Kabupaten,
        "kecamatan" => pb::RegionLevel::Kecamatan,
        "desa" | "kelurahan" => pb::RegionLevel::Desa,
        other => bail!("unknown region level {other:?}"),
    })
}

pub fn level_name(level: i32) -> &'static str {
    match pb::RegionLevel::try_from(level).unwrap_or(pb::RegionLevel::Unspecified) {
        pb::RegionLevel::Nasional => "nasional",
        pb::RegionLevel::Provinsi => "provinsi",
        pb::RegionLevel::Kabupaten => "kabupaten",
        pb::RegionLevel::Kecamatan => "kecamatan",
        pb::RegionLevel::Desa => "desa",
        pb::RegionLevel::Unspecified => "?",
    }
}

fn read_csv<T: for<'de> Deserialize<'de>>(path: &Path) -> anyhow::Result<Vec<T>> {
    let mut r =
        csv::Reader::from_path(path).with_context(|| format!("opening {}", path.display()))?;
    r.deserialize()
        .enumerate()
        .map(|(i, row)| row.with_context(|| format!("{} row {}", path.display(), i + 2)))
        .collect()
}

impl Registry {
    pub fn read_dir(dir: &Path) -> anyhow::Result<Registry> {
        let mut reg = Registry::default();
        for r in read_csv::<RegionRow>(&dir.join("regions.csv"))? {
            reg.regions.push(pb::Region {
                level: level_from_name(&r.level)? as i32,
                code: r.code,
                parent_code: r.parent_code,
                name: r.name,
            });
        }
        for t in read_csv::<TpsRow>(&dir.join("tps.csv"))? {
            reg.tps.push(pb::Tps {
                tps_id: t.tps_id,
                desa_code: t.desa_code,
                number: t.number,
                dpt: t.dpt,
            });
        }
        let mut contests: BTreeMap<String, pb::Contest> = BTreeMap::new();
        for c in read_csv::<ContestRow>(&dir.join("contests.csv"))? {
            contests.insert(
                c.contest_id.clone(),
                pb::Contest {
                    contest_id: c.contest_id,
                    name: c.name,
                    scope_code: c.scope_code,
                    candidates: vec![],
                },
            );
        }
        for c in read_csv::<CandidateRow>(&dir.join("candidates.csv"))? {
            let contest = contests.get_mut(&c.contest_id).with_context(|| {
                format!(
                    "candidate {} names unknown contest {}",
                    c.candidate_id, c.contest_id
                )
            })?;
            contest.candidates.push(pb::Candidate {
                candidate_id: c.candidate_id,
                number: c.number,
                name: c.name,
            });
        }
        reg.contests = contests.into_values().collect();
        Ok(reg)
    }

    pub fn write_dir(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir)?;
        let mut w = csv::Writer::from_path(dir.join("regions.csv"))?;
        for r in &self.regions {
            w.serialize(RegionRow {
                code: r.code.clone(),
                parent_code: r.parent_code.clone(),
                level: level_name(r.level).into(),
                name: r.name.clone(),
            })?;
        }
        w.flush()?;
        let mut w = csv::Writer::from_path(dir.join("tps.csv"))?;
        for t in &self.tps {
            w.serialize(TpsRow {
                tps_id: t.tps_id.clone(),
                desa_code: t.desa_code.clone(),
                number: t.number,
                dpt: t.dpt,
            })?;
        }
        w.flush()?;
        let mut w = csv::Writer::from_path(dir.join("contests.csv"))?;
        let mut wc = csv::Writer::from_path(dir.join("candidates.csv"))?;
        for c in &self.contests {
            w.serialize(ContestRow {
                contest_id: c.contest_id.clone(),
                name: c.name.clone(),
                scope_code: c.scope_code.clone(),
            })?;
            for cand in &c.candidates {
                wc.serialize(CandidateRow {
                    contest_id: c.contest_id.clone(),
                    candidate_id: cand.candidate_id.clone(),
                    number: cand.number,
                    name: cand.name.clone(),
                })?;
            }
        }
        w.flush()?;
        wc.flush()?;
        Ok(())
    }

    /// Splits the registry into load requests of at most `rows` rows:
    /// regions (parents first), then contests, then TPS.
    pub fn chunks(&self, rows: usize) -> Vec<pb::LoadRegistryRequest> {
        let rows = rows.max(1);
        let mut regions = self.regions.clone();
        regions.sort_by_key(|r| r.level);
        let mut out = Vec::new();
        for c in regions.chunks(rows) {
            out.push(pb::LoadRegistryRequest {
                regions: c.to_vec(),
                ..Default::default()
            });
        }
        if !self.contests.is_empty() {
            out.push(pb::LoadRegistryRequest {
                contests: self.contests.clone(),
                ..Default::default()
            });
        }
        for c in self.tps.chunks(rows) {
            out.push(pb::LoadRegistryRequest {
                tps: c.to_vec(),
                ..Default::default()
            });
        }
        out
    }
}
