//! Signals, and the orderly shutdown they start: the steps it goes through
//! and the bound on how long it may take. (SIGHUP only asks for the TLS
//! certificates to be re-read; see `security`.)
//!
//! The first SIGTERM or SIGINT starts the shutdown (stop serving, shut Raft
//! down, stop every task, close RocksDB; see `main.rs`). A second signal, or
//! a shutdown still running after the bound, ends the process at once with a
//! non-zero status and a message naming the step that was still running. That
//! exit skips the C++ static destructors (`_exit`), so it cannot crash; what
//! was acknowledged is on disk already, exactly as after a kill -9.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use tokio::sync::watch;

/// Exit status of a shutdown cut short by a second signal.
pub const EXIT_SECOND_SIGNAL: i32 = 2;
/// Exit status of a shutdown that ran over its bound.
pub const EXIT_TOO_SLOW: i32 = 3;

#[derive(Clone)]
pub struct Shutdown {
    requested: watch::Receiver<Option<Instant>>,
    hangups: watch::Receiver<u64>,
    step: Arc<Mutex<&'static str>>,
}

impl Shutdown {
    /// Installs the signal handlers. `bound` is how long a shutdown may run.
    pub fn install(bound: Duration) -> std::io::Result<Shutdown> {
        let mut signals = Signals::new([SIGTERM, SIGINT, SIGHUP])?;
        let (tx, rx) = watch::channel(None);
        let (hup_tx, hangups) = watch::channel(0u64);
        let step = Arc::new(Mutex::new("serving"));
        let watched = step.clone();
        std::thread::Builder::new()
            .name("rekap-signals".into())
            .spawn(move || {
                for sig in signals.forever() {
                    if sig == SIGHUP {
                        hup_tx.send_modify(|n| *n += 1);
                        continue;
                    }
                    if tx.borrow().is_some() {
                        let now = current(&watched);
                        tracing::error!(
                            signal = sig,
                            step = now,
                            "second signal during shutdown: exiting now"
                        );
                        hard_exit(EXIT_SECOND_SIGNAL);
                    }
                    tracing::info!(signal = sig, "shutdown requested");
                    tx.send_replace(Some(Instant::now()));
                    let watched = watched.clone();
                    std::thread::spawn(move || {
                        std::thread::sleep(bound);
                        let now = current(&watched);
                        tracing::error!(
                            step = now,
                            "shutdown did not finish within {bound:?}: exiting now"
                        );
                        hard_exit(EXIT_TOO_SLOW);
                    });
                }
            })?;
        Ok(Shutdown {
            requested: rx,
            hangups,
            step,
        })
    }

    /// Resolves once a shutdown has been requested.
    pub async fn requested(&self) {
        let mut rx = self.requested.clone();
        // The sender lives in the signal thread for the whole process.
        let _ = rx.wait_for(Option::is_some).await;
    }

    /// Counts SIGHUPs: changes each time one arrives.
    pub fn hangups(&self) -> watch::Receiver<u64> {
        self.hangups.clone()
    }

    /// When the shutdown was requested, if it was.
    pub fn started(&self) -> Option<Instant> {
        *self.requested.borrow()
    }

    /// Records (and logs at debug) the step the shutdown has reached, so a
    /// shutdown that runs over its bound can say where it stuck.
    pub fn step(&self, what: &'static str) {
        tracing::debug!(step = what, "shutdown");
        if let Ok(mut s) = self.step.lock() {
            *s = what;
        }
    }
}

fn current(step: &Mutex<&'static str>) -> &'static str {
    step.lock().map(|s| *s).unwrap_or("unknown")
}

fn hard_exit(code: i32) -> ! {
    eprintln!("rekap-node: shutdown cut short (exit status {code})");
    // SAFETY: `_exit` ends the process without running atexit handlers or
    // static destructors; it is async-signal-safe and always sound to call.
    unsafe { libc::_exit(code) }
}
