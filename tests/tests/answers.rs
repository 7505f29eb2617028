//! Scenario: what every answer carries, on a real cluster over TLS. Each
//! node names itself and its leader on every public answer (status, chain
//! head, health, a refusal alike); a body that does not decode is refused
//! as the caller's input (INVALID_ARGUMENT, rule `decode`) and changes
//! nothing; and `rekap-node --help` tells of `restore`.

use std::time::Duration;

use prost::bytes::{Buf, BufMut};
use rekap_client::proto as pb;
use rekap_tests::pki::{ADMIN, OPERATOR};
use rekap_tests::{CONTEST, Cluster, ClusterOptions, KABUPATEN, start_with_registry, wait_until};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::metadata::MetadataMap;
use tonic::{Code, Status};

use pb::admin_client::AdminClient;
use tonic_health::pb::health_client::HealthClient;

fn header(md: &MetadataMap, key: &str) -> Option<u64> {
    md.get(key)?.to_str().ok()?.parse().ok()
}

fn names(md: &MetadataMap, node: u64, leader: u64, what: &str) {
    assert_eq!(
        header(md, "x-rekap-node-id"),
        Some(node),
        "{what} of node {node}: {md:?}"
    );
    assert_eq!(
        header(md, "x-rekap-leader-id"),
        Some(leader),
        "{what} of node {node}: {md:?}"
    );
    assert!(
        md.get("x-rekap-leader").is_some(),
        "{what} of node {node}: {md:?}"
    );
}

async fn totals(cluster: &Cluster) -> pb::RegionTotals {
    let t = cluster
        .client()
        .totals(KABUPATEN, CONTEST, pb::Consistency::Linearizable)
        .await
        .expect("totals");
    t.totals.expect("the kabupaten's totals")
}

async fn knows_leader(cluster: &Cluster, id: u64, leader: u64) {
    wait_until(
        &format!("node {id} to know the leader"),
        Duration::from_secs(10),
        || async { (cluster.status(id).await?.leader_id == Some(leader)).then_some(()) },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_names_its_node_and_leader() {
    let (cluster, _tps, _endpoints) = start_with_registry(ClusterOptions::default(), 1).await;
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    for id in cluster.running() {
        knows_leader(&cluster, id, leader).await;
        let ch = cluster.raw_channel(ADMIN, &cluster.addr(id));
        let status = AdminClient::new(ch.clone())
            .cluster_status(pb::ClusterStatusRequest {})
            .await
            .expect("status");
        names(status.metadata(), id, leader, "ClusterStatus");
        let head = AdminClient::new(ch.clone())
            .get_chain_head(pb::GetChainHeadRequest { index: None })
            .await
            .expect("chain head");
        names(head.metadata(), id, leader, "GetChainHead");
        let health = HealthClient::new(ch)
            .check(tonic_health::pb::HealthCheckRequest {
                service: String::new(),
            })
            .await
            .expect("health");
        names(health.metadata(), id, leader, "Health.Check");
        // A refusal too: an operator may not read the audit chain.
        let op = cluster.raw_channel(OPERATOR, &cluster.addr(id));
        let refused = AdminClient::new(op)
            .get_chain_head(pb::GetChainHeadRequest { index: None })
            .await
            .expect_err("an operator may not read the chain");
        assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
        names(refused.metadata(), id, leader, "a refusal");
    }
}

/// Sends bytes as they are, to see what a node makes of a body it cannot
/// decode.
#[derive(Clone, Copy, Default)]
struct Raw;

impl Codec for Raw {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = Raw;
    type Decoder = Raw;

    fn encoder(&mut self) -> Raw {
        Raw
    }

    fn decoder(&mut self) -> Raw {
        Raw
    }
}

impl Encoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        buf.put_slice(&item);
        Ok(())
    }
}

impl Decoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        let out = buf.chunk().to_vec();
        buf.advance(out.len());
        Ok(Some(out))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_body_is_refused_as_input_and_changes_nothing() {
    let (cluster, _tps, _endpoints) = start_with_registry(ClusterOptions::default(), 1).await;
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    let before = totals(&cluster).await;
    // Field 1 (the submission) says 100 bytes follow; two do.
    let body = vec![0x0a, 100, 0x0a, 0x00];
    for id in cluster.running() {
        knows_leader(&cluster, id, leader).await;
        let ch = cluster.raw_channel(OPERATOR, &cluster.addr(id));
        let mut grpc = tonic::client::Grpc::new(ch);
        grpc.ready().await.expect("ready");
        let path = tonic::codegen::http::uri::PathAndQuery::from_static("/rekap.v1.Tally/Submit");
        let e = grpc
            .unary(tonic::Request::new(body.clone()), path, Raw)
            .await
            .expect_err("not a SubmitRequest");
        assert_eq!(e.code(), Code::InvalidArgument, "node {id}: {e:?}");
        assert_eq!(
            rekap_client::rule_of(&e).as_deref(),
            Some("decode"),
            "{e:?}"
        );
        assert!(e.message().starts_with("rule=decode: "), "{e:?}");
        names(e.metadata(), id, leader, "a body that does not decode");
    }
    let after = totals(&cluster).await;
    assert_eq!(after, before, "an undecodable body changed the tally");
}

#[test]
fn the_node_help_tells_of_restore() {
    let out = std::process::Command::new(rekap_tests::node_binary())
        .arg("--help")
        .output()
        .expect("rekap-node --help");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.lines().any(|l| l.trim_start().starts_with("restore ")),
        "{help}"
    );
    let restore = std::process::Command::new(rekap_tests::node_binary())
        .args(["restore", "--help"])
        .output()
        .expect("rekap-node restore --help");
    assert!(restore.status.success());
    assert!(String::from_utf8_lossy(&restore.stdout).contains("--initial-cluster"));
}
