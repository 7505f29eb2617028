//! Corrections and flag clearing: each adds a revision; nothing is
//! overwritten, and aggregates move by exactly the difference.

use rekap_proto::pb;

use super::rules::{self, code, reject};
use super::submit::canonical;
use super::{ResultKey, TallyState, current, view};

impl TallyState {
    pub(super) fn correct(
        &mut self,
        req: &pb::CorrectRequest,
        log_index: u64,
        who: Option<&pb::Principal>,
    ) -> Result<pb::CorrectResponse, pb::Rejection> {
        rules::check_correction(&req.request_id, req.reason)?;
        let mut numbers = req.submission.clone().ok_or_else(|| {
            rules::invalid("required_field", "a correction carries the new numbers")
        })?;
        numbers.submission_id = req.request_id.clone();
        numbers.tps_id = req.tps_id.clone();
        numbers.contest_id = req.contest_id.clone();
        rules::check_submission(&numbers)?;
        if let Some(dup) = self.repeated_request(
            &req.request_id,
            &req.tps_id,
            &req.contest_id,
            pb::RevisionKind::Corrected,
            who,
        )? {
            return Ok(dup);
        }
        let contest = self.checked_contest(&numbers)?;
        let (key, h) = self.current_for(&req.tps_id, &req.contest_id, req.replaces_revision)?;
        let cur = current(&h);
        if rules::same_result(
            cur.submission.as_ref().expect("revision has its numbers"),
            &numbers,
        ) {
            return Err(reject(
                code::FAILED_PRECONDITION,
                "correction_changes_nothing",
                "the correction carries the current numbers; to clear flags use ClearFlags",
            ));
        }
        let dpt = self.tps_dpt(&req.tps_id);
        let janggal = rules::janggal(&numbers, dpt);
        let rev = pb::Revision {
            revision: cur.revision + 1,
            kind: pb::RevisionKind::Corrected as i32,
            submission: Some(canonical(&numbers, contest)),
            log_index,
            janggal,
            reason: req.reason,
            note: req.note.clone(),
            evidence_sha256: req.evidence_sha256.clone(),
            author: who.cloned(),
            at_ms: self.proposed_at_ms,
        };
        Ok(self.push_revision(key, h, rev))
    }

    pub(super) fn clear_flags(
        &mut self,
        req: &pb::ClearFlagsRequest,
        log_index: u64,
        who: Option<&pb::Principal>,
    ) -> Result<pb::CorrectResponse, pb::Rejection> {
        rules::check_correction(&req.request_id, req.reason)?;
        if let Some(dup) = self.repeated_request(
            &req.request_id,
            &req.tps_id,
            &req.contest_id,
            pb::RevisionKind::FlagsCleared,
            who,
        )? {
            return Ok(dup);
        }
        let (key, h) = self.current_for(&req.tps_id, &req.contest_id, req.replaces_revision)?;
        let cur = current(&h);
        if cur.janggal.is_empty() {
            return Err(reject(
                code::FAILED_PRECONDITION,
                "result_flagged",
                format!(
                    "revision {} of TPS {} is not flagged janggal",
                    cur.revision, req.tps_id
                ),
            ));
        }
        let mut numbers = cur.submission.clone().expect("revision has its numbers");
        numbers.submission_id = req.request_id.clone();
        let rev = pb::Revision {
            revision: cur.revision + 1,
            kind: pb::RevisionKind::FlagsCleared as i32,
            submission: Some(numbers),
            log_index,
            janggal: Vec::new(),
            reason: req.reason,
            note: req.note.clone(),
            evidence_sha256: req.evidence_sha256.clone(),
            author: who.cloned(),
            at_ms: self.proposed_at_ms,
        };
        Ok(self.push_revision(key, h, rev))
    }

    /// A retried request id answers with the revision it created; an id
    /// used before for something else, or by someone else, is refused.
    pub(super) fn repeated_request(
        &self,
        request_id: &str,
        tps_id: &str,
        contest_id: &str,
        kind: pb::RevisionKind,
        who: Option<&pb::Principal>,
    ) -> Result<Option<pb::CorrectResponse>, pb::Rejection> {
        let Some((key, rev)) = self.request(request_id, tps_id, contest_id) else {
            return Ok(None);
        };
        let h = self
            .history(&key.0, &key.1)
            .expect("a request names its result");
        let created = &h.revisions[(rev - 1) as usize];
        let same_author =
            created.author.as_ref().map(|a| (&a.name, a.kind)) == who.map(|p| (&p.name, p.kind));
        if key.0 != tps_id || key.1 != contest_id || created.kind != kind as i32 || !same_author {
            return Err(reject(
                code::ALREADY_EXISTS,
                "request_id_reused",
                format!("request id {request_id} was already used for something else"),
            ));
        }
        let mut result = view(&h);
        // The original outcome: the revision this request created.
        result.submission = created.submission.clone();
        result.revision = created.revision;
        result.log_index = created.log_index;
        result.janggal = created.janggal.clone();
        Ok(Some(pb::CorrectResponse {
            result: Some(result),
            duplicate: true,
        }))
    }

    /// The result's key and history once it exists and `replaces` is its
    /// current revision.
    pub(super) fn current_for(
        &self,
        tps_id: &str,
        contest_id: &str,
        replaces: u64,
    ) -> Result<(ResultKey, pb::ResultHistory), pb::Rejection> {
        let key = (tps_id.to_string(), contest_id.to_string());
        let h = self.history(tps_id, contest_id).ok_or_else(|| {
            reject(
                code::NOT_FOUND,
                "result_exists",
                format!("TPS {tps_id} has no result for {contest_id} to correct"),
            )
        })?;
        let cur = current(&h).revision;
        if replaces != cur {
            return Err(reject(
                code::FAILED_PRECONDITION,
                "stale_revision",
                format!(
                    "the current revision is {cur}, not {replaces}; read it again before correcting"
                ),
            ));
        }
        Ok((key, h))
    }

    pub(super) fn push_revision(
        &mut self,
        key: ResultKey,
        mut h: pb::ResultHistory,
        rev: pb::Revision,
    ) -> pb::CorrectResponse {
        self.contribute(&key, current(&h), -1);
        self.contribute(&key, &rev, 1);
        h.revisions.push(rev);
        self.save_history(&key, &h);
        pb::CorrectResponse {
            result: Some(view(&h)),
            duplicate: false,
        }
    }
}
