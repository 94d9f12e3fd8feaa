//! End-to-end HTTP ingest throughput: a real server in this process (the router, storage and
//! FHE pool that `blindsight-server serve` runs) on a loopback port, and C uploaders (threads,
//! each with its own client-SDK connection) posting pre-built, proven `session` v1 records
//! with the tenant's ingest token, exactly as apps do.
//!
//! ```sh
//! cargo run --release -p blindsight-benches --bin ingest             # 32 records, 1, 2 and 4 uploaders
//! cargo run --release -p blindsight-benches --bin ingest -- --quick  # 8 records, 1 and 2 uploaders
//! BLINDSIGHT_BENCH_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!   cargo run --release -p blindsight-benches --bin ingest           # PostgreSQL too (scratch databases)
//! ```
//!
//! Encryption and proving (~0.8 s per record, the app's cost) happen before anything is timed.
//! Each (backend, C) run gets a fresh database: a tenant is created, the key set registered
//! over HTTP and the tenant's proof verifier loaded into the key cache (as on a server that
//! has been running), then the same records are uploaded. The server verifies every record's
//! proof before storing it, so the ceiling is proof verification spread over the FHE workers
//! (one per core). The per-token rate limit (50 requests/s by default) is lifted so that the
//! bench measures the server, not the limit. Numbers are reported, never asserted.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use blindsight_benches::server::{Backend, Server};
use blindsight_benches::{RunInfo, percentile, session_envelope};
use blindsight_client::api::{Client, Uploaded};
use blindsight_crypto::schemas::session_v1;
use blindsight_crypto::{AppBundle, KeySet, RecordEnvelope, Verifier};
use blindsight_server::http::AppState;
use blindsight_server::metrics::Gauges;
use blindsight_server::{AdminToken, ServerConfig};
use rayon::prelude::*;
use serde::Serialize;
use tokio::runtime::Runtime;

const ADMIN: &str = "admin-token-for-the-ingest-bench-0123456789";
const TENANT: &str = "bench-ingest";
const KEY_ID: &str = "ks-bench-ingest";
const POSTGRES_ENV: &str = "BLINDSIGHT_BENCH_POSTGRES_URL";

struct Args {
    records: usize,
    concurrency: Vec<usize>,
    quick: bool,
    json: Option<PathBuf>,
}

const USAGE: &str = "usage: ingest [--records N] [--concurrency 1,2,4] [--quick] [--json PATH]
  --records N       records uploaded per run (default 32)
  --concurrency L   uploader counts, comma-separated (default 1,2,4)
  --quick           8 records, 1 and 2 uploaders
  --json PATH       also write the table as JSON to PATH
PostgreSQL is measured too when BLINDSIGHT_BENCH_POSTGRES_URL names a database the bench may
create scratch databases from (e.g. postgres://postgres@127.0.0.1:5432/postgres).";

fn args() -> anyhow::Result<Args> {
    let mut out = Args {
        records: 32,
        concurrency: vec![1, 2, 4],
        quick: false,
        json: None,
    };
    let (mut records, mut concurrency) = (None, None);
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => out.quick = true,
            "--records" => {
                let n: usize = it
                    .next()
                    .context("--records needs a number")?
                    .parse()
                    .context("--records needs a number")?;
                if n == 0 {
                    bail!("--records must be at least 1");
                }
                records = Some(n);
            }
            "--concurrency" => {
                let list = it
                    .next()
                    .context("--concurrency needs a list, e.g. 1,2,4")?;
                let cs = list
                    .split(',')
                    .map(|c| c.trim().parse::<usize>())
                    .collect::<Result<Vec<_>, _>>()
                    .context("--concurrency needs a list of numbers, e.g. 1,2,4")?;
                if cs.is_empty() || cs.contains(&0) {
                    bail!("--concurrency needs numbers of at least 1");
                }
                concurrency = Some(cs);
            }
            "--json" => out.json = Some(it.next().context("--json needs a path")?.into()),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}; try --help"),
        }
    }
    if out.quick {
        out.records = 8;
        out.concurrency = vec![1, 2];
    }
    if let Some(n) = records {
        out.records = n;
    }
    if let Some(cs) = concurrency {
        out.concurrency = cs;
    }
    Ok(out)
}

/// One row of the table: one backend, one number of uploaders.
#[derive(Serialize)]
struct Row {
    backend: String,
    uploaders: usize,
    records: usize,
    wall_s: f64,
    records_per_s: f64,
    mb_per_s: f64,
    latency_p50_ms: f64,
    latency_p95_ms: f64,
    latency_max_ms: f64,
    /// Mean server-side proof verification time under this load (the server's own
    /// histogram): above the one-thread time when verifications contend for the cores.
    verify_mean_ms: f64,
    /// `records_per_s` ÷ the report's `verify_ceiling_per_s`.
    of_ceiling: f64,
    /// Key-set registration (PUT of the public bundle), before timing.
    register_s: f64,
}

#[derive(Serialize)]
struct Report {
    #[serde(flatten)]
    run: RunInfo,
    threads: usize,
    fhe_workers: usize,
    quick: bool,
    records: usize,
    record_bytes_mean: f64,
    keygen_s: f64,
    prebuild_s: f64,
    /// One proof verification alone on one thread (median), outside the server.
    verify_single_thread_ms: f64,
    /// FHE workers ÷ the one-thread verification time: the rate if every core did nothing
    /// but verify proofs.
    verify_ceiling_per_s: f64,
    rows: Vec<Row>,
}

fn main() -> anyhow::Result<()> {
    let args = args()?;
    let run = RunInfo::start();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let config = config()?;
    let fhe_workers = config.limits.fhe_workers;
    let mut backends = vec![Backend::Sqlite];
    match std::env::var(POSTGRES_ENV) {
        Ok(url) if !url.is_empty() => backends.push(Backend::Postgres(url)),
        _ => eprintln!("ingest: {POSTGRES_ENV} is unset: PostgreSQL not measured"),
    }

    eprintln!("ingest: generating a key set…");
    let start = Instant::now();
    let (_secret, public) = KeySet::generate_with_id(KEY_ID, |_| {})?.into_parts();
    let keygen = start.elapsed();
    let bundle = public.encode()?;
    let app_bundle = public.app_bundle().clone();
    drop(public);

    eprintln!(
        "ingest: encrypting and proving {} session records on {threads} threads (not timed)…",
        args.records
    );
    let start = Instant::now();
    let records: Vec<RecordEnvelope> = (0..args.records as u32)
        .into_par_iter()
        .map(|i| {
            let transcript = format!(
                "session {i}: a short synthetic transcript of the kind the demo seals. {}",
                "The client talked about sleep, work and the week ahead. ".repeat(8)
            );
            let cohort = if i % 2 == 0 { "north" } else { "south" };
            session_envelope(&app_bundle, TENANT, i, cohort, &transcript)
        })
        .collect::<anyhow::Result<_>>()?;
    let prebuild = start.elapsed();
    let sizes: Vec<usize> = records
        .iter()
        .map(|r| r.encode().map(|b| b.len()))
        .collect::<Result<_, _>>()?;
    let total_bytes: usize = sizes.iter().sum();
    let verify = verify_alone(&app_bundle, &records[0])?;
    let ceiling = fhe_workers as f64 / verify.as_secs_f64();
    eprintln!(
        "ingest: one proof verification on one thread: {:.1} ms, so at most {ceiling:.1} records/s on {fhe_workers} FHE workers",
        verify.as_secs_f64() * 1e3
    );
    let records = Arc::new(records);
    eprintln!(
        "ingest: {} records of {:.1} KB on average, built in {:.1} s",
        records.len(),
        total_bytes as f64 / records.len() as f64 / 1e3,
        prebuild.as_secs_f64()
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .thread_name("bench-server")
        .enable_all()
        .build()
        .context("couldn't start the server's runtime")?;
    let mut rows = Vec::new();
    for backend in &backends {
        for &c in &args.concurrency {
            eprintln!(
                "ingest: {} with {c} uploader(s): fresh database, tenant, key set…",
                backend.name()
            );
            let server = runtime.block_on(Server::start(backend, config.clone(), None))?;
            let outcome = run_once(&runtime, &server, &bundle, &records, c, total_bytes);
            runtime.block_on(server.stop());
            let mut row = outcome?;
            row.backend = backend.name().into();
            row.of_ceiling = row.records_per_s / ceiling;
            eprintln!(
                "ingest: {} C={c}: {:.2} records/s, p50 {:.0} ms",
                row.backend, row.records_per_s, row.latency_p50_ms
            );
            rows.push(row);
        }
    }

    let report = Report {
        run: run.finish(),
        threads,
        fhe_workers,
        quick: args.quick,
        records: records.len(),
        record_bytes_mean: total_bytes as f64 / records.len() as f64,
        keygen_s: keygen.as_secs_f64(),
        prebuild_s: prebuild.as_secs_f64(),
        verify_single_thread_ms: verify.as_secs_f64() * 1e3,
        verify_ceiling_per_s: ceiling,
        rows,
    };
    print_table(&report);
    blindsight_benches::write_json(args.json.as_deref(), &report)?;
    Ok(())
}

/// The server's configuration for the bench: the defaults (`fhe_workers` = cores), an admin
/// token, and the per-token rate limit lifted.
fn config() -> anyhow::Result<ServerConfig> {
    let mut config = ServerConfig::new();
    config.admin_token = Some(AdminToken::new(ADMIN).map_err(anyhow::Error::msg)?);
    config.guard.rate_per_sec = 1e6;
    config.guard.burst = 1e6;
    Ok(config)
}

/// Creates the tenant, registers the key set over HTTP, loads the verifier, then uploads every
/// record with `c` uploaders and measures.
fn run_once(
    runtime: &Runtime,
    server: &Server,
    bundle: &[u8],
    records: &Arc<Vec<RecordEnvelope>>,
    c: usize,
    total_bytes: usize,
) -> anyhow::Result<Row> {
    let admin = Client::new(&server.url, ADMIN).with_max_attempts(1);
    let tenant = admin
        .create_tenant("Ingest bench", Some(TENANT))
        .context("creating the tenant")?;
    let keyholder = Client::new(&server.url, tenant.tokens.keyholder.expose()).with_max_attempts(1);
    let start = Instant::now();
    keyholder
        .register_keyset(KEY_ID, bundle)
        .context("registering the key set")?;
    let register = start.elapsed();
    // A running server has its tenants' verifiers cached: load it as the first upload would.
    runtime
        .block_on(blindsight_server::registry::verifier(
            &server.state,
            TENANT,
            KEY_ID,
        ))
        .map_err(|e| anyhow::anyhow!("loading the verifier: {e}"))?
        .context("the key set was not stored")?;
    let (verified_before, verify_sum_before) = proof_stats(&server.state);

    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let latencies: Vec<Duration> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..c)
            .map(|_| {
                let client =
                    Client::new(&server.url, tenant.tokens.ingest.expose()).with_max_attempts(1);
                let next = Arc::clone(&next);
                s.spawn(move || -> anyhow::Result<Vec<Duration>> {
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        let Some(record) = records.get(i) else {
                            return Ok(out);
                        };
                        let t = Instant::now();
                        match client.upload_record(record) {
                            Ok(Uploaded::Created(_)) => out.push(t.elapsed()),
                            Ok(Uploaded::AlreadyStored) => {
                                bail!("record {i} was already stored: the database is not fresh")
                            }
                            Err(e) => {
                                return Err(anyhow::Error::from(e))
                                    .with_context(|| format!("uploading record {i}"));
                            }
                        }
                    }
                })
            })
            .collect();
        let mut all = Vec::new();
        for h in handles {
            match h.join() {
                Ok(r) => all.extend(r?),
                Err(_) => bail!("an uploader panicked"),
            }
        }
        Ok(all)
    })?;
    let wall = start.elapsed();
    let (verified_after, verify_sum_after) = proof_stats(&server.state);
    let verified = verified_after.saturating_sub(verified_before);
    if verified as usize != records.len() {
        bail!(
            "the server verified {verified} proofs for {} uploads",
            records.len()
        );
    }
    let verify_mean = (verify_sum_after - verify_sum_before) / verified.max(1) as f64;

    let mut ms: Vec<f64> = latencies.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    ms.sort_by(f64::total_cmp);
    Ok(Row {
        backend: String::new(),
        uploaders: c,
        records: records.len(),
        wall_s: wall.as_secs_f64(),
        records_per_s: records.len() as f64 / wall.as_secs_f64(),
        mb_per_s: total_bytes as f64 / 1e6 / wall.as_secs_f64(),
        latency_p50_ms: percentile(&ms, 50.0),
        latency_p95_ms: percentile(&ms, 95.0),
        latency_max_ms: ms.last().copied().unwrap_or(0.0),
        verify_mean_ms: verify_mean * 1e3,
        of_ceiling: 0.0,
        register_s: register.as_secs_f64(),
    })
}

/// The median time of one proof verification (what the server does per upload) on a
/// one-thread pool, so that it is the work one core does per record.
fn verify_alone(app: &AppBundle, record: &RecordEnvelope) -> anyhow::Result<Duration> {
    let verifier = Verifier::new(app.clone());
    let schema = session_v1();
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    pool.install(|| {
        let mut times = Vec::new();
        for i in 0..6 {
            let t = Instant::now();
            verifier.verify_record(
                &record.proven_list,
                &schema,
                &record.metadata,
                record.transcript_digest().as_ref(),
            )?;
            if i > 0 {
                times.push(t.elapsed());
            }
        }
        times.sort();
        Ok(times[times.len() / 2])
    })
}

/// Valid proofs verified so far and the seconds they took, from the server's metrics.
fn proof_stats(state: &AppState) -> (u64, f64) {
    let text = state.metrics().render(Gauges::default(), &[]);
    let value = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (
        value("blindsight_proof_verification_seconds_count{outcome=\"valid\"}") as u64,
        value("blindsight_proof_verification_seconds_sum{outcome=\"valid\"}"),
    )
}

fn print_table(r: &Report) {
    println!(
        "\n{}; FHE workers: {}; {} records of {:.1} KB (session v1, proven, sealed transcript)\n",
        r.run.header(),
        r.fhe_workers,
        r.records,
        r.record_bytes_mean / 1e3
    );
    println!(
        "| backend | uploaders | records | wall | records/s | MB/s | p50 latency | p95 latency | server verify (mean) | of ceiling |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for row in &r.rows {
        println!(
            "| {} | {} | {} | {:.2} s | {:.2} | {:.3} | {:.0} ms | {:.0} ms | {:.0} ms | {:.0}% |",
            row.backend,
            row.uploaders,
            row.records,
            row.wall_s,
            row.records_per_s,
            row.mb_per_s,
            row.latency_p50_ms,
            row.latency_p95_ms,
            row.verify_mean_ms,
            row.of_ceiling * 1e2,
        );
    }
    println!(
        "\nThe throughput ceiling is proof verification across cores: the server verifies every \
         record's zero-knowledge proof before storing it, on its {} FHE workers (one per core). \
         One verification takes {:.1} ms on one thread here, so at most {:.1} records/s \
         (\"of ceiling\"); \"server verify\" is the mean under this load, longer when \
         verifications share the cores. Uploaders, HTTP and storage share the same cores. Not \
         timed: key generation {:.1} s, encrypt + prove of the records {:.1} s (the app's cost), \
         key-set registration {} per run.",
        r.fhe_workers,
        r.verify_single_thread_ms,
        r.verify_ceiling_per_s,
        r.keygen_s,
        r.prebuild_s,
        r.rows
            .iter()
            .map(|row| format!("{:.1} s", row.register_s))
            .collect::<Vec<_>>()
            .join(", ")
    );
}
