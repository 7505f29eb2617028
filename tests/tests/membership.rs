//! Scenario (e): while writing, add a 4th node as a learner, promote it, and
//! remove an original node: a follower in one run, the leader in another.
//! Nothing acknowledged is lost.

use std::time::Duration;

use rekap_client::proto as pb;
use rekap_tests::pki::OPERATOR;
use rekap_tests::workload::{Workload, check_all, submission};
use rekap_tests::{
    Cluster, ClusterOptions, ops, start_with_registry, unavailable_reason, wait_until,
};

/// What `id` answers to a submission of its own (UNAVAILABLE's reason, or
/// "ok"), asked directly, once it answers at all.
async fn answer_of(cluster: &Cluster, id: u64, tps: &str) -> String {
    let ch = cluster.raw_channel(OPERATOR, &cluster.addr(id));
    wait_until(
        &format!("node {id} answers"),
        Duration::from_secs(30),
        || {
            let mut client = pb::tally_client::TallyClient::new(ch.clone());
            let req = pb::SubmitRequest {
                submission: Some(submission(tps, 0)),
            };
            async move {
                match client.submit(req).await {
                    Ok(_) => Some("ok".to_string()),
                    Err(s) => unavailable_reason(&s),
                }
            }
        },
    )
    .await
}

async fn replace_node(remove_leader: bool) {
    let (mut cluster, tps, endpoints) = start_with_registry(
        ClusterOptions::default(),
        // Four writers ack about 2,500 TPS a second here, and the scenario
        // runs for several seconds: room to spare.
        150,
    )
    .await;
    let load = Workload::start(&cluster, endpoints, tps.clone(), 4);
    load.wait_acked(100, Duration::from_secs(60)).await;

    let admin = cluster.client();
    let new_id = cluster.spawn_joiner();
    // Not added yet, it knows no leader and says why.
    assert_eq!(
        answer_of(&cluster, new_id, &tps[tps.len() - 1]).await,
        "not_member"
    );
    ops::add_learner(&admin, new_id, cluster.addr(new_id)).await;
    load.wait_acked(50, Duration::from_secs(60)).await;
    let m = ops::promote(&admin, new_id).await;
    assert_eq!(m.members.iter().filter(|m| m.role == "voter").count(), 4);
    load.wait_acked(50, Duration::from_secs(60)).await;

    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    let victim = if remove_leader {
        leader
    } else {
        *cluster
            .running()
            .iter()
            .find(|id| **id != leader && **id != new_id)
            .unwrap()
    };
    ops::remove(&admin, victim).await;
    // The remaining nodes agree on a 3-voter membership without the victim,
    // and (if the leader left) elect a new leader among themselves.
    let survivors: Vec<u64> = cluster
        .running()
        .into_iter()
        .filter(|id| *id != victim)
        .collect();
    ops::wait_removed(&cluster, &survivors, victim, Duration::from_secs(30)).await;
    // The removed node may still know the leader; the leader no longer
    // takes calls it forwards, and it tells the client to go elsewhere.
    let asked = std::time::Instant::now();
    assert_eq!(
        answer_of(&cluster, victim, &tps[tps.len() - 2]).await,
        "not_member"
    );
    eprintln!(
        "removed node {victim} answered not_member after {:?}",
        asked.elapsed()
    );
    cluster.forget(victim);
    load.wait_acked(100, Duration::from_secs(60)).await;
    let history = load.stop().await;
    let nodes = check_all(&cluster, &tps, &history).await;
    assert_eq!(nodes.len(), 3);
    println!(
        "replaced node {victim} (leader: {remove_leader}) with {new_id}: {} acked, {} unknown",
        history.acked.len(),
        history.unknown.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_promote_and_remove_a_follower_under_load() {
    replace_node(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_promote_and_remove_the_leader_under_load() {
    replace_node(true).await;
}
