//! Running sums per (region, contest), kept in memory and persisted with the
//! records they summarise: every apply writes the aggregates it changed in
//! the same batch as the results, so a restart reads them back instead of
//! recounting every result.

use rekap_proto::pb;

use indexmap::{IndexMap, IndexSet};

use super::{AggRef, Fast, ResultKey, TallyState, keys, up_from_index};

/// Running sums of one region for one contest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Aggregate {
    /// In the contest's candidate order.
    pub votes: Vec<u64>,
    pub sah: u64,
    pub tidak_sah: u64,
    pub total: u64,
    pub tps_reported: u64,
    pub tps_total: u64,
    pub tps_janggal: u64,
    /// The log index of the last command that changed these sums, when
    /// this process applied it (not persisted: `None` after a load).
    pub changed_at: Option<u64>,
}

const FIXED: usize = 6;

impl Aggregate {
    fn is_zero(&self) -> bool {
        self.encode().iter().all(|b| *b == 0)
    }

    /// Little-endian u64s: the six counters, then the votes.
    pub fn encode(&self) -> Vec<u8> {
        let fixed = [
            self.sah,
            self.tidak_sah,
            self.total,
            self.tps_reported,
            self.tps_total,
            self.tps_janggal,
        ];
        let mut out = Vec::with_capacity(8 * (FIXED + self.votes.len()));
        for v in fixed.iter().chain(&self.votes) {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out
    }

    pub fn decode(b: &[u8]) -> Option<Self> {
        if !b.len().is_multiple_of(8) || b.len() < 8 * FIXED {
            return None;
        }
        let mut n = b
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")));
        let mut next = || n.next().expect("length checked");
        let (sah, tidak_sah, total) = (next(), next(), next());
        let (tps_reported, tps_total, tps_janggal) = (next(), next(), next());
        Some(Aggregate {
            votes: n.collect(),
            sah,
            tidak_sah,
            total,
            tps_reported,
            tps_total,
            tps_janggal,
            changed_at: None,
        })
    }
}

impl TallyState {
    /// Adds (`sign` = 1) or takes away (-1) a revision's figures in every
    /// region above its TPS. A correction takes away the old revision and
    /// adds the new, so aggregates move by exactly the difference.
    pub(super) fn contribute(&mut self, key: &ResultKey, rev: &pb::Revision, sign: i64) {
        let Some(s) = rev.submission.as_ref() else {
            return;
        };
        let Some(contest) = self.contests.get(&key.1) else {
            return;
        };
        let Some(desa) = self.tps.get(key.0.as_str()).map(|e| e.desa as usize) else {
            return;
        };
        let count = |v: &pb::CandidateVotes| v.votes.max(0) as u64;
        // Stored revisions list their votes in the contest's order
        // (`canonical`): no search per candidate then.
        let votes: Vec<u64> = if super::rules::in_contest_order(contest, s) {
            s.votes.iter().map(count).collect()
        } else {
            contest
                .candidates
                .iter()
                .map(|c| {
                    s.votes
                        .iter()
                        .find(|v| v.candidate_id == c.candidate_id)
                        .map_or(0, count)
                })
                .collect()
        };
        let n = votes.len();
        let num = |v: Option<i64>| v.unwrap_or(0).max(0) as u64;
        let (sah, tidak_sah, total) = (num(s.sah), num(s.tidak_sah), num(s.total));
        let flagged = u64::from(!rev.janggal.is_empty());
        let add = |x: &mut u64, d: u64| {
            *x = if sign > 0 { *x + d } else { *x - d };
        };
        let TallyState {
            regions,
            aggregates,
            dirty,
            ..
        } = self;
        up_from_index(regions, desa, |code| {
            let a = agg_entry(aggregates, dirty, code, &key.1, n);
            for (sum, v) in a.votes.iter_mut().zip(&votes) {
                add(sum, *v);
            }
            add(&mut a.sah, sah);
            add(&mut a.tidak_sah, tidak_sah);
            add(&mut a.total, total);
            add(&mut a.tps_reported, 1);
            add(&mut a.tps_janggal, flagged);
        });
    }

    /// The aggregate to change; it is written back at the end of the apply.
    pub(super) fn agg_mut(&mut self, region: &str, contest: &str, n: usize) -> &mut Aggregate {
        agg_entry(&mut self.aggregates, &mut self.dirty, region, contest, n)
    }

    /// Drops every aggregate of a contest (its shape or scope changed).
    pub(super) fn drop_aggregates(&mut self, contest_id: &str) {
        let gone: Vec<ResultKey> = self
            .aggregates
            .keys()
            .filter(|(_, c)| c == contest_id)
            .cloned()
            .collect();
        for k in gone {
            self.aggregates.swap_remove(&k);
            self.dirty.insert(k);
        }
    }

    /// Writes every aggregate changed since the last call. One that is all
    /// zeros reads the same as none and is dropped, so the records depend
    /// only on the registry and the results, never on their history.
    pub(super) fn flush_aggregates(&mut self, log_index: Option<u64>) {
        // In key order, so the writes are the same whatever order the
        // command touched them in.
        let mut dirty: Vec<ResultKey> = std::mem::take(&mut self.dirty).into_iter().collect();
        dirty.sort_unstable();
        for key in dirty {
            if self.aggregates.get(&key).is_some_and(Aggregate::is_zero) {
                self.aggregates.swap_remove(&key);
            }
            if let Some(a) = self.aggregates.get_mut(&key) {
                a.changed_at = log_index.or(a.changed_at);
            }
            let value = self.aggregates.get(&key).map(Aggregate::encode);
            self.put(keys::aggregate(&key.0, &key.1), value);
        }
    }

    pub(super) fn aggregate(&self, region: &str, contest: &str) -> Aggregate {
        self.aggregates
            .get(&AggRef(region, contest))
            .cloned()
            .unwrap_or_default()
    }

    /// The index of the last command this process applied that changed
    /// the sums of `region` for `contest` (`None`: none it applied).
    pub fn changed_at(&self, region: &str, contest: &str) -> Option<u64> {
        self.aggregates
            .get(&AggRef(region, contest))
            .and_then(|a| a.changed_at)
    }

    /// When the figures of `region` for `contest` last changed, as far as
    /// this process knows: the index that changed them, `loaded_at` for
    /// sums read back from disk, `now` for sums that do not exist (never
    /// counted, or dropped back to zero at an unknown index).
    pub fn last_change(&self, region: &str, contest: &str, loaded_at: u64, now: u64) -> u64 {
        let region = if region.is_empty() {
            super::NASIONAL
        } else {
            region
        };
        match self.aggregates.get(&AggRef(region, contest)) {
            Some(a) => a.changed_at.unwrap_or(loaded_at),
            None => now,
        }
    }
}

/// The aggregate of `(region, contest)`, created if new and marked dirty,
/// with room for `n` candidates; allocates only the first time a command
/// touches it.
fn agg_entry<'m>(
    aggregates: &'m mut IndexMap<ResultKey, Aggregate, Fast>,
    dirty: &mut IndexSet<ResultKey, Fast>,
    region: &str,
    contest: &str,
    n: usize,
) -> &'m mut Aggregate {
    let key = AggRef(region, contest);
    if !dirty.contains(&key) {
        dirty.insert((region.to_string(), contest.to_string()));
    }
    let i = match aggregates.get_index_of(&key) {
        Some(i) => i,
        None => {
            aggregates
                .insert_full(
                    (region.to_string(), contest.to_string()),
                    Aggregate::default(),
                )
                .0
        }
    };
    let a = &mut aggregates[i];
    if a.votes.len() < n {
        a.votes.resize(n, 0);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregates_encode_round_trip_and_refuse_short_input() {
        let a = Aggregate {
            votes: vec![3, 0, u64::MAX],
            sah: 1,
            tidak_sah: 2,
            total: 3,
            tps_reported: 4,
            tps_total: 5,
            tps_janggal: 6,
            changed_at: None,
        };
        assert_eq!(Aggregate::decode(&a.encode()), Some(a));
        assert_eq!(Aggregate::decode(&[0; 40]), None);
        assert_eq!(Aggregate::decode(&[0; 49]), None);
    }
}
