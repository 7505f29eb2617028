//! The operator's outbox: every C.Hasil entry a station saved, on disk
//! before the form says "tersimpan", with its submission id and what became
//! of it. SQLite in WAL mode with `synchronous=FULL`, so a commit is fsynced
//! before it returns. Nothing is ever deleted: an acknowledged entry keeps
//! its log index and revision as the operator's own receipt. The station
//! writes it; `rekapctl outbox` reads it from a terminal, beside a running
//! station if need be (SQLite serialises the two).

mod entry;
pub mod sender;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use prost::Message;
use rekap_proto::pb;
use rusqlite::{Connection, ErrorCode, OptionalExtension, params};

pub use entry::{Entry, State};

/// What the `meta` table's `format` row says of a Rekap outbox.
const FORMAT: &str = "rekap-outbox/1";

/// Why an outbox cannot be opened or written. Each names the file and
/// says, in the operator's words first, what to do.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error(
        "berkas outbox {path} rusak dan tidak dibuka; jangan dihapus, serahkan ke admin KPU \
         (the outbox is corrupt: {detail}); start with another --outbox to keep entering"
    )]
    Corrupt { path: PathBuf, detail: String },
    #[error(
        "berkas {path} bukan outbox Rekap milik {user} ({why}); pakai --outbox lain \
         (a foreign file: never written to)"
    )]
    Foreign {
        path: PathBuf,
        user: String,
        why: String,
    },
    #[error("outbox {path} tidak ada (no such outbox file)")]
    Missing { path: PathBuf },
    #[error(
        "disk penuh: entri BELUM tersimpan di {path}; kosongkan ruang disk lalu simpan lagi (disk full)"
    )]
    Full { path: PathBuf },
    #[error(
        "TPS {tps} sudah punya entri {state} untuk {contest}; perbaikan diajukan melalui verifikator"
    )]
    Taken {
        tps: String,
        contest: String,
        state: State,
    },
    #[error("outbox {path}: {source}")]
    Sql {
        path: PathBuf,
        source: rusqlite::Error,
    },
}

/// What the cluster said of one entry.
#[derive(Debug, Clone)]
pub enum Answer {
    Acknowledged(pb::SubmitOutcome),
    /// Refused by `rule`; `other` is the result the TPS holds instead
    /// (a konflik), when that is why.
    Refused {
        rule: String,
        message: String,
        other: Option<Box<pb::StoredResult>>,
    },
}

pub struct Outbox {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox").field("path", &self.path).finish()
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entries (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  submission_id TEXT NOT NULL UNIQUE,
  tps_id TEXT NOT NULL,
  contest_id TEXT NOT NULL,
  submission BLOB NOT NULL,
  saved_at_ms INTEGER NOT NULL,
  state TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  waiting TEXT,
  rule TEXT,
  message TEXT,
  log_index INTEGER,
  revision INTEGER,
  duplicate INTEGER,
  janggal TEXT,
  sent_at_ms INTEGER,
  other BLOB
);
CREATE INDEX IF NOT EXISTS entries_state ON entries (state, seq);
CREATE INDEX IF NOT EXISTS entries_tps ON entries (tps_id, contest_id);
CREATE TABLE IF NOT EXISTS cache (key TEXT PRIMARY KEY, value BLOB NOT NULL, at_ms INTEGER NOT NULL);
";

impl Outbox {
    /// Opens `user`'s outbox at `path`, creating it when there is no file.
    /// A file that is not SQLite, fails SQLite's own check, or belongs to
    /// another user or program is refused, and left exactly as it was.
    pub fn open(path: &Path, user: &str) -> Result<Outbox, OutboxError> {
        let conn = Connection::open(path).map_err(|e| classify(path, e))?;
        let ob = Outbox {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
        };
        {
            let mut c = ob.conn.lock().expect("outbox lock");
            c.busy_timeout(Duration::from_secs(10))
                .map_err(|e| classify(path, e))?;
            // Reading the header is the first thing that fails on a file
            // that is not a database.
            let check: String = c
                .query_row("PRAGMA quick_check", [], |r| r.get(0))
                .map_err(|e| classify(path, e))?;
            if check != "ok" {
                return Err(OutboxError::Corrupt {
                    path: path.into(),
                    detail: check,
                });
            }
            // No file, an empty one, or one a crash left before its first
            // commit: a database with no tables at all is a new outbox.
            let tables: i64 = c
                .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
                .map_err(|e| classify(path, e))?;
            let fresh = tables == 0;
            if !fresh {
                ob.check_owner(&c, user)?;
            }
            c.pragma_update(None, "journal_mode", "WAL")
                .map_err(|e| classify(path, e))?;
            c.pragma_update(None, "synchronous", "FULL")
                .map_err(|e| classify(path, e))?;
            if fresh {
                // The schema and its owner in one commit: a crash between
                // them would leave a file refused as foreign for ever.
                let tx = c
                    .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                    .map_err(|e| classify(path, e))?;
                tx.execute_batch(SCHEMA).map_err(|e| classify(path, e))?;
                tx.execute(
                    "INSERT INTO meta (key, value) VALUES ('format', ?1), ('user', ?2)",
                    params![FORMAT, user],
                )
                .map_err(|e| classify(path, e))?;
                tx.commit().map_err(|e| classify(path, e))?;
                sync_dir(path);
            }
        }
        Ok(ob)
    }

    /// Opens an outbox that exists, as whoever owns it: for reading it
    /// from a terminal (`rekapctl outbox`). Returns it with its owner.
    pub fn open_existing(path: &Path) -> Result<(Outbox, String), OutboxError> {
        if !path.is_file() {
            return Err(OutboxError::Missing { path: path.into() });
        }
        let owner = {
            let c = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .map_err(|e| classify(path, e))?;
            c.query_row("SELECT value FROM meta WHERE key = 'user'", [], |r| {
                r.get::<_, String>(0)
            })
            .map_err(|e| match classify(path, e) {
                OutboxError::Sql { source, .. } => OutboxError::Foreign {
                    path: path.into(),
                    user: "?".into(),
                    why: format!("no owner recorded: {source}"),
                },
                other => other,
            })?
        };
        Ok((Outbox::open(path, &owner)?, owner))
    }

    fn check_owner(&self, c: &Connection, user: &str) -> Result<(), OutboxError> {
        let foreign = |why: String| OutboxError::Foreign {
            path: self.path.clone(),
            user: user.into(),
            why,
        };
        let meta = |key: &str| -> Result<Option<String>, rusqlite::Error> {
            c.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
                .optional()
        };
        let format = match meta("format") {
            Ok(f) => f,
            Err(e) => return Err(foreign(format!("no Rekap outbox tables: {e}"))),
        };
        if format.as_deref() != Some(FORMAT) {
            return Err(foreign(format!("format {format:?}, not {FORMAT}")));
        }
        let owner = meta("user").map_err(|e| self.sql(e))?.unwrap_or_default();
        if owner != user {
            return Err(foreign(format!("it is {owner}'s outbox")));
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn sql(&self, e: rusqlite::Error) -> OutboxError {
        classify(&self.path, e)
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().expect("outbox lock")
    }

    /// Saves a new entry and returns it once it is on disk. Refused when
    /// the TPS already has an entry for the contest that is waiting, sent
    /// or in conflict: a second set of numbers for it is a correction.
    pub fn save(&self, s: pb::Submission, now_ms: i64) -> Result<Entry, OutboxError> {
        let mut c = self.conn();
        // Immediate: the check and the insert see one state, even with
        // `rekapctl outbox` writing the same file.
        let tx = c
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| self.sql(e))?;
        let held: Option<String> = tx
            .query_row(
                "SELECT state FROM entries WHERE tps_id = ?1 AND contest_id = ?2 AND state != ?3 \
                 ORDER BY seq DESC LIMIT 1",
                params![s.tps_id, s.contest_id, State::Ditolak.word()],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.sql(e))?;
        if let Some(state) = held {
            return Err(OutboxError::Taken {
                tps: s.tps_id,
                contest: s.contest_id,
                state: State::from_word(&state),
            });
        }
        tx.execute(
            "INSERT INTO entries (submission_id, tps_id, contest_id, submission, saved_at_ms, state) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                s.submission_id,
                s.tps_id,
                s.contest_id,
                s.encode_to_vec(),
                now_ms,
                State::Tersimpan.word()
            ],
        )
        .map_err(|e| self.sql(e))?;
        let seq = tx.last_insert_rowid();
        // Read back before the commit: once it is committed, nothing may
        // make the page say it was not saved.
        let sql = format!("SELECT {} FROM entries WHERE seq = ?1", entry::COLUMNS);
        let saved = tx
            .query_row(&sql, [seq], entry::from_row)
            .map_err(|e| self.sql(e))?;
        tx.commit().map_err(|e| self.sql(e))?;
        Ok(saved)
    }

    /// One entry by its sequence number.
    pub fn entry(&self, seq: i64) -> Result<Option<Entry>, OutboxError> {
        Ok(self
            .select("WHERE seq = ?1", params![seq])?
            .into_iter()
            .next())
    }

    /// Every entry, in the order they were saved.
    pub fn entries(&self) -> Result<Vec<Entry>, OutboxError> {
        self.select("", [])
    }

    /// The oldest entries still waiting to be sent, at most `limit`.
    pub fn waiting(&self, limit: usize) -> Result<Vec<Entry>, OutboxError> {
        self.select(
            "WHERE state = ?1 ORDER BY seq LIMIT ?2",
            params![State::Tersimpan.word(), limit as i64],
        )
    }

    fn select(&self, tail: &str, p: impl rusqlite::Params) -> Result<Vec<Entry>, OutboxError> {
        let c = self.conn();
        let order = if tail.contains("ORDER BY") {
            ""
        } else {
            " ORDER BY seq"
        };
        let sql = format!("SELECT {} FROM entries {tail}{order}", entry::COLUMNS);
        let mut stmt = c.prepare(&sql).map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map(p, entry::from_row)
            .map_err(|e| self.sql(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.sql(e))
    }

    /// Records the cluster's acknowledgement of entry `seq`.
    pub fn acknowledged(
        &self,
        seq: i64,
        o: &pb::SubmitOutcome,
        now_ms: i64,
    ) -> Result<(), OutboxError> {
        self.record(&[(seq, Answer::Acknowledged(o.clone()))], now_ms)
    }

    /// Records a refusal: `ditolak`, or `konflik` with the result the
    /// cluster holds instead.
    pub fn refused(
        &self,
        seq: i64,
        rule: &str,
        message: &str,
        other: Option<&pb::StoredResult>,
        now_ms: i64,
    ) -> Result<(), OutboxError> {
        let answer = Answer::Refused {
            rule: rule.into(),
            message: message.into(),
            other: other.cloned().map(Box::new),
        };
        self.record(&[(seq, answer)], now_ms)
    }

    /// Records a batch's answers in one commit (one fsync, not one per
    /// entry), each only while its entry still waits: a second sender's
    /// late answer (`rekapctl outbox retry` beside the station) changes
    /// nothing.
    pub fn record(&self, answers: &[(i64, Answer)], now_ms: i64) -> Result<(), OutboxError> {
        let mut c = self.conn();
        let tx = c
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| self.sql(e))?;
        let waiting = State::Tersimpan.word();
        for (seq, answer) in answers {
            match answer {
                Answer::Acknowledged(o) => tx.execute(
                    "UPDATE entries SET state = ?2, log_index = ?3, revision = ?4, duplicate = ?5, \
                     janggal = ?6, sent_at_ms = ?7, waiting = NULL, attempts = attempts + 1 \
                     WHERE seq = ?1 AND state = ?8",
                    params![
                        seq,
                        State::Terkirim.word(),
                        o.log_index as i64,
                        o.revision as i64,
                        o.status == pb::SubmitStatus::Duplicate as i32,
                        o.janggal.join(","),
                        now_ms,
                        waiting
                    ],
                ),
                Answer::Refused {
                    rule,
                    message,
                    other,
                } => {
                    let state = if other.is_some() {
                        State::Konflik
                    } else {
                        State::Ditolak
                    };
                    tx.execute(
                        "UPDATE entries SET state = ?2, rule = ?3, message = ?4, other = ?5, \
                         sent_at_ms = ?6, waiting = NULL, attempts = attempts + 1 \
                         WHERE seq = ?1 AND state = ?7",
                        params![
                            seq,
                            state.word(),
                            rule,
                            message,
                            other.as_ref().map(|o| o.encode_to_vec()),
                            now_ms,
                            waiting
                        ],
                    )
                }
            }
            .map_err(|e| self.sql(e))?;
        }
        tx.commit().map_err(|e| self.sql(e))
    }

    /// Notes why waiting entries are still waiting (no node answers, the
    /// certificate expired, ...), or clears it with `None`.
    pub fn note_waiting(&self, why: Option<&str>) -> Result<(), OutboxError> {
        self.conn()
            .execute(
                "UPDATE entries SET waiting = ?2 WHERE state = ?1",
                params![State::Tersimpan.word(), why],
            )
            .map_err(|e| self.sql(e))?;
        Ok(())
    }

    /// Puts refused entries (all, or one TPS's) back in the queue with the
    /// same submission id, for after the cause is fixed (a scope granted
    /// again, a registry corrected). Returns how many.
    pub fn requeue(&self, tps: Option<&str>) -> Result<usize, OutboxError> {
        let n = self
            .conn()
            .execute(
                "UPDATE entries SET state = ?1, rule = NULL, message = NULL, other = NULL \
                 WHERE state IN (?2, ?3) AND (?4 IS NULL OR tps_id = ?4) \
                 AND seq = (SELECT MAX(e.seq) FROM entries e \
                            WHERE e.tps_id = entries.tps_id AND e.contest_id = entries.contest_id)",
                params![
                    State::Tersimpan.word(),
                    State::Ditolak.word(),
                    State::Konflik.word(),
                    tps
                ],
            )
            .map_err(|e| self.sql(e))?;
        Ok(n)
    }

    /// Keeps a blob the station needs offline (its registry slice).
    pub fn cache_put(&self, key: &str, value: &[u8], now_ms: i64) -> Result<(), OutboxError> {
        self.conn()
            .execute(
                "INSERT INTO cache (key, value, at_ms) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value, at_ms = excluded.at_ms",
                params![key, value, now_ms],
            )
            .map_err(|e| self.sql(e))?;
        Ok(())
    }

    /// A cached blob and when it was fetched.
    pub fn cache_get(&self, key: &str) -> Result<Option<(Vec<u8>, i64)>, OutboxError> {
        self.conn()
            .query_row(
                "SELECT value, at_ms FROM cache WHERE key = ?1",
                [key],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| self.sql(e))
    }
}

/// SQLite's own codes name the faults an operator can act on.
fn classify(path: &Path, e: rusqlite::Error) -> OutboxError {
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) | Some(ErrorCode::DatabaseCorrupt) => OutboxError::Corrupt {
            path: path.into(),
            detail: e.to_string(),
        },
        Some(ErrorCode::DiskFull) => OutboxError::Full { path: path.into() },
        _ => OutboxError::Sql {
            path: path.into(),
            source: e,
        },
    }
}

/// A new file's directory entry is durable only once its directory is.
fn sync_dir(path: &Path) {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests;
