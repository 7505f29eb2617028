//! The test clusters' certificates: one CA per cluster, a node certificate
//! per node, and the users the scenarios act as. Every scenario runs with
//! TLS and real principals; the writers are operators, never admins.

use std::path::{Path, PathBuf};

use rekap_client::certs::{self, Validity};
use rekap_client::proto as pb;
use rekap_client::registry::Registry;
use rekap_client::{Client, ClientOptions, ClientTls};

/// Manages the cluster: membership, registry, users.
pub const ADMIN: &str = "admin";
/// Submits results (operator over every kecamatan loaded) and reads (observer).
pub const OPERATOR: &str = "kpps";
/// Corrects, clears flags, reviews (verifier over every kabupaten loaded).
pub const VERIFIER: &str = "ppk";
/// A second verifier, at another office (four eyes need two people).
pub const VERIFIER2: &str = "kpu-kab";
/// Reads everything and the audit chain.
pub const AUDITOR: &str = "bawaslu";

pub struct Pki {
    dir: PathBuf,
}

impl Pki {
    /// A new CA in `dir/ca`.
    pub fn new(dir: &Path) -> Pki {
        let pki = Pki {
            dir: dir.to_path_buf(),
        };
        certs::init_ca(&pki.ca_dir(), "Rekap test CA", Validity::days(30)).expect("test CA");
        pki
    }

    pub fn ca_dir(&self) -> PathBuf {
        self.dir.join("ca")
    }

    /// A node's certs folder (its --certs-dir), made on first use.
    pub fn node_dir(&self, id: u64, hosts: &[&str]) -> PathBuf {
        let out = self.dir.join(format!("node-{id}-certs"));
        if !out.join(certs::NODE_CERT).exists() {
            let hosts: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
            certs::issue_node(&self.ca_dir(), &out, id, &hosts, Validity::days(30))
                .expect("node certificate");
        }
        out
    }

    /// A user's certs folder, made on first use.
    pub fn user_dir(&self, name: &str) -> PathBuf {
        let out = self.dir.join(format!("user-{name}"));
        if !out.join(certs::user_cert_file(name)).exists() {
            certs::issue_user(&self.ca_dir(), &out, name, Validity::days(30))
                .expect("user certificate");
        }
        out
    }

    /// Issues `name` a new certificate (a new serial) in the same folder,
    /// valid for `validity`, as an admin does after revoking the old one
    /// (or as a test does to put an expired one in its place).
    pub fn reissue(&self, name: &str, validity: Validity) -> PathBuf {
        let out = self.dir.join(format!("user-{name}"));
        certs::issue_user(&self.ca_dir(), &out, name, validity).expect("user certificate");
        out
    }

    /// The serial (hex, as the cluster names it) of `name`'s certificate.
    pub fn serial(&self, name: &str) -> String {
        use rustls::pki_types::pem::PemObject;
        let file = self.user_dir(name).join(certs::user_cert_file(name));
        let der =
            rustls::pki_types::CertificateDer::from_pem_file(&file).expect("a PEM certificate");
        rekap_node::security::certinfo::parse(&der)
            .expect("a certificate")
            .serial
    }

    pub fn tls(&self, name: &str) -> ClientTls {
        ClientTls::from_dir(&self.user_dir(name), Some(name)).expect("user TLS files")
    }

    pub fn options(&self, name: &str) -> ClientOptions {
        ClientOptions {
            tls: Some(self.tls(name)),
            ..ClientOptions::default()
        }
    }
}

/// The scenario users and the roles that need no registry.
pub async fn add_users(admin: &Client) {
    for u in [OPERATOR, VERIFIER, VERIFIER2, AUDITOR] {
        admin.add_user(u).await.expect("add user");
    }
    admin
        .grant(AUDITOR, pb::Role::Auditor, vec![])
        .await
        .expect("grant auditor");
    admin
        .grant(OPERATOR, pb::Role::Observer, vec!["ID".into()])
        .await
        .expect("grant observer");
}

/// Operators over every kecamatan of `reg` and verifiers over every kabupaten.
pub async fn grant_over(admin: &Client, reg: &Registry) {
    let level = |l: pb::RegionLevel| -> Vec<String> {
        reg.regions
            .iter()
            .filter(|r| r.level == l as i32)
            .map(|r| r.code.clone())
            .collect()
    };
    for chunk in level(pb::RegionLevel::Kecamatan).chunks(2000) {
        admin
            .grant(OPERATOR, pb::Role::Operator, chunk.to_vec())
            .await
            .expect("grant operator");
    }
    let kab = level(pb::RegionLevel::Kabupaten);
    if !kab.is_empty() {
        for v in [VERIFIER, VERIFIER2] {
            admin
                .grant(v, pb::Role::Verifier, kab.clone())
                .await
                .expect("grant verifier");
        }
    }
}
