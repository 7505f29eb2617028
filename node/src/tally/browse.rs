//! Reads for people browsing the tally on the public dashboard: the
//! contests counted in a region, the path from nasional down to a region,
//! and one desa's TPS, each with its current result if it has one.

use rekap_proto::pb;
use rekap_proto::zones::Zone;

use super::{AggRef, TallyState, scope_of, up_from, view};

/// Contests held inside a region (a Pilkada, a dapil) that its page lists
/// beside those covering all of it, when there are no more than this; a
/// national registry has thousands of dapil contests.
const MAX_INNER_CONTESTS: usize = 12;

/// One TPS of a desa and its current result for a contest, if any.
pub struct TpsRow {
    pub tps: pb::Tps,
    pub result: Option<pb::StoredResult>,
}

impl TallyState {
    /// The contests a page of `region` offers: those whose scope covers
    /// all of it, in id order, then those held inside it (a few at most).
    pub fn contests_in(&self, region: &str) -> Vec<pb::Contest> {
        let Ok(node) = self.region(region) else {
            return Vec::new();
        };
        let code = node.region.code.as_str();
        let above = self.chain_of(code);
        // A national registry holds thousands of contests: look, then
        // copy only those the page shows.
        let counted = |c: &&pb::Contest| {
            self.aggregates
                .get(&AggRef(code, &c.contest_id))
                .is_some_and(|a| a.tps_total > 0)
        };
        let (covering, inner): (Vec<&pb::Contest>, Vec<&pb::Contest>) = self
            .contests
            .values()
            .filter(counted)
            .partition(|c| above.contains(&scope_of(c)));
        let shown = if inner.len() <= MAX_INNER_CONTESTS {
            covering.into_iter().chain(inner).collect::<Vec<_>>()
        } else {
            covering
        };
        shown.into_iter().cloned().collect()
    }

    /// Every contest's totals over its whole scope, in contest id order.
    pub fn contest_totals(&self) -> Vec<pb::RegionTotals> {
        self.contests
            .values()
            .filter_map(|c| self.totals(scope_of(c), &c.contest_id).ok())
            .collect()
    }

    /// The regions from nasional down to `code`, `code` last.
    pub fn lineage(&self, code: &str) -> Result<Vec<pb::Region>, pb::Rejection> {
        let node = self.region(code)?;
        let mut out = Vec::new();
        up_from(&self.regions, &node.region.code, |c| {
            out.push(self.regions[c].region.clone())
        });
        out.reverse();
        Ok(out)
    }

    /// The time zone of a region, or of a TPS by its id: its provinsi's
    /// (`rekap_proto::zones`); nasional and regions above a provinsi are
    /// shown in WIB, KPU RI's clock.
    pub fn zone_of(&self, code: &str) -> Zone {
        let code = match self.tps_of(code) {
            Ok(t) => t.desa_code,
            Err(_) => code.to_string(),
        };
        self.lineage(&code)
            .map_or(Zone::Wib, |l| Zone::of_lineage(&l))
    }

    /// The registry's record of one TPS.
    pub fn tps_info(&self, tps_id: &str) -> Result<pb::Tps, pb::Rejection> {
        self.tps_of(tps_id)
    }

    /// A desa's TPS in id order, with their current results for `contest`
    /// (none for another level's region).
    pub fn desa_tps(&self, desa: &str, contest: &str) -> Result<Vec<TpsRow>, pb::Rejection> {
        let node = self.region(desa)?;
        self.contest(contest)?;
        Ok(node
            .tps
            .iter()
            .filter_map(|&i| {
                let id = self.tps_id(i);
                Some(TpsRow {
                    tps: self.tps_pb(id)?,
                    result: self.history(id, contest).map(|h| view(&h)),
                })
            })
            .collect())
    }
}
