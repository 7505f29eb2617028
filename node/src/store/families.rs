//! Which column family holds which of the tally's records: results (kind
//! `keys::RESULT`) in `sm_results`, everything else in `sm_data`.
//!
//! Results are most of the state and, once written, rarely change; the
//! audit entries and aggregates beside them change with every batch. Kept
//! together, every flush spanned from the newest audit entry to the
//! batch's results, so each compaction out of level 0 rewrote the registry
//! and every result in between. Apart, and keyed contest first, an import
//! of one contest flushes tables that overlap nothing already there, which
//! RocksDB moves down its levels instead of rewriting. Result keys sort
//! after every other kind, so reading `STATE_FAMILIES` in turn reads the
//! state in key order: snapshot files are unchanged by the split.

use std::io;

use rocksdb::{DB, ReadOptions, WriteBatch, WriteOptions};

use super::{CF_SM_DATA, CF_SM_RESULTS, cf, io_err};
use crate::tally::{Write, keys};

/// The tally's families, in the key order of what they hold.
pub(crate) const STATE_FAMILIES: [&str; 2] = [CF_SM_DATA, CF_SM_RESULTS];

/// Where in `STATE_FAMILIES` the family a record belongs in is, by its
/// kind.
pub(crate) fn family_index(key: &[u8]) -> usize {
    usize::from(key.first() == Some(&keys::RESULT))
}

/// The family a record belongs in, by its kind.
pub(crate) fn family_of(key: &[u8]) -> &'static str {
    STATE_FAMILIES[family_index(key)]
}

/// Adds the tally's writes to `batch`, each in its family.
pub(crate) fn add_writes(batch: &mut WriteBatch, db: &DB, writes: impl IntoIterator<Item = Write>) {
    for (k, v) in writes {
        let family = cf(db, family_of(&k));
        match v {
            Some(v) => batch.put_cf(family, k, v),
            None => batch.delete_cf(family, k),
        }
    }
}

/// Records at most this many moved per batch: a few MiB held at once.
const MOVE_CHUNK: usize = 10_000;

/// Moves result records of format 2 (`x` TPS NUL contest, in `sm_data`) to
/// their key now, in `sm_results`; returns how many. Run before the state
/// is loaded. The copies are written first and the old records dropped
/// last, by one synced range deletion: a crash in between leaves both, and
/// the next start copies the same records again.
pub(crate) fn move_legacy_results(db: &DB) -> io::Result<u64> {
    let (lo, hi) = ([keys::LEGACY_RESULT], [keys::LEGACY_RESULT + 1]);
    let mut opts = ReadOptions::default();
    opts.fill_cache(false);
    opts.set_iterate_upper_bound(hi);
    let mut it = db.raw_iterator_cf_opt(cf(db, CF_SM_DATA), opts);
    it.seek(lo);
    let results = cf(db, CF_SM_RESULTS);
    let mut moved = 0u64;
    let mut batch = WriteBatch::default();
    while let (Some(k), Some(v)) = (it.key(), it.value()) {
        let to = keys::legacy_result_key(k).ok_or_else(|| {
            super::invalid(format!("a result record of format 2 with a bad key: {k:?}"))
        })?;
        batch.put_cf(results, to, v);
        moved += 1;
        if batch.len() >= MOVE_CHUNK {
            db.write(std::mem::take(&mut batch)).map_err(io_err)?;
        }
        it.next();
    }
    it.status().map_err(io_err)?;
    if moved == 0 {
        return Ok(0);
    }
    batch.delete_range_cf(cf(db, CF_SM_DATA), lo, hi);
    let mut synced = WriteOptions::default();
    synced.set_sync(true);
    db.write_opt(batch, &synced).map_err(io_err)?;
    Ok(moved)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::tests::owner;
    use super::super::{CF_SM_DATA, CF_SM_RESULTS, SnapshotData, cf, open, snapshot};
    use super::*;
    use crate::tally::tests::{loaded, sub, submit};

    use rekap_proto::pb;

    type Records = Vec<(Vec<u8>, Vec<u8>)>;

    /// A result's key of format 2: `x` TPS NUL contest.
    fn tps_first(key: &[u8]) -> Vec<u8> {
        let (tps, contest) = keys::result_ids(key).expect("a result key");
        let mut k = vec![keys::LEGACY_RESULT];
        k.extend_from_slice(tps.as_bytes());
        k.push(0);
        k.extend_from_slice(contest.as_bytes());
        k
    }

    #[test]
    fn result_keys_are_contest_first_and_legacy_keys_map_onto_them() {
        let k = keys::result("A1", "PPWP");
        assert_eq!(k, b"yPPWP\0A1");
        assert_eq!(keys::result_ids(&k), Some(("A1".into(), "PPWP".into())));
        assert_eq!(keys::legacy_result_key(b"xA1\0PPWP"), Some(k.clone()));
        assert_eq!(keys::legacy_result_key(&k), None, "not a legacy key");
        assert_eq!(family_of(&k), CF_SM_RESULTS);
        assert_eq!(family_of(&keys::tps("A1")), CF_SM_DATA);
        assert_eq!(family_of(b"xA1\0PPWP"), CF_SM_DATA, "legacy, until moved");
    }

    /// A state with three results, its records, its totals, and its
    /// records as format 2 wrote them (in key order).
    fn state_of_format_2() -> (Records, pb::RegionTotals, Records) {
        let mut st = loaded();
        for (i, t) in ["A1", "B1", "C1"].iter().enumerate() {
            let s = sub(&format!("s{i}"), t, "PPWP", 3, 4, 1);
            submit(&mut st, s, 2 + i as u64).unwrap();
        }
        let want = st.records();
        assert_eq!(want.iter().filter(|(k, _)| k[0] == keys::RESULT).count(), 3);
        let mut old: Records = want
            .iter()
            .map(|(k, v)| match k[0] {
                keys::RESULT => (tps_first(k), v.clone()),
                keys::FORMAT => (k.clone(), keys::FORMAT_TPS_FIRST.to_vec()),
                _ => (k.clone(), v.clone()),
            })
            .collect();
        old.sort();
        (want, st.totals("ID", "PPWP").unwrap(), old)
    }

    /// How many records of format 2 `db` still holds.
    fn legacy_left(db: &DB) -> usize {
        db.prefix_iterator_cf(cf(db, CF_SM_DATA), [keys::LEGACY_RESULT])
            .filter(|kv| kv.as_ref().unwrap().0[0] == keys::LEGACY_RESULT)
            .count()
    }

    /// A database of format 2 (results keyed TPS first, in `sm_data`)
    /// opens with its results moved and rekeyed, reading exactly as the
    /// state it was written from; so does one whose move was cut short
    /// (records copied, the old ones not yet dropped).
    #[test]
    fn results_of_format_2_are_moved_at_open() {
        let (want, totals, old) = state_of_format_2();
        for cut_short in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let (log, sm, closer) = open(dir.path(), &owner()).unwrap();
            let db = closer.db.clone();
            let mut batch = WriteBatch::default();
            for (k, v) in &old {
                batch.put_cf(cf(&db, CF_SM_DATA), k, v);
            }
            if cut_short {
                for (k, v) in want.iter().filter(|(k, _)| k[0] == keys::RESULT) {
                    batch.put_cf(cf(&db, CF_SM_RESULTS), k, v);
                }
            }
            db.write(batch).unwrap();
            drop((db, log, sm));
            closer.close(Duration::from_secs(5)).unwrap();

            let (_log, sm, closer) = open(dir.path(), &owner()).unwrap();
            let view = sm.view();
            assert_eq!(view.tally.records(), want, "cut short: {cut_short}");
            assert_eq!(view.tally.totals("ID", "PPWP").unwrap(), totals);
            assert_eq!(legacy_left(&closer.db), 0, "no record of format 2 left");
        }
    }

    /// A snapshot (or backup) a node of format 2 wrote installs on a node
    /// of format 3 as the state it holds, its results moved as at open.
    #[tokio::test]
    async fn a_snapshot_of_format_2_installs_with_its_results_moved() {
        use openraft::storage::RaftStateMachine;
        let (want, totals, old) = state_of_format_2();
        let dir = tempfile::tempdir().unwrap();
        let (_log, mut sm, closer) = open(dir.path(), &owner()).unwrap();
        let meta = crate::raft::types::SnapshotMeta {
            last_log_id: Some(crate::raft::convert::log_id(3, 1, 9)),
            ..Default::default()
        };
        let path = snapshot::write(sm.snapshot_dir(), &meta, &(), |enc| {
            old.iter().try_for_each(|(k, v)| enc.record(k, v))
        })
        .unwrap();
        sm.install_snapshot(&meta, SnapshotData::File(path))
            .await
            .unwrap();
        let view = sm.view();
        assert_eq!(view.last_applied, meta.last_log_id);
        assert_eq!(view.tally.records(), want);
        assert_eq!(view.tally.totals("ID", "PPWP").unwrap(), totals);
        drop(view);
        assert_eq!(legacy_left(&closer.db), 0, "no record of format 2 left");
    }
}
