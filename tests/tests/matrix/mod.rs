//! The machinery of the role × RPC matrix: identities, the request each RPC
//! is called with, and the verdict of each call.

use std::collections::HashMap;
use std::time::Duration;

use rekap_client::certs::{self, Validity};
use rekap_client::proto as pb;
use rekap_client::{Client, ClientOptions};
use rekap_tests::pki::{AUDITOR, OPERATOR, Pki};
use rekap_tests::workload::submission;
use rekap_tests::{CONTEST, Cluster, KABUPATEN, load_registry, synthetic_registry};
use time::{Duration as Span, OffsetDateTime};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{Code, Status};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    Denied,
}

impl Verdict {
    pub fn letter(self) -> &'static str {
        match self {
            Verdict::Allowed => "A",
            Verdict::Denied => "D",
        }
    }
}

/// Who calls, and (for roles with a scope) whether the target is in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Caller {
    Role(&'static str, bool),
    NoCert,
    OtherCa,
    Expired,
    NotYetValid,
    Revoked,
    Disabled,
}

impl Caller {
    pub fn from_column(c: &str) -> Caller {
        let role = |u, inside| Caller::Role(u, inside);
        match c {
            "op+" => role("m-op", true),
            "op-" => role("m-op", false),
            "ver+" => role("m-ver", true),
            "ver-" => role("m-ver", false),
            "wit+" => role("m-wit", true),
            "wit-" => role("m-wit", false),
            "obs+" => role("m-obs", true),
            "obs-" => role("m-obs", false),
            "aud" => role("m-aud", true),
            "adm" => role("m-adm", true),
            "none" => Caller::NoCert,
            "oca" => Caller::OtherCa,
            "exp" => Caller::Expired,
            "nyv" => Caller::NotYetValid,
            "rvk" => Caller::Revoked,
            "dis" => Caller::Disabled,
            other => panic!("unknown column {other}"),
        }
    }

    fn inside(&self) -> bool {
        match self {
            Caller::Role(_, inside) => *inside,
            _ => true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rpc(&'static str);

const RPCS: [&str; 33] = [
    "Tally.Submit",
    "Tally.SubmitBatch",
    "Tally.GetTpsResult",
    "Tally.GetTotals",
    "Tally.GetProgress",
    "Tally.ListMissingTps",
    "Tally.Correct",
    "Tally.ClearFlags",
    "Tally.MarkReviewed",
    "Tally.FileObjection",
    "Tally.GetTpsHistory",
    "Tally.ListChildren",
    "Tally.ListJanggal",
    "Tally.ListResults",
    "Tally.GetOperatorSlice",
    "Admin.LoadRegistry",
    "Admin.ClusterStatus",
    "Admin.InitCluster",
    "Admin.AddLearner",
    "Admin.ChangeMembership",
    "Admin.TransferLeader",
    "Admin.GetChainHead",
    "Admin.ListAuditLog",
    "Admin.AddUser",
    "Admin.GrantRole",
    "Admin.RevokeRole",
    "Admin.SetUserDisabled",
    "Admin.RevokeCertificate",
    "Admin.ListUsers",
    "Raft.Vote",
    "Health.Check",
    "Reflection.v1",
    "Reflection.v1alpha",
];

impl Rpc {
    pub fn from_name(name: &str) -> Rpc {
        Rpc(RPCS
            .iter()
            .find(|r| **r == name)
            .unwrap_or_else(|| panic!("no RPC {name} in the matrix")))
    }
}

/// The expected table: its header (columns) and one row per RPC.
pub fn parse(table: &str) -> (Vec<String>, Vec<(String, Vec<String>)>) {
    let mut lines = table.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<String> = lines
        .next()
        .unwrap()
        .split_whitespace()
        .skip(1)
        .map(String::from)
        .collect();
    let rows: Vec<(String, Vec<String>)> = lines
        .map(|l| {
            let mut w = l.split_whitespace().map(String::from);
            let name = w.next().unwrap();
            let cells: Vec<String> = w.collect();
            assert_eq!(cells.len(), header.len(), "row {name}");
            (name, cells)
        })
        .collect();
    let names: Vec<&str> = rows.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, RPCS, "the table lists every RPC once, in order");
    (header, rows)
}

pub fn render(header: &[String], rows: &[(String, Vec<&str>)]) -> String {
    let mut out = format!("{:<24}", "rpc");
    for h in header {
        out.push_str(&format!("{h:<5}"));
    }
    for (name, cells) in rows {
        out.push_str(&format!("\n{name:<24}"));
        for c in cells {
            out.push_str(&format!("{c:<5}"));
        }
    }
    out
}

/// A client identity: certificate and key PEM, or none.
type Ident = Option<(Vec<u8>, Vec<u8>)>;

pub struct World<'a> {
    cluster: &'a Cluster,
    ca_pem: Vec<u8>,
    idents: HashMap<Caller, Ident>,
    channels: tokio::sync::Mutex<HashMap<(Caller, String), Channel>>,
    /// (TPS, kecamatan) inside and outside the roles' scope.
    inside: (String, String),
    outside: (String, String),
    auditor: Client,
}

fn read_ident(dir: &std::path::Path, user: &str) -> Ident {
    let r = |f: String| std::fs::read(dir.join(f)).unwrap();
    Some((
        r(certs::user_cert_file(user)),
        r(certs::user_key_file(user)),
    ))
}

impl<'a> World<'a> {
    pub async fn set_up(cluster: &'a Cluster) -> World<'a> {
        let admin = cluster.client();
        let reg = synthetic_registry(2);
        load_registry(&admin, &reg).await;
        let kec_a = format!("{KABUPATEN}.01");
        let kec_b = format!("{KABUPATEN}.02");
        let tps_in = |k: &str| {
            reg.tps
                .iter()
                .find(|t| t.desa_code.starts_with(&format!("{k}.")))
                .unwrap()
                .tps_id
                .clone()
        };
        let (ta, tb) = (tps_in(&kec_a), tps_in(&kec_b));
        let pki = &cluster.pki;
        for (user, role, scope) in [
            ("m-op", pb::Role::Operator, kec_a.as_str()),
            ("m-ver", pb::Role::Verifier, kec_a.as_str()),
            ("m-wit", pb::Role::Witness, kec_a.as_str()),
            ("m-obs", pb::Role::Observer, kec_a.as_str()),
            ("m-aud", pb::Role::Auditor, "ID"),
            ("m-adm", pb::Role::Admin, "ID"),
            ("m-rev", pb::Role::Operator, kec_a.as_str()),
            ("m-dis", pb::Role::Operator, kec_a.as_str()),
            ("m-exp", pb::Role::Operator, kec_a.as_str()),
            ("m-nyv", pb::Role::Operator, kec_a.as_str()),
        ] {
            admin.add_user(user).await.unwrap();
            admin.grant(user, role, vec![scope.into()]).await.unwrap();
        }
        admin.set_disabled("m-dis", true).await.unwrap();
        let mut idents = HashMap::new();
        for c in ["op+", "ver+", "wit+", "obs+", "aud", "adm"] {
            let user = match Caller::from_column(c) {
                Caller::Role(u, _) => u,
                _ => unreachable!(),
            };
            let ident = read_ident(&pki.user_dir(user), user);
            idents.insert(Caller::Role(user, true), ident.clone());
            idents.insert(Caller::Role(user, false), ident);
        }
        idents.insert(Caller::NoCert, None);
        idents.insert(
            Caller::Disabled,
            read_ident(&pki.user_dir("m-dis"), "m-dis"),
        );
        let rev_dir = pki.user_dir("m-rev");
        let serial =
            rekap_node::security::certinfo::parse(&rustls::pki_types::CertificateDer::from(
                pem_der(&rev_dir.join(certs::user_cert_file("m-rev"))),
            ))
            .unwrap()
            .serial;
        admin.revoke_cert("m-rev", &serial).await.unwrap();
        idents.insert(Caller::Revoked, read_ident(&rev_dir, "m-rev"));
        let tmp = tempfile::tempdir().unwrap().keep();
        let now = OffsetDateTime::now_utc();
        let odd = |name: &str, nb: OffsetDateTime, na: OffsetDateTime| {
            let out = tmp.join(name);
            certs::issue_user(
                &pki.ca_dir(),
                &out,
                name,
                Validity {
                    not_before: nb,
                    not_after: na,
                },
            )
            .unwrap();
            read_ident(&out, name)
        };
        idents.insert(
            Caller::Expired,
            odd("m-exp", now - Span::days(10), now - Span::days(1)),
        );
        idents.insert(
            Caller::NotYetValid,
            odd("m-nyv", now + Span::days(1), now + Span::days(10)),
        );
        let other = Pki::new(&tmp.join("other-ca"));
        idents.insert(Caller::OtherCa, read_ident(&other.user_dir("m-op"), "m-op"));

        // A result inside the scope submitted by m-op (so its own
        // correction is allowed), one outside by the harness operator.
        let as_op = Client::with_options(
            cluster.running().into_iter().map(|id| cluster.addr(id)),
            ClientOptions {
                tls: Some(rekap_client::ClientTls {
                    ca_pem: std::fs::read(pki.ca_dir().join(certs::CA_CERT)).unwrap(),
                    cert_pem: idents[&Caller::Role("m-op", true)].clone().unwrap().0,
                    key_pem: idents[&Caller::Role("m-op", true)].clone().unwrap().1,
                    user: "m-op".into(),
                }),
                ..ClientOptions::default()
            },
        );
        as_op.submit(submission(&ta, 1)).await.unwrap();
        cluster
            .client_as(OPERATOR)
            .submit(submission(&tb, 2))
            .await
            .unwrap();
        World {
            cluster,
            ca_pem: std::fs::read(pki.ca_dir().join(certs::CA_CERT)).unwrap(),
            idents,
            channels: tokio::sync::Mutex::new(HashMap::new()),
            inside: (ta, kec_a),
            outside: (tb, kec_b),
            auditor: cluster.client_as(AUDITOR),
        }
    }

    /// What a deny must not change: the chain head and the totals.
    pub async fn fingerprint(&self) -> (String, u64, u64, u64) {
        let leader = self.cluster.wait_for_leader(Duration::from_secs(10)).await;
        let addr = self.cluster.addr(leader);
        let t = self
            .auditor
            .totals(KABUPATEN, CONTEST, pb::Consistency::Linearizable)
            .await
            .unwrap()
            .totals
            .unwrap();
        let h = self.auditor.chain_head_of(&addr, None).await.unwrap();
        (h.head, h.commands, t.sah, t.tps_reported)
    }

    async fn channel(&self, caller: Caller, addr: &str) -> Channel {
        let mut chans = self.channels.lock().await;
        if let Some(c) = chans.get(&(caller, addr.to_string())) {
            return c.clone();
        }
        let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&self.ca_pem));
        if let Some((cert, key)) = &self.idents[&caller] {
            tls = tls.identity(Identity::from_pem(cert, key));
        }
        let ch = Endpoint::from_shared(format!("https://{addr}"))
            .unwrap()
            .tls_config(tls)
            .unwrap()
            .connect_lazy();
        chans.insert((caller, addr.to_string()), ch.clone());
        ch
    }

    /// Calls `rpc` as `caller` on the leader, retrying while leadership
    /// moves. A deny comes with the status a user sees.
    pub async fn call(&self, rpc: Rpc, caller: &Caller) -> (Verdict, Option<String>) {
        for _ in 0..20 {
            let leader = self.cluster.wait_for_leader(Duration::from_secs(10)).await;
            let ch = self.channel(*caller, &self.cluster.addr(leader)).await;
            let target = if caller.inside() {
                &self.inside
            } else {
                &self.outside
            };
            let res =
                tokio::time::timeout(Duration::from_secs(5), requests::send(rpc.0, ch, target))
                    .await;
            match res {
                Ok(Ok(())) => return (Verdict::Allowed, None),
                Ok(Err(s))
                    if matches!(s.code(), Code::PermissionDenied | Code::Unauthenticated) =>
                {
                    return (
                        Verdict::Denied,
                        Some(format!("{:?}: {}", s.code(), s.message())),
                    );
                }
                Ok(Err(s))
                    if s.code() == Code::Unavailable
                        && s.metadata().get("x-rekap-rule").is_none() =>
                {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Ok(Err(_)) => return (Verdict::Allowed, None),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        panic!("{} by {caller:?}: no answer", rpc.0);
    }
}

fn pem_der(path: &std::path::Path) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::from_pem_file(path)
        .unwrap()
        .to_vec()
}

pub mod requests;

/// A status or a batch item refused for authorization counts as a deny.
pub fn batch_verdict(items: &[pb::BatchItem]) -> Result<(), Status> {
    for i in items {
        if let Some(pb::batch_item::Result::Rejection(r)) = &i.result
            && (r.code == Code::PermissionDenied as i32 || r.code == Code::Unauthenticated as i32)
        {
            return Err(Status::new(Code::from_i32(r.code), r.message.clone()));
        }
    }
    Ok(())
}
