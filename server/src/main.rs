//! The `blindsight-server` binary.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use blindsight_server::audit::{AUDIT_KEY_FILE, SigningKey};
use blindsight_server::worker::WorkerConfig;
use blindsight_server::{AdminToken, Launch, Server, ServerConfig};
use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(name = "blindsight-server", version, about = "Blindsight server")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where the data lives.
#[derive(Args, Clone)]
struct Storage {
    /// PostgreSQL URL (`postgres://user@host/db`). Unset: the embedded SQLite database under
    /// the data directory.
    #[arg(long, env = "BLINDSIGHT_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Directory for the SQLite database and the audit signing key.
    #[arg(long, env = "BLINDSIGHT_DATA_DIR", default_value = "blindsight-data")]
    data_dir: PathBuf,
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "BLINDSIGHT_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    #[command(flatten)]
    storage: Storage,
    /// Requests handled at once before load shedding (503 + Retry-After).
    #[arg(long, env = "BLINDSIGHT_MAX_IN_FLIGHT", default_value_t = 256)]
    max_in_flight: usize,
    /// Seconds a request may take.
    #[arg(long, env = "BLINDSIGHT_REQUEST_TIMEOUT", default_value_t = 120)]
    request_timeout: u64,
    /// Connections held at once (at most the open-files limit less a reserve); at the cap a
    /// new connection replaces the oldest one that never sent a complete request.
    #[arg(long, env = "BLINDSIGHT_MAX_CONNECTIONS", default_value_t = 10_000)]
    max_connections: usize,
    /// Seconds a client has to send a request's headers, and an idle connection is kept
    /// waiting for its next request.
    #[arg(long, env = "BLINDSIGHT_HEADER_TIMEOUT", default_value_t = 30)]
    header_timeout: u64,
    /// Seconds requests in flight get to finish after SIGTERM before their connections are
    /// cut (a stalled upload does not hold shutdown).
    #[arg(long, env = "BLINDSIGHT_SHUTDOWN_GRACE", default_value_t = 10)]
    shutdown_grace: u64,
    /// FHE and proof-verification jobs run at once (default: one per CPU).
    #[arg(long, env = "BLINDSIGHT_FHE_WORKERS")]
    fhe_workers: Option<usize>,
    /// Memory bound of the decoded-key cache, in MiB.
    #[arg(long, env = "BLINDSIGHT_KEY_CACHE_MIB", default_value_t = 4096)]
    key_cache_mib: u64,
    /// Sustained requests per second per token (burst: 4x).
    #[arg(long, env = "BLINDSIGHT_RATE_PER_TOKEN", default_value_t = 50.0)]
    rate_per_token: f64,
    /// Failed authentications from one address (within 5 minutes) before a 15-minute lockout.
    #[arg(long, env = "BLINDSIGHT_LOCKOUT_AFTER", default_value_t = 10)]
    lockout_after: u32,
    /// Reverse proxies whose X-Forwarded-For names the client (addresses or CIDR networks,
    /// comma-separated or repeated): lockout then counts the client's address, not the
    /// proxy's. Unset: the connecting address, always.
    #[arg(
        long = "trusted-proxy",
        env = "BLINDSIGHT_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    trusted_proxies: Vec<String>,
    /// Smallest cohort an aggregate may run over, for tenants created without their own (≥ 2).
    #[arg(long, env = "BLINDSIGHT_MIN_COHORT", default_value_t = 10)]
    min_cohort: u32,
    /// Job workers to run beside the API (0: the API only; run `blindsight-server worker`
    /// processes instead).
    #[arg(long, env = "BLINDSIGHT_WORKERS", default_value_t = 1)]
    workers: usize,
    /// Records per task: a job's FHE work is cut into tasks of this many records, which any
    /// worker process sharing the database may take (0: every job in one piece).
    #[arg(long, env = "BLINDSIGHT_TASK_RECORDS", default_value_t = blindsight_server::config::DEFAULT_TASK_RECORDS)]
    task_records: u64,
    #[command(flatten)]
    lease: LeaseArgs,
    #[command(flatten)]
    audit: AuditKeyArgs,
}

/// The audit signing key.
#[derive(Args, Clone)]
struct AuditKeyArgs {
    /// The audit signing key (signs chain heads and job receipts): an Ed25519 private key in
    /// PKCS#8 DER form, owner-only (mode 0600). Unset: `<data dir>/audit-signing-key.p8`,
    /// created on first start. Every `serve` and `worker` process on one database should use
    /// the same key.
    #[arg(long, env = "BLINDSIGHT_AUDIT_KEY_FILE")]
    audit_key_file: Option<PathBuf>,
}

#[derive(Args, Clone)]
struct LeaseArgs {
    /// Seconds a job lease lasts without a heartbeat; a worker that dies loses its job to
    /// another after this long.
    #[arg(long, env = "BLINDSIGHT_JOB_LEASE", default_value_t = 60)]
    job_lease: u64,
    /// Threads each worker computes a task on (default: every core). With several worker
    /// processes on one machine, give each its share, e.g. `--threads 4` for four processes
    /// on 16 cores.
    #[arg(long, env = "BLINDSIGHT_THREADS")]
    threads: Option<usize>,
}

impl LeaseArgs {
    fn config(&self) -> WorkerConfig {
        let defaults = WorkerConfig::default();
        WorkerConfig {
            lease: std::time::Duration::from_secs(self.job_lease.max(3)),
            threads: self.threads.unwrap_or(defaults.threads).max(1),
            ..defaults
        }
    }
}

#[derive(Args)]
struct WorkerArgs {
    #[command(flatten)]
    storage: Storage,
    /// Workers in this process (each runs one task at a time, on `--threads` threads).
    #[arg(long, env = "BLINDSIGHT_WORKERS", default_value_t = 1)]
    workers: usize,
    /// Memory bound of the decoded-key cache, in MiB.
    #[arg(long, env = "BLINDSIGHT_KEY_CACHE_MIB", default_value_t = 4096)]
    key_cache_mib: u64,
    #[command(flatten)]
    lease: LeaseArgs,
    #[command(flatten)]
    audit: AuditKeyArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API until SIGTERM or Ctrl-C (in-flight requests finish first). Applies
    /// migrations on start. The admin token comes from BLINDSIGHT_ADMIN_TOKEN.
    Serve(ServeArgs),
    /// Run job workers only (no HTTP API) until SIGTERM or Ctrl-C: any number of these can
    /// share one PostgreSQL database with `serve` processes.
    Worker(WorkerArgs),
    /// Apply the database migrations and exit.
    Migrate {
        #[command(flatten)]
        storage: Storage,
    },
    /// Administrative commands.
    #[command(subcommand)]
    Admin(Admin),
    /// The audit log's freshness: the heads kept beside the signing key.
    #[command(subcommand)]
    Audit(AuditAdmin),
}

#[derive(Subcommand)]
enum AuditAdmin {
    /// Check every chain against the head the signing key kept for it; exits non-zero when
    /// one no longer extends it (entries removed, rewritten, or an older backup restored).
    Check(AuditAdminArgs),
    /// Accept the database's chains as they are now: for each chain that no longer extends
    /// its kept head, record an `audit.head_rewound` entry (the kept head, what was found, the
    /// reason) in that chain, sign it and keep it. Serving processes pick it up on their own.
    Resolve {
        #[command(flatten)]
        args: AuditAdminArgs,
        /// Why the chains are accepted (e.g. "restored the 02:00 backup after disk loss");
        /// recorded in each entry, at most 500 characters.
        #[arg(long)]
        reason: String,
    },
}

#[derive(Args)]
struct AuditAdminArgs {
    #[command(flatten)]
    storage: Storage,
    #[command(flatten)]
    audit: AuditKeyArgs,
}

#[derive(Subcommand)]
enum Admin {
    /// Check a public bundle file as the server would admit it, and print its manifest.
    CheckBundle {
        /// The `<key-id>.public` file written by `blindsight keygen`.
        path: PathBuf,
    },
}

/// Resolves on SIGTERM or Ctrl-C.
async fn signalled() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

fn server_config(args: &ServeArgs) -> anyhow::Result<ServerConfig> {
    let mut config = ServerConfig::new();
    match std::env::var("BLINDSIGHT_ADMIN_TOKEN") {
        Ok(t) => config.admin_token = Some(AdminToken::new(&t).map_err(anyhow::Error::msg)?),
        Err(_) => tracing::warn!(
            "BLINDSIGHT_ADMIN_TOKEN is not set: tenants cannot be created until it is"
        ),
    }
    anyhow::ensure!(
        args.min_cohort >= 2,
        "--min-cohort must be at least 2: a cohort of one is one person's data"
    );
    anyhow::ensure!(
        args.rate_per_token > 0.0,
        "--rate-per-token must be positive"
    );
    config.default_min_cohort = args.min_cohort;
    config.task_records = args.task_records;
    config.limits.max_in_flight = args.max_in_flight.max(1);
    config.limits.request_timeout = std::time::Duration::from_secs(args.request_timeout.max(1));
    config.limits.max_connections = args.max_connections.max(1);
    config.limits.header_timeout = std::time::Duration::from_secs(args.header_timeout.max(1));
    config.limits.shutdown_grace = std::time::Duration::from_secs(args.shutdown_grace);
    if let Some(n) = args.fhe_workers {
        config.limits.fhe_workers = n.max(1);
    }
    config.limits.key_cache_bytes = args.key_cache_mib << 20;
    config.guard.rate_per_sec = args.rate_per_token;
    config.guard.burst = args.rate_per_token * 4.0;
    config.guard.max_failures = args.lockout_after.max(1);
    config.guard.trusted_proxies =
        blindsight_server::proxy::TrustedProxies::parse(&args.trusted_proxies)
            .map_err(anyhow::Error::msg)?;
    Ok(config)
}

/// Loads the operator's audit signing key, or the one under the data directory (created on
/// first start). Only its public id is ever logged.
fn audit_key(args: &AuditKeyArgs, storage: &Storage) -> anyhow::Result<SigningKey> {
    let (key, path, created) = match &args.audit_key_file {
        Some(path) => (SigningKey::load(path)?, path.clone(), false),
        None => {
            let path = storage.data_dir.join(AUDIT_KEY_FILE);
            let (key, created) = SigningKey::load_or_create(&path)?;
            (key, path, created)
        }
    };
    tracing::info!(key_id = key.key_id(), path = %path.display(), created, "audit signing key ready");
    Ok(key)
}

/// The existing audit signing key, for the `audit` commands: never created.
fn existing_audit_key(args: &AuditKeyArgs, storage: &Storage) -> anyhow::Result<SigningKey> {
    let path = args
        .audit_key_file
        .clone()
        .unwrap_or_else(|| storage.data_dir.join(AUDIT_KEY_FILE));
    anyhow::ensure!(
        path.exists(),
        "no audit signing key at {}: pass the one `serve` uses with --audit-key-file (or --data-dir)",
        path.display()
    );
    Ok(SigningKey::load(&path)?)
}

/// `audit check` and `audit resolve`.
async fn audit_admin(command: AuditAdmin) -> anyhow::Result<()> {
    let (args, reason) = match &command {
        AuditAdmin::Check(args) => (args, None),
        AuditAdmin::Resolve { args, reason } => (args, Some(reason.trim())),
    };
    if let Some(reason) = reason {
        anyhow::ensure!(
            !reason.is_empty() && reason.chars().count() <= 500,
            "--reason must say why the chains are accepted, in at most 500 characters"
        );
    }
    let key = existing_audit_key(&args.audit, &args.storage)?;
    let db = blindsight_server::open_and_migrate(
        args.storage.database_url.as_deref(),
        &args.storage.data_dir,
    )
    .await
    .context("couldn't open the database")?;
    let log = blindsight_server::store::AuditLog::new(db.clone(), key.clone());
    let kept = key.witness().all().len();
    let outcome = match reason {
        None => {
            let found = blindsight_server::store::audit::check_kept_heads(&log).await?;
            for d in &found {
                println!("halted: {d}");
            }
            if found.is_empty() {
                println!("every chain extends the head kept for it ({kept} kept)");
                Ok(())
            } else {
                Err(anyhow::anyhow!(
                    "{} chain(s) no longer extend their kept heads; find out why (the database's history, backups restored), then run `blindsight-server audit resolve --reason \"…\"`",
                    found.len()
                ))
            }
        }
        Some(reason) => {
            let resolved = blindsight_server::store::audit::resolve(&log, reason).await?;
            for (d, entry) in &resolved {
                println!(
                    "resolved ({}): {} — recorded as entry {} of the chain",
                    d.cause(),
                    d,
                    entry.seq
                );
            }
            if resolved.is_empty() {
                println!(
                    "every chain extends the head kept for it ({kept} kept); nothing to resolve"
                );
            }
            Ok(())
        }
    };
    db.close().await;
    outcome
}

/// Opens and migrates the database with the audit signing key, recording the key in the
/// server-wide chain if it is new.
async fn open(launch: Launch) -> anyhow::Result<Server> {
    let server = Server::open(launch)
        .await
        .context("couldn't start the server")?;
    let db = server.state().db();
    tracing::info!(backend = ?db.backend(), version = db.known_version(), "database ready");
    if server.new_signing_key {
        tracing::info!("new audit signing key recorded in the server-wide audit chain");
    }
    Ok(server)
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = server_config(&args)?;
    let build = blindsight_server::compute::build_id();
    let proxies = args
        .trusted_proxies
        .iter()
        .map(|p| p.trim())
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(",");
    let settings = blindsight_server::audit::Event::ServerConfig {
        min_cohort: config.default_min_cohort,
        lockout_after: config.guard.max_failures,
        rate_per_token_milli: (config.guard.rate_per_sec * 1000.0).round() as u64,
        max_in_flight: config.limits.max_in_flight,
        request_timeout_s: config.limits.request_timeout.as_secs(),
        admin_enabled: config.admin_token.is_some(),
        trusted_proxies: &proxies,
        max_connections: config.limits.max_connections,
        header_timeout_s: config.limits.header_timeout.as_secs(),
        build: &build,
    };
    let server = open(Launch {
        database_url: args.storage.database_url.clone(),
        data_dir: args.storage.data_dir.clone(),
        audit_key: audit_key(&args.audit, &args.storage)?,
        config: config.clone(),
        workers: args.workers,
        worker: args.lease.config(),
    })
    .await?;
    match blindsight_server::store::audit::record_config(server.state().audit_log(), &settings)
        .await
    {
        Ok(true) => {
            tracing::info!("configuration change recorded in the server-wide audit chain")
        }
        Ok(false) => {}
        // Logged and reported by /readyz; the server starts so the operator can see it.
        Err(blindsight_server::store::StoreError::Halted(_)) => {}
        Err(e) => {
            return Err(
                anyhow::Error::new(e).context("couldn't record the configuration in the audit log")
            );
        }
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("couldn't listen on {}", args.listen))?;
    let bound = listener.local_addr().unwrap_or(args.listen);
    tracing::info!(listen = %bound, "serving");
    server
        .serve(Some(listener), async {
            signalled().await;
            tracing::info!(
                "shutdown requested; finishing in-flight requests, giving running jobs back to the queue"
            );
        })
        .await?;
    tracing::info!("stopped");
    Ok(())
}

async fn work(args: WorkerArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.workers >= 1, "--workers must be at least 1");
    let mut config = ServerConfig::new();
    config.limits.key_cache_bytes = args.key_cache_mib << 20;
    // Workers sign job receipts: with the same key as the API processes.
    let server = open(Launch {
        database_url: args.storage.database_url.clone(),
        data_dir: args.storage.data_dir.clone(),
        audit_key: audit_key(&args.audit, &args.storage)?,
        config,
        workers: args.workers,
        worker: args.lease.config(),
    })
    .await?;
    server
        .serve(None, async {
            signalled().await;
            tracing::info!("shutdown requested; giving running jobs back to the queue");
        })
        .await?;
    Ok(())
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("couldn't start the async runtime")
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => runtime()?.block_on(serve(args)),
        Command::Worker(args) => runtime()?.block_on(work(args)),
        Command::Migrate { storage } => runtime()?.block_on(async {
            let db = blindsight_server::open_and_migrate(
                storage.database_url.as_deref(),
                &storage.data_dir,
            )
            .await
            .context("migration failed")?;
            println!(
                "database ({:?}) is at schema version {}",
                db.backend(),
                db.applied_version().await?
            );
            db.close().await;
            Ok(())
        }),
        Command::Audit(command) => runtime()?.block_on(audit_admin(command)),
        Command::Admin(Admin::CheckBundle { path }) => {
            let bytes = std::fs::read(&path)
                .with_context(|| format!("couldn't read public bundle {}", path.display()))?;
            let manifest = blindsight_server::admit_public_bundle(&bytes)
                .with_context(|| format!("{} was refused", path.display()))?;
            println!("{}", serde_json::to_string_pretty(&manifest)?);
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BLINDSIGHT_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
