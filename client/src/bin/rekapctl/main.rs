//! `rekapctl`: the command-line tool for operators, recap staff and ops.
//! One file per command group; output is a table, or JSON with `--json`.

mod bench;
mod bench_read;
mod certs;
mod cluster;
mod discover;
mod drill;
mod export;
mod health;
mod import;
mod outbox;
mod output;
mod pilpres;
mod pipeline;
mod read;
mod registry;
mod revise;
mod snapshot;
mod submit;
mod users;
mod verify;
mod watch;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use rekap_client::{Client, ClientOptions, ClientTls};

/// glibc's malloc and free were a tenth of this tool's own CPU under
/// `bench` (many small protobuf and HTTP/2 buffers across threads).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "rekapctl",
    version,
    about = "Talk to a Rekap vote-tally cluster"
)]
struct Cli {
    /// Comma-separated node addresses; any subset of the cluster will do.
    #[arg(
        long,
        env = "REKAP_ENDPOINTS",
        default_value = "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003",
        global = true
    )]
    endpoints: String,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    /// Give up on a call after this many seconds (retries included).
    #[arg(long, default_value_t = 30, global = true)]
    timeout: u64,
    /// Folder with your TLS files: ca.crt, client.USER.crt, client.USER.key.
    #[arg(long, env = "REKAP_CERTS_DIR", global = true)]
    certs_dir: Option<PathBuf>,
    /// Which user certificate in --certs-dir to use (default: the only one).
    #[arg(long, env = "REKAP_USER", global = true)]
    user: Option<String>,
    /// Talk plaintext, to nodes started with --insecure.
    #[arg(long, env = "REKAP_INSECURE", global = true)]
    insecure: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Make the cluster's certificates: a CA, node and user certificates.
    #[command(subcommand)]
    Certs(certs::CertsCmd),
    /// Cluster membership and health.
    #[command(subcommand)]
    Cluster(cluster::ClusterCmd),
    /// Load or generate the registry (regions, TPS, contests).
    #[command(subcommand)]
    Registry(registry::RegistryCmd),
    /// Submit one TPS result.
    Submit(submit::SubmitArgs),
    /// One TPS's result for a contest.
    Result(read::ResultArgs),
    /// Vote totals of a region.
    Totals(read::RegionArgs),
    /// Reporting progress of a region and its children.
    Progress(read::RegionArgs),
    /// TPS of a region still without a result.
    Missing(read::MissingArgs),
    /// Correct a TPS result (a new revision, with a reason).
    Correct(revise::CorrectArgs),
    /// Clear the janggal flags of a result after review (a new revision).
    ClearFlags(revise::Change),
    /// Mark a result reviewed (verifiers; a new revision, same numbers).
    Review(revise::Remark),
    /// File an objection (keberatan) on a result (witnesses; flags it).
    Object(revise::Remark),
    /// Backups: save a consistent cut of the state, check a file offline.
    #[command(subcommand)]
    Snapshot(snapshot::SnapshotCmd),
    /// Users and their roles (admin).
    #[command(subcommand)]
    Users(users::UsersCmd),
    /// Every revision of a TPS result.
    History(revise::HistoryArgs),
    /// Totals and progress of each child region.
    Children(read::RegionArgs),
    /// A live view of a region's progress and totals (any node serves it).
    Watch(watch::WatchArgs),
    /// Flagged (janggal) results in a region.
    Janggal(drill::JanggalArgs),
    /// Check that every node holds the same audit chain.
    Verify,
    /// One node's gRPC health (exit 0 only when SERVING).
    Health(health::HealthArgs),
    /// A station's outbox: list, export, or queue refused entries again.
    #[command(subcommand)]
    Outbox(outbox::OutboxCmd),
    /// Submit a results CSV in batches (rerunnable: counts nothing twice).
    Import(import::ImportArgs),
    /// Export a region's current per-TPS results (CSV or JSON Lines) and the audit log.
    Export(export::ExportArgs),
    /// Turn the real 2019 presidential file into a registry and results CSV.
    Pilpres2019(pilpres::PilpresArgs),
    /// Closed-loop write benchmark against a generated registry.
    Bench(bench::BenchArgs),
    /// Closed-loop reads of a region's totals, as observers refresh them.
    BenchRead(bench_read::ReadBenchArgs),
}

pub struct Ctx {
    pub client: Client,
    pub json: bool,
    /// The options `client` was made with, for tools that open more clients.
    pub opts: ClientOptions,
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("REKAPCTL_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    rekap_client::install_crypto_provider();
    if let Err(e) = run(Cli::parse()).await {
        match e.downcast_ref::<tonic::Status>() {
            Some(s) => eprintln!("error: {:?}: {}", s.code(), s.message()),
            None => eprintln!("error: {e:#}"),
        }
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let cmd = match cli.cmd {
        Cmd::Certs(c) => return certs::run(c),
        Cmd::Snapshot(snapshot::SnapshotCmd::Status { file }) => {
            return snapshot::status(cli.json, &file);
        }
        other => other,
    };
    // Commands that only read and write files need no certificate.
    let offline = matches!(
        &cmd,
        Cmd::Pilpres2019(_) | Cmd::Registry(registry::RegistryCmd::Generate { .. })
    ) || matches!(&cmd, Cmd::Outbox(o) if !o.needs_cluster());
    let tls = match (&cli.certs_dir, cli.insecure) {
        (_, true) => None,
        (None, false) if offline => None,
        (Some(dir), false) => Some(ClientTls::from_dir(dir, cli.user.as_deref())?),
        (None, false) => anyhow::bail!(
            "--certs-dir (REKAP_CERTS_DIR) is required: nodes take TLS connections with a user certificate (see rekapctl certs); --insecure talks plaintext"
        ),
    };
    let endpoints: Vec<String> = cli
        .endpoints
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    if endpoints.is_empty() {
        anyhow::bail!("--endpoints names no node");
    }
    let opts = ClientOptions {
        deadline: Duration::from_secs(cli.timeout),
        tls,
        ..ClientOptions::default()
    };
    let ctx = Ctx {
        client: Client::with_options(endpoints, opts.clone()),
        json: cli.json,
        opts,
    };
    match cmd {
        Cmd::Certs(_) => unreachable!("handled above"),
        Cmd::Cluster(c) => cluster::run(&ctx, c).await,
        Cmd::Registry(c) => registry::run(&ctx, c).await,
        Cmd::Submit(a) => submit::run(&ctx, a).await,
        Cmd::Result(a) => read::result(&ctx, a).await,
        Cmd::Totals(a) => read::totals(&ctx, a).await,
        Cmd::Progress(a) => read::progress(&ctx, a).await,
        Cmd::Missing(a) => read::missing(&ctx, a).await,
        Cmd::Correct(a) => revise::correct(&ctx, a).await,
        Cmd::ClearFlags(a) => revise::clear_flags(&ctx, a).await,
        Cmd::History(a) => revise::history(&ctx, a).await,
        Cmd::Review(a) => revise::review(&ctx, a).await,
        Cmd::Object(a) => revise::object(&ctx, a).await,
        Cmd::Users(c) => users::run(&ctx, c).await,
        Cmd::Snapshot(c) => snapshot::run(&ctx, c).await,
        Cmd::Children(a) => drill::children(&ctx, a).await,
        Cmd::Watch(a) => watch::run(&ctx, a).await,
        Cmd::Janggal(a) => drill::janggal(&ctx, a).await,
        Cmd::Verify => verify::run(&ctx).await,
        Cmd::Health(a) => health::run(&ctx, a).await,
        Cmd::Import(a) => import::run(&ctx, a).await,
        Cmd::Outbox(c) => outbox::run(&ctx, c).await,
        Cmd::Export(a) => export::run(&ctx, a).await,
        Cmd::Pilpres2019(a) => pilpres::run(&ctx, a).await,
        Cmd::Bench(a) => bench::run(&ctx, a).await,
        Cmd::BenchRead(a) => bench_read::run(&ctx, a).await,
    }
}
