//! Applying a registry chunk: regions, TPS and contests, all-or-nothing.

use std::collections::{HashMap, HashSet};

use indexmap::IndexMap;
use prost::Message;
use rekap_proto::pb;
use rustc_hash::{FxHashMap, FxHashSet};

use super::rules::{check_id, code, invalid, reject};
use super::{Fast, NASIONAL, TallyState, keys, scope_of};

type Level = pb::RegionLevel;

impl TallyState {
    /// Validates the whole chunk against the current registry, then applies
    /// it. Rows equal to what is loaded count as unchanged; nothing is written
    /// for them, so loading the same files twice is a no-op.
    pub(super) fn load_registry(
        &mut self,
        req: &pb::LoadRegistryRequest,
        log_index: u64,
    ) -> Result<pb::LoadRegistryResponse, pb::Rejection> {
        let mut resp = pb::LoadRegistryResponse {
            log_index,
            ..Default::default()
        };
        let regions = self.check_regions(&req.regions)?;
        let levels: FxHashMap<&str, i32> =
            regions.iter().map(|r| (r.code.as_str(), r.level)).collect();
        self.check_tps(&req.tps, &levels)?;
        self.check_contests(&req.contests, &levels)?;
        self.check_removals(&req.remove_tps)?;

        for r in regions {
            match self.regions.get(&r.code) {
                Some(n) if n.region == r => resp.unchanged += 1,
                Some(_) => resp.regions_updated += 1,
                None => resp.regions_added += 1,
            }
            if self.regions.get(&r.code).is_none_or(|n| n.region != r) {
                self.put(keys::region(&r.code), Some(r.encode_to_vec()));
                self.insert_region(r);
            }
        }
        // New TPS are counted per desa, after the loop: a chunk lists a
        // desa's TPS together, and each count walks the desa's ancestors
        // and the contests covering them. Before the contests below, which
        // count the TPS already placed themselves.
        let mut new_in_desa: IndexMap<&str, i64, Fast> = IndexMap::default();
        for t in &req.tps {
            match self.tps_pb(&t.tps_id) {
                Some(old) if old == *t => {
                    resp.unchanged += 1;
                    continue;
                }
                Some(_) => resp.tps_updated += 1,
                None => {
                    resp.tps_added += 1;
                    *new_in_desa.entry(t.desa_code.as_str()).or_default() += 1;
                }
            }
            self.put(keys::tps(&t.tps_id), Some(t.encode_to_vec()));
            self.place_tps(t);
        }
        for (desa, n) in new_in_desa {
            self.count_tps(desa, n);
        }
        for c in &req.contests {
            let c = normalise_contest(c);
            match self.contests.get(&c.contest_id) {
                Some(old) if *old == c => {
                    resp.unchanged += 1;
                    continue;
                }
                Some(_) => resp.contests_updated += 1,
                None => resp.contests_added += 1,
            }
            self.put(keys::contest(&c.contest_id), Some(c.encode_to_vec()));
            match self.contests.get_mut(&c.contest_id) {
                // Same candidates in the same order, same scope: only names or
                // numbers changed, and the aggregates stay as they are.
                Some(old) if same_shape(old, &c) => *old = c,
                _ => self.insert_contest(c),
            }
        }
        for id in &req.remove_tps {
            if self.remove_tps(id) {
                self.put(keys::tps(id), None);
                resp.tps_removed += 1;
            }
        }
        Ok(resp)
    }

    /// Regions sorted parents first, each with a parent one level up that is
    /// loaded or earlier in the chunk. A loaded region keeps its level and
    /// parent; only its name may change.
    fn check_regions(&self, rows: &[pb::Region]) -> Result<Vec<pb::Region>, pb::Rejection> {
        let mut sorted: Vec<pb::Region> = rows.to_vec();
        for r in &mut sorted {
            if r.level == Level::Provinsi as i32 && r.parent_code.is_empty() {
                r.parent_code = NASIONAL.to_string();
            }
        }
        sorted.sort_by_key(|r| r.level);
        let mut in_chunk: HashMap<String, i32> = HashMap::new();
        for r in &sorted {
            check_id("region code", &r.code)?;
            let level = Level::try_from(r.level).unwrap_or(Level::Unspecified);
            if !(Level::Provinsi as i32..=Level::Desa as i32).contains(&r.level) {
                return Err(invalid(
                    "region_level",
                    format!(
                        "region {} has level {level:?}; loadable levels are provinsi..desa",
                        r.code
                    ),
                ));
            }
            if r.name.trim().is_empty() {
                return Err(invalid(
                    "required_field",
                    format!("region {} has no name", r.code),
                ));
            }
            let parent_level = in_chunk
                .get(&r.parent_code)
                .copied()
                .or_else(|| self.regions.get(&r.parent_code).map(|n| n.region.level));
            match parent_level {
                None => {
                    return Err(reject(
                        code::NOT_FOUND,
                        "parent_exists",
                        format!(
                            "parent {:?} of region {} is not loaded",
                            r.parent_code, r.code
                        ),
                    ));
                }
                Some(pl) if pl != r.level - 1 => {
                    return Err(invalid(
                        "region_level",
                        format!(
                            "region {} must sit one level below its parent {}",
                            r.code, r.parent_code
                        ),
                    ));
                }
                _ => {}
            }
            if let Some(old) = self.regions.get(&r.code)
                && (old.region.level != r.level || old.region.parent_code != r.parent_code)
            {
                return Err(reject(
                    code::FAILED_PRECONDITION,
                    "registry_immutable",
                    format!("region {} is loaded with another level or parent", r.code),
                ));
            }
            if in_chunk.insert(r.code.clone(), r.level).is_some() {
                return Err(invalid(
                    "duplicate_row",
                    format!("region {} appears twice", r.code),
                ));
            }
        }
        Ok(sorted)
    }

    fn check_tps(
        &self,
        rows: &[pb::Tps],
        chunk_levels: &FxHashMap<&str, i32>,
    ) -> Result<(), pb::Rejection> {
        let mut seen = FxHashSet::default();
        for t in rows {
            check_id("tps_id", &t.tps_id)?;
            if !seen.insert(t.tps_id.as_str()) {
                return Err(invalid(
                    "duplicate_row",
                    format!("TPS {} appears twice", t.tps_id),
                ));
            }
            if t.number == 0 {
                return Err(invalid(
                    "tps_number",
                    format!("TPS {} has number 0", t.tps_id),
                ));
            }
            let level = chunk_levels
                .get(t.desa_code.as_str())
                .copied()
                .or_else(|| self.regions.get(&t.desa_code).map(|n| n.region.level));
            match level {
                None => {
                    return Err(reject(
                        code::NOT_FOUND,
                        "parent_exists",
                        format!("desa {:?} of TPS {} is not loaded", t.desa_code, t.tps_id),
                    ));
                }
                Some(l) if l != Level::Desa as i32 => {
                    return Err(invalid(
                        "region_level",
                        format!(
                            "TPS {} must belong to a desa, not {}",
                            t.tps_id, t.desa_code
                        ),
                    ));
                }
                _ => {}
            }
            if let Some(old) = self.tps_desa(&t.tps_id)
                && old != t.desa_code
            {
                return Err(reject(
                    code::FAILED_PRECONDITION,
                    "registry_immutable",
                    format!("TPS {} is loaded under desa {}", t.tps_id, old),
                ));
            }
        }
        Ok(())
    }

    /// A contest's candidates and scope can change only while it has no
    /// result, since aggregates are kept per candidate.
    fn check_contests(
        &self,
        rows: &[pb::Contest],
        chunk_levels: &FxHashMap<&str, i32>,
    ) -> Result<(), pb::Rejection> {
        let mut seen = FxHashSet::default();
        for c in rows {
            check_id("contest_id", &c.contest_id)?;
            if !seen.insert(c.contest_id.as_str()) {
                return Err(invalid(
                    "duplicate_row",
                    format!("contest {} appears twice", c.contest_id),
                ));
            }
            let scope = scope_of(c);
            if !chunk_levels.contains_key(scope) && !self.regions.contains_key(scope) {
                return Err(reject(
                    code::NOT_FOUND,
                    "parent_exists",
                    format!("scope {scope:?} of contest {} is not loaded", c.contest_id),
                ));
            }
            if c.candidates.is_empty() {
                return Err(invalid(
                    "candidate_set",
                    format!("contest {} has no candidates", c.contest_id),
                ));
            }
            let mut ids = HashSet::new();
            for cand in &c.candidates {
                check_id("candidate_id", &cand.candidate_id)?;
                if !ids.insert(cand.candidate_id.as_str()) {
                    return Err(invalid(
                        "candidate_set",
                        format!(
                            "candidate {} appears twice in {}",
                            cand.candidate_id, c.contest_id
                        ),
                    ));
                }
            }
            if let Some(old) = self.contests.get(&c.contest_id) {
                let new = normalise_contest(c);
                let shape_changed = !same_shape(old, &new);
                if shape_changed && self.has_results(&c.contest_id) {
                    return Err(reject(
                        code::FAILED_PRECONDITION,
                        "registry_immutable",
                        format!(
                            "contest {} has results; its candidates and scope are fixed",
                            c.contest_id
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Only TPS without any result may be removed: a result must never lose
    /// its place in the hierarchy.
    fn check_removals(&self, ids: &[String]) -> Result<(), pb::Rejection> {
        for id in ids {
            // Already gone: a retried removal is a no-op, not an error.
            if !self.tps.contains_key(id.as_str()) {
                continue;
            }
            if self.contests.keys().any(|c| self.has_result(id, c)) {
                return Err(reject(
                    code::FAILED_PRECONDITION,
                    "tps_has_results",
                    format!("TPS {id} has results and cannot be removed"),
                ));
            }
        }
        Ok(())
    }

    /// Every result counts once in its contest's aggregate at nasional.
    fn has_results(&self, contest_id: &str) -> bool {
        self.aggregate(super::NASIONAL, contest_id).tps_reported > 0
    }
}

/// Whether two versions of a contest aggregate alike: the same candidate
/// ids in the same order, and the same scope.
fn same_shape(a: &pb::Contest, b: &pb::Contest) -> bool {
    scope_of(a) == scope_of(b)
        && a.candidates
            .iter()
            .map(|c| &c.candidate_id)
            .eq(b.candidates.iter().map(|c| &c.candidate_id))
}

/// Candidates in ballot-number order, scope spelt out.
fn normalise_contest(c: &pb::Contest) -> pb::Contest {
    let mut c = c.clone();
    c.candidates
        .sort_by(|a, b| (a.number, &a.candidate_id).cmp(&(b.number, &b.candidate_id)));
    if c.scope_code.is_empty() {
        c.scope_code = NASIONAL.to_string();
    }
    c
}
