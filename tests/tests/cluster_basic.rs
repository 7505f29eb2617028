//! Scenario (b): a 3-node cluster accepts submissions through every node,
//! reads see them everywhere, and bad input is refused by rule, unchanged.

use std::time::Duration;

use rekap_client::proto as pb;
use rekap_client::rule_of;
use rekap_tests::pki::{ADMIN, OPERATOR};
use rekap_tests::workload::submission;
use rekap_tests::{
    CONTEST, Cluster, ClusterOptions, KABUPATEN, client_as_for, load_registry, synthetic_registry,
    wait_until,
};
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submissions_through_every_node_are_read_everywhere() {
    let cluster = Cluster::start(ClusterOptions::default()).await;
    let reg = synthetic_registry(1);
    load_registry(&cluster.client(), &reg).await;
    let tps: Vec<String> = reg.tps.iter().map(|t| t.tps_id.clone()).collect();

    // Each node takes submissions directly (followers forward to the leader).
    let mut expected_sah = 0;
    for (i, id) in cluster.running().into_iter().enumerate() {
        let c = cluster.client_for(id);
        for k in 0..5 {
            let n = i * 5 + k;
            let s = submission(&tps[n], n);
            expected_sah += s.sah.unwrap() as u64;
            let o = c.submit(s).await.expect("submit via node");
            assert_eq!(o.status, pb::SubmitStatus::Accepted as i32);
        }
    }
    // Linearizable reads through every node see all 15.
    for id in cluster.running() {
        let t = cluster
            .client_for(id)
            .totals(KABUPATEN, CONTEST, pb::Consistency::Linearizable)
            .await
            .expect("totals")
            .totals
            .unwrap();
        assert_eq!((t.tps_reported, t.sah), (15, expected_sah), "node {id}");
        assert_eq!(t.tps_total, 100);
    }
    // Stale reads converge too.
    for id in cluster.running() {
        let c = cluster.client_for(id);
        wait_until(
            "stale read to converge",
            Duration::from_secs(10),
            || async {
                let t = c
                    .totals(KABUPATEN, CONTEST, pb::Consistency::Stale)
                    .await
                    .ok()?
                    .totals?;
                (t.tps_reported == 15).then_some(())
            },
        )
        .await;
    }
    let p = cluster
        .client()
        .progress(KABUPATEN, CONTEST, pb::Consistency::Linearizable)
        .await
        .unwrap();
    assert_eq!(p.progress.unwrap().tps_reported, 15);
    let missing = cluster
        .client()
        .missing(pb::ListMissingTpsRequest {
            region_code: KABUPATEN.into(),
            contest_id: CONTEST.into(),
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!((missing.total_missing, missing.tps.len()), (85, 85));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_status_naming_its_rule_and_changes_nothing() {
    let cluster = Cluster::start(ClusterOptions::default()).await;
    let reg = synthetic_registry(1);
    load_registry(&cluster.client(), &reg).await;
    let tps = reg.tps[0].tps_id.clone();
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    let follower = cluster
        .running()
        .into_iter()
        .find(|id| *id != leader)
        .unwrap();
    let c = cluster.client_for(follower);

    let first = c.submit(submission(&tps, 1)).await.unwrap();
    assert_eq!(first.status, pb::SubmitStatus::Accepted as i32);
    let retry = c.submit(submission(&tps, 1)).await.unwrap();
    assert_eq!(retry.status, pb::SubmitStatus::Duplicate as i32);
    assert_eq!(retry.log_index, first.log_index);

    let mut bad_sum = submission(&reg.tps[1].tps_id, 2);
    bad_sum.sah = Some(bad_sum.sah.unwrap() + 1);
    bad_sum.total = Some(bad_sum.total.unwrap() + 1);
    let mut negative = submission(&reg.tps[1].tps_id, 3);
    negative.tidak_sah = Some(-1);
    let mut conflicting = submission(&tps, 4);
    conflicting.submission_id = "other".into();
    let mut unknown_tps = submission("NO-SUCH-TPS", 5);
    unknown_tps.submission_id = "u".into();
    let mut huge = submission(&reg.tps[2].tps_id, 6);
    huge.submission_id = "x".repeat(5 * 1024 * 1024);
    let cases = [
        (
            bad_sum,
            Code::InvalidArgument,
            Some("sum_candidates_eq_sah"),
        ),
        (negative, Code::InvalidArgument, Some("non_negative")),
        (conflicting, Code::AlreadyExists, Some("result_exists")),
        (unknown_tps, Code::NotFound, Some("tps_exists")),
        (huge, Code::ResourceExhausted, Some("message_size")),
    ];
    for (s, code, rule) in cases {
        let e = c.submit(s).await.expect_err("must be refused");
        assert_eq!(e.code(), code, "{}", e.message());
        if let Some(rule) = rule {
            assert_eq!(rule_of(&e).as_deref(), Some(rule), "{}", e.message());
        }
    }
    let t = cluster
        .client()
        .totals(KABUPATEN, CONTEST, pb::Consistency::Linearizable)
        .await
        .unwrap()
        .totals
        .unwrap();
    assert_eq!(t.tps_reported, 1, "refused input changed the tally");

    // Membership changes that would lose quorum are refused, and change nothing.
    let admin = cluster.client();
    let remove = |ids: Vec<u64>| pb::ChangeMembershipRequest {
        change: Some(pb::change_membership_request::Change::Remove(pb::NodeIds {
            node_ids: ids,
        })),
    };
    let all = remove(cluster.running());
    let e = admin
        .admin(|mut a| {
            let r = all.clone();
            async move { a.change_membership(r).await }
        })
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), rule_of(&e).as_deref()),
        (Code::FailedPrecondition, Some("quorum_kept"))
    );
    let ghost = remove(vec![99]);
    let e = admin
        .admin(|mut a| {
            let r = ghost.clone();
            async move { a.change_membership(r).await }
        })
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), rule_of(&e).as_deref()),
        (Code::NotFound, Some("member_exists"))
    );

    // With one follower dead, removing the other would leave a voter set
    // whose majority cannot be reached.
    let others: Vec<u64> = cluster
        .running()
        .into_iter()
        .filter(|id| *id != leader)
        .collect();
    let mut cluster = cluster;
    cluster.kill(others[0]);
    let dead = others[0];
    wait_until(
        "leader to see the dead follower as unhealthy",
        Duration::from_secs(15),
        || async {
            let s = cluster.status(leader).await?;
            let m = s.members.iter().find(|m| m.node_id == dead)?;
            (m.healthy == Some(false)).then_some(())
        },
    )
    .await;
    let lose = remove(vec![others[1]]);
    let e = admin
        .admin(|mut a| {
            let r = lose.clone();
            async move { a.change_membership(r).await }
        })
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), rule_of(&e).as_deref()),
        (Code::FailedPrecondition, Some("quorum_kept"))
    );
    let s = cluster.status(leader).await.unwrap();
    assert_eq!(
        s.members.iter().filter(|m| m.role == "voter").count(),
        3,
        "refused change altered membership"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_is_a_no_op_and_leadership_can_be_handed_over() {
    let cluster = Cluster::start(ClusterOptions::default()).await;
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    let before = cluster.status(leader).await.unwrap();

    // Initialising an initialised cluster changes nothing, on any node.
    for id in cluster.running() {
        let admin = client_as_for(&cluster, ADMIN, id);
        let ch = admin.channel(&cluster.addr(id)).unwrap();
        let resp = pb::admin_client::AdminClient::new(ch)
            .init_cluster(pb::InitClusterRequest {
                members: vec![pb::NodeAddr {
                    node_id: id,
                    addr: cluster.addr(id),
                }],
            })
            .await
            .unwrap()
            .into_inner();
        assert!(resp.already_initialized, "node {id}");
    }
    let after = cluster.status(leader).await.unwrap();
    // Same members in the same roles (replication progress may move).
    let shape = |s: &pb::ClusterStatusResponse| {
        s.members
            .iter()
            .map(|m| (m.node_id, m.addr.clone(), m.role.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(shape(&before), shape(&after));
    assert_eq!(after.state, "leader");

    // Transfer leadership to a follower, asking a different follower.
    let others: Vec<u64> = cluster
        .running()
        .into_iter()
        .filter(|id| *id != leader)
        .collect();
    let target = others[0];
    let via = client_as_for(&cluster, ADMIN, others[1]);
    let resp = via
        .admin(|mut a| async move {
            a.transfer_leader(pb::TransferLeaderRequest { to_node_id: target })
                .await
        })
        .await
        .unwrap();
    assert_eq!(resp.leader_id, Some(target));
    wait_until("the target to lead", Duration::from_secs(10), || async {
        (cluster.status(target).await?.state == "leader").then_some(())
    })
    .await;
    // And the cluster still takes writes.
    let reg = synthetic_registry(1);
    load_registry(&cluster.client(), &reg).await;
    cluster
        .client_as(OPERATOR)
        .submit(submission(&reg.tps[0].tps_id, 0))
        .await
        .unwrap();
}

/// Behind port mapping (compose, Kubernetes) a client reaches nodes through
/// other addresses than they advertise. It must still find the leader through
/// its own endpoints, which it tells apart by the node id every answer names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_behind_other_addresses_finds_the_leader_through_its_own_endpoints() {
    let cluster = Cluster::start(ClusterOptions::default()).await;
    let aliases: Vec<String> = cluster
        .running()
        .into_iter()
        .map(|id| cluster.addr(id).replace("127.0.0.1", "localhost"))
        .collect();
    let admin = rekap_client::Client::with_options(aliases.clone(), cluster.pki.options(ADMIN));
    let reg = synthetic_registry(1);
    load_registry(&admin, &reg).await;
    let c = rekap_client::Client::with_options(aliases.clone(), cluster.pki.options(OPERATOR));
    for (n, t) in reg.tps.iter().take(10).enumerate() {
        c.submit(submission(&t.tps_id, n)).await.unwrap();
    }
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    let expected = cluster.addr(leader).replace("127.0.0.1", "localhost");
    assert_eq!(c.leader(), Some(expected));
    assert!(
        c.endpoints().iter().all(|e| e.starts_with("localhost")),
        "{:?}",
        c.endpoints()
    );
}
