//! One outbox entry as a row, and the states an operator sees it in.

use prost::Message;
use rekap_proto::pb;

/// Where an entry stands, in the words the station shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Saved here, not yet acknowledged.
    Tersimpan,
    /// Acknowledged by the cluster (accepted, or a duplicate of itself).
    Terkirim,
    /// Refused by a rule; kept, and can be queued again.
    Ditolak,
    /// The TPS holds a different result; a correction goes to a verifier.
    Konflik,
}

impl State {
    pub fn word(self) -> &'static str {
        match self {
            State::Tersimpan => "tersimpan",
            State::Terkirim => "terkirim",
            State::Ditolak => "ditolak",
            State::Konflik => "konflik",
        }
    }

    pub fn from_word(w: &str) -> State {
        match w {
            "terkirim" => State::Terkirim,
            "ditolak" => State::Ditolak,
            "konflik" => State::Konflik,
            _ => State::Tersimpan,
        }
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.word())
    }
}

/// An entry with everything the outbox knows of it.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Order of saving, from 1.
    pub seq: i64,
    pub submission: pb::Submission,
    pub saved_at_ms: i64,
    pub state: State,
    pub attempts: i64,
    /// Why a waiting entry is not sent yet, when known.
    pub waiting: Option<String>,
    /// The rule that refused it, and the node's message.
    pub rule: Option<String>,
    pub message: Option<String>,
    pub log_index: Option<u64>,
    pub revision: Option<u64>,
    /// The cluster had it already (a resend): still terkirim.
    pub duplicate: bool,
    pub janggal: Vec<String>,
    pub sent_at_ms: Option<i64>,
    /// For a konflik: the result the cluster holds.
    pub other: Option<pb::StoredResult>,
}

pub(super) const COLUMNS: &str = "seq, submission, saved_at_ms, state, attempts, waiting, rule, \
     message, log_index, revision, duplicate, janggal, sent_at_ms, other";

pub(super) fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Entry> {
    let blob: Vec<u8> = r.get(1)?;
    let submission = pb::Submission::decode(blob.as_slice()).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(1, rusqlite::types::Type::Blob, Box::new(e))
    })?;
    let other: Option<Vec<u8>> = r.get(13)?;
    let janggal: Option<String> = r.get(11)?;
    Ok(Entry {
        seq: r.get(0)?,
        submission,
        saved_at_ms: r.get(2)?,
        state: State::from_word(&r.get::<_, String>(3)?),
        attempts: r.get(4)?,
        waiting: r.get(5)?,
        rule: r.get(6)?,
        message: r.get(7)?,
        log_index: r.get::<_, Option<i64>>(8)?.map(|v| v as u64),
        revision: r.get::<_, Option<i64>>(9)?.map(|v| v as u64),
        duplicate: r.get::<_, Option<bool>>(10)?.unwrap_or(false),
        janggal: janggal
            .filter(|j| !j.is_empty())
            .map(|j| j.split(',').map(String::from).collect())
            .unwrap_or_default(),
        sent_at_ms: r.get(12)?,
        other: other.and_then(|b| pb::StoredResult::decode(b.as_slice()).ok()),
    })
}
