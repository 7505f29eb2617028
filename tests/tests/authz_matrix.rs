//! Issue 7's role × RPC matrix, on a real cluster over TLS: every public RPC
//! (and the Raft service, the gRPC health service and reflection v1 and
//! v1alpha, which refuse shut-out callers too) called by every role, in and
//! out of its scope, and by callers with no certificate, one from another
//! CA, an expired one, one not yet valid, a revoked one, and a disabled
//! user. The expected allow (A)
//! or deny (D) is the table below; the test prints the table it observed.
//! Every deny leaves the totals and the audit chain head as they were.
//!
//! "Allowed" means authorization let the call through: it may still fail on
//! its input (the requests are built to, where success would change the
//! cluster, e.g. a correction of a stale revision, removing an unknown node).

mod matrix;

use std::time::Duration;

use matrix::{Caller, Rpc, Verdict};
use rekap_tests::{Cluster, ClusterOptions};

/// Columns: operator, verifier, witness, observer in (+) and out of (-)
/// scope; auditor; admin; then the bad identities.
const EXPECTED: &str = "
rpc                    op+ op- ver+ ver- wit+ wit- obs+ obs- aud adm none oca exp nyv rvk dis
Tally.Submit            A   D   D    D    D    D    D    D    D   D   D    D   D   D   D   D
Tally.SubmitBatch       A   D   D    D    D    D    D    D    D   D   D    D   D   D   D   D
Tally.GetTpsResult      A   D   A    D    A    D    A    D    A   A   D    D   D   D   D   D
Tally.GetTotals         A   D   A    D    A    D    A    D    A   A   D    D   D   D   D   D
Tally.GetProgress       A   D   A    D    A    D    A    D    A   A   D    D   D   D   D   D
Tally.ListMissingTps    A   D   A    D    A    D    A    D    A   A   D    D   D   D   D   D
Tally.Correct           A   D   A    D    D    D    D    D    D   D   D    D   D   D   D   D
Tally.ClearFlags        D   D   A    D    D    D    D    D    D   D   D    D   D   D   D   D
Tally.MarkReviewed      D   D   A    D    D    D    D    D    D   D   D    D   D   D   D   D
Tally.FileObjection     D   D   D    D    A    D    D    D    D   D   D    D   D   D   D   D
Tally.GetTpsHistory     A   D   A    D    A    D    A    D    A   A   D    D   D   D   D   D
Tally.ListChildren      A   D   A    D    A    D    A    D    A   A   D    D   D   D   D   D
Tally.ListJanggal       A   D   A    D    A    D    A    D    A   A   D    D   D   D   D   D
Tally.ListResults       A   D   A    D    A    D    A    D    A   A   D    D   D   D   D   D
Tally.GetOperatorSlice  A   A   D    D    D    D    D    D    D   D   D    D   D   D   D   D
Admin.LoadRegistry      D   D   D    D    D    D    D    D    D   A   D    D   D   D   D   D
Admin.ClusterStatus     A   A   A    A    A    A    A    A    A   A   D    D   D   D   D   D
Admin.InitCluster       A   A   A    A    A    A    A    A    A   A   D    D   D   D   D   D
Admin.AddLearner        D   D   D    D    D    D    D    D    D   A   D    D   D   D   D   D
Admin.ChangeMembership  D   D   D    D    D    D    D    D    D   A   D    D   D   D   D   D
Admin.TransferLeader    D   D   D    D    D    D    D    D    D   A   D    D   D   D   D   D
Admin.GetChainHead      D   D   D    D    D    D    D    D    A   A   D    D   D   D   D   D
Admin.ListAuditLog      D   D   D    D    D    D    D    D    A   A   D    D   D   D   D   D
Admin.AddUser           D   D   D    D    D    D    D    D    D   A   D    D   D   D   D   D
Admin.GrantRole         D   D   D    D    D    D    D    D    D   A   D    D   D   D   D   D
Admin.RevokeRole        D   D   D    D    D    D    D    D    D   A   D    D   D   D   D   D
Admin.SetUserDisabled   D   D   D    D    D    D    D    D    D   A   D    D   D   D   D   D
Admin.RevokeCertificate D   D   D    D    D    D    D    D    D   A   D    D   D   D   D   D
Admin.ListUsers         D   D   D    D    D    D    D    D    D   A   D    D   D   D   D   D
Raft.Vote               D   D   D    D    D    D    D    D    D   D   D    D   D   D   D   D
Health.Check            A   A   A    A    A    A    A    A    A   A   D    D   D   D   D   D
Reflection.v1           A   A   A    A    A    A    A    A    A   A   D    D   D   D   D   D
Reflection.v1alpha      A   A   A    A    A    A    A    A    A   A   D    D   D   D   D   D
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_and_bad_identity_against_every_rpc() {
    let cluster = Cluster::start(ClusterOptions::default()).await;
    let world = matrix::World::set_up(&cluster).await;
    let (header, rows) = matrix::parse(EXPECTED);
    let columns: Vec<Caller> = header.iter().map(|h| Caller::from_column(h)).collect();

    let mut observed = Vec::new();
    let mut mismatches = Vec::new();
    let mut seen: Vec<(String, String, String)> = Vec::new();
    for (rpc_name, expected) in &rows {
        let rpc = Rpc::from_name(rpc_name);
        let mut got = Vec::new();
        for (col, want) in columns.iter().zip(expected) {
            let before = world.fingerprint().await;
            let (verdict, message) = world.call(rpc, col).await;
            if let Some(m) = message
                && !seen
                    .iter()
                    .any(|(c, r, _)| c == &format!("{col:?}") && r == rpc_name)
                && (matches!(col, Caller::Role(..)) == rpc_name.starts_with("Raft"))
            {
                seen.push((format!("{col:?}"), rpc_name.clone(), m));
            }
            if verdict == Verdict::Denied {
                let after = world.fingerprint().await;
                assert_eq!(
                    before, after,
                    "{rpc_name} by {col:?} was denied but changed the cluster"
                );
            }
            if verdict.letter() != *want {
                mismatches.push(format!(
                    "{rpc_name} by {col:?}: expected {want}, got {verdict:?}"
                ));
            }
            got.push(verdict.letter());
        }
        observed.push((rpc_name.clone(), got));
    }
    println!("{}", matrix::render(&header, &observed));
    // What a caller with a bad identity is told (one call each), and a user
    // at the Raft service.
    for col in [
        "NoCert",
        "OtherCa",
        "Expired",
        "NotYetValid",
        "Revoked",
        "Disabled",
        "Role(\"m-adm\", true)",
    ] {
        if let Some((c, r, m)) = seen
            .iter()
            .find(|(c, r, _)| c == col && (r == "Admin.ClusterStatus" || r == "Raft.Vote"))
        {
            println!("{c} calling {r}: {m}");
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    // A shut-out caller who knocks is logged, wherever it knocked.
    let logs: String = cluster
        .running()
        .iter()
        .map(|id| cluster.log(*id))
        .collect();
    for user in ["m-dis", "m-rev"] {
        assert!(
            logs.lines()
                .any(|l| l.contains("refused a shut-out caller") && l.contains(user)),
            "no node logged {user}'s refusals"
        );
    }
    // The cluster still works for everyone allowed.
    cluster.wait_for_leader(Duration::from_secs(10)).await;
}
