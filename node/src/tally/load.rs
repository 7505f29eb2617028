//! Loading the state from its records at start or after a snapshot: the
//! registry, the users, the chain head and the persisted aggregates. Results
//! stay where they are. Records of the first layout (no aggregates, no
//! request index) are upgraded once, by one pass over the results.

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
        let mut err = None;
        let mut fail = |e: RestoreError| {
            err.get_or_insert(e);
            false
        };
        let mut regions = Vec::new();
        base.scan(&[keys::REGION], &mut |_, v| match pb::Region::decode(v) {
            Ok(r) => {
                regions.push(r);
                true
            }
            Err(e) => fail(e.into()),
        })?;
        regions.sort_by_key(|r| r.level);
        for r in regions {
            st.insert_region(r);
        }
        base.scan(&[keys::TPS], &mut |_, v| match pb::Tps::decode(v) {
            Ok(t) => {
                st.place_tps(&t);
                true
            }
            Err(e) => fail(e.into()),
        })?;
        base.scan(&[keys::CONTEST], &mut |_, v| match pb::Contest::decode(v) {
            Ok(c) => {
                st.by_scope
                    .entry(scope_of(&c).to_string())
                    .or_default()
                    .insert(c.contest_id.clone());
                st.contests.insert(c.contest_id.clone(), c);
                true
            }
            Err(e) => fail(e.into()),
        })?;
        base.scan(
            &[keys::AGGREGATE],
            &mut |k, v| match (keys::split_pair(k), Aggregate::decode(v)) {
                (Some(key), Some(a)) => {
                    st.aggregates.insert(key, a);
                    true
                }
                _ => fail(RestoreError::Bad(k.to_vec())),
            },
        )?;
        base.scan(&[keys::USER], &mut |_, v| match pb::User::decode(v) {
            Ok(u) => {
                st.users.insert(u.name.clone(), UserEntry::new(u));
                true
            }
            Err(e) => fail(e.into()),
        })?;
        if let Some(v) = base.get(&keys::chain())? {
            let p = pb::GetChainHeadResponse::decode(v.as_slice())?;
            st.chain = Chain::from_pb(&p).ok_or(RestoreError::UnknownKind(Some(keys::CHAIN)))?;
        }
        if let Some(v) = base.get(&keys::removed_nodes())? {
            st.removed_nodes = pb::RemovedNodes::decode(v.as_slice())?
                .node_ids
                .into_iter()
                .collect();
        }
        if let Some(e) = err {
            return Err(e);
        }
        if base.get(&keys::format())?.as_deref() != Some(keys::FORMAT_VERSION) {
            st.upgrade(&*base)?;
        }
        st.dirty.clear();
        st.log.clear();
        Ok(st)
    }

    /// From the first layout: counts every aggregate from the registry and
    /// the results, and indexes every revision's request id.
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
        let mut err = None;
        base.scan(&[keys::RESULT], &mut |k, v| match (
            keys::split_pair(k),
            pb::ResultHistory::decode(v),
        ) {
            (Some(key), Ok(h)) if !h.revisions.is_empty() => {
                histories.push((key, h));
                true
            }
            _ => {
                err = Some(RestoreError::Bad(k.to_vec()));
                false
            }
        })?;
        if let Some(e) = err {
            return Err(e);
        }
        for (key, h) in histories {
            for r in &h.revisions {
                if let Some(sub) = &r.submission {
                    let v = keys::request_value(&key.0, &key.1, r.revision);
                    self.put(keys::request(&sub.submission_id), Some(v));
                }
            }
            self.contribute(&key, current(&h), 1);
        }
        self.flush_aggregates();
        self.put(keys::format(), Some(keys::FORMAT_VERSION.to_vec()));
        Ok(())
    }
}
