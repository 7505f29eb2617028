//! Reviews and objections: revisions that keep a result's numbers. A
//! verifier's review ends the submitting operator's right to correct; a
//! witness's objection (keberatan) flags the result until a verifier clears
//! the flags.

use rekap_proto::pb;

use super::rules::{self, invalid};
use super::{TallyState, current};

/// The janggal reason an objection adds.
pub const KEBERATAN: &str = "keberatan";
/// Longest objection text kept.
pub const MAX_OBJECTION: usize = 4096;

impl TallyState {
    pub(super) fn review(
        &mut self,
        req: &pb::ReviewRequest,
        log_index: u64,
        who: Option<&pb::Principal>,
    ) -> Result<pb::CorrectResponse, pb::Rejection> {
        rules::check_id("request_id", &req.request_id)?;
        let same = |cur: &pb::Revision| cur.janggal.clone();
        self.keep_numbers(
            Keep {
                request_id: &req.request_id,
                tps_id: &req.tps_id,
                contest_id: &req.contest_id,
                replaces: req.replaces_revision,
                kind: pb::RevisionKind::Reviewed,
                note: &req.note,
                evidence: "",
            },
            same,
            log_index,
            who,
        )
    }

    pub(super) fn object(
        &mut self,
        req: &pb::ObjectionRequest,
        log_index: u64,
        who: Option<&pb::Principal>,
    ) -> Result<pb::CorrectResponse, pb::Rejection> {
        check_objection(req)?;
        let flagged = |cur: &pb::Revision| {
            let mut j = cur.janggal.clone();
            if !j.iter().any(|r| r == KEBERATAN) {
                j.push(KEBERATAN.to_string());
            }
            j
        };
        self.keep_numbers(
            Keep {
                request_id: &req.request_id,
                tps_id: &req.tps_id,
                contest_id: &req.contest_id,
                replaces: req.replaces_revision,
                kind: pb::RevisionKind::Objected,
                note: &req.text,
                evidence: &req.evidence_sha256,
            },
            flagged,
            log_index,
            who,
        )
    }

    fn keep_numbers(
        &mut self,
        k: Keep,
        janggal: impl Fn(&pb::Revision) -> Vec<String>,
        log_index: u64,
        who: Option<&pb::Principal>,
    ) -> Result<pb::CorrectResponse, pb::Rejection> {
        if let Some(dup) =
            self.repeated_request(k.request_id, k.tps_id, k.contest_id, k.kind, who)?
        {
            return Ok(dup);
        }
        let (key, h) = self.current_for(k.tps_id, k.contest_id, k.replaces)?;
        let cur = current(&h);
        let mut numbers = cur.submission.clone().expect("revision has its numbers");
        numbers.submission_id = k.request_id.to_string();
        let rev = pb::Revision {
            revision: cur.revision + 1,
            kind: k.kind as i32,
            submission: Some(numbers),
            log_index,
            janggal: janggal(cur),
            reason: pb::CorrectionReason::Unspecified as i32,
            note: k.note.to_string(),
            evidence_sha256: k.evidence.to_string(),
            author: who.cloned(),
            at_ms: self.proposed_at_ms,
        };
        Ok(self.push_revision(key, h, rev))
    }
}

/// What a revision that keeps the numbers records.
struct Keep<'a> {
    request_id: &'a str,
    tps_id: &'a str,
    contest_id: &'a str,
    replaces: u64,
    kind: pb::RevisionKind,
    note: &'a str,
    evidence: &'a str,
}

/// The stateless rules of an objection: an id, and a text saying what is wrong.
pub fn check_objection(req: &pb::ObjectionRequest) -> Result<(), pb::Rejection> {
    rules::check_id("request_id", &req.request_id)?;
    let text = req.text.trim();
    if text.is_empty() {
        return Err(invalid("objection_text", "an objection says what is wrong"));
    }
    if req.text.len() > MAX_OBJECTION {
        return Err(invalid(
            "objection_text",
            format!("an objection's text is at most {MAX_OBJECTION} bytes"),
        ));
    }
    Ok(())
}
