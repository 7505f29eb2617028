//! TLS material: the CA bundle, this node's certificate and its key, read
//! from a certs directory (`ca.crt`, `node.crt`, `node.key`).
//!
//! Everything is checked before it is used: every file parses, the key
//! matches the certificate, the certificate chains to one of the CAs and
//! names this node. A reload that fails any check keeps what is loaded.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rekap_proto::identity::Named;
use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;
use rustls::sign::CertifiedKey;

use super::certinfo::{self, CertInfo};

/// Where a node's TLS files live.
#[derive(Debug, Clone)]
pub struct Paths {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Paths {
    /// `ca.crt`, `node.crt` and `node.key` in `dir`; or, when there is no
    /// `node.crt`, `node-<id>.crt` and `node-<id>.key` (one folder, or one
    /// Kubernetes Secret, for every node).
    pub fn for_node(dir: &Path, id: u64) -> Paths {
        let (cert, key) = if dir.join("node.crt").exists() {
            (dir.join("node.crt"), dir.join("node.key"))
        } else {
            (
                dir.join(format!("node-{id}.crt")),
                dir.join(format!("node-{id}.key")),
            )
        };
        Paths {
            ca: dir.join("ca.crt"),
            cert,
            key,
        }
    }

    pub fn all(&self) -> [&Path; 3] {
        [&self.ca, &self.cert, &self.key]
    }
}

/// One consistent, checked set of TLS files.
pub struct Material {
    pub ca_pem: Vec<u8>,
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
    pub roots: Arc<RootCertStore>,
    /// Full chain validation of client certificates against `roots`.
    pub verifier: Arc<dyn ClientCertVerifier>,
    pub certified: Arc<CertifiedKey>,
    /// What this node's own certificate says.
    pub own: CertInfo,
    /// How many CA certificates the bundle holds (an overlap during a CA
    /// rotation holds two).
    pub ca_count: usize,
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn certs(path: &Path, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: not a PEM certificate file: {e:?}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: holds no certificate", path.display()));
    }
    Ok(certs)
}

/// Loads and checks the files for node `node_id`.
pub fn load(
    paths: &Paths,
    node_id: u64,
    provider: &Arc<CryptoProvider>,
) -> Result<Material, String> {
    let ca_pem = read(&paths.ca)?;
    let cert_pem = read(&paths.cert)?;
    let key_pem = read(&paths.key)?;

    let cas = certs(&paths.ca, &ca_pem)?;
    let mut roots = RootCertStore::empty();
    for (i, ca) in cas.iter().enumerate() {
        roots.add(ca.clone()).map_err(|e| {
            format!(
                "{}: CA certificate {} is unusable: {e}",
                paths.ca.display(),
                i + 1
            )
        })?;
    }
    let roots = Arc::new(roots);
    let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
        .build()
        .map_err(|e| format!("{}: {e}", paths.ca.display()))?;

    let chain = certs(&paths.cert, &cert_pem)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| format!("{}: not a PEM private key: {e:?}", paths.key.display()))?;
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| format!("{}: unusable private key: {e}", paths.key.display()))?;
    let certified = CertifiedKey::new(chain.clone(), signing);
    certified.keys_match().map_err(|e| {
        format!(
            "{} does not belong to {}: {e}",
            paths.key.display(),
            paths.cert.display()
        )
    })?;

    // The node's own certificate must pass the checks its peers will make.
    verifier
        .verify_client_cert(&chain[0], &chain[1..], UnixTime::now())
        .map_err(|e| {
            format!(
                "{}: {} (CA file {})",
                paths.cert.display(),
                certinfo::explain(&e),
                paths.ca.display()
            )
        })?;
    let own = certinfo::parse(&chain[0]).map_err(|e| format!("{}: {e}", paths.cert.display()))?;
    if own.named != Named::Node(node_id) {
        return Err(format!(
            "{} names {:?}, not node {node_id}: use the certificate made for this node (rekapctl certs node {node_id})",
            paths.cert.display(),
            own.named
        ));
    }
    Ok(Material {
        ca_count: cas.len(),
        ca_pem,
        cert_pem,
        key_pem,
        roots,
        verifier,
        certified: Arc::new(certified),
        own,
    })
}
