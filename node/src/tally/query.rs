//! Reads of the tally: a TPS result, region totals, progress and the TPS
//! still missing. Totals and progress come from the incremental aggregates;
//! the missing list walks only subtrees that still have a missing TPS.

use rekap_proto::pb;

use super::rules::{code, reject};
use super::{Aggregate, NASIONAL, RegionNode, TallyState, view};

/// Most TPS one `ListMissingTps` page returns.
pub const MAX_PAGE: usize = 1000;

/// One page of results (flagged ones, or all; `total_janggal` then counts
/// the reported TPS of the region).
#[derive(Debug, Clone, PartialEq)]
pub struct JanggalPage {
    pub items: Vec<pb::JanggalItem>,
    pub next_page_token: String,
    pub total_janggal: u64,
}

/// The TPS an export covers, each as its encoded `Tps`, back to back.
pub struct ExportList {
    encoded: Vec<u8>,
    /// Where each TPS's encoding ends in `encoded`.
    ends: Vec<usize>,
}

impl ExportList {
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts.zip(&self.ends).map(|(a, &b)| &self.encoded[a..b])
    }
}

/// One page of missing TPS.
#[derive(Debug, Clone, PartialEq)]
pub struct MissingPage {
    pub tps: Vec<pb::Tps>,
    pub next_page_token: String,
    pub total_missing: u64,
}

/// One kabupaten's count of TPS for one contest that covers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KabupatenCount {
    pub contest_id: String,
    pub region_code: String,
    pub tps_reported: u64,
    pub tps_total: u64,
    pub tps_janggal: u64,
}

impl TallyState {
    /// Every kabupaten's TPS counts, per contest that covers it, for
    /// `/metrics`: one pass over the aggregates, no result read.
    pub fn kabupaten_counts(&self) -> Vec<KabupatenCount> {
        let kabupaten = pb::RegionLevel::Kabupaten as i32;
        self.aggregates
            .iter()
            .filter(|((region, _), a)| {
                a.tps_total > 0
                    && self
                        .regions
                        .get(region)
                        .is_some_and(|r| r.region.level == kabupaten)
            })
            .map(|((region, contest), a)| KabupatenCount {
                contest_id: contest.clone(),
                region_code: region.clone(),
                tps_reported: a.tps_reported,
                tps_total: a.tps_total,
                tps_janggal: a.tps_janggal,
            })
            .collect()
    }

    pub fn tps_result(
        &self,
        tps_id: &str,
        contest_id: &str,
    ) -> Result<pb::StoredResult, pb::Rejection> {
        Ok(view(&self.history_of(tps_id, contest_id)?))
    }

    /// Every revision, oldest first.
    pub fn tps_history(
        &self,
        tps_id: &str,
        contest_id: &str,
    ) -> Result<Vec<pb::Revision>, pb::Rejection> {
        Ok(self.history_of(tps_id, contest_id)?.revisions)
    }

    fn history_of(
        &self,
        tps_id: &str,
        contest_id: &str,
    ) -> Result<pb::ResultHistory, pb::Rejection> {
        self.tps_of(tps_id)?;
        self.contest(contest_id)?;
        self.history(tps_id, contest_id).ok_or_else(|| {
            reject(
                code::NOT_FOUND,
                "result_exists",
                format!("TPS {tps_id} has no result for {contest_id} yet"),
            )
        })
    }

    /// Totals of the region and of each of its children.
    pub fn children_totals(
        &self,
        region_code: &str,
        contest_id: &str,
    ) -> Result<(pb::RegionTotals, Vec<pb::RegionTotals>), pb::Rejection> {
        let node = self.region(region_code)?;
        let own = self.totals(&node.region.code, contest_id)?;
        let children = node
            .children
            .iter()
            .map(|c| self.totals(c, contest_id))
            .collect::<Result<_, _>>()?;
        Ok((own, children))
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
            tps_janggal: agg.tps_janggal,
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
        let walk = Walk {
            contest_id,
            skip: &|a: &Aggregate| a.tps_reported >= a.tps_total,
            take: &|tps: &str| !self.has_result(tps, contest_id),
        };
        let (node, tps, next_page_token) =
            self.page(region_code, contest_id, page_size, page_token, &walk)?;
        let a = self.aggregate(&node.region.code, contest_id);
        Ok(MissingPage {
            tps: tps.iter().filter_map(|id| self.tps_pb(id)).collect(),
            next_page_token,
            total_missing: a.tps_total - a.tps_reported,
        })
    }

    /// Current results flagged janggal in the region, in tree order.
    pub fn janggal_queue(
        &self,
        region_code: &str,
        contest_id: &str,
        page_size: usize,
        page_token: &str,
    ) -> Result<JanggalPage, pb::Rejection> {
        let flagged = |tps: &str| {
            self.history(tps, contest_id)
                .is_some_and(|h| !super::current(&h).janggal.is_empty())
        };
        let walk = Walk {
            contest_id,
            skip: &|a: &Aggregate| a.tps_janggal == 0,
            take: &flagged,
        };
        let (node, tps, next_page_token) =
            self.page(region_code, contest_id, page_size, page_token, &walk)?;
        Ok(JanggalPage {
            items: self.items(tps, contest_id),
            next_page_token,
            total_janggal: self.aggregate(&node.region.code, contest_id).tps_janggal,
        })
    }

    /// Current results of the region's reported TPS, in tree order.
    pub fn results_page(
        &self,
        region_code: &str,
        contest_id: &str,
        page_size: usize,
        page_token: &str,
    ) -> Result<JanggalPage, pb::Rejection> {
        let reported = |tps: &str| self.has_result(tps, contest_id);
        let walk = Walk {
            contest_id,
            skip: &|a: &Aggregate| a.tps_reported == 0,
            take: &reported,
        };
        let (node, tps, next_page_token) =
            self.page(region_code, contest_id, page_size, page_token, &walk)?;
        Ok(JanggalPage {
            items: self.items(tps, contest_id),
            next_page_token,
            total_janggal: self.aggregate(&node.region.code, contest_id).tps_reported,
        })
    }

    /// For an export: the TPS of the region, in tree order, that may have a
    /// result for the contest (subtrees with none reported are skipped),
    /// each encoded as a `Tps` into one buffer, not two strings per TPS:
    /// this runs under the state's read lock.
    pub fn export_list(
        &self,
        region_code: &str,
        contest_id: &str,
    ) -> Result<ExportList, pb::Rejection> {
        let node = self.region(region_code)?;
        self.contest(contest_id)?;
        let walk = Walk {
            contest_id,
            skip: &|a: &Aggregate| a.tps_reported == 0,
            take: &|_: &str| true,
        };
        let mut found = Vec::new();
        self.walk(node, &walk, &[], usize::MAX, &mut found);
        let mut list = ExportList {
            encoded: Vec::with_capacity(found.len() * 40),
            ends: Vec::with_capacity(found.len()),
        };
        for i in found {
            let (id, e) = self.tps.get_index(i as usize).expect("walked");
            super::wire::encode_tps(id, self.desa_code(e), e.number, e.dpt, &mut list.encoded);
            list.ends.push(list.encoded.len());
        }
        Ok(list)
    }

    fn items(&self, tps: Vec<String>, contest_id: &str) -> Vec<pb::JanggalItem> {
        tps.into_iter()
            .filter_map(|id| {
                Some(pb::JanggalItem {
                    result: Some(view(&self.history(&id, contest_id)?)),
                    tps: self.tps_pb(&id),
                    encoded: None,
                })
            })
            .collect()
    }

    /// One page of the TPS under a region that `walk` takes, resuming after
    /// the TPS named by `page_token`.
    fn page<'a>(
        &'a self,
        region_code: &str,
        contest_id: &str,
        page_size: usize,
        page_token: &str,
        walk: &Walk<'_>,
    ) -> Result<(&'a RegionNode, Vec<String>, String), pb::Rejection> {
        let node = self.region(region_code)?;
        self.contest(contest_id)?;
        let limit = page_size.clamp(1, MAX_PAGE);
        let resume = if page_token.is_empty() {
            Vec::new()
        } else {
            let desa = self.tps_desa(page_token).ok_or_else(|| {
                reject(
                    code::INVALID_ARGUMENT,
                    "page_token",
                    format!("unknown page token {page_token:?}"),
                )
            })?;
            let mut path: Vec<String> = self.ancestors(desa);
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
        let mut found = Vec::with_capacity(limit + 1);
        self.walk(node, walk, &resume, limit + 1, &mut found);
        let mut out: Vec<String> = found.iter().map(|i| self.tps_id(*i).to_string()).collect();
        let next = if out.len() > limit {
            out.truncate(limit);
            out.last().cloned().unwrap_or_default()
        } else {
            String::new()
        };
        Ok((node, out, next))
    }

    /// `resume` is the path below `node` to the last TPS already returned;
    /// `out` gets the index of each TPS taken.
    fn walk(
        &self,
        node: &RegionNode,
        walk: &Walk<'_>,
        resume: &[String],
        limit: usize,
        out: &mut Vec<u32>,
    ) {
        if (walk.skip)(&self.aggregate(&node.region.code, walk.contest_id)) || out.len() >= limit {
            return;
        }
        if node.region.level == pb::RegionLevel::Desa as i32 {
            let start = resume.first();
            let covered = self
                .contests
                .get(walk.contest_id)
                .is_some_and(|c| self.covers(c, &self.chain_of(&node.region.code)));
            if !covered {
                return;
            }
            for &i in &node.tps {
                let id = self.tps_id(i);
                if start.is_some_and(|s| id <= s.as_str()) || !(walk.take)(id) {
                    continue;
                }
                out.push(i);
                if out.len() >= limit {
                    return;
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
            self.walk(&self.regions[child], walk, sub, limit, out);
            if out.len() >= limit {
                return;
            }
        }
    }

    pub(super) fn region(&self, code: &str) -> Result<&RegionNode, pb::Rejection> {
        let code = if code.is_empty() { NASIONAL } else { code };
        self.regions.get(code).ok_or_else(|| {
            reject(
                code::NOT_FOUND,
                "region_exists",
                format!("region {code} is not in the registry"),
            )
        })
    }

    pub(super) fn contest(&self, id: &str) -> Result<&pb::Contest, pb::Rejection> {
        self.contests.get(id).ok_or_else(|| {
            reject(
                code::NOT_FOUND,
                "contest_exists",
                format!("contest {id} is not in the registry"),
            )
        })
    }

    pub(super) fn tps_of(&self, id: &str) -> Result<pb::Tps, pb::Rejection> {
        self.tps_pb(id).ok_or_else(|| {
            reject(
                code::NOT_FOUND,
                "tps_exists",
                format!("TPS {id} is not in the registry"),
            )
        })
    }
}

/// What a paged walk over a region's TPS looks for.
struct Walk<'a> {
    contest_id: &'a str,
    /// A subtree whose aggregate says there is nothing to find is skipped.
    skip: &'a dyn Fn(&Aggregate) -> bool,
    take: &'a dyn Fn(&str) -> bool,
}
