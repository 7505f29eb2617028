//! Loading the state from its records at start or after a snapshot: the
//! registry, the users, the chain head and the persisted aggregates. Results
//! stay where they are. Records of the first layout (no aggregates, no
//! request index) are upgraded once, by one pass over the results; the
//! store moves result keys of format 2 before any of this reads them.

use std::sync::Arc;

use prost::Message;
use rekap_proto::pb;

use super::aggregate::Aggregate;
use super::records::Records;
use super::{Chain, RestoreError, TallyState, UserEntry, current, keys, scope_of};

impl TallyState {
    /// The state whose records `base` holds. Upgrade writes, if any, are
    /// left in `unsettled` for the caller to persist.
    pub fn load(base: Arc<dyn Records>) -> Result<Self, RestoreError> {
        let mut st = TallyState::empty(base.clone());
        let mut regions = Vec::new();
        each(&*base, keys::REGION, |_, r: pb::Region| regions.push(r))?;
        regions.sort_by_key(|r| r.level);
        for r in regions {
            st.insert_region(r);
        }
        each(&*base, keys::TPS, |_, t: pb::Tps| st.place_tps(&t))?;
        each(&*base, keys::CONTEST, |_, c: pb::Contest| {
            st.by_scope
                .entry(scope_of(&c).to_string())
                .or_default()
                .insert(c.contest_id.clone());
            st.contests.insert(c.contest_id.clone(), c);
        })?;
        let mut bad = None;
        base.scan(
            &[keys::AGGREGATE],
            &mut |k, v| match (keys::split_pair(k), Aggregate::decode(v)) {
                (Some(key), Some(a)) => {
                    st.aggregates.insert(key, a);
                    true
                }
                _ => {
                    bad = Some(RestoreError::Bad(k.to_vec()));
                    false
                }
            },
        )?;
        if let Some(e) = bad {
            return Err(e);
        }
        each(&*base, keys::USER, |_, u: pb::User| {
            st.users.insert(u.name.clone(), UserEntry::new(u));
        })?;
        if let Some(v) = base.get(&keys::chain())? {
            let p = pb::GetChainHeadResponse::decode(v.as_slice())?;
            st.chain = Chain::from_pb(&p).ok_or(RestoreError::UnknownKind(Some(keys::CHAIN)))?;
        }
        if let Some(v) = base.get(&keys::cluster())? {
            st.cluster_id = String::from_utf8_lossy(&v).into_owned();
        }
        if let Some(v) = base.get(&keys::removed_nodes())? {
            st.removed_nodes = pb::RemovedNodes::decode(v.as_slice())?
                .node_ids
                .into_iter()
                .collect();
        }
        match base.get(&keys::format())?.as_deref() {
            Some(keys::FORMAT_VERSION) => {}
            // Only the result keys differ, and the store moved them first.
            Some(keys::FORMAT_TPS_FIRST) => {
                st.put(keys::format(), Some(keys::FORMAT_VERSION.to_vec()));
            }
            None => st.upgrade(&*base)?,
            Some(v) => return Err(RestoreError::NewerFormat(v.to_vec())),
        }
        st.dirty.clear();
        st.log.clear();
        Ok(st)
    }

    /// From the first layout: counts every aggregate from the registry and
    /// the results, and indexes the request id of every revision after the
    /// first.
    fn upgrade(&mut self, base: &dyn Records) -> Result<(), RestoreError> {
        self.aggregates.clear();
        let contests: Vec<(String, String, usize)> = self
            .contests
            .values()
            .map(|c| {
                let scope = scope_of(c).to_string();
                (scope, c.contest_id.clone(), c.candidates.len())
            })
            .collect();
        for (scope, id, n) in contests {
            self.count_tps_total(&scope, &id, n);
        }
        let mut histories = Vec::new();
        each(base, keys::RESULT, |k, h: pb::ResultHistory| {
            histories.push((k.to_vec(), h))
        })?;
        for (k, h) in histories {
            let key = keys::result_ids(&k)
                .filter(|_| !h.revisions.is_empty())
                .ok_or(RestoreError::Bad(k))?;
            for r in h.revisions.iter().skip(1) {
                if let Some(sub) = &r.submission {
                    let v = keys::request_value(&key.0, &key.1, r.revision);
                    self.put(keys::request(&sub.submission_id), Some(v));
                }
            }
            self.contribute(&key, current(&h), 1);
        }
        // Rebuilt at load: when these sums last changed is not known.
        self.flush_aggregates(None);
        self.put(keys::format(), Some(keys::FORMAT_VERSION.to_vec()));
        Ok(())
    }
}

/// Decodes every record of one kind and hands it to `f`; the first record
/// that does not decode stops the scan and is the error.
fn each<M: Message + Default>(
    base: &dyn Records,
    kind: u8,
    mut f: impl FnMut(&[u8], M),
) -> Result<(), RestoreError> {
    let mut bad = None;
    base.scan(&[kind], &mut |k, v| match M::decode(v) {
        Ok(m) => {
            f(k, m);
            true
        }
        Err(e) => {
            bad = Some(RestoreError::Decode(e));
            false
        }
    })?;
    bad.map_or(Ok(()), Err)
}
