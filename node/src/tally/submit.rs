//! Applying submissions: validation against the registry, idempotency by
//! submission id, one result per TPS and contest.

use prost::Message;
use rekap_proto::pb;

use super::rules::{self, code, invalid, reject};
use super::{TallyState, Write, keys};

impl TallyState {
    /// Each item is decided in order, so two items for the same TPS in one
    /// batch behave exactly as two separate calls would.
    pub(super) fn submit_batch(
        &mut self,
        batch: &[pb::Submission],
        log_index: u64,
        writes: &mut Vec<Write>,
    ) -> pb::SubmitBatchResponse {
        if let Err(rej) = rules::check_batch(batch) {
            let items = batch.iter().map(|_| rejection_item(rej.clone())).collect();
            return pb::SubmitBatchResponse { items };
        }
        let items = batch
            .iter()
            .map(|s| match self.submit_one(s, log_index, writes) {
                Ok(outcome) => pb::BatchItem {
                    result: Some(pb::batch_item::Result::Outcome(outcome)),
                },
                Err(rej) => rejection_item(rej),
            })
            .collect();
        pb::SubmitBatchResponse { items }
    }

    fn submit_one(
        &mut self,
        s: &pb::Submission,
        log_index: u64,
        writes: &mut Vec<Write>,
    ) -> Result<pb::SubmitOutcome, pb::Rejection> {
        rules::check_submission(s)?;
        if let Some(key) = self.by_submission.get(&s.submission_id) {
            let stored = &self.results[key];
            let original = stored
                .submission
                .as_ref()
                .expect("stored result has its submission");
            if !rules::same_result(original, s) {
                return Err(reject(
                    code::ALREADY_EXISTS,
                    "submission_id_reused",
                    format!(
                        "submission id {} was already used for a different result",
                        s.submission_id
                    ),
                ));
            }
            return Ok(duplicate(s, stored));
        }
        let tps = self.tps.get(&s.tps_id).ok_or_else(|| {
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
        if !self.covers(contest, &self.chain(&tps.desa_code)) {
            return Err(invalid(
                "contest_covers_tps",
                format!(
                    "TPS {} is outside the scope of contest {}",
                    s.tps_id, s.contest_id
                ),
            ));
        }
        let mut expected: Vec<&str> = contest
            .candidates
            .iter()
            .map(|c| c.candidate_id.as_str())
            .collect();
        let mut given: Vec<&str> = s.votes.iter().map(|v| v.candidate_id.as_str()).collect();
        expected.sort_unstable();
        given.sort_unstable();
        if expected != given {
            return Err(invalid(
                "candidate_set",
                format!(
                    "contest {} has candidates {:?}, the submission names {:?}",
                    s.contest_id, expected, given
                ),
            ));
        }
        let key = (s.tps_id.clone(), s.contest_id.clone());
        if let Some(stored) = self.results.get(&key) {
            let original = stored
                .submission
                .as_ref()
                .expect("stored result has its submission");
            if rules::same_result(original, s) {
                return Ok(duplicate(s, stored));
            }
            return Err(reject(
                code::ALREADY_EXISTS,
                "result_exists",
                format!(
                    "TPS {} already has a different result for {} (submission {}); corrections are separate",
                    s.tps_id, s.contest_id, original.submission_id
                ),
            ));
        }
        let stored = pb::StoredResult {
            submission: Some(canonical(s, contest)),
            revision: 1,
            log_index,
        };
        writes.push((
            keys::result(&s.tps_id, &s.contest_id),
            Some(stored.encode_to_vec()),
        ));
        let outcome = pb::SubmitOutcome {
            submission_id: s.submission_id.clone(),
            status: pb::SubmitStatus::Accepted as i32,
            tps_id: s.tps_id.clone(),
            contest_id: s.contest_id.clone(),
            revision: 1,
            log_index,
            original_submission_id: s.submission_id.clone(),
        };
        self.insert_result(stored);
        Ok(outcome)
    }
}

/// Votes listed in the contest's candidate order.
fn canonical(s: &pb::Submission, contest: &pb::Contest) -> pb::Submission {
    let mut s = s.clone();
    let pos = |id: &str| contest.candidates.iter().position(|c| c.candidate_id == id);
    s.votes.sort_by_key(|v| pos(&v.candidate_id));
    s
}

fn duplicate(s: &pb::Submission, stored: &pb::StoredResult) -> pb::SubmitOutcome {
    let original = stored
        .submission
        .as_ref()
        .expect("stored result has its submission");
    pb::SubmitOutcome {
        submission_id: s.submission_id.clone(),
        status: pb::SubmitStatus::Duplicate as i32,
        tps_id: original.tps_id.clone(),
        contest_id: original.contest_id.clone(),
        revision: stored.revision,
        log_index: stored.log_index,
        original_submission_id: original.submission_id.clone(),
    }
}

fn rejection_item(rej: pb::Rejection) -> pb::BatchItem {
    pb::BatchItem {
        result: Some(pb::batch_item::Result::Rejection(rej)),
    }
}
