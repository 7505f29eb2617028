//! Delivering an outbox: waiting entries, oldest first, in batches, to
//! whichever node leads (the client library routes and retries). Delivery
//! is exactly once through the cluster's idempotency: an entry keeps the
//! submission id it was saved with, so a resend after a lost answer is a
//! DUPLICATE, which is as good as an acknowledgement.

use rekap_proto::pb;
use tonic::{Code, Status};

use super::{Answer, Outbox, OutboxError};
use crate::{Client, is_retryable, rule_of};

/// Entries per `SubmitBatch` (the node takes up to 1,000).
const BATCH: usize = 500;

/// Why waiting entries still wait, in the operator's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    pub why: String,
    /// The cause is the operator's identity (an expired or revoked
    /// certificate, a disabled account), not the network: waiting alone
    /// will not cure it.
    pub identity: bool,
}

/// What one pass achieved.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    pub acknowledged: usize,
    pub refused: usize,
}

/// Sends every waiting entry, batch by batch, until none is left (`Ok`) or
/// a batch could not be delivered (`Err(Hold)`, the rest stay queued).
pub async fn deliver(outbox: &Outbox, client: &Client) -> Result<Pass, DeliverError> {
    let mut pass = Pass::default();
    loop {
        let batch = outbox.waiting(BATCH)?;
        if batch.is_empty() {
            return Ok(pass);
        }
        let subs: Vec<pb::Submission> = batch.iter().map(|e| e.submission.clone()).collect();
        let items = client
            .submit_batch(subs)
            .await
            .map_err(|s| DeliverError::Hold(hold_of(&s)))?;
        if items.len() != batch.len() {
            return Err(DeliverError::Hold(hold_of(&Status::internal(format!(
                "the node answered {} of {} entries",
                items.len(),
                batch.len()
            )))));
        }
        let mut answers = Vec::with_capacity(batch.len());
        let mut held = None;
        for (e, item) in batch.iter().zip(items) {
            match item.result {
                Some(pb::batch_item::Result::Outcome(o)) => {
                    answers.push((e.seq, Answer::Acknowledged(o)));
                    pass.acknowledged += 1;
                }
                Some(pb::batch_item::Result::Rejection(rej)) => {
                    if let Some(h) = identity_hold(rej.code, &rej.rule, &rej.message) {
                        held = Some(h);
                        continue;
                    }
                    let other = if rej.rule == "result_exists" {
                        // Both numbers are shown: fetch the cluster's. If
                        // that fails, the entry waits and is sent again.
                        let s = &e.submission;
                        match client
                            .tps_result(&s.tps_id, &s.contest_id, pb::Consistency::Linearizable)
                            .await
                        {
                            Ok(r) => Some(r),
                            Err(st) => {
                                held = Some(hold_of(&st));
                                continue;
                            }
                        }
                    } else {
                        None
                    };
                    let answer = Answer::Refused {
                        rule: rej.rule,
                        message: rej.message,
                        other: other.map(Box::new),
                    };
                    answers.push((e.seq, answer));
                    pass.refused += 1;
                }
                None => held = Some(hold_of(&Status::internal("an empty batch item"))),
            }
        }
        // One commit (one fsync) for the whole batch's receipts.
        outbox.record(&answers, now_ms())?;
        if let Some(h) = held {
            return Err(DeliverError::Hold(h));
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DeliverError {
    #[error("{}", .0.why)]
    Hold(Hold),
    #[error(transparent)]
    Outbox(#[from] OutboxError),
}

/// Refusals of the operator's identity keep entries queued: once a new
/// certificate is in place, or the account enabled again, they go.
fn identity_hold(code: i32, rule: &str, message: &str) -> Option<Hold> {
    let identity = code == Code::Unauthenticated as i32
        || (code == Code::PermissionDenied as i32 && rule == "user_disabled");
    identity.then(|| Hold {
        why: format!(
            "{} Entri tetap antre. ({rule}: {message})",
            rekap_rules::pesan(rule)
        ),
        identity: true,
    })
}

/// The reason a whole call failed, as the station shows it.
pub fn hold_of(s: &Status) -> Hold {
    // A handshake the node refused arrives as UNAVAILABLE or UNKNOWN, which
    // is retryable: look for it first, or it would pass for a dead network.
    let text = s.message().to_ascii_lowercase();
    // Only "certificate": a node dying mid-handshake says "handshake" too.
    if rule_of(s).is_none() && text.contains("certificate") {
        return Hold {
            why: format!(
                "Sertifikat Anda ditolak server: {}. Entri tetap antre; minta sertifikat baru ke admin KPU.",
                s.message()
            ),
            identity: true,
        };
    }
    if is_retryable(s) {
        return Hold {
            why: format!(
                "Belum terkirim: tidak ada node Rekap yang menjawab ({}). Entri aman di laptop ini dan dikirim otomatis.",
                s.message()
            ),
            identity: false,
        };
    }
    let rule = rule_of(s).unwrap_or_default();
    if let Some(h) = identity_hold(s.code() as i32, &rule, s.message()) {
        return h;
    }
    Hold {
        why: format!("Belum terkirim: {} ({:?})", s.message(), s.code()),
        identity: false,
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
