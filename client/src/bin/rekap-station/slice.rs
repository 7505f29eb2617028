//! The operator's part of the registry, as the station uses it: their TPS
//! by desa, each TPS's contests, names for every region above them. Built
//! from `GetOperatorSlice` and kept in the outbox's cache, so the station
//! starts and works with no network at all.

use std::collections::{BTreeMap, HashMap};

use rekap_client::proto as pb;
use rekap_client::zones::Zone;

pub struct Slice {
    pub raw: pb::GetOperatorSliceResponse,
    regions: HashMap<String, pb::Region>,
    tps: BTreeMap<String, pb::Tps>,
    contests: BTreeMap<String, pb::Contest>,
    /// Results already in the cluster, by `tps|contest`.
    reported: HashMap<String, pb::ReportedResult>,
    /// When this copy was fetched from the cluster (Unix ms).
    pub fetched_at_ms: i64,
}

impl Slice {
    pub fn new(raw: pb::GetOperatorSliceResponse, fetched_at_ms: i64) -> Slice {
        let regions = raw
            .regions
            .iter()
            .map(|r| (r.code.clone(), r.clone()))
            .collect();
        let tps = raw
            .tps
            .iter()
            .map(|t| (t.tps_id.clone(), t.clone()))
            .collect();
        let contests = raw
            .contests
            .iter()
            .map(|c| (c.contest_id.clone(), c.clone()))
            .collect();
        let reported = raw
            .reported
            .iter()
            .map(|r| (crate::pages::key(&r.tps_id, &r.contest_id), r.clone()))
            .collect();
        Slice {
            reported,
            raw,
            regions,
            tps,
            contests,
            fetched_at_ms,
        }
    }

    pub fn tps(&self, id: &str) -> Option<&pb::Tps> {
        self.tps.get(id)
    }

    pub fn all_tps(&self) -> impl Iterator<Item = &pb::Tps> {
        self.tps.values()
    }

    /// The result a TPS had for a contest when the slice was read.
    pub fn reported(&self, tps: &str, contest: &str) -> Option<&pb::ReportedResult> {
        self.reported.get(&crate::pages::key(tps, contest))
    }

    pub fn contest(&self, id: &str) -> Option<&pb::Contest> {
        self.contests.get(id)
    }

    /// Regions from nasional down to `code`, `code` last.
    pub fn lineage(&self, code: &str) -> Vec<&pb::Region> {
        let mut out = Vec::new();
        let mut at = self.regions.get(code);
        while let Some(r) = at {
            out.push(r);
            at = self.regions.get(&r.parent_code);
        }
        out.reverse();
        out
    }

    pub fn region_name<'a>(&'a self, code: &'a str) -> &'a str {
        self.regions.get(code).map_or(code, |r| r.name.as_str())
    }

    /// The name of the region at `level` above a desa (e.g. its kecamatan).
    pub fn above(&self, desa: &str, level: pb::RegionLevel) -> &str {
        self.lineage(desa)
            .into_iter()
            .find(|r| r.level == level as i32)
            .map_or("", |r| r.name.as_str())
    }

    /// The contests a TPS reports for: those whose scope is above it.
    pub fn contests_of(&self, tps: &pb::Tps) -> Vec<&pb::Contest> {
        let chain: Vec<&str> = self
            .lineage(&tps.desa_code)
            .iter()
            .map(|r| r.code.as_str())
            .collect();
        self.contests
            .values()
            .filter(|c| {
                let scope = if c.scope_code.is_empty() {
                    "ID"
                } else {
                    c.scope_code.as_str()
                };
                chain.contains(&scope)
            })
            .collect()
    }

    pub fn zone_of(&self, tps: &pb::Tps) -> Zone {
        let lineage: Vec<pb::Region> = self.lineage(&tps.desa_code).into_iter().cloned().collect();
        Zone::of_lineage(&lineage)
    }

    /// The zone the operator's office reads its clock in: its TPS's (a
    /// slice never spans zones in practice; the first TPS decides).
    pub fn zone(&self) -> Zone {
        self.tps
            .values()
            .next()
            .map_or(Zone::Wib, |t| self.zone_of(t))
    }

    /// The slice's TPS by kecamatan and desa name, for the list page.
    pub fn by_desa(&self) -> Vec<(String, String, Vec<&pb::Tps>)> {
        let mut groups: BTreeMap<(String, String, String), Vec<&pb::Tps>> = BTreeMap::new();
        for t in self.tps.values() {
            let kec = self.above(&t.desa_code, pb::RegionLevel::Kecamatan);
            let desa = self.region_name(&t.desa_code);
            groups
                .entry((kec.to_string(), desa.to_string(), t.desa_code.clone()))
                .or_default()
                .push(t);
        }
        groups
            .into_iter()
            .map(|((kec, desa, _), mut tps)| {
                tps.sort_by_key(|t| t.number);
                (kec, desa, tps)
            })
            .collect()
    }
}
