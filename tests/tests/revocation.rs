//! Revocation under load: an operator submits continuously through every
//! node; the admin revokes the operator's role. Every submission applied
//! after the revocation's log index is refused (PERMISSION_DENIED), every
//! one acknowledged was applied before it, and none of those is lost.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use rekap_client::proto as pb;
use rekap_client::{Client, ClientOptions, is_retryable};
use rekap_tests::pki::OPERATOR;
use rekap_tests::workload::submission;
use rekap_tests::{CONTEST, ClusterOptions, KABUPATEN, start_with_registry, wait_until};
use tonic::Code;

#[derive(Default)]
struct Seen {
    /// TPS -> log index of its acknowledged submission.
    acked: Vec<(String, u64)>,
    refused: usize,
    unknown: Vec<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_an_operator_refuses_everything_after_its_index_and_loses_nothing_before() {
    let (cluster, tps, endpoints) = start_with_registry(ClusterOptions::default(), 10).await;
    let admin = cluster.client();
    let next = Arc::new(AtomicUsize::new(0));
    let acks = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for _ in 0..6 {
        let client = Client::with_options(
            endpoints.clone(),
            ClientOptions {
                deadline: Duration::from_secs(10),
                ..cluster.pki.options(OPERATOR)
            },
        );
        let (next, acks, stop, tps) = (next.clone(), acks.clone(), stop.clone(), tps.clone());
        writers.push(tokio::spawn(async move {
            let mut seen = Seen::default();
            while !stop.load(Ordering::Relaxed) {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(t) = tps.get(i) else { break };
                match client.submit(submission(t, i)).await {
                    Ok(o) => {
                        seen.acked.push((t.clone(), o.log_index));
                        acks.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) if e.code() == Code::PermissionDenied => seen.refused += 1,
                    Err(e) if is_retryable(&e) => seen.unknown.push(t.clone()),
                    Err(e) => panic!("unexpected refusal of {t}: {e:?}"),
                }
            }
            seen
        }));
    }
    wait_until("submissions under way", Duration::from_secs(60), || async {
        (acks.load(Ordering::Relaxed) >= 150).then_some(())
    })
    .await;
    let revoked = admin
        .revoke(OPERATOR, pb::Role::Operator, vec![])
        .await
        .expect("revoke");
    let revoked_at = revoked.changed_index;
    // Keep submitting a while after the revocation, then stop.
    let after = acks.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Seen::default();
    for w in writers {
        let s = w.await.unwrap();
        all.acked.extend(s.acked);
        all.refused += s.refused;
        all.unknown.extend(s.unknown);
    }
    let late: Vec<&(String, u64)> = all.acked.iter().filter(|(_, i)| *i >= revoked_at).collect();
    assert!(
        late.is_empty(),
        "acknowledged after the revocation at {revoked_at}: {late:?}"
    );
    assert!(
        all.refused > 0,
        "submissions after the revocation must have been refused"
    );
    println!(
        "revocation at log index {revoked_at}: {} acknowledged before it ({} by the time it returned), {} refused after, {} unknown",
        all.acked.len(),
        after,
        all.refused,
        all.unknown.len()
    );

    // Every acknowledged submission is on every node, exactly once.
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    let t = cluster
        .client()
        .totals(KABUPATEN, CONTEST, pb::Consistency::Linearizable)
        .await
        .unwrap();
    cluster
        .wait_applied(&cluster.running(), t.applied_index, Duration::from_secs(30))
        .await;
    for id in cluster.running() {
        let c = cluster.client_for(id);
        for (t, index) in &all.acked {
            let r = c
                .tps_result(t, CONTEST, pb::Consistency::Stale)
                .await
                .unwrap_or_else(|e| panic!("node {id} lost {t}: {e:?}"));
            assert_eq!(r.log_index, *index, "node {id}, TPS {t}");
        }
        let totals = c
            .totals(KABUPATEN, CONTEST, pb::Consistency::Stale)
            .await
            .unwrap()
            .totals
            .unwrap();
        let unknown_present = totals.tps_reported - all.acked.len() as u64;
        assert!(
            unknown_present <= all.unknown.len() as u64,
            "node {id} holds {} results, only {} acknowledged and {} unknown",
            totals.tps_reported,
            all.acked.len(),
            all.unknown.len()
        );
    }
    let _ = leader;
}
