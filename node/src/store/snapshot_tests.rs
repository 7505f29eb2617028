//! Tests of snapshots on a real RocksDB: pending ones written on demand
//! and read as they grow, received ones built into a table as they arrive,
//! and installs that are refused or interrupted.

use std::path::PathBuf;
use std::time::Duration;

use rocksdb::DB;

use super::tests::owner;
use super::*;

/// The contest `source_state` has results in.
const CONTEST: &str = "PPWP";

/// A state whose records span both families: a registry, and results for
/// three TPS.
fn source_state() -> crate::tally::TallyState {
    use crate::tally::tests::{loaded, sub, submit};
    let mut st = loaded();
    for (i, t) in ["A1", "B1", "C1"].iter().enumerate() {
        submit(
            &mut st,
            sub(&format!("s{i}"), t, CONTEST, 3, 4, 1),
            2 + i as u64,
        )
        .unwrap();
    }
    st
}

/// A snapshot file of `source_state`'s state as of log index `index` (term 3,
/// leader 1), in `sm`'s folder.
fn state_snapshot(
    sm: &StateMachineStore,
    index: u64,
) -> (PathBuf, crate::raft::types::SnapshotMeta) {
    let meta = crate::raft::types::SnapshotMeta {
        last_log_id: Some(crate::raft::convert::log_id(3, 1, index)),
        ..Default::default()
    };
    let records = source_state().records();
    let path = snapshot::write(sm.snapshot_dir(), &meta, &(), |enc| {
        records.iter().try_for_each(|(k, v)| enc.record(k, v))
    })
    .unwrap();
    (path, meta)
}

/// A crash in the middle of a snapshot install leaves the marker; the
/// next open installs the same file again before anything reads.
#[test]
fn an_interrupted_snapshot_install_is_redone_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let (log, sm, closer) = open(dir.path(), &owner()).unwrap();
    let source = source_state();
    let want = source.totals("ID", CONTEST).unwrap();
    assert!(want.tps_total > 0);
    let log_id = crate::raft::convert::log_id(3, 1, 7);
    let (path, _) = state_snapshot(&sm, 7);
    // The state as a crash would leave it: marker set, data half gone.
    let db = closer.db.clone();
    let mut batch = rocksdb::WriteBatch::default();
    batch.put_cf(
        cf(&db, CF_SM_META),
        install::KEY_INSTALLING,
        path.file_name().unwrap().to_string_lossy().as_bytes(),
    );
    batch.put_cf(cf(&db, CF_SM_DATA), b"t-half-written", b"junk");
    db.write(batch).unwrap();
    drop((db, log, sm));
    closer.close(Duration::from_secs(5)).unwrap();

    let (_log, sm, _closer) = open(dir.path(), &owner()).unwrap();
    let st = sm.view();
    assert_eq!(st.last_applied, Some(log_id));
    assert_eq!(st.tally.totals("ID", CONTEST).unwrap(), want);
    assert_eq!(st.tally.records(), source.records());
    drop(st);
    assert_eq!(install::interrupted(&sm.inner_db()).unwrap(), None);
}

/// A damaged snapshot file fails in `prepare`, which runs before the
/// file is published or any record dropped, and leaves no table behind.
#[test]
fn a_damaged_snapshot_file_is_refused_before_anything_changes() {
    let dir = tempfile::tempdir().unwrap();
    let (_log, sm, _closer) = open(dir.path(), &owner()).unwrap();
    let (path, meta) = state_snapshot(&sm, 7);
    let files = || {
        let mut v: Vec<_> = std::fs::read_dir(sm.snapshot_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        v.sort();
        v
    };
    let before = files();
    assert!(install::prepare(&path, &meta).is_ok(), "the good file");
    assert_eq!(files(), before, "an unused table is removed");
    let other = crate::raft::types::SnapshotMeta {
        last_log_id: Some(crate::raft::convert::log_id(3, 1, 8)),
        ..Default::default()
    };
    assert!(install::prepare(&path, &other).is_err(), "other metadata");
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();
    assert!(install::prepare(&path, &meta).is_err(), "a flipped bit");
    assert_eq!(files(), before, "no table left behind");
}

/// A file whose records leave a family and come back to it is out of key
/// order, though each record checks out: `prepare` refuses it and leaves
/// no table behind.
#[test]
fn a_snapshot_whose_families_interleave_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_log, sm, _closer) = open(dir.path(), &owner()).unwrap();
    let meta = crate::raft::types::SnapshotMeta {
        last_log_id: Some(crate::raft::convert::log_id(3, 1, 7)),
        ..Default::default()
    };
    // The first record (not a result) moved after the results.
    let mut records = source_state().records();
    assert_ne!(records[0].0[0], crate::tally::keys::RESULT);
    assert_eq!(records.last().unwrap().0[0], crate::tally::keys::RESULT);
    let first = records.remove(0);
    records.push(first);
    let path = snapshot::write(sm.snapshot_dir(), &meta, &(), |enc| {
        records.iter().try_for_each(|(k, v)| enc.record(k, v))
    })
    .unwrap();
    let before = std::fs::read_dir(sm.snapshot_dir()).unwrap().count();
    let e = install::prepare(&path, &meta).unwrap_err();
    assert!(e.to_string().contains("out of key order"), "{e}");
    let after = std::fs::read_dir(sm.snapshot_dir()).unwrap().count();
    assert_eq!(after, before, "no table left behind");
}

/// Writes `records` and notes `index` as applied, as an apply does.
fn applied(db: &DB, index: u64, records: &[(&[u8], &[u8])]) {
    let mut batch = rocksdb::WriteBatch::default();
    for (k, v) in records {
        batch.put_cf(cf(db, CF_SM_DATA), k, v);
    }
    let id = crate::raft::convert::log_id(3, 1, index);
    state_machine::meta_writes(&mut batch, db, Some(&id), &Default::default());
    db.write(batch).unwrap();
}

/// A snapshot is the state as of the moment it was taken, written only
/// when asked for, however much is applied after it.
#[tokio::test]
async fn a_pending_snapshot_writes_the_state_as_of_its_start_and_only_on_demand() {
    let dir = tempfile::tempdir().unwrap();
    let (_log, sm, closer) = open(dir.path(), &owner()).unwrap();
    let db = closer.db.clone();
    let snaps = sm.snapshot_dir().to_path_buf();
    let none = Pending::start(db.clone(), snaps.clone()).await.unwrap();
    assert_eq!(none.meta.last_log_id, None, "nothing applied");
    applied(&db, 5, &[(b"t-a", b"1"), (b"t-b", b"2")]);
    let unasked = Pending::start(db.clone(), snaps.clone()).await.unwrap();
    let asked = Pending::start(db.clone(), snaps.clone()).await.unwrap();
    applied(&db, 6, &[(b"t-a", b"changed"), (b"t-c", b"3")]);
    drop(unasked);
    assert_eq!(
        snapshot::list(&snaps).unwrap().len(),
        0,
        "nothing written unasked"
    );
    let path = asked.file().await.unwrap();
    assert_eq!(asked.file().await.unwrap(), path, "written once");
    let r = snapshot::Reader::open(&path).unwrap();
    assert_eq!(r.meta.last_log_id.map(|l| l.index), Some(5));
    // Beside the layout record every state has.
    let records: Vec<_> = r
        .records()
        .unwrap()
        .into_iter()
        .filter(|(k, _)| k.starts_with(b"t-"))
        .collect();
    assert_eq!(
        records,
        vec![
            (b"t-a".to_vec(), b"1".to_vec()),
            (b"t-b".to_vec(), b"2".to_vec())
        ]
    );
    assert_eq!(snapshot::list(&snaps).unwrap(), vec![path]);
}

/// A snapshot sent as it is written arrives whole: read while it
/// grows, it gives the finished file's bytes, and its size is known
/// only once it is whole.
#[tokio::test]
async fn a_snapshot_read_while_it_is_written_is_the_whole_file() {
    let dir = tempfile::tempdir().unwrap();
    let (_log, sm, closer) = open(dir.path(), &owner()).unwrap();
    let db = closer.db.clone();
    let value = vec![7u8; 1000];
    let keys: Vec<Vec<u8>> = (0..20_000u32)
        .map(|i| format!("t-{i:06}").into_bytes())
        .collect();
    let records: Vec<(&[u8], &[u8])> = keys
        .iter()
        .map(|k| (k.as_slice(), value.as_slice()))
        .collect();
    applied(&db, 9, &records);
    // The writer stops after its first chunk until `release` is dropped,
    // so the file is surely opened while it grows.
    let (release, held) = std::sync::mpsc::channel::<()>();
    let hold = Box::new(move || {
        let _ = held.recv();
    });
    let pending = Pending::start_held(db.clone(), sm.snapshot_dir().to_path_buf(), hold)
        .await
        .unwrap();
    let data = SnapshotData::Pending(pending.clone());
    let mut growing = Source::open(&data).await.unwrap();
    assert_eq!(growing.size().await.unwrap(), None, "still being written");
    drop(release);
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = growing.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    let path = pending.file().await.unwrap();
    assert_eq!(got.len() as u64, std::fs::metadata(&path).unwrap().len());
    assert!(got == std::fs::read(&path).unwrap(), "the same bytes");
    let whole = Source::open(&data).await.unwrap();
    assert_eq!(whole.size().await.unwrap(), Some(got.len() as u64));
}

/// Snapshot files are written for peers: a restart removes them. One
/// an interrupted install needs is checked, and if damaged stops the
/// start with an error naming it.
#[test]
fn open_removes_snapshot_files_and_names_a_damaged_one_it_needs() {
    let dir = tempfile::tempdir().unwrap();
    let (log, sm, closer) = open(dir.path(), &owner()).unwrap();
    let (path, _) = state_snapshot(&sm, 7);
    let snaps = sm.snapshot_dir().to_path_buf();
    drop((log, sm));
    closer.close(Duration::from_secs(5)).unwrap();
    let (log, sm, closer) = open(dir.path(), &owner()).unwrap();
    assert!(
        snapshot::list(&snaps).unwrap().is_empty(),
        "removed at open"
    );

    let (path2, _) = state_snapshot(&sm, 8);
    assert_ne!(path, path2);
    let db = closer.db.clone();
    db.put_cf(
        cf(&db, CF_SM_META),
        install::KEY_INSTALLING,
        path2.file_name().unwrap().to_string_lossy().as_bytes(),
    )
    .unwrap();
    let mut bytes = std::fs::read(&path2).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&path2, &bytes).unwrap();
    drop((db, log, sm));
    closer.close(Duration::from_secs(5)).unwrap();
    let err = open(dir.path(), &owner()).err().expect("refused");
    let msg = format!("{err:#}");
    assert!(msg.contains(&path2.display().to_string()), "{msg}");
}

/// Fed in chunks as a transfer delivers them, a snapshot's bytes build
/// the table as they arrive, checked as the file would be: a damaged or
/// cut copy builds none and leaves none behind, and a store installs
/// from a whole one the state the file holds, without reading the file.
#[tokio::test]
async fn a_table_built_as_the_snapshot_arrives_installs_its_state() {
    use openraft::storage::RaftStateMachine;
    let dir = tempfile::tempdir().unwrap();
    let (_src_log, source, _src_closer) = open(&dir.path().join("leader"), &owner()).unwrap();
    let (path, meta) = state_snapshot(&source, 7);
    let bytes = std::fs::read(&path).unwrap();
    let (_log, mut sm, _closer) = open(&dir.path().join("new"), &owner()).unwrap();
    let snaps = sm.snapshot_dir().to_path_buf();
    let feed = |bytes: Vec<u8>| {
        let (snaps, meta) = (snaps.clone(), meta.clone());
        async move {
            let mut t = Streamed::start(&snaps, meta);
            for c in bytes.chunks(4096) {
                t.feed(c.to_vec()).await;
            }
            t.finish().await
        }
    };
    let leftovers = || std::fs::read_dir(&snaps).unwrap().count();
    let mut damaged = bytes.clone();
    let mid = damaged.len() / 2;
    damaged[mid] ^= 0x40;
    assert!(feed(damaged).await.is_err(), "a flipped bit");
    assert!(
        feed(bytes[..bytes.len() - 10].to_vec()).await.is_err(),
        "cut short"
    );
    assert_eq!(leftovers(), 0, "no table left behind");

    let table = feed(bytes.clone()).await.expect("the whole file");
    // The received file is spoiled after its table was built: the install
    // succeeds only if it takes the table rather than reading the file.
    let received = snaps.join("partial-test.part");
    std::fs::write(&received, &bytes[..bytes.len() / 2]).unwrap();
    let data = SnapshotData::Received(Arc::new(Received::new(
        received,
        Some((meta.clone(), table)),
    )));
    sm.install_snapshot(&meta, data).await.unwrap();
    let st = sm.view();
    let want = source_state();
    assert_eq!(st.last_applied, meta.last_log_id);
    assert_eq!(
        st.tally.totals("ID", CONTEST).unwrap(),
        want.totals("ID", CONTEST).unwrap()
    );
    assert_eq!(st.tally.records(), want.records());
}
