//! The C.Hasil rules and the `Rejection` values they produce.
//!
//! Everything here is a pure function of its input. The node runs these
//! checks before proposing a command (saving a log entry) and again,
//! authoritatively, when the state machine applies it; the operator's
//! station runs them before it queues anything. One crate for all three is
//! what keeps a station from queueing what the cluster will refuse.

mod pesan;

pub use pesan::{field_label, pesan};

use rekap_proto::pb;

/// gRPC status code numbers, kept here so the pure core needs no tonic.
pub mod code {
    pub const INVALID_ARGUMENT: i32 = 3;
    pub const NOT_FOUND: i32 = 5;
    pub const ALREADY_EXISTS: i32 = 6;
    pub const PERMISSION_DENIED: i32 = 7;
    pub const FAILED_PRECONDITION: i32 = 9;
    pub const UNAUTHENTICATED: i32 = 16;
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
    // Bytes, not chars: every allowed character is ASCII, and any byte of a
    // multi-byte character fails the test just as its char would.
    let ok = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':');
    if id.is_empty() || id.len() > MAX_ID_LEN || !id.bytes().all(ok) {
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

/// Every optional administrative figure with its name, for the
/// non-negative rule.
fn admin_fields(s: &pb::Submission) -> [(&'static str, Option<i64>); 11] {
    [
        ("dpt", s.dpt),
        ("dptb", s.dptb),
        ("dpk", s.dpk),
        ("users_dpt", s.users_dpt),
        ("users_dptb", s.users_dptb),
        ("users_dpk", s.users_dpk),
        ("users_total", s.users_total),
        ("ballots_received", s.ballots_received),
        ("ballots_used", s.ballots_used),
        ("ballots_unused", s.ballots_unused),
        ("ballots_damaged", s.ballots_damaged),
    ]
}

/// Checks everything about a submission that does not need the registry,
/// the hard rules of the C.Hasil form: ids, required fields, no negatives,
/// sum of candidate votes = sah, sah + tidak sah = total, users per list add
/// up to all users, ballots received = used + unused + damaged, and DPT
/// users within the DPT. A rule on optional figures applies when they are
/// all known.
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
    let named = [
        ("sah", Some(sah)),
        ("tidak_sah", Some(tidak_sah)),
        ("total", Some(total)),
    ];
    let votes = s.votes.iter().map(|v| ("votes", Some(v.votes)));
    for (name, v) in named.into_iter().chain(admin_fields(s)).chain(votes) {
        if let Some(v) = v
            && v > MAX_FIGURE
        {
            return Err(invalid(
                "figure_limit",
                format!("{name} is {v}; no TPS figure exceeds {MAX_FIGURE}"),
            ));
        }
        if let Some(v) = v
            && v < 0
        {
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
    if let (Some(a), Some(b), Some(c), Some(all)) =
        (s.users_dpt, s.users_dptb, s.users_dpk, s.users_total)
        && a.checked_add(b).and_then(|x| x.checked_add(c)) != Some(all)
    {
        return Err(invalid(
            "users_sum_eq_users_total",
            format!("users DPT {a} + DPTb {b} + DPK {c} != users total {all}"),
        ));
    }
    if let (Some(rec), Some(used), Some(unused), Some(damaged)) = (
        s.ballots_received,
        s.ballots_used,
        s.ballots_unused,
        s.ballots_damaged,
    ) && used
        .checked_add(unused)
        .and_then(|x| x.checked_add(damaged))
        != Some(rec)
    {
        return Err(invalid(
            "ballots_received_eq_used_unused_damaged",
            format!("ballots received {rec} != used {used} + unused {unused} + damaged {damaged}"),
        ));
    }
    if let (Some(users), Some(dpt)) = (s.users_dpt, s.dpt)
        && users > dpt
    {
        return Err(invalid(
            "users_dpt_le_dpt",
            format!("{users} DPT voters voted but the DPT has {dpt}"),
        ));
    }
    Ok(Figures {
        sah: sah as u64,
        tidak_sah: tidak_sah as u64,
        total: total as u64,
    })
}

/// No figure of one TPS form comes near this; it keeps every sum in the
/// state machine far from overflow.
pub const MAX_FIGURE: i64 = 1_000_000;

/// Legal maximum of ballots counted at one TPS.
pub const MAX_TPS_TOTAL: i64 = 800;

/// The soft rules a (valid) submission breaks: it is accepted but flagged
/// janggal with every reason. `registry_dpt` is the TPS's DPT from the
/// registry, used when the form's own DPT is unknown.
pub fn janggal(s: &pb::Submission, registry_dpt: Option<u32>) -> Vec<String> {
    let mut out = Vec::new();
    let total = s.total.unwrap_or(0);
    let sah = s.sah.unwrap_or(0);
    if s.ballots_used.is_some_and(|u| u != total) {
        out.push("total_ne_ballots_used".to_string());
    }
    if s.users_total.is_some_and(|u| u != total) {
        out.push("total_ne_users_total".to_string());
    }
    if total > MAX_TPS_TOTAL {
        out.push("total_over_800".to_string());
    }
    let registered = s
        .dpt
        .or(registry_dpt.map(i64::from))
        .map(|dpt| dpt + s.dptb.unwrap_or(0) + s.dpk.unwrap_or(0));
    if let Some(reg) = registered {
        // votes > 1.02 x registered, in integers: 50 * votes > 51 * registered.
        if s.votes.iter().any(|v| 50 * v.votes > 51 * reg) {
            out.push("votes_over_registered".to_string());
        }
        if s.users_total.unwrap_or(total) > reg {
            out.push("turnout_over_registered".to_string());
        }
    }
    if sah > 0 && s.votes.len() > 1 && s.votes.iter().any(|v| v.votes == sah) {
        out.push("all_votes_one_candidate".to_string());
    }
    out
}

/// Whether a submission lists exactly its contest's candidates, in the
/// contest's order: what every client sends, and what the tally stores.
pub fn in_contest_order(contest: &pb::Contest, s: &pb::Submission) -> bool {
    s.votes.len() == contest.candidates.len()
        && s.votes
            .iter()
            .zip(&contest.candidates)
            .all(|(v, c)| v.candidate_id == c.candidate_id)
}

/// The candidates of a submission must be exactly its contest's, each once
/// (the registry-dependent half of `candidate_set`).
pub fn check_candidates(contest: &pb::Contest, s: &pb::Submission) -> Result<(), pb::Rejection> {
    // The usual case, without sorting both lists: a contest lists each of
    // its candidates once.
    if in_contest_order(contest, s) {
        return Ok(());
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
    Ok(())
}

/// Checks an id and a reason for a correction or a flag clearing.
pub fn check_correction(request_id: &str, reason: i32) -> Result<(), pb::Rejection> {
    check_id("request_id", request_id)?;
    let known = pb::CorrectionReason::try_from(reason).unwrap_or(pb::CorrectionReason::Unspecified);
    if known == pb::CorrectionReason::Unspecified {
        return Err(invalid(
            "reason_required",
            "a correction needs a reason: entry_error, form_misread, recount, psu or court_ruling",
        ));
    }
    Ok(())
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
/// order of candidates does not matter. Evidence and operator fields do not
/// count: the same form entered twice is the same result.
pub fn same_result(a: &pb::Submission, b: &pb::Submission) -> bool {
    let votes = |s: &pb::Submission| {
        s.votes
            .iter()
            .map(|v| (v.candidate_id.clone(), v.votes))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    a.tps_id == b.tps_id
        && a.contest_id == b.contest_id
        && same_numbers(a, b)
        && votes(a) == votes(b)
}

fn same_numbers(a: &pb::Submission, b: &pb::Submission) -> bool {
    (a.sah, a.tidak_sah, a.total) == (b.sah, b.tidak_sah, b.total)
        && admin_fields(a).map(|f| f.1) == admin_fields(b).map(|f| f.1)
}
