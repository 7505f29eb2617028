//! Security: who is calling. Owns the node's TLS material (loaded from a
//! certs directory, reloaded on SIGHUP or when a file changes), the TLS
//! acceptor for the node's one port, the TLS settings for calls to peers,
//! and authentication: turning a connection's certificate into a `Caller`
//! on every request, or UNAUTHENTICATED. What a caller may do is decided by
//! the tally's authorization rules (`tally::auth`) against replicated state.

pub mod acceptor;
pub mod authn;
pub mod certinfo;
pub mod material;
pub mod tls;

use std::sync::Arc;
use std::time::Duration;

pub use authn::{AuthLayer, Authenticator, Caller, caller_of};
pub use tls::Tls;

/// How often the certificate files are checked for changes.
const WATCH_EVERY: Duration = Duration::from_secs(2);

/// Reloads `tls` when its files change, or when `hup` fires (SIGHUP).
pub async fn watch_files(tls: Arc<Tls>, mut hup: tokio::sync::watch::Receiver<u64>) {
    let mut tick = tokio::time::interval(WATCH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                tls.reload_if_changed();
            }
            changed = hup.changed() => {
                if changed.is_err() {
                    return;
                }
                tls.reload("SIGHUP");
            }
        }
    }
}
