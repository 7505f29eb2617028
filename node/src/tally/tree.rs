//! The registry's tree in memory, compact: each TPS is its id and three
//! numbers, and names its desa by index; a desa lists its TPS by index, in
//! id order. A national registry (820,000 TPS) costs tens of MiB, not the
//! hundreds that a copy of every `pb::Tps` with its strings would.

use std::collections::BTreeSet;

use rekap_proto::pb;

use super::{TallyState, scope_of};

/// A region with its place in the tree.
#[derive(Debug, Clone)]
pub(super) struct RegionNode {
    pub region: pb::Region,
    pub children: BTreeSet<String>,
    /// Indexes into `TallyState::tps`, in TPS id order; only a desa has any.
    pub tps: Vec<u32>,
    /// Index of the parent in `TallyState::regions`: walks up the tree by
    /// index, not by hashing each code. Set once, at insert, since a parent
    /// is always inserted first (the registry rules at apply, a sort by
    /// level at load) and never changes.
    pub parent: Option<u32>,
}

impl RegionNode {
    pub fn new(region: pb::Region, parent: Option<u32>) -> Self {
        RegionNode {
            region,
            children: BTreeSet::new(),
            tps: Vec::new(),
            parent,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct TpsEntry {
    /// Index into `TallyState::regions`.
    pub desa: u32,
    pub number: u32,
    pub dpt: Option<u32>,
}

impl TallyState {
    pub(super) fn insert_region(&mut self, region: pb::Region) {
        let code = region.code.clone();
        let parent = region.parent_code.clone();
        match self.regions.get_mut(&code) {
            Some(n) => n.region = region,
            None => {
                let up = self.regions.get_index_of(&parent).map(|i| i as u32);
                self.regions
                    .insert(code.clone(), RegionNode::new(region, up));
            }
        }
        if let Some(p) = self.regions.get_mut(&parent) {
            p.children.insert(code);
        }
    }

    /// The desa code of a TPS.
    pub(super) fn tps_desa(&self, id: &str) -> Option<&str> {
        let e = self.tps.get(id)?;
        Some(self.desa_code(e))
    }

    pub(super) fn desa_code(&self, e: &TpsEntry) -> &str {
        let (code, _) = self
            .regions
            .get_index(e.desa as usize)
            .expect("a TPS names a loaded desa");
        code
    }

    /// The TPS as the registry row it was loaded from.
    pub(crate) fn tps_pb(&self, id: &str) -> Option<pb::Tps> {
        let (_, id, e) = self.tps.get_full(id)?;
        Some(pb::Tps {
            tps_id: id.to_string(),
            desa_code: self.desa_code(e).to_string(),
            number: e.number,
            dpt: e.dpt,
        })
    }

    pub(super) fn tps_dpt(&self, id: &str) -> Option<u32> {
        self.tps.get(id).and_then(|e| e.dpt)
    }

    /// The id of the TPS at `index`.
    pub(super) fn tps_id(&self, index: u32) -> &str {
        self.tps
            .get_index(index as usize)
            .expect("a desa lists loaded TPS")
            .0
    }

    /// Counts `n` more TPS (fewer, if negative) under a desa towards
    /// `tps_total` of every contest that covers them, in every region above.
    pub(super) fn count_tps(&mut self, desa_code: &str, n: i64) {
        let chain = self.ancestors(desa_code);
        for (contest_id, candidates) in self.covering(&chain) {
            for code in &chain {
                let a = self.agg_mut(code, &contest_id, candidates);
                a.tps_total = a
                    .tps_total
                    .checked_add_signed(n)
                    .expect("a TPS is counted once and uncounted once");
            }
        }
    }

    /// Puts a TPS in the tree without touching any aggregate (a TPS never
    /// moves to another desa: the registry refuses that).
    pub(super) fn place_tps(&mut self, t: &pb::Tps) {
        let Some(desa) = self.regions.get_index_of(&t.desa_code) else {
            return;
        };
        let entry = TpsEntry {
            desa: desa as u32,
            number: t.number,
            dpt: t.dpt,
        };
        let (index, old) = self.tps.insert_full(t.tps_id.as_str().into(), entry);
        if old.is_some() {
            return;
        }
        let index = index as u32;
        let (_, node) = self.regions.get_index(desa).expect("desa index");
        let pos = node
            .tps
            .partition_point(|i| self.tps_id(*i) < t.tps_id.as_str());
        let (_, node) = self.regions.get_index_mut(desa).expect("desa index");
        node.tps.insert(pos, index);
    }

    /// Removes a TPS and its place in every contest's `tps_total`.
    pub(super) fn remove_tps(&mut self, id: &str) -> bool {
        let Some(index) = self.tps.get_index_of(id) else {
            return false;
        };
        let desa = self.desa_code(&self.tps[index]).to_string();
        self.count_tps(&desa, -1);
        let (_, removed) = self.tps.swap_remove_index(index).expect("present");
        let unlist = |node: &mut RegionNode, i: u32| node.tps.retain(|x| *x != i);
        unlist(&mut self.regions[removed.desa as usize], index as u32);
        // The last TPS moved into the hole: its desa must point at it there.
        let moved_from = self.tps.len() as u32;
        if (index as u32) < moved_from {
            let desa = self.tps[index].desa as usize;
            for x in &mut self.regions[desa].tps {
                if *x == moved_from {
                    *x = index as u32;
                }
            }
        }
        true
    }

    /// Adds or replaces a contest and recounts its `tps_total` everywhere.
    pub(super) fn insert_contest(&mut self, c: pb::Contest) {
        let id = c.contest_id.clone();
        let n = c.candidates.len();
        self.drop_aggregates(&id);
        if let Some(old) = self.contests.get(&id) {
            let old_scope = scope_of(old).to_string();
            if let Some(set) = self.by_scope.get_mut(&old_scope) {
                set.remove(&id);
            }
        }
        let scope = scope_of(&c).to_string();
        self.by_scope
            .entry(scope.clone())
            .or_default()
            .insert(id.clone());
        self.contests.insert(id.clone(), c);
        self.count_tps_total(&scope, &id, n);
    }

    /// Adds the TPS under `scope` to the contest's `tps_total` in every
    /// region above them.
    pub(super) fn count_tps_total(&mut self, scope: &str, contest_id: &str, n: usize) {
        let mut desas = Vec::new();
        self.collect_desas(scope, &mut desas);
        for desa in desas {
            let count = self.regions[desa.as_str()].tps.len() as u64;
            if count == 0 {
                continue;
            }
            for code in self.ancestors(&desa) {
                self.agg_mut(&code, contest_id, n).tps_total += count;
            }
        }
    }

    fn collect_desas(&self, code: &str, out: &mut Vec<String>) {
        if let Some(n) = self.regions.get(code) {
            if n.region.level == pb::RegionLevel::Desa as i32 {
                out.push(code.to_string());
            }
            for ch in &n.children {
                self.collect_desas(ch, out);
            }
        }
    }
}
