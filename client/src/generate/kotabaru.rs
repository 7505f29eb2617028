//! The Kotabaru night: KPU Kotabaru's 2020 Pilkada count, rebuilt from the
//! real 2019 file so it can be replayed against a cluster.
//!
//! - **Registry.** Kabupaten Kotabaru's real kecamatan and desa, by name,
//!   from the 2019 rows. 2019 had 1,181 TPS there, the 2020 Pilkada 892:
//!   each desa keeps its share of the 892 (largest remainder, at least
//!   one), and its 2019 TPS are merged in order into that many.
//! - **Numbers.** A merged TPS sums its 2019 TPS's figures (those that
//!   were digitised), for contest `BUPATI-KOTABARU` with two paslon; sah
//!   and total are made to add up.
//! - **Arrival.** A realistic curve over the afternoon and evening: few
//!   results before 14:00, a peak after sunset, stragglers after 21:00.
//!   Seeded, so a replay is repeatable.
//!
//! Region codes are derived (the file has names only): provinsi `63`,
//! kabupaten `63.02`, kecamatan `63.02.NN` and desa `63.02.NN.2NNN` in name
//! order.

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use rekap_proto::pb;

use super::pilpres2019::Row;
use crate::registry::Registry;

pub const CONTEST: &str = "BUPATI-KOTABARU";
pub const KABUPATEN: &str = "63.02";
pub const KABUPATEN_NAME: &str = "KOTABARU";
/// TPS in the 2020 Pilkada.
pub const TPS_2020: usize = 892;
/// The 2020 paslon by ballot number, as KPU Kotabaru drew them on 24
/// September 2020 (Banjarmasin Post, "Pilkada Kotabaru 2020, Sayed
/// Jafar-Andi Rudi Latif No 1 dan Burhanudin-Bahrudin No 2").
pub const PASLON: [&str; 2] = ["SAYED JAFAR - ANDI RUDI LATIF", "BURHANUDIN - BAHRUDIN"];
/// A TPS takes at most this many ballots (the hard rule).
const MAX_TOTAL: i64 = 800;

/// One TPS of the night: its result and when it arrives.
#[derive(Debug, Clone)]
pub struct Arrival {
    pub submission: pb::Submission,
    pub kecamatan: String,
    /// Hours on the night's clock (13.5 is 13:30).
    pub at_hour: f64,
}

/// The registry and the night's results, in arrival order.
pub struct Night {
    pub registry: Registry,
    pub arrivals: Vec<Arrival>,
    /// Kecamatan code -> name, in code order.
    pub kecamatan: BTreeMap<String, String>,
}

/// How many of `total` each desa keeps, by its count of 2019 TPS.
fn shares(counts: &[usize], total: usize) -> Vec<usize> {
    let sum: usize = counts.iter().sum();
    let exact: Vec<f64> = counts
        .iter()
        .map(|&c| c as f64 * total as f64 / sum as f64)
        .collect();
    let mut out: Vec<usize> = exact.iter().map(|e| (e.floor() as usize).max(1)).collect();
    // What each desa is still owed; one raised to a single TPS is owed
    // less. A desa never gets more TPS than it had.
    let mut order: Vec<usize> = (0..counts.len()).collect();
    order.sort_by(|&a, &b| {
        let ra = exact[a] - out[a] as f64;
        let rb = exact[b] - out[b] as f64;
        rb.total_cmp(&ra).then(a.cmp(&b))
    });
    let mut i = 0;
    while out.iter().sum::<usize>() < total && i < 4 * order.len() {
        let j = order[i % order.len()];
        if out[j] < counts[j] {
            out[j] += 1;
        }
        i += 1;
    }
    // Floors raised to one may overshoot: take back from the largest.
    while out.iter().sum::<usize>() > total {
        let (j, _) = out
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 1)
            .max_by_key(|(_, n)| **n)
            .expect("a desa with more than one TPS");
        out[j] -= 1;
    }
    out
}

/// Sums the digitised figures of `rows`: paslon 01, 02 and tidak sah,
/// scaled down if the sum would break the size of a TPS.
fn merged(rows: &[&Row]) -> [i64; 3] {
    let mut s = [0i64; 3];
    for r in rows {
        if let Some(f) = r.figures() {
            s[0] += f[0].max(0);
            s[1] += f[1].max(0);
            s[2] += f[3].max(0);
        }
    }
    let total: i64 = s.iter().sum();
    if total > MAX_TOTAL {
        for v in &mut s {
            *v = *v * MAX_TOTAL / total;
        }
    }
    s
}

/// An hour on the night's clock: 4% between 13:00 and 14:00, 88% around
/// 18:30 (from 14:00 to 21:00), 8% between 21:00 and 23:30.
fn arrival_hour(rng: &mut impl Rng) -> f64 {
    let u: f64 = rng.random();
    if u < 0.04 {
        13.0 + rng.random::<f64>()
    } else if u < 0.92 {
        // A normal curve (Box-Muller), drawn again when it falls outside
        // 14:00-21:00 rather than piled up at the edges.
        loop {
            let (a, b): (f64, f64) = (rng.random::<f64>().max(1e-12), rng.random());
            let z = (-2.0 * a.ln()).sqrt() * (2.0 * std::f64::consts::PI * b).cos();
            let h = 18.5 + 1.4 * z;
            if (14.0..21.0).contains(&h) {
                return h;
            }
        }
    } else {
        21.0 + 2.5 * rng.random::<f64>()
    }
}

fn region(code: &str, parent: &str, level: pb::RegionLevel, name: &str) -> pb::Region {
    pb::Region {
        code: code.into(),
        parent_code: parent.into(),
        level: level as i32,
        name: name.trim().into(),
    }
}

/// Builds the night from the 2019 rows (any file holding Kotabaru's).
pub fn build(rows: &[Row], seed: u64) -> anyhow::Result<Night> {
    use pb::RegionLevel::*;
    // kecamatan name -> desa name -> 2019 rows in TPS order.
    let mut tree: BTreeMap<&str, BTreeMap<&str, Vec<&Row>>> = BTreeMap::new();
    for r in rows.iter().filter(|r| {
        r.kabupaten.trim() == KABUPATEN_NAME && r.provinsi.trim() == "KALIMANTAN SELATAN"
    }) {
        tree.entry(r.kecamatan.trim())
            .or_default()
            .entry(r.desa.trim())
            .or_default()
            .push(r);
    }
    let old: usize = tree.values().flat_map(|d| d.values()).map(Vec::len).sum();
    if old < TPS_2020 {
        anyhow::bail!("the file holds {old} TPS of Kotabaru; the night needs at least {TPS_2020}");
    }
    let mut reg = Registry::default();
    reg.regions
        .push(region("63", "ID", Provinsi, "KALIMANTAN SELATAN"));
    reg.regions
        .push(region(KABUPATEN, "63", Kabupaten, KABUPATEN_NAME));
    let counts: Vec<usize> = tree
        .values()
        .flat_map(|d| d.values())
        .map(Vec::len)
        .collect();
    let mut keep = shares(&counts, TPS_2020).into_iter();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut arrivals = Vec::with_capacity(TPS_2020);
    let mut kecamatan = BTreeMap::new();
    for (k, (kec, desas)) in tree.iter().enumerate() {
        let kc = format!("{KABUPATEN}.{:02}", k + 1);
        reg.regions.push(region(&kc, KABUPATEN, Kecamatan, kec));
        kecamatan.insert(kc.clone(), kec.to_string());
        for (d, (desa, olds)) in desas.iter().enumerate() {
            let dc = format!("{kc}.{}", 2001 + d);
            reg.regions.push(region(&dc, &kc, Desa, desa));
            let n = keep.next().expect("a share per desa");
            let mut olds = olds.clone();
            olds.sort_by_key(|r| r.tps_no.trim().parse::<u32>().unwrap_or(0));
            for i in 0..n {
                let group = &olds[i * olds.len() / n..(i + 1) * olds.len() / n];
                let [p1, p2, ts] = merged(group);
                let tps_id = format!("{dc}.{:03}", i + 1);
                reg.tps.push(pb::Tps {
                    tps_id: tps_id.clone(),
                    desa_code: dc.clone(),
                    number: i as u32 + 1,
                    dpt: None,
                });
                let votes = |id: &str, v: i64| pb::CandidateVotes {
                    candidate_id: id.into(),
                    votes: v,
                };
                arrivals.push(Arrival {
                    submission: pb::Submission {
                        submission_id: format!("night:{tps_id}"),
                        tps_id,
                        contest_id: CONTEST.into(),
                        votes: vec![votes("01", p1), votes("02", p2)],
                        sah: Some(p1 + p2),
                        tidak_sah: Some(ts),
                        total: Some(p1 + p2 + ts),
                        ..Default::default()
                    },
                    kecamatan: kc.clone(),
                    at_hour: arrival_hour(&mut rng),
                });
            }
        }
    }
    reg.contests.push(super::contest(
        CONTEST,
        "PEMILIHAN BUPATI DAN WAKIL BUPATI KOTABARU 2020",
        KABUPATEN,
        &PASLON,
    ));
    arrivals.sort_by(|a, b| a.at_hour.total_cmp(&b.at_hour));
    Ok(Night {
        registry: reg,
        arrivals,
        kecamatan,
    })
}

impl Night {
    /// Writes the first `share` of the night's results to arrive, in the
    /// format `rekapctl import` reads; returns how many.
    pub fn write_results(&self, share: f64, path: &std::path::Path) -> anyhow::Result<usize> {
        let n = (self.arrivals.len() as f64 * share.clamp(0.0, 1.0)).round() as usize;
        let num = |v: Option<i64>| v.unwrap_or(0).to_string();
        let rows = self.arrivals[..n].iter().map(|a| {
            let s = &a.submission;
            [
                s.tps_id.clone(),
                s.contest_id.clone(),
                s.votes[0].votes.to_string(),
                s.votes[1].votes.to_string(),
                num(s.sah),
                num(s.tidak_sah),
                num(s.total),
            ]
        });
        super::pilpres2019::write_two_paslon(path, rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up_and_every_desa_keeps_one() {
        let s = shares(&[1, 1, 5, 10, 3], 15);
        assert_eq!(s.iter().sum::<usize>(), 15);
        assert!(s.iter().all(|&n| n >= 1));
        assert!(s.iter().zip([1, 1, 5, 10, 3]).all(|(n, c)| *n <= c));
    }

    #[test]
    fn the_curve_is_an_evening_one() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let hours: Vec<f64> = (0..10_000).map(|_| arrival_hour(&mut rng)).collect();
        let share = |lo: f64, hi: f64| {
            hours.iter().filter(|h| **h >= lo && **h < hi).count() as f64 / hours.len() as f64
        };
        assert!(share(13.0, 14.0) < 0.06);
        assert!(share(17.0, 20.0) > 0.5);
        assert!(share(21.0, 24.0) > 0.06);
        assert!(hours.iter().all(|h| (13.0..23.5).contains(h)));
    }
}
