//! A synthetic Kotabaru-like registry for tests and benchmarks: one
//! provinsi and one kabupaten with numbered kecamatan, desa and TPS, and a
//! two-paslon contest over the kabupaten. Every name and DPT is derived
//! from indices, so two runs give identical registries.

use rekap_proto::pb;

use crate::registry::Registry;

/// Shape of a synthetic registry: one provinsi and one kabupaten, named
/// after Kotabaru by default, with a two-paslon contest over the kabupaten.
#[derive(Debug, Clone)]
pub struct Synthetic {
    /// Prefix of every code, so several synthetic registries can coexist.
    pub prefix: String,
    pub kecamatan: usize,
    pub desa_per_kecamatan: usize,
    pub tps_per_desa: usize,
    pub contest_id: String,
}

impl Synthetic {
    pub fn tps_count(&self) -> usize {
        self.kecamatan * self.desa_per_kecamatan * self.tps_per_desa
    }

    pub fn build(&self) -> Registry {
        use pb::RegionLevel::*;
        let p = &self.prefix;
        let region =
            |code: String, parent: String, level: pb::RegionLevel, name: String| pb::Region {
                code,
                parent_code: parent,
                level: level as i32,
                name,
            };
        let prov = format!("{p}63");
        let kab = format!("{prov}.02");
        let mut reg = Registry::default();
        reg.regions.push(region(
            prov.clone(),
            "ID".into(),
            Provinsi,
            "KALIMANTAN SELATAN".into(),
        ));
        reg.regions.push(region(
            kab.clone(),
            prov.clone(),
            Kabupaten,
            "KOTABARU".into(),
        ));
        for k in 1..=self.kecamatan {
            let kec = format!("{kab}.{k:02}");
            reg.regions.push(region(
                kec.clone(),
                kab.clone(),
                Kecamatan,
                format!("KECAMATAN {k:02}"),
            ));
            for d in 1..=self.desa_per_kecamatan {
                let desa = format!("{kec}.{:04}", 2000 + d);
                reg.regions.push(region(
                    desa.clone(),
                    kec.clone(),
                    Desa,
                    format!("DESA {k:02}-{d:02}"),
                ));
                for t in 1..=self.tps_per_desa {
                    reg.tps.push(pb::Tps {
                        tps_id: format!("{desa}-{t:03}"),
                        desa_code: desa.clone(),
                        number: t as u32,
                        dpt: Some(250 + ((k * 31 + d * 7 + t * 13) % 50) as u32),
                    });
                }
            }
        }
        reg.contests.push(super::contest(
            &self.contest_id,
            "PEMILIHAN BUPATI KOTABARU",
            &kab,
            &["PASLON 01", "PASLON 02"],
        ));
        reg
    }
}
