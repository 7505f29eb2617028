//! Applying submissions: validation against the registry, idempotency by
//! submission id within the result, one result per TPS and contest.

use rekap_proto::pb;

use super::rules::{self, code, invalid, reject};
use super::{TallyState, keys};

impl TallyState {
    /// Each item is decided in order, so two items for the same TPS in one
    /// batch behave exactly as two separate calls would.
    pub(super) fn submit_batch(
        &mut self,
        batch: &[pb::Submission],
        log_index: u64,
        who: Option<&pb::Principal>,
    ) -> pb::SubmitBatchResponse {
        if let Err(rej) = rules::check_batch(batch) {
            let items = batch.iter().map(|_| rejection_item(rej.clone())).collect();
            return pb::SubmitBatchResponse { items };
        }
        // Each item reads its request id and its result: read them together.
        self.records.prefetch(
            batch
                .iter()
                .flat_map(|s| {
                    [
                        keys::request(&s.submission_id),
                        keys::result(&s.tps_id, &s.contest_id),
                    ]
                })
                .collect(),
        );
        let items = batch
            .iter()
            .map(|s| {
                match self
                    .check_submission_auth(who, s)
                    .and_then(|()| self.submit_one(s, log_index, who))
                {
                    Ok(outcome) => pb::BatchItem {
                        result: Some(pb::batch_item::Result::Outcome(outcome)),
                    },
                    Err(rej) => rejection_item(rej),
                }
            })
            .collect();
        pb::SubmitBatchResponse { items }
    }

    fn submit_one(
        &mut self,
        s: &pb::Submission,
        log_index: u64,
        who: Option<&pb::Principal>,
    ) -> Result<pb::SubmitOutcome, pb::Rejection> {
        rules::check_submission(s)?;
        let existing = self.history(&s.tps_id, &s.contest_id);
        if let Some((first, original)) = existing
            .as_ref()
            .and_then(|h| super::first_submission(h, &s.submission_id))
        {
            if !rules::same_result(original, s) {
                return Err(reused(s));
            }
            return Ok(outcome(s, first, pb::SubmitStatus::Duplicate));
        }
        // Only revisions after the first are indexed; a first submission's
        // id reused on another result is not seen, and harms nothing: a
        // result is keyed by its TPS and contest, never by the id.
        if self.later_request(&s.submission_id).is_some() {
            return Err(reused(s));
        }
        let contest = self.checked_contest(s)?;
        let key = (s.tps_id.clone(), s.contest_id.clone());
        if let Some(h) = existing {
            let cur = super::current(&h);
            let numbers = cur.submission.as_ref().expect("revision has its numbers");
            if rules::same_result(numbers, s) {
                return Ok(outcome(s, cur, pb::SubmitStatus::Duplicate));
            }
            return Err(reject(
                code::ALREADY_EXISTS,
                "result_exists",
                format!(
                    "TPS {} already has a different result for {} (revision {}); send a correction instead",
                    s.tps_id, s.contest_id, cur.revision
                ),
            ));
        }
        let dpt = self.tps_dpt(&s.tps_id);
        let rev = pb::Revision {
            revision: 1,
            kind: pb::RevisionKind::Submitted as i32,
            submission: Some(canonical(s, contest)),
            log_index,
            janggal: rules::janggal(s, dpt),
            author: who.cloned(),
            at_ms: self.proposed_at_ms,
            ..Default::default()
        };
        let out = outcome(s, &rev, pb::SubmitStatus::Accepted);
        let h = pb::ResultHistory {
            revisions: vec![rev],
        };
        self.save_history(&key, &h);
        self.contribute(&key, &h.revisions[0], 1);
        Ok(out)
    }

    /// The contest of a submission, once the TPS and contest exist, the
    /// contest covers the TPS, and the candidates are exactly the contest's.
    pub(super) fn checked_contest(
        &self,
        s: &pb::Submission,
    ) -> Result<&pb::Contest, pb::Rejection> {
        let desa = self.tps_desa(&s.tps_id).ok_or_else(|| {
            reject(
                code::NOT_FOUND,
                "tps_exists",
                format!("TPS {} is not in the registry", s.tps_id),
            )
        })?;
        let contest = self.contests.get(&s.contest_id).ok_or_else(|| {
            reject(
                code::NOT_FOUND,
                "contest_exists",
                format!("contest {} is not in the registry", s.contest_id),
            )
        })?;
        if !self.covers(contest, &self.chain_of(desa)) {
            return Err(invalid(
                "contest_covers_tps",
                format!(
                    "TPS {} is outside the scope of contest {}",
                    s.tps_id, s.contest_id
                ),
            ));
        }
        rules::check_candidates(contest, s)?;
        Ok(contest)
    }
}

/// Votes listed in the contest's candidate order.
pub(super) fn canonical(s: &pb::Submission, contest: &pb::Contest) -> pb::Submission {
    let mut s = s.clone();
    if rules::in_contest_order(contest, &s) {
        return s;
    }
    let pos = |id: &str| contest.candidates.iter().position(|c| c.candidate_id == id);
    s.votes.sort_by_key(|v| pos(&v.candidate_id));
    s
}

/// What a submission request learns about the revision that holds it.
fn outcome(s: &pb::Submission, rev: &pb::Revision, status: pb::SubmitStatus) -> pb::SubmitOutcome {
    let original = rev.submission.as_ref().expect("revision has its numbers");
    pb::SubmitOutcome {
        submission_id: s.submission_id.clone(),
        status: status as i32,
        tps_id: original.tps_id.clone(),
        contest_id: original.contest_id.clone(),
        revision: rev.revision,
        log_index: rev.log_index,
        original_submission_id: original.submission_id.clone(),
        janggal: rev.janggal.clone(),
    }
}

fn reused(s: &pb::Submission) -> pb::Rejection {
    reject(
        code::ALREADY_EXISTS,
        "submission_id_reused",
        format!(
            "submission id {} was already used for a different result",
            s.submission_id
        ),
    )
}

fn rejection_item(rej: pb::Rejection) -> pb::BatchItem {
    pb::BatchItem {
        result: Some(pb::batch_item::Result::Rejection(rej)),
    }
}
