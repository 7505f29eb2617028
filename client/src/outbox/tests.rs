use super::*;

fn sub(id: &str, tps: &str) -> pb::Submission {
    pb::Submission {
        submission_id: id.into(),
        tps_id: tps.into(),
        contest_id: "PPWP".into(),
        votes: vec![pb::CandidateVotes {
            candidate_id: "01".into(),
            votes: 10,
        }],
        sah: Some(10),
        tidak_sah: Some(1),
        total: Some(11),
        ..Default::default()
    }
}

#[test]
fn an_entry_saved_is_there_after_reopening_with_its_id_and_state() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.sqlite");
    let ob = Outbox::open(&path, "ops-a").unwrap();
    let e = ob.save(sub("st:1", "T1"), 5).unwrap();
    assert_eq!((e.seq, e.state), (1, State::Tersimpan));
    drop(ob);
    let ob = Outbox::open(&path, "ops-a").unwrap();
    let all = ob.entries().unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].submission, sub("st:1", "T1"));
    assert_eq!(all[0].saved_at_ms, 5);
    let mode: String = ob
        .conn()
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let sync: i64 = ob
        .conn()
        .query_row("PRAGMA synchronous", [], |r| r.get(0))
        .unwrap();
    assert_eq!(sync, 2, "FULL: every commit fsyncs the WAL");
}

#[test]
fn a_tps_with_a_live_entry_takes_no_second_one_until_it_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ob = Outbox::open(&dir.path().join("o"), "ops-a").unwrap();
    let first = ob.save(sub("st:1", "T1"), 1).unwrap();
    let again = ob.save(sub("st:2", "T1"), 2).unwrap_err();
    assert!(
        matches!(
            again,
            OutboxError::Taken {
                state: State::Tersimpan,
                ..
            }
        ),
        "{again}"
    );
    ob.refused(first.seq, "tps_exists", "no such TPS", None, 3)
        .unwrap();
    let second = ob.save(sub("st:2", "T1"), 4).unwrap();
    assert_eq!(second.seq, 2);
    let states: Vec<State> = ob.entries().unwrap().iter().map(|e| e.state).collect();
    assert_eq!(
        states,
        [State::Ditolak, State::Tersimpan],
        "nothing is deleted"
    );
}

#[test]
fn acknowledgements_keep_the_receipt_and_refusals_can_be_queued_again() {
    let dir = tempfile::tempdir().unwrap();
    let ob = Outbox::open(&dir.path().join("o"), "ops-a").unwrap();
    let a = ob.save(sub("st:a", "T1"), 1).unwrap();
    let b = ob.save(sub("st:b", "T2"), 1).unwrap();
    let o = pb::SubmitOutcome {
        status: pb::SubmitStatus::Duplicate as i32,
        log_index: 77,
        revision: 1,
        ..Default::default()
    };
    ob.acknowledged(a.seq, &o, 9).unwrap();
    ob.refused(b.seq, "permission:submit", "out of scope", None, 9)
        .unwrap();
    let a = ob.entry(a.seq).unwrap().unwrap();
    assert_eq!(
        (a.state, a.log_index, a.duplicate),
        (State::Terkirim, Some(77), true)
    );
    assert_eq!(ob.waiting(10).unwrap().len(), 0);
    assert_eq!(ob.requeue(None).unwrap(), 1);
    let w = ob.waiting(10).unwrap();
    assert_eq!(
        (w.len(), w[0].submission.submission_id.as_str()),
        (1, "st:b")
    );
}

#[test]
fn a_file_that_is_not_an_outbox_is_refused_and_left_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk");
    std::fs::write(
        &junk,
        b"C.Hasil TPS 001: 120, 95 (not a database) ".repeat(200),
    )
    .unwrap();
    let before = std::fs::read(&junk).unwrap();
    let err = Outbox::open(&junk, "ops-a").unwrap_err();
    assert!(matches!(err, OutboxError::Corrupt { .. }), "{err}");
    assert_eq!(std::fs::read(&junk).unwrap(), before);

    let theirs = dir.path().join("theirs");
    Outbox::open(&theirs, "ops-b").unwrap();
    let before = std::fs::read(&theirs).unwrap();
    let err = Outbox::open(&theirs, "ops-a").unwrap_err();
    assert!(
        matches!(&err, OutboxError::Foreign { why, .. } if why.contains("ops-b")),
        "{err}"
    );
    assert_eq!(std::fs::read(&theirs).unwrap(), before);

    let other_app = dir.path().join("app.db");
    let c = Connection::open(&other_app).unwrap();
    c.execute_batch("CREATE TABLE notes (t TEXT); INSERT INTO notes VALUES ('x');")
        .unwrap();
    drop(c);
    let before = std::fs::read(&other_app).unwrap();
    let err = Outbox::open(&other_app, "ops-a").unwrap_err();
    assert!(matches!(err, OutboxError::Foreign { .. }), "{err}");
    assert_eq!(std::fs::read(&other_app).unwrap(), before);
}

#[test]
fn a_full_disk_refuses_the_save_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let ob = Outbox::open(&dir.path().join("o"), "ops-a").unwrap();
    ob.save(sub("st:0", "T0"), 1).unwrap();
    // SQLite reports SQLITE_FULL the same way when a page limit, rather
    // than the file system, runs out.
    let pages: i64 = ob
        .conn()
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .unwrap();
    ob.conn()
        .pragma_update(None, "max_page_count", pages)
        .unwrap();
    let big = pb::Submission {
        photo_sha256: vec!["ab".repeat(32); 400],
        ..sub("st:1", "T1")
    };
    let err = ob.save(big, 2).unwrap_err();
    assert!(matches!(err, OutboxError::Full { .. }), "{err}");
    assert_eq!(ob.entries().unwrap().len(), 1, "nothing half-saved");
}

#[test]
fn a_retry_queues_only_the_newest_entry_of_a_tps_and_late_answers_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let ob = Outbox::open(&dir.path().join("o"), "ops-a").unwrap();
    let old = ob.save(sub("st:old", "T1"), 1).unwrap();
    ob.refused(old.seq, "permission:submit", "out of scope", None, 2)
        .unwrap();
    let new = ob.save(sub("st:new", "T1"), 3).unwrap();
    ob.refused(new.seq, "permission:submit", "out of scope", None, 4)
        .unwrap();
    assert_eq!(ob.requeue(None).unwrap(), 1);
    let w = ob.waiting(10).unwrap();
    assert_eq!(w.len(), 1);
    assert_eq!(
        w[0].submission.submission_id, "st:new",
        "the re-entered numbers, not the old ones"
    );
    // Acknowledged, then a second sender's late refusal arrives: ignored.
    let o = pb::SubmitOutcome {
        log_index: 9,
        ..Default::default()
    };
    ob.acknowledged(new.seq, &o, 5).unwrap();
    ob.refused(new.seq, "result_exists", "late", None, 6)
        .unwrap();
    let e = ob.entry(new.seq).unwrap().unwrap();
    assert_eq!((e.state, e.log_index), (State::Terkirim, Some(9)));
}

#[test]
fn an_empty_file_becomes_an_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.sqlite");
    std::fs::write(&path, b"").unwrap();
    let ob = Outbox::open(&path, "ops-a").unwrap();
    ob.save(sub("st:1", "T1"), 1).unwrap();
    drop(ob);
    assert_eq!(
        Outbox::open(&path, "ops-a")
            .unwrap()
            .entries()
            .unwrap()
            .len(),
        1
    );
}
