//! The node's live TLS state: the loaded material, swapped atomically on
//! reload, and the rustls server configuration that always uses the
//! current certificate.
//!
//! Client certificates are not judged during the handshake: the handshake
//! asks for one and checks that the client holds its key, and the
//! authentication layer (`authn.rs`) validates the chain on every call
//! against the current CAs. So a bad or missing certificate gets a gRPC
//! status (UNAUTHENTICATED, saying why) instead of a bare TLS alert, and a
//! CA rotation applies to connections that are already open.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use arc_swap::ArcSwap;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme};

use super::material::{self, Material, Paths};

/// rustls' ring provider, installed as the process default once. tonic
/// panics when more than one provider is compiled in and none is chosen.
pub fn provider() -> Arc<CryptoProvider> {
    let p = Arc::new(rustls::crypto::ring::default_provider());
    let _ = CryptoProvider::install_default((*p).clone());
    p
}

pub struct Tls {
    paths: Paths,
    node_id: u64,
    provider: Arc<CryptoProvider>,
    current: ArcSwap<Material>,
    /// Bumped on every successful reload; connection pools compare it.
    generation: AtomicU64,
    /// Modification times of the files as last loaded.
    stamps: std::sync::Mutex<Vec<Option<SystemTime>>>,
}

impl Tls {
    pub fn load(paths: Paths, node_id: u64) -> anyhow::Result<Arc<Tls>> {
        let provider = provider();
        let stamps = stamps(&paths);
        let m = material::load(&paths, node_id, &provider).map_err(anyhow::Error::msg)?;
        tracing::info!(
            cert = %paths.cert.display(),
            serial = %m.own.serial,
            cas = m.ca_count,
            "TLS material loaded"
        );
        Ok(Arc::new(Tls {
            paths,
            node_id,
            provider,
            current: ArcSwap::from_pointee(m),
            generation: AtomicU64::new(1),
            stamps: std::sync::Mutex::new(stamps),
        }))
    }

    pub fn current(&self) -> Arc<Material> {
        self.current.load_full()
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn provider(&self) -> &Arc<CryptoProvider> {
        &self.provider
    }

    /// Re-reads the files. A set that fails any check is refused, logged
    /// with the reason, and the loaded one stays in use.
    pub fn reload(&self, why: &str) -> bool {
        let stamps = stamps(&self.paths);
        *self.stamps.lock().expect("stamps lock") = stamps;
        match material::load(&self.paths, self.node_id, &self.provider) {
            Ok(m) => {
                tracing::info!(why, serial = %m.own.serial, cas = m.ca_count, "TLS material reloaded");
                self.current.store(Arc::new(m));
                self.generation.fetch_add(1, Ordering::AcqRel);
                true
            }
            Err(e) => {
                tracing::warn!(why, error = %e, "TLS reload refused; keeping the certificates in use");
                false
            }
        }
    }

    /// Reloads if any file's modification time changed since the last load.
    pub fn reload_if_changed(&self) -> bool {
        let now = stamps(&self.paths);
        let changed = *self.stamps.lock().expect("stamps lock") != now;
        changed && self.reload("a certificate file changed")
    }

    /// The server side: our current certificate, client certificates asked
    /// for (see the module comment), HTTP/2 only.
    pub fn server_config(self: &Arc<Self>) -> anyhow::Result<Arc<ServerConfig>> {
        let mut cfg = ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(Arc::new(ProofOfKey(self.provider.clone())))
            .with_cert_resolver(Arc::new(Current(self.clone())));
        cfg.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Arc::new(cfg))
    }

    /// The HTTP listener's side: our current certificate, and no client
    /// certificate asked for, because what it serves is public and
    /// read-only (a browser would otherwise offer to pick one).
    pub fn http_server_config(self: &Arc<Self>) -> anyhow::Result<Arc<ServerConfig>> {
        let mut cfg = ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(Current(self.clone())));
        cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(cfg))
    }
}

fn stamps(paths: &Paths) -> Vec<Option<SystemTime>> {
    paths
        .all()
        .iter()
        .map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
        .collect()
}

#[derive(Debug)]
struct Current(Arc<Tls>);

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").field("paths", &self.paths).finish()
    }
}

impl ResolvesServerCert for Current {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.current.load().certified.clone())
    }
}

/// Asks for a client certificate and checks the client holds its key; the
/// chain itself is validated per call by the authentication layer.
#[derive(Debug)]
struct ProofOfKey(Arc<CryptoProvider>);

impl ClientCertVerifier for ProofOfKey {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
