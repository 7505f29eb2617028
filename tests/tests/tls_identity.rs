//! Transport and identity on a real cluster: a plaintext client fails
//! cleanly; impersonation is refused (a user at the Raft service, a node
//! submitting, a user asserting someone else); certificates and CAs reload
//! without a restart, and a broken file keeps the old one; a removed node
//! id is never admitted again.

use std::time::Duration;

use rekap_client::certs::{self, Validity};
use rekap_client::proto as pb;
use rekap_client::{Client, ClientOptions, ClientTls, rule_of};
use rekap_tests::pki::{ADMIN, OPERATOR, Pki};
use rekap_tests::workload::submission;
use rekap_tests::{
    CONTEST, Cluster, ClusterOptions, KABUPATEN, load_registry, ops, synthetic_registry, wait_until,
};
use tonic::Code;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

fn tls_of(ca: &[u8], dir: &std::path::Path, user: &str) -> ClientTls {
    ClientTls {
        ca_pem: ca.to_vec(),
        cert_pem: std::fs::read(dir.join(certs::user_cert_file(user))).unwrap(),
        key_pem: std::fs::read(dir.join(certs::user_key_file(user))).unwrap(),
        user: user.into(),
    }
}

fn one_node(addr: &str, tls: Option<ClientTls>) -> Client {
    Client::with_options(
        [addr.to_string()],
        ClientOptions {
            deadline: Duration::from_secs(3),
            tls,
            ..ClientOptions::default()
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_and_impersonation_are_refused() {
    let cluster = Cluster::start(ClusterOptions::default()).await;
    let reg = synthetic_registry(1);
    load_registry(&cluster.client(), &reg).await;
    let tps = reg.tps[0].tps_id.clone();
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    let addr = cluster.addr(leader);

    // Plaintext: a clear refusal, not a hang, and nothing changes.
    let plain = one_node(&addr, None);
    let e = plain
        .submit(submission(&tps, 0))
        .await
        .expect_err("plaintext refused");
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
    assert!(e.message().contains("TLS"), "{}", e.message());
    println!("plaintext client: {:?}: {}", e.code(), e.message());

    // A user certificate at the Raft service.
    let ca = std::fs::read(cluster.pki.ca_dir().join(certs::CA_CERT)).unwrap();
    let op_dir = cluster.pki.user_dir(OPERATOR);
    let ch = Endpoint::from_shared(format!("https://{addr}"))
        .unwrap()
        .tls_config(
            ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(&ca))
                .identity(Identity::from_pem(
                    std::fs::read(op_dir.join(certs::user_cert_file(OPERATOR))).unwrap(),
                    std::fs::read(op_dir.join(certs::user_key_file(OPERATOR))).unwrap(),
                )),
        )
        .unwrap()
        .connect()
        .await
        .unwrap();
    let append = pb::AppendRequest {
        vote: None,
        prev_log_id: None,
        entries: vec![],
        leader_commit: None,
    };
    let e = pb::raft_client::RaftClient::new(ch.clone())
        .append(append)
        .await
        .expect_err("a user may not append entries");
    assert_eq!(
        (e.code(), rule_of(&e).as_deref()),
        (Code::PermissionDenied, Some("node_identity"))
    );
    println!(
        "user certificate at the Raft service: {:?}: {}",
        e.code(),
        e.message()
    );

    // A user asserting another principal, as only a forwarding node may.
    let mut req = tonic::Request::new(pb::SubmitRequest {
        submission: Some(submission(&tps, 0)),
    });
    req.metadata_mut()
        .insert("x-rekap-on-behalf-of", "admin".parse().unwrap());
    let e = pb::tally_client::TallyClient::new(ch)
        .submit(req)
        .await
        .expect_err("a user may not assert a principal");
    assert_eq!(
        (e.code(), rule_of(&e).as_deref()),
        (Code::PermissionDenied, Some("assert_principal"))
    );

    // A node certificate is for Raft and forwarding, not for submitting.
    let node_dir = cluster.nodes[&leader].certs.clone();
    let as_node = one_node(&addr, Some(ClientTls::from_dir(&node_dir, None).unwrap()));
    let e = as_node
        .submit(submission(&tps, 0))
        .await
        .expect_err("a node may not submit");
    assert_eq!(
        (e.code(), rule_of(&e).as_deref()),
        (Code::PermissionDenied, Some("node_identity"))
    );

    let t = cluster
        .client()
        .totals(KABUPATEN, CONTEST, pb::Consistency::Linearizable)
        .await
        .unwrap()
        .totals
        .unwrap();
    assert_eq!(t.tps_reported, 0, "refused calls changed the tally");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_and_cas_reload_without_a_restart() {
    let mut cluster = Cluster::start(ClusterOptions::default()).await;
    let admin = cluster.client();
    let addr = cluster.addr(1);
    let node_dir = cluster.nodes[&1].certs.clone();
    let old_ca = std::fs::read(node_dir.join("ca.crt")).unwrap();

    // A second CA, and a user of it that node 1 does not trust yet.
    let tmp = tempfile::tempdir().unwrap();
    let new_pki = Pki::new(tmp.path());
    admin.add_user("rotated").await.unwrap();
    admin
        .grant("rotated", pb::Role::Observer, vec!["ID".into()])
        .await
        .unwrap();
    let new_ca = std::fs::read(new_pki.ca_dir().join(certs::CA_CERT)).unwrap();
    let bundle = [old_ca.clone(), new_ca.clone()].concat();
    let rotated = one_node(
        &addr,
        Some(tls_of(&bundle, &new_pki.user_dir("rotated"), "rotated")),
    );
    let e = rotated.status_of(&addr).await.expect_err("not trusted yet");
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");

    // Overlap old and new CA in every node's bundle; each notices the change.
    for id in cluster.running() {
        std::fs::write(cluster.nodes[&id].certs.join("ca.crt"), &bundle).unwrap();
    }
    for id in cluster.running() {
        let a = cluster.addr(id);
        let c = one_node(
            &a,
            Some(tls_of(&bundle, &new_pki.user_dir("rotated"), "rotated")),
        );
        wait_until(
            "every node to trust the new CA",
            Duration::from_secs(15),
            || async { c.status_of(&a).await.ok() },
        )
        .await;
    }
    // The old CA's users still get in.
    cluster
        .client_for(1)
        .status_of(&addr)
        .await
        .expect("old CA still trusted");

    // A new leaf certificate for node 1 (signed by the new CA), by SIGHUP.
    let reissued = tmp.path().join("node-1");
    certs::issue_node(
        &new_pki.ca_dir(),
        &reissued,
        1,
        &["127.0.0.1".into()],
        Validity::days(5),
    )
    .unwrap();
    for f in [certs::NODE_CERT, certs::NODE_KEY] {
        std::fs::copy(reissued.join(f), node_dir.join(f)).unwrap();
    }
    cluster.signal(1, nix::sys::signal::Signal::SIGHUP);
    wait_until(
        "node 1 to log the reload",
        Duration::from_secs(15),
        || async {
            cluster
                .log_tail(1, 200)
                .contains("why=\"SIGHUP\"")
                .then_some(())
        },
    )
    .await;
    // Clients that trust both CAs reach it, and it still replicates: a
    // write through it is applied on every node.
    let admin2 = one_node(
        &addr,
        Some(tls_of(&bundle, &cluster.pki.user_dir(ADMIN), ADMIN)),
    );
    admin2
        .status_of(&addr)
        .await
        .expect("reloaded node certificate works");
    let done = admin2
        .add_user("after-rotation")
        .await
        .expect("writes through node 1");
    for id in cluster.running() {
        let a = cluster.addr(id);
        wait_until(
            "every node to apply the write",
            Duration::from_secs(15),
            || async {
                let s = admin2.status_of(&a).await.ok()?;
                (s.applied_index? >= done.changed_index).then_some(())
            },
        )
        .await;
    }

    // A broken file is refused and the loaded certificate stays in use.
    std::fs::write(node_dir.join(certs::NODE_CERT), b"not a certificate").unwrap();
    cluster.signal(1, nix::sys::signal::Signal::SIGHUP);
    wait_until(
        "node 1 to refuse the broken file",
        Duration::from_secs(15),
        || async {
            cluster
                .log_tail(1, 200)
                .contains("TLS reload refused")
                .then_some(())
        },
    )
    .await;
    let line = cluster
        .log_tail(1, 200)
        .lines()
        .find(|l| l.contains("TLS reload refused"))
        .unwrap()
        .to_string();
    assert!(
        line.contains("node.crt"),
        "the refusal names the file: {line}"
    );
    println!("broken certificate file: {line}");
    rotated
        .status_of(&addr)
        .await
        .expect("still serving with the loaded certificate");
    cluster.stop(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_node_id_is_never_admitted_again() {
    let mut cluster = Cluster::start(ClusterOptions::default()).await;
    let admin = cluster.client();
    let id = cluster.spawn_joiner();
    ops::add_learner(&admin, id, cluster.addr(id)).await;
    ops::remove(&admin, id).await;
    let e = admin
        .admin(|mut a| {
            let addr = cluster.addr(id);
            async move {
                a.add_learner(pb::AddLearnerRequest {
                    node: Some(pb::NodeAddr { node_id: id, addr }),
                    blocking: false,
                })
                .await
            }
        })
        .await
        .expect_err("a removed id is refused");
    assert_eq!(
        (e.code(), rule_of(&e).as_deref()),
        (Code::FailedPrecondition, Some("node_id_removed"))
    );
    println!(
        "re-adding removed node {id}: {:?}: {}",
        e.code(),
        e.message()
    );
    // And the cluster goes on.
    let reg = synthetic_registry(1);
    load_registry(&admin, &reg).await;
    cluster
        .client_as(OPERATOR)
        .submit(submission(&reg.tps[0].tps_id, 0))
        .await
        .unwrap();
    cluster.forget(id);
}
