//! Reads of the tally: a TPS result, region totals, progress and the TPS
//! still missing. Totals and progress come from the incremental aggregates;
//! the missing list walks only subtrees that still have a missing TPS.

use rekap_proto::pb;

use super::rules::{code, reject};
use super::{Aggregate, NASIONAL, RegionNode, TallyState};

/// Most TPS one `ListMissingTps` page returns.
pub const MAX_PAGE: usize = 1000;

/// One page of missing TPS.
#[derive(Debug, Clone, PartialEq)]
pub struct MissingPage {
    pub tps: Vec<pb::Tps>,
    pub next_page_token: String,
    pub total_missing: u64,
}

impl TallyState {
    pub fn tps_result(
        &self,
        tps_id: &str,
        contest_id: &str,
    ) -> Result<pb::StoredResult, pb::Rejection> {
        self.tps_of(tps_id)?;
        self.contest(contest_id)?;
        self.results
            .get(&(tps_id.to_string(), contest_id.to_string()))
            .cloned()
            .ok_or_else(|| {
                reject(
                    code::NOT_FOUND,
                    "result_exists",
                    format!("TPS {tps_id} has no result for {contest_id} yet"),
                )
            })
    }

    pub fn totals(
        &self,
        region_code: &str,
        contest_id: &str,
    ) -> Result<pb::RegionTotals, pb::Rejection> {
        let node = self.region(region_code)?;
        let contest = self.contest(contest_id)?;
        let agg = self.aggregate(&node.region.code, contest_id);
        let candidates = contest
            .candidates
            .iter()
            .enumerate()
            .map(|(i, c)| pb::CandidateTotal {
                candidate_id: c.candidate_id.clone(),
                number: c.number,
                name: c.name.clone(),
                votes: agg.votes.get(i).copied().unwrap_or(0),
            })
            .collect();
        Ok(pb::RegionTotals {
            region: Some(node.region.clone()),
            contest_id: contest_id.to_string(),
            candidates,
            sah: agg.sah,
            tidak_sah: agg.tidak_sah,
            total: agg.total,
            tps_reported: agg.tps_reported,
            tps_total: agg.tps_total,
        })
    }

    /// Progress of the region and of each of its children.
    pub fn progress(
        &self,
        region_code: &str,
        contest_id: &str,
    ) -> Result<(pb::RegionProgress, Vec<pb::RegionProgress>), pb::Rejection> {
        let node = self.region(region_code)?;
        self.contest(contest_id)?;
        let of = |n: &RegionNode| {
            let a = self.aggregate(&n.region.code, contest_id);
            pb::RegionProgress {
                region: Some(n.region.clone()),
                tps_reported: a.tps_reported,
                tps_total: a.tps_total,
            }
        };
        let children = node.children.iter().map(|c| of(&self.regions[c])).collect();
        Ok((of(node), children))
    }

    /// TPS of the region, in the contest's scope, with no result yet: in
    /// tree order (region codes, then TPS ids), resuming after `page_token`
    /// (the last TPS id of the previous page).
    pub fn missing(
        &self,
        region_code: &str,
        contest_id: &str,
        page_size: usize,
        page_token: &str,
    ) -> Result<MissingPage, pb::Rejection> {
        let node = self.region(region_code)?;
        self.contest(contest_id)?;
        let limit = page_size.clamp(1, MAX_PAGE);
        let resume = if page_token.is_empty() {
            Vec::new()
        } else {
            let t = self.tps.get(page_token).ok_or_else(|| {
                reject(
                    code::INVALID_ARGUMENT,
                    "page_token",
                    format!("unknown page token {page_token:?}"),
                )
            })?;
            let mut path: Vec<String> = self.chain(&t.desa_code);
            let Some(pos) = path.iter().position(|c| *c == node.region.code) else {
                return Err(reject(
                    code::INVALID_ARGUMENT,
                    "page_token",
                    format!("page token {page_token:?} is not in region {region_code}"),
                ));
            };
            path.truncate(pos);
            path.reverse();
            path.push(page_token.to_string());
            path
        };
        let mut out = Vec::with_capacity(limit + 1);
        self.walk_missing(node, contest_id, &resume, limit + 1, &mut out);
        let next_page_token = if out.len() > limit {
            out.truncate(limit);
            out.last().map(|t| t.tps_id.clone()).unwrap_or_default()
        } else {
            String::new()
        };
        let a = self.aggregate(&node.region.code, contest_id);
        Ok(MissingPage {
            tps: out,
            next_page_token,
            total_missing: a.tps_total - a.tps_reported,
        })
    }

    /// `resume` is the path below `node` to the last TPS already returned.
    fn walk_missing(
        &self,
        node: &RegionNode,
        contest_id: &str,
        resume: &[String],
        limit: usize,
        out: &mut Vec<pb::Tps>,
    ) {
        let a = self.aggregate(&node.region.code, contest_id);
        if a.tps_reported >= a.tps_total || out.len() >= limit {
            return;
        }
        if node.region.level == pb::RegionLevel::Desa as i32 {
            let start = resume.first();
            let covered = self
                .contests
                .get(contest_id)
                .is_some_and(|c| self.covers(c, &self.chain(&node.region.code)));
            if !covered {
                return;
            }
            for id in &node.tps {
                if start.is_some_and(|s| id <= s) {
                    continue;
                }
                let key = (id.clone(), contest_id.to_string());
                if !self.results.contains_key(&key) {
                    out.push(self.tps[id].clone());
                    if out.len() >= limit {
                        return;
                    }
                }
            }
            return;
        }
        for child in &node.children {
            let sub: &[String] = match resume.first() {
                Some(r) if child < r => continue,
                Some(r) if child == r => &resume[1..],
                _ => &[],
            };
            self.walk_missing(&self.regions[child], contest_id, sub, limit, out);
            if out.len() >= limit {
                return;
            }
        }
    }

    fn aggregate(&self, region: &str, contest: &str) -> Aggregate {
        self.aggregates
            .get(&(region.to_string(), contest.to_string()))
            .cloned()
            .unwrap_or_default()
    }

    fn region(&self, code: &str) -> Result<&RegionNode, pb::Rejection> {
        let code = if code.is_empty() { NASIONAL } else { code };
        self.regions.get(code).ok_or_else(|| {
            reject(
                code::NOT_FOUND,
                "region_exists",
                format!("region {code} is not in the registry"),
            )
        })
    }

    fn contest(&self, id: &str) -> Result<&pb::Contest, pb::Rejection> {
        self.contests.get(id).ok_or_else(|| {
            reject(
                code::NOT_FOUND,
                "contest_exists",
                format!("contest {id} is not in the registry"),
            )
        })
    }

    fn tps_of(&self, id: &str) -> Result<&pb::Tps, pb::Rejection> {
        self.tps.get(id).ok_or_else(|| {
            reject(
                code::NOT_FOUND,
                "tps_exists",
                format!("TPS {id} is not in the registry"),
            )
        })
    }
}
