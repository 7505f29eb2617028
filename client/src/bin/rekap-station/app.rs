//! What the station's pages and its sender share: the outbox, the slice,
//! and what the sender last learned of the link to the cluster.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use rekap_client::outbox::Outbox;
use rekap_client::{Client, ClientOptions, ClientTls};
use tokio::sync::Notify;

use crate::slice::Slice;

/// The link as the last attempt found it.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Link {
    /// A node answered the last call.
    pub online: bool,
    /// Why entries wait, when they do (Indonesian, for the banner).
    pub why: Option<String>,
    /// The cause is the operator's certificate or account.
    pub identity: bool,
    /// Why the registry slice could not be refreshed, if it could not.
    pub slice_error: Option<String>,
}

pub struct App {
    pub outbox: Outbox,
    pub slice: RwLock<Option<Arc<Slice>>>,
    pub link: RwLock<Link>,
    /// Wakes the sender at once when an entry is saved.
    pub wake: Notify,
    pub user: String,
    pub certs: Certs,
    /// `host:port` the pages are served on; requests naming another host
    /// (DNS rebinding) or posted from another origin are refused.
    pub origin: String,
}

/// When the certificate and key files last changed.
pub type Stamp = [Option<std::time::SystemTime>; 2];

/// Where the operator's TLS files are, read again whenever they change,
/// so a new certificate takes effect without a restart.
pub struct Certs {
    pub dir: PathBuf,
    pub user: Option<String>,
    pub endpoints: Vec<String>,
    pub insecure: bool,
}

impl Certs {
    pub fn tls(&self) -> anyhow::Result<Option<ClientTls>> {
        if self.insecure {
            return Ok(None);
        }
        Ok(Some(ClientTls::from_dir(&self.dir, self.user.as_deref())?))
    }

    /// A client for the cluster. Short deadlines: the sender comes back
    /// soon anyway, and a station must notice a returning cluster fast.
    pub fn client(&self) -> anyhow::Result<Client> {
        let opts = ClientOptions {
            deadline: std::time::Duration::from_secs(4),
            attempt_timeout: std::time::Duration::from_secs(2),
            backoff_max: std::time::Duration::from_millis(500),
            tls: self.tls()?,
            ..ClientOptions::default()
        };
        Ok(Client::with_options(self.endpoints.clone(), opts))
    }

    /// The certificate's and key's modification times, to notice a new
    /// pair (both: one read between the two writes must not stick).
    pub fn stamp(&self) -> Stamp {
        let Some(user) = self
            .user
            .clone()
            .or_else(|| self.tls().ok().flatten().map(|t| t.user))
        else {
            return [None, None];
        };
        let at = |f: String| {
            std::fs::metadata(self.dir.join(f))
                .and_then(|m| m.modified())
                .ok()
        };
        [
            at(rekap_client::certs::user_cert_file(&user)),
            at(rekap_client::certs::user_key_file(&user)),
        ]
    }
}

impl Certs {
    /// Why the certificate cannot work now, read from the file itself, so
    /// the page says it even with no network: expired, or not yet valid.
    pub fn validity_problem(&self, zone: rekap_client::zones::Zone) -> Option<String> {
        let tls = self.tls().ok().flatten()?;
        let pem = x509_parser::pem::Pem::iter_from_buffer(&tls.cert_pem)
            .next()?
            .ok()?;
        let cert = pem.parse_x509().ok()?;
        let v = cert.validity();
        let now = rekap_client::outbox::sender::now_ms() / 1000;
        let (from, until) = (v.not_before.timestamp(), v.not_after.timestamp());
        if now > until {
            return Some(format!(
                "Sertifikat Anda kedaluwarsa sejak {}. Entri tetap antre dan terkirim setelah sertifikat baru dipasang di {}.",
                zone.show(until * 1000),
                self.dir.display()
            ));
        }
        (now < from).then(|| {
            format!(
                "Sertifikat Anda baru berlaku mulai {}. Periksa jam laptop ini; entri tetap antre.",
                zone.show(from * 1000)
            )
        })
    }
}

impl App {
    pub fn slice(&self) -> Option<Arc<Slice>> {
        self.slice.read().expect("slice lock").clone()
    }

    pub fn link(&self) -> Link {
        self.link.read().expect("link lock").clone()
    }
}
