//! The cluster's timing: every duration that liveness and lease safety
//! depend on, derived from two settings with etcd's names and meaning,
//! `--heartbeat-interval` (H) and `--election-timeout` (E, the shortest
//! random election timeout). Nothing else in the node picks a consensus
//! duration of its own, so one pair of numbers tunes a cluster from a
//! loopback (50/250 ms) to offices on satellite links.
//!
//! The rules, and why:
//! - openraft gives each heartbeat exactly H to come back, and only answers
//!   renew the leader's lease: H must exceed the worst round trip between
//!   voters, with room for jitter (etcd asks "about the round trip"; here it
//!   is a hard floor).
//! - The lease L is openraft's `election_timeout_max` = E + 2H. Openraft
//!   picks each election timeout in [E, L): a spread of two heartbeats (at
//!   least two round trips, a pre-vote and a vote) keeps two candidates
//!   apart. A follower that heard from its leader within L refuses to vote
//!   for another, which is what makes a leader's lease read safe; so L
//!   must be the same on every voter (`cluster status` warns when it is
//!   not).
//! - A follower stands after its lease L and then its own timeout, in
//!   [E, L), of silence: failover takes L + [E, L), plus a pre-vote, a vote
//!   (two round trips) and a commit. At the smallest E (two heartbeats)
//!   that is 6H–8H; the spread is kept small because failover grows
//!   with it.

use std::time::Duration;

use anyhow::bail;

/// etcd's bounds: a heartbeat under 10 ms costs more than it tells, an
/// election timeout over 50 s is a cluster that never fails over.
const MIN_HEARTBEAT_MS: u64 = 10;
const MAX_ELECTION_MS: u64 = 50_000;
/// A follower stands only after a lease and its own timeout of silence
/// (`openraft`'s leased vote), at least 2E + 2H: with E at two
/// heartbeats that is six missed heartbeats, more than etcd's rule of
/// thumb (an election timeout of five heartbeats, counted once). Less,
/// and a few late ones start an election.
const MIN_HEARTBEATS_PER_ELECTION: u64 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    heartbeat_ms: u64,
    election_ms: u64,
}

impl Default for Timing {
    /// One machine or one LAN: 50/250 ms.
    fn default() -> Self {
        Timing {
            heartbeat_ms: 50,
            election_ms: 250,
        }
    }
}

impl Timing {
    /// Refuses settings that cannot work, saying why.
    pub fn new(heartbeat_ms: u64, election_ms: u64) -> anyhow::Result<Timing> {
        if heartbeat_ms < MIN_HEARTBEAT_MS {
            bail!("--heartbeat-interval {heartbeat_ms} ms is under {MIN_HEARTBEAT_MS} ms");
        }
        if election_ms < MIN_HEARTBEATS_PER_ELECTION * heartbeat_ms {
            bail!(
                "--election-timeout {election_ms} ms is under {MIN_HEARTBEATS_PER_ELECTION} heartbeats \
                 ({} ms): a few late heartbeats would start an election; give at least {} ms",
                MIN_HEARTBEATS_PER_ELECTION * heartbeat_ms,
                MIN_HEARTBEATS_PER_ELECTION * heartbeat_ms
            );
        }
        if election_ms > MAX_ELECTION_MS {
            bail!(
                "--election-timeout {election_ms} ms is over {MAX_ELECTION_MS} ms: failover would take minutes"
            );
        }
        Ok(Timing {
            heartbeat_ms,
            election_ms,
        })
    }

    pub fn heartbeat_ms(self) -> u64 {
        self.heartbeat_ms
    }

    /// The shortest election timeout (openraft's `election_timeout_min`).
    pub fn election_ms(self) -> u64 {
        self.election_ms
    }

    /// The lease, and the longest election timeout: E + 2H.
    pub fn lease_ms(self) -> u64 {
        self.election_ms + 2 * self.heartbeat_ms
    }

    pub fn heartbeat(self) -> Duration {
        Duration::from_millis(self.heartbeat_ms)
    }

    pub fn lease(self) -> Duration {
        Duration::from_millis(self.lease_ms())
    }

    /// How long a call waits for an election to name a leader: the lease
    /// (until a follower may stand), the longest timeout (2L in all), and
    /// one more L for the pre-vote, the vote and the first commit.
    pub fn leader_wait(self) -> Duration {
        3 * self.lease()
    }

    /// How often a pending proposal checks that its leader still has a
    /// majority.
    pub fn quorum_check(self) -> Duration {
        2 * self.heartbeat()
    }

    /// How stale the majority's acknowledgement may grow before a pending
    /// proposal is answered as outcome-unknown: twice the lease, after
    /// which openraft itself refuses new proposals.
    pub fn pending_limit(self) -> Duration {
        2 * self.lease()
    }

    /// A forward's budget when the caller names no deadline: what a
    /// leader wait and a commit may take, with room (4 s on a loopback).
    pub fn forward_default(self) -> Duration {
        10 * self.lease()
    }

    /// Per snapshot step (openraft's `install_snapshot_timeout`): 5 s, or
    /// 20 election timeouts on slow links.
    pub fn install_snapshot_timeout_ms(self) -> u64 {
        (20 * self.election_ms).max(5_000)
    }

    /// How recently a voter must have acknowledged the leader to count as
    /// alive for a membership change: 3 s, or four leases.
    pub fn alive_within(self) -> Duration {
        (4 * self.lease()).max(Duration::from_secs(3))
    }

    /// How long a connection to a peer may take to open: TCP and TLS are
    /// three round trips, and a heartbeat is at least one (500 ms floor).
    pub fn connect_timeout(self) -> Duration {
        (3 * self.heartbeat()).max(Duration::from_millis(500))
    }

    /// How long an HTTP/2 keep-alive ping to a peer may go unanswered
    /// before the connection is dropped (2 s floor).
    pub fn keep_alive_timeout(self) -> Duration {
        (4 * self.heartbeat()).max(Duration::from_secs(2))
    }

    /// How long a better-placed voter must have been healthy and caught up
    /// before the leader hands it the leadership: long enough that a
    /// flapping link does not bounce the leader (5 s, or four leases).
    pub fn placement_settle(self) -> Duration {
        (4 * self.lease()).max(Duration::from_secs(5))
    }

    /// What a client's attempt should allow: a leader wait, a forward and
    /// a commit (5 s on a loopback). Clients learn it from `cluster status`.
    pub fn client_attempt(self) -> Duration {
        self.lease() * 25 / 2
    }

    /// When a client should also ask another node: about a failover (1 s
    /// on a loopback), far above a normal commit.
    pub fn client_hedge(self) -> Duration {
        self.lease() * 5 / 2
    }

    /// As `cluster status` reports it.
    pub fn to_pb(self) -> rekap_proto::pb::Timing {
        let ms = |d: Duration| d.as_millis() as u32;
        rekap_proto::pb::Timing {
            heartbeat_interval_ms: self.heartbeat_ms as u32,
            election_timeout_ms: self.election_ms as u32,
            lease_ms: self.lease_ms() as u32,
            client_attempt_ms: ms(self.client_attempt()),
            client_hedge_ms: ms(self.client_hedge()),
        }
    }

    /// As `cluster status` shows it: "50/250-350 ms".
    pub fn show(self) -> String {
        format!(
            "{}/{}-{} ms",
            self.heartbeat_ms,
            self.election_ms,
            self.lease_ms()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_give_the_loopback_values() {
        let t = Timing::default();
        assert_eq!(t.lease_ms(), 350);
        assert_eq!(t.leader_wait(), Duration::from_millis(1050));
        assert_eq!(t.pending_limit(), Duration::from_millis(700));
        assert_eq!(t.forward_default(), Duration::from_millis(3500));
        assert_eq!(t.client_attempt(), Duration::from_millis(4375));
        assert_eq!(t.client_hedge(), Duration::from_millis(875));
        assert_eq!(t.show(), "50/250-350 ms");
    }

    #[test]
    fn settings_that_cannot_work_are_refused_with_the_reason() {
        let e = Timing::new(100, 150).unwrap_err().to_string();
        assert!(
            e.contains("under 2 heartbeats") && e.contains("200 ms"),
            "{e}"
        );
        assert!(Timing::new(5, 250).is_err());
        // The README's regional row sits exactly on the bound.
        assert!(Timing::new(200, 400).is_ok());
        assert!(Timing::new(100, 60_000).is_err());
        let wan = Timing::new(100, 1000).expect("etcd's defaults");
        assert_eq!(
            (wan.lease_ms(), wan.leader_wait()),
            (1200, Duration::from_millis(3600))
        );
    }
}
