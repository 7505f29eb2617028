//! Where the tally's records live in RocksDB: its audit entries in
//! `sm_audit`, every other record in `sm_data`. The keys are the tally's
//! own (`tally::keys`); the kind byte picks the column family, and since
//! audit keys sort before every other kind, the two families read one
//! after the other are the state in key order, as snapshots hold it.
//!
//! Why two: the audit log is the biggest part of the state (each entry
//! holds its whole command) and its keys only grow, so in a family of its
//! own a compaction never rewrites it. In `sm_data` every flush spans the
//! whole key range (request ids are random), so each L0 compaction took
//! the audit log with it.

use std::io;

use rocksdb::{DB, Direction, IteratorMode, WriteBatch};

use super::{CF_SM_AUDIT, CF_SM_DATA, cf, io_err};
use crate::tally::{Write, keys};

/// The state's column families, in the order of their keys.
pub(crate) const STATE_CFS: [&str; 2] = [CF_SM_AUDIT, CF_SM_DATA];

/// The column family that holds the record at `key`.
pub(crate) fn cf_of(key: &[u8]) -> &'static str {
    if key.first() == Some(&keys::AUDIT) {
        CF_SM_AUDIT
    } else {
        CF_SM_DATA
    }
}

/// Adds the tally's writes to `batch`, each in its family.
pub(crate) fn add_writes(db: &DB, batch: &mut WriteBatch, writes: impl IntoIterator<Item = Write>) {
    for (k, v) in writes {
        let family = cf(db, cf_of(&k));
        match v {
            Some(v) => batch.put_cf(family, k, v),
            None => batch.delete_cf(family, k),
        }
    }
}

/// Bytes moved per batch by `move_audit`.
const MOVE_CHUNK: usize = 16 << 20;

/// Moves the audit entries a database of the earlier layout kept in
/// `sm_data` to `sm_audit`, and says how many. Each batch moves its
/// entries whole (put there, deleted here), so a crash leaves each entry
/// in one family or the other, and the next start goes on from there.
/// Run at open, before anything reads the state.
pub(crate) fn move_audit(db: &DB) -> io::Result<u64> {
    let (from, to) = (cf(db, CF_SM_DATA), cf(db, CF_SM_AUDIT));
    let mut moved = 0u64;
    // Each pass starts after the last key moved: the deleted ones before
    // it are tombstones an iterator from the start would walk again.
    let mut start = vec![keys::AUDIT];
    loop {
        let mut batch = WriteBatch::default();
        let mut last = None;
        let it = db.iterator_cf(from, IteratorMode::From(&start, Direction::Forward));
        for kv in it {
            let (k, v) = kv.map_err(io_err)?;
            if k.first() != Some(&keys::AUDIT) || batch.size_in_bytes() >= MOVE_CHUNK {
                break;
            }
            batch.put_cf(to, &k, v);
            batch.delete_cf(from, &k);
            moved += 1;
            last = Some(k);
        }
        let Some(last) = last else { break };
        db.write(batch).map_err(io_err)?;
        start = last.into_vec();
        start.push(0);
    }
    if moved > 0 {
        // The moves are durable with the next synced write too; sync now
        // so the log line below is true.
        db.flush_wal(true).map_err(io_err)?;
        tracing::info!(
            entries = moved,
            "audit entries moved to their own column family"
        );
    }
    Ok(moved)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use prost::Message;
    use rekap_proto::pb;

    use super::super::tests::owner;
    use super::super::{Pending, install, open, state_machine};
    use super::*;

    fn entry(index: u64) -> (Vec<u8>, Vec<u8>) {
        let e = pb::AuditEntry {
            index,
            command: vec![index as u8; 300],
            head: format!("{index:064x}"),
            sequence: index,
        };
        (keys::audit(index), e.encode_to_vec())
    }

    /// Every record of one family, in key order.
    fn all(db: &DB, name: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
        db.iterator_cf(cf(db, name), IteratorMode::Start)
            .map(|kv| {
                let (k, v) = kv.unwrap();
                (k.to_vec(), v.to_vec())
            })
            .collect()
    }

    /// A database of the earlier layout kept its audit entries in
    /// `sm_data`: the next open moves every one of them, in batches, and
    /// leaves the other records where they are.
    #[test]
    fn audit_entries_of_the_earlier_layout_move_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let (log, sm, closer) = open(dir.path(), &owner()).unwrap();
        let db = closer.db.clone();
        // Big enough for several batches of the move.
        let entries: Vec<_> = (1..=200u64)
            .map(|i| {
                let (k, mut v) = entry(i);
                v.resize(200 << 10, 0);
                (k, v)
            })
            .collect();
        let mut batch = WriteBatch::default();
        for (k, v) in &entries {
            batch.put_cf(cf(&db, CF_SM_DATA), k, v);
        }
        let request = (keys::request("r1"), keys::request_value("T1", "PPWP", 1));
        batch.put_cf(cf(&db, CF_SM_DATA), &request.0, &request.1);
        db.write(batch).unwrap();
        drop((db, log, sm));
        closer.close(Duration::from_secs(5)).unwrap();

        let (_log, _sm, closer) = open(dir.path(), &owner()).unwrap();
        let db = closer.db.clone();
        assert_eq!(all(&db, CF_SM_AUDIT), entries);
        let data = all(&db, CF_SM_DATA);
        assert!(
            data.iter().all(|(k, _)| k[0] != keys::AUDIT),
            "none left behind"
        );
        assert!(data.contains(&request));
        assert_eq!(move_audit(&db).unwrap(), 0, "moved once");
    }

    /// The tally's writes go to their families, and a snapshot of the
    /// state carries both, in key order, into another node's families.
    #[tokio::test]
    async fn a_snapshot_carries_each_family_into_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let (_log, sm, closer) = open(dir.path(), &owner()).unwrap();
        let db = closer.db.clone();
        let mut writes: Vec<Write> = (1..=3).map(entry).map(|(k, v)| (k, Some(v))).collect();
        writes.push((keys::tps("T1"), Some(b"registry".to_vec())));
        writes.push((keys::result("T1", "PPWP"), Some(b"result".to_vec())));
        let mut batch = WriteBatch::default();
        add_writes(&db, &mut batch, writes);
        let id = crate::raft::convert::log_id(3, 1, 4);
        state_machine::meta_writes(&mut batch, &db, Some(&id), &Default::default());
        db.write(batch).unwrap();
        assert_eq!(all(&db, CF_SM_AUDIT).len(), 3);
        assert_eq!(sm.audit_entries(1, 10, 1 << 20).unwrap().len(), 2);

        let pending = Pending::start(db.clone(), sm.snapshot_dir().to_path_buf())
            .await
            .unwrap();
        let path = pending.file().await.unwrap();
        let keys_in_file: Vec<_> = super::super::snapshot::Reader::open(&path)
            .unwrap()
            .records()
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert!(keys_in_file.is_sorted(), "the file is in key order");

        let other = tempfile::tempdir().unwrap();
        let (_log2, sm2, closer2) = open(other.path(), &owner()).unwrap();
        let db2 = closer2.db.clone();
        // Records the install must drop, in both families.
        let mut stale = WriteBatch::default();
        add_writes(
            &db2,
            &mut stale,
            [entry(9), (keys::tps("T9"), b"old".to_vec())].map(|(k, v)| (k, Some(v))),
        );
        db2.write(stale).unwrap();
        let copy = sm2.snapshot_dir().join("copy.bin");
        std::fs::copy(&path, &copy).unwrap();
        let prepared = install::prepare(&copy, &pending.meta).unwrap();
        install::install(&db2, &copy, prepared, |_| {}).unwrap();
        for name in STATE_CFS {
            assert_eq!(all(&db2, name), all(&db, name), "{name}");
        }
    }
}
