//! `rekap-node`: runs one node of a Rekap cluster.
//!
//! A stop is orderly: stop serving, shut Raft down, stop every task (which
//! joins the fsync thread and drops every store handle), then close RocksDB
//! on this thread before `main` returns. See `shutdown.rs` for the bound.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use rekap_node::config::{Args, Config};
use rekap_node::restore::RestoreArgs;
use rekap_node::shutdown::Shutdown;
use rekap_node::{server, store};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::FilterExt;
use tracing_subscriber::prelude::*;

/// glibc's malloc took a third of the leader's CPU during an import
/// (`_int_malloc`, consolidation, frees of prost messages and keys);
/// mimalloc's per-thread free lists make those calls cheap.
/// With the `override` feature RocksDB allocates through mimalloc too (its
/// C++ `new` and `malloc` resolve to mimalloc's), so glibc's per-thread
/// arenas no longer keep what RocksDB freed: 125 MiB of them per node after
/// the national import.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc v3's `mi_option_t`.
const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;

unsafe extern "C" {
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
    #[cfg(test)]
    fn mi_option_get(option: std::ffi::c_int) -> std::ffi::c_long;
}

/// How long mimalloc keeps freed pages before it returns them to the OS.
/// v3's default is a second, and it only notices the time has passed when
/// that thread allocates again: a thread that went quiet after an import
/// kept them for good. RSS per node holding the 2019 state, by delay:
/// 1000 ms 285-325 MiB, 100 ms 287-298, 10 ms 279-288, 0 ms 270-278. At 0
/// every page freed is faulted in again on the next allocation (15% of the
/// leader's samples during an export), so 10 ms (mimalloc v2's default).
const PURGE_DELAY_MS: std::ffi::c_long = 10;

/// `MIMALLOC_PURGE_DELAY` in the environment still wins.
fn return_freed_memory_soon() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets a plain integer option; mimalloc reads it on each purge.
        unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) }
    }
}

/// `rekap-node [flags]` runs a node; `rekap-node restore ...` seeds one.
#[derive(Parser)]
#[command(
    name = "rekap-node",
    version,
    about = "A Rekap vote-tally cluster node",
    after_help = "Run a node with the flags above; `rekap-node restore --help` tells how to seed a new cluster's node from a backup.",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(flatten)]
    node: Args,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Seed a node of a new cluster from a backup file (`rekapctl snapshot
    /// save`), then start it as usual.
    Restore(RestoreArgs),
}

/// The longest a shutdown may take before the process exits non-zero.
const SHUTDOWN_BOUND: Duration = Duration::from_secs(10);
/// Of that, how long stopping the runtime's tasks may take.
const TASKS_BOUND: Duration = Duration::from_secs(3);

fn main() -> ExitCode {
    return_freed_memory_soon();
    let env =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,openraft=warn"));
    // Failed peer RPCs are reported by `network::health`, once and then
    // summarised, instead of openraft's WARN line per attempt.
    let quiet = rekap_node::network::health::QuietPeerErrors;
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal())
                .with_filter(env.and(quiet)),
        )
        .init();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    // rustls' ring provider, chosen before anything can pick a default.
    rekap_node::security::tls::provider();
    rekap_node::crash::setup()?;
    let cli = Cli::parse();
    if let Some(Command::Restore(args)) = cli.command {
        return rekap_node::restore::run(args);
    }
    let cfg = Config::resolve(cli.node)?;
    let shutdown = Shutdown::install(SHUTDOWN_BOUND)?;
    let owner = store::Owner {
        node_id: cfg.id,
        cluster: cfg.cluster_name.clone(),
    };
    let (log, sm, closer) = store::open(&cfg.data_dir, &owner)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let served = rt.block_on(server::serve(cfg, log, sm, shutdown.clone()));
    // Dropping the runtime drops every task, and with them every handle to
    // the store; the last log-store handle joins the fsync thread.
    shutdown.step("stopping the runtime");
    rt.shutdown_timeout(TASKS_BOUND);
    shutdown.step("closing the database");
    let start = shutdown.started().unwrap_or_else(Instant::now);
    // Leave a second so this reports before the watchdog does.
    closer.close(SHUTDOWN_BOUND.saturating_sub(start.elapsed() + Duration::from_secs(1)))?;
    served?;
    if store::checks::DAMAGED.load(std::sync::atomic::Ordering::SeqCst) {
        anyhow::bail!("stopped: the data directory is damaged (see the error above)");
    }
    tracing::info!(
        took_ms = start.elapsed().as_millis() as u64,
        "shut down cleanly"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_purge_delay_option_is_the_one_we_set() {
        // The index must name the purge delay, whose default is 1000 ms, or
        // the start sets some other option to 0.
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return;
        }
        assert_eq!(unsafe { mi_option_get(MI_OPTION_PURGE_DELAY) }, 1000);
        return_freed_memory_soon();
        assert_eq!(
            unsafe { mi_option_get(MI_OPTION_PURGE_DELAY) },
            PURGE_DELAY_MS
        );
    }
}
