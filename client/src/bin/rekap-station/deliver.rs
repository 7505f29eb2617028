//! The station's background work: sending the outbox whenever there is
//! something to send, and refreshing the registry slice whenever the
//! cluster answers. Neither ever blocks the form: the pages read the
//! outbox and the last slice, and only this task talks to the cluster.

use std::sync::Arc;
use std::time::Duration;

use prost::Message;
use rekap_client::Client;
use rekap_client::outbox::sender::{self, DeliverError, Hold, now_ms};
use tracing::{info, warn};

use crate::app::{App, Link};
use crate::slice::Slice;

/// The slice's key in the outbox's cache.
pub const SLICE_KEY: &str = "operator_slice";
/// How often a connected station reads its slice again.
const SLICE_EVERY: Duration = Duration::from_secs(60);
/// Longest wait between attempts while the cluster is out of reach.
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// Runs for as long as the station does.
pub async fn run(app: Arc<App>) {
    let mut backoff = Duration::from_millis(200);
    let mut client: Option<(Client, crate::app::Stamp)> = None;
    let mut slice_due = tokio::time::Instant::now();
    let mut slice_backoff = BACKOFF_MAX;
    loop {
        let stamp = app.certs.stamp();
        if client.as_ref().is_none_or(|(_, s)| *s != stamp) {
            match app.certs.client() {
                Ok(c) => client = Some((c, stamp)),
                Err(e) => {
                    set_link(
                        &app,
                        false,
                        Some(format!("Sertifikat tidak terbaca: {e:#}")),
                        true,
                    );
                    wait(&app, BACKOFF_MAX).await;
                    continue;
                }
            }
        }
        let zone = app
            .slice()
            .map_or(rekap_client::zones::Zone::Wib, |s| s.zone());
        if let Some(why) = app.certs.validity_problem(zone) {
            let _ = app.outbox.note_waiting(Some(&why));
            set_link(&app, false, Some(why), true);
            wait(&app, BACKOFF_MAX).await;
            continue;
        }
        let c = &client.as_ref().expect("client set above").0;
        if tokio::time::Instant::now() >= slice_due {
            match refresh_slice(&app, c).await {
                Ok(()) => {
                    slice_due = tokio::time::Instant::now() + SLICE_EVERY;
                    slice_backoff = BACKOFF_MAX;
                }
                Err(e) => {
                    // Refused (no scope, a revoked certificate) or out of
                    // reach: ask again later, not in a tight loop.
                    app.link.write().expect("link lock").slice_error = Some(e);
                    slice_due = tokio::time::Instant::now() + slice_backoff;
                    slice_backoff = (slice_backoff * 2).min(SLICE_EVERY);
                }
            }
        }
        match sender::deliver(&app.outbox, c).await {
            Ok(pass) => {
                if pass.acknowledged + pass.refused > 0 {
                    info!(
                        acknowledged = pass.acknowledged,
                        refused = pass.refused,
                        "outbox delivered"
                    );
                }
                backoff = Duration::from_millis(200);
                if app.link().slice_error.is_none() || pass.acknowledged > 0 {
                    set_link(&app, true, None, false);
                }
                let until_slice = slice_due.saturating_duration_since(tokio::time::Instant::now());
                wait(&app, until_slice.min(SLICE_EVERY)).await;
            }
            Err(DeliverError::Hold(Hold { why, identity })) => {
                let _ = app.outbox.note_waiting(Some(&why));
                set_link(&app, false, Some(why), identity);
                // Look at the slice again as soon as the cluster is back.
                slice_due = tokio::time::Instant::now();
                wait(&app, backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
            Err(DeliverError::Outbox(e)) => {
                warn!(error = %e, "outbox unreadable");
                set_link(&app, false, Some(e.to_string()), false);
                wait(&app, BACKOFF_MAX).await;
            }
        }
    }
}

/// Sleeps until `d` passes or an entry is saved.
async fn wait(app: &App, d: Duration) {
    let _ = tokio::time::timeout(d, app.wake.notified()).await;
}

fn set_link(app: &App, online: bool, why: Option<String>, identity: bool) {
    let mut l = app.link.write().expect("link lock");
    *l = Link {
        online,
        why,
        identity,
        slice_error: l.slice_error.clone(),
    };
}

/// Reads the operator's slice from the cluster and keeps it, on disk first.
async fn refresh_slice(app: &App, client: &Client) -> Result<(), String> {
    let raw = client.operator_slice().await.map_err(|s| {
        let rule = rekap_client::rule_of(&s).unwrap_or_default();
        format!(
            "Daftar TPS belum diperbarui: {} ({})",
            if rule.is_empty() {
                s.message().to_string()
            } else {
                rekap_rules::pesan(&rule).to_string()
            },
            rule
        )
    })?;
    let now = now_ms();
    app.outbox
        .cache_put(SLICE_KEY, &raw.encode_to_vec(), now)
        .map_err(|e| e.to_string())?;
    *app.slice.write().expect("slice lock") = Some(Arc::new(Slice::new(raw, now)));
    app.link.write().expect("link lock").slice_error = None;
    Ok(())
}

/// The slice kept by an earlier run, for starting offline.
pub fn cached_slice(app: &App) -> Option<Slice> {
    let (bytes, at) = app.outbox.cache_get(SLICE_KEY).ok()??;
    let raw = rekap_client::proto::GetOperatorSliceResponse::decode(bytes.as_slice()).ok()?;
    Some(Slice::new(raw, at))
}
