//! Stateless validation rules and the `Rejection` values they produce.
//!
//! Everything here is a pure function of its input, so the gRPC layer can run
//! the same checks before proposing a command (saving a log entry) that the
//! state machine runs authoritatively on apply.

use rekap_proto::pb;

/// gRPC status code numbers, kept here so the pure core needs no tonic.
pub mod code {
    pub const INVALID_ARGUMENT: i32 = 3;
    pub const NOT_FOUND: i32 = 5;
    pub const ALREADY_EXISTS: i32 = 6;
    pub const FAILED_PRECONDITION: i32 = 9;
}

/// Most submissions one `SubmitBatch` may carry.
pub const MAX_BATCH: usize = 1000;
/// Longest id (submission, TPS, region, contest, candidate) accepted.
pub const MAX_ID_LEN: usize = 128;

pub fn reject(code: i32, rule: &str, message: impl Into<String>) -> pb::Rejection {
    pb::Rejection {
        code,
        rule: rule.to_string(),
        message: message.into(),
    }
}

pub fn invalid(rule: &str, message: impl Into<String>) -> pb::Rejection {
    reject(code::INVALID_ARGUMENT, rule, message)
}

/// Ids are printable, shell- and URL-safe: letters, digits and `. - _ :`.
pub fn check_id(what: &str, id: &str) -> Result<(), pb::Rejection> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':');
    if id.is_empty() || id.len() > MAX_ID_LEN || !id.chars().all(ok_char) {
        return Err(invalid(
            "id_format",
            format!("{what} {id:?} must be 1..{MAX_ID_LEN} characters of [A-Za-z0-9._:-]"),
        ));
    }
    Ok(())
}

/// The numbers of a submission, once its required fields are known present.
pub struct Figures {
    pub sah: u64,
    pub tidak_sah: u64,
    pub total: u64,
}

/// Checks everything about a submission that does not need the registry:
/// ids, required fields, no negatives, sum of candidate votes = sah,
/// sah + tidak sah = total, and no candidate named twice.
pub fn check_submission(s: &pb::Submission) -> Result<Figures, pb::Rejection> {
    check_id("submission_id", &s.submission_id)?;
    check_id("tps_id", &s.tps_id)?;
    check_id("contest_id", &s.contest_id)?;
    let required = |name: &str, v: Option<i64>| {
        v.ok_or_else(|| invalid("required_field", format!("{name} is required")))
    };
    let sah = required("sah", s.sah)?;
    let tidak_sah = required("tidak_sah", s.tidak_sah)?;
    let total = required("total", s.total)?;
    if s.votes.is_empty() {
        return Err(invalid(
            "required_field",
            "votes per candidate are required",
        ));
    }
    for (name, v) in [("sah", sah), ("tidak_sah", tidak_sah), ("total", total)] {
        if v < 0 {
            return Err(invalid("non_negative", format!("{name} is {v}")));
        }
    }
    let mut sum: i64 = 0;
    let mut seen = std::collections::BTreeSet::new();
    for cv in &s.votes {
        if cv.votes < 0 {
            return Err(invalid(
                "non_negative",
                format!("votes for candidate {} is {}", cv.candidate_id, cv.votes),
            ));
        }
        if !seen.insert(cv.candidate_id.as_str()) {
            return Err(invalid(
                "candidate_set",
                format!("candidate {} is listed twice", cv.candidate_id),
            ));
        }
        sum = sum
            .checked_add(cv.votes)
            .ok_or_else(|| invalid("non_negative", "candidate votes overflow"))?;
    }
    if sum != sah {
        return Err(invalid(
            "sum_candidates_eq_sah",
            format!("candidate votes add up to {sum} but sah is {sah}"),
        ));
    }
    if sah.checked_add(tidak_sah) != Some(total) {
        return Err(invalid(
            "sah_plus_tidak_sah_eq_total",
            format!("sah {sah} + tidak_sah {tidak_sah} != total {total}"),
        ));
    }
    Ok(Figures {
        sah: sah as u64,
        tidak_sah: tidak_sah as u64,
        total: total as u64,
    })
}

/// Checks the batch limit, then each submission.
pub fn check_batch(batch: &[pb::Submission]) -> Result<(), pb::Rejection> {
    if batch.is_empty() || batch.len() > MAX_BATCH {
        return Err(invalid(
            "batch_size",
            format!(
                "a batch holds 1..={MAX_BATCH} submissions, got {}",
                batch.len()
            ),
        ));
    }
    Ok(())
}

/// Two submissions carry the same result when every figure matches; the
/// order of candidates does not matter.
pub fn same_result(a: &pb::Submission, b: &pb::Submission) -> bool {
    let votes = |s: &pb::Submission| {
        s.votes
            .iter()
            .map(|v| (v.candidate_id.clone(), v.votes))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    a.tps_id == b.tps_id
        && a.contest_id == b.contest_id
        && a.sah == b.sah
        && a.tidak_sah == b.tidak_sah
        && a.total == b.total
        && votes(a) == votes(b)
}
