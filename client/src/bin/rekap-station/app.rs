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

    /// The certificate file's modification time, to notice a new one.
    pub fn stamp(&self) -> Option<std::time::SystemTime> {
        let user = self
            .user
            .clone()
            .or_else(|| self.tls().ok().flatten().map(|t| t.user))?;
        std::fs::metadata(self.dir.join(rekap_client::certs::user_cert_file(&user)))
            .and_then(|m| m.modified())
            .ok()
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
