//! Where a follower's log matches a new leader's, told instead of searched
//! for (issue 25). openraft starts a new leader knowing nothing of each
//! follower's log and finds the match point by binary search, one probe of
//! at most 8 entries per round trip, over every entry since the last purge:
//! about ten round trips for ten thousand entries, a second on a 100 ms link
//! to Kotabaru, all of it after the election and before the first write is
//! acknowledged.
//!
//! So each success a follower sends on a replication stream also names the
//! newest log id it holds on disk (`store::Durable`) when that is beyond
//! the id acknowledged. On the answer to a probe (one request, then the
//! stream ends: `network::append::Sent`), the leader reports that id to
//! openraft as the acknowledgement when its own log holds the same id and
//! the id's term is older than the leader's:
//! - By Raft's Log Matching property, two logs holding an entry of the same
//!   index and term hold the same entries up to it, so the follower's log
//!   does match the leader's up to there.
//! - The follower has that entry and everything before it on disk, so a
//!   crash cannot take it back: the leader never sees the follower's log
//!   go below what it believes.
//! - An entry of an older term is never committed by counting it: openraft
//!   commits only entries of the leader's own term, which the follower
//!   acknowledges the usual way, after its own fsync.
//!
//! openraft then moves the follower's matching point to that id, ends the
//! probe, and replicates from there. Not on a pipelined session: openraft
//! takes its acknowledgements as covering what the session has sent, and
//! one beyond that could let a purge remove entries the session has still
//! to send. Not on heartbeats, which move no matching point. Its debug
//! builds assert that a probe's acknowledgement lies within the probe, so
//! only release builds (every test, benchmark and image here) take hints; a
//! debug build searches as openraft does.

use prometheus_client::metrics::counter::Counter;
use rekap_proto::pb;

use crate::raft::LogId;
use crate::raft::convert as cv;
use crate::store::LogIds;

/// What a leader checks hints against, and where it counts those taken.
#[derive(Clone)]
pub struct Own {
    pub log: LogIds,
    pub taken: Counter,
}

/// Whether this build takes followers' hints (see the module comment).
pub const TAKEN: bool = !cfg!(debug_assertions);

/// The follower's side: its durable log id, when beyond what it acknowledges.
pub fn beyond(acked: Option<LogId>, durable: Option<LogId>) -> Option<pb::LogId> {
    let d = durable?;
    (acked.is_none_or(|a| a.index < d.index)).then(|| cv::log_id_to_pb(&d))
}

/// The leader's side: what to report to openraft for a success that
/// acknowledged `acked` and named `durable`. `leader_term` is the term this
/// leader replicates in; `own(index)` reads the log id at `index` of the
/// leader's own log (`None` when it has no entry there).
pub fn take(
    acked: Option<LogId>,
    d: LogId,
    leader_term: u64,
    own: impl FnOnce(u64) -> Option<LogId>,
) -> Option<LogId> {
    if acked.is_some_and(|a| a.index >= d.index) || d.leader_id.term >= leader_term {
        return acked;
    }
    if own(d.index) == Some(d) {
        Some(d)
    } else {
        acked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(term: u64, index: u64) -> LogId {
        cv::log_id(term, 1, index)
    }

    /// The leader's log: term 2 up to index 100, then its own term 3.
    fn leader_log(index: u64) -> Option<LogId> {
        match index {
            1..=100 => Some(id(2, index)),
            101..=102 => Some(id(3, index)),
            _ => None,
        }
    }

    #[test]
    fn a_follower_holding_an_older_entry_of_the_leaders_log_is_matched_there() {
        assert_eq!(
            take(Some(id(2, 58)), id(2, 97), 3, leader_log),
            Some(id(2, 97))
        );
        assert_eq!(take(None, id(2, 97), 3, leader_log), Some(id(2, 97)));
    }

    #[test]
    fn an_entry_the_leader_holds_with_another_term_is_not_taken() {
        // The follower kept a deposed leader's entry the new leader never had.
        let other = cv::log_id(1, 2, 97);
        assert_eq!(take(Some(id(2, 58)), other, 3, leader_log), Some(id(2, 58)));
    }

    #[test]
    fn an_entry_beyond_the_leaders_log_is_not_taken() {
        assert_eq!(
            take(Some(id(2, 58)), id(2, 150), 3, leader_log),
            Some(id(2, 58))
        );
    }

    #[test]
    fn an_entry_of_the_leaders_own_term_is_acknowledged_only_the_usual_way() {
        // Counting it could commit it; only a real acknowledgement may.
        assert_eq!(
            take(Some(id(2, 98)), id(3, 102), 3, leader_log),
            Some(id(2, 98))
        );
    }

    #[test]
    fn a_hint_at_or_below_the_acknowledgement_changes_nothing() {
        let mut asked = false;
        let got = take(Some(id(2, 90)), id(2, 80), 3, |i| {
            asked = true;
            leader_log(i)
        });
        assert_eq!(got, Some(id(2, 90)));
        assert!(
            !asked,
            "no read of the leader's log for a hint that cannot help"
        );
    }

    #[test]
    fn the_follower_names_its_durable_id_only_beyond_its_acknowledgement() {
        assert_eq!(
            beyond(Some(id(2, 58)), Some(id(2, 97))).map(|l| l.index),
            Some(97)
        );
        assert_eq!(beyond(None, Some(id(2, 3))).map(|l| l.index), Some(3));
        assert_eq!(beyond(Some(id(2, 97)), Some(id(2, 97))), None);
        assert_eq!(beyond(Some(id(2, 97)), None), None);
    }
}
