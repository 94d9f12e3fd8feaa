//! Scale-out: one risk-score job (crisis v1) over the same proven records, computed by 1, 2
//! and 4 `worker` processes sharing one PostgreSQL database, each on one thread, as tasks of
//! a few records and a merge. Reports records/s, the speed-up over one process, and how far
//! each run is from the FHE work alone (the same job computed in this process on one thread,
//! in one piece, divided over the cores the workers can use).
//!
//! ```sh
//! BLINDSIGHT_BENCH_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!   cargo run --release -p blindsight-benches --bin scale            # 32 records, tasks of 4
//! BLINDSIGHT_BENCH_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!   cargo run --release -p blindsight-benches --bin scale -- --quick # 6 records, tasks of 1
//! ```
//!
//! Each worker is this binary run again as a worker process (`--as-worker`: one
//! `blindsight-server worker` with `--threads 1`, ending when its standard input closes). Each
//! run gets a fresh scratch database, tenant and key set; the records are uploaded before the
//! job is created, and timing runs from the job's creation to its success. Every run's scores
//! are decrypted and compared with the clear computation. Numbers are reported, never
//! asserted.
#![forbid(unsafe_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicI64;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use blindsight_benches::server::{Backend, Server};
use blindsight_benches::{RunInfo, session_envelope, session_record};
use blindsight_client::api::Client;
use blindsight_crypto::compute::{JobFunction, JobInput, JobOutput, JobWork, crisis_v1, run_job};
use blindsight_crypto::schemas::session_v1;
use blindsight_crypto::{ComputeKey, KeySet, RecordEnvelope, Verifier};
use blindsight_proto::{JobRequest, ModelRef, Selection};
use blindsight_server::audit::SigningKey;
use blindsight_server::worker::WorkerConfig;
use blindsight_server::{AdminToken, Launch, ServerConfig};
use rayon::prelude::*;
use serde::Serialize;

const ADMIN: &str = "admin-token-for-the-scale-bench-0123456789";
const TENANT: &str = "bench-scale";
const KEY_ID: &str = "ks-bench-scale";
const POSTGRES_ENV: &str = "BLINDSIGHT_BENCH_POSTGRES_URL";

struct Args {
    records: usize,
    task_records: u64,
    workers: Vec<usize>,
    quick: bool,
    json: Option<PathBuf>,
}

const USAGE: &str =
    "usage: scale [--records N] [--task-records T] [--workers 1,2,4] [--quick] [--json PATH]
  --records N        records the job scores (default 32)
  --task-records T   records per task (default 4)
  --workers L        worker process counts, comma-separated (default 1,2,4)
  --quick            6 records in tasks of 1, 1, 2 and 4 workers
  --json PATH        also write the table as JSON to PATH
Needs BLINDSIGHT_BENCH_POSTGRES_URL: a PostgreSQL URL the bench may create scratch databases
from (e.g. postgres://postgres@127.0.0.1:5432/postgres).";

fn number<T: std::str::FromStr>(
    it: &mut impl Iterator<Item = String>,
    flag: &str,
) -> anyhow::Result<T> {
    it.next()
        .with_context(|| format!("{flag} needs a number"))?
        .parse()
        .map_err(|_| anyhow::anyhow!("{flag} needs a number"))
}

fn args() -> anyhow::Result<Args> {
    let mut out = Args {
        records: 32,
        task_records: 4,
        workers: vec![1, 2, 4],
        quick: false,
        json: None,
    };
    let (mut records, mut task_records, mut workers) = (None, None, None);
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => out.quick = true,
            "--records" => records = Some(number::<usize>(&mut it, "--records")?),
            "--task-records" => task_records = Some(number::<u64>(&mut it, "--task-records")?),
            "--workers" => {
                let list = it.next().context("--workers needs a list, e.g. 1,2,4")?;
                let ws = list
                    .split(',')
                    .map(|c| c.trim().parse::<usize>())
                    .collect::<Result<Vec<_>, _>>()
                    .context("--workers needs a list of numbers, e.g. 1,2,4")?;
                if ws.is_empty() || ws.contains(&0) {
                    bail!("--workers needs numbers of at least 1");
                }
                workers = Some(ws);
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
        out.records = 6;
        out.task_records = 1;
    }
    out.records = records.unwrap_or(out.records);
    out.task_records = task_records.unwrap_or(out.task_records);
    out.workers = workers.unwrap_or(out.workers);
    if out.records < 2 || out.task_records == 0 {
        bail!("--records must be at least 2 and --task-records at least 1");
    }
    Ok(out)
}

/// One run: one number of worker processes.
#[derive(Serialize)]
struct Row {
    workers: usize,
    records: usize,
    tasks: usize,
    wall_s: f64,
    records_per_s: f64,
    /// One process's wall time ÷ this one's.
    speedup: f64,
    /// The FHE work alone divided over the cores these workers can use (`min(workers,
    /// cores)`), ÷ this run's wall time: 100% is no time outside FHE work.
    efficiency: f64,
    /// Tasks taken over after a lease expired (0 in a clean run).
    takeovers: i64,
    /// Scores that did not decrypt to the clear computation (0 expected).
    mismatches: usize,
    /// The slowest worker process's loading of the tenant's server key and verifier, before
    /// the job (not in `wall_s`: a running worker holds them in its key cache).
    key_load_s: f64,
}

#[derive(Serialize)]
struct Report {
    #[serde(flatten)]
    run: RunInfo,
    cores: usize,
    quick: bool,
    records: usize,
    task_records: u64,
    /// The job computed in this process on one thread, in one piece: its FHE work.
    fhe_one_thread_s: f64,
    rows: Vec<Row>,
}

fn main() -> anyhow::Result<()> {
    let mut raw = std::env::args().skip(1);
    if raw.next().as_deref() == Some("--as-worker") {
        let url = raw.next().context("--as-worker needs a database URL")?;
        let key = raw.next().context("--as-worker needs an audit key file")?;
        return worker_process(&url, Path::new(&key));
    }
    let args = args()?;
    let Some(url) = std::env::var(POSTGRES_ENV).ok().filter(|u| !u.is_empty()) else {
        bail!(
            "scale needs PostgreSQL, which worker processes share: set {POSTGRES_ENV} (see --help)"
        );
    };
    let run = RunInfo::start();
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());

    eprintln!("scale: generating a key set…");
    let (secret, public) = KeySet::generate_with_id(KEY_ID, |_| {})?.into_parts();
    let bundle = public.encode()?;
    let app = public.app_bundle().clone();
    let compute = ComputeKey::from_compressed(&public.server_key()?)?;
    drop(public);
    eprintln!(
        "scale: encrypting and proving {} records (not timed)…",
        args.records
    );
    let schema = session_v1();
    // Proving nests rayon work: a record's proof can be stolen onto a thread already deep in
    // another's, so the pool's threads get stacks large enough for a few at once.
    let pool = rayon::ThreadPoolBuilder::new()
        .stack_size(64 << 20)
        .build()?;
    let records: Vec<RecordEnvelope> = pool.install(|| {
        (0..args.records as u32)
            .into_par_iter()
            .map(|i| session_envelope(&app, TENANT, i, "north", &format!("session {i}")))
            .collect::<anyhow::Result<_>>()
    })?;

    eprintln!("scale: the job's FHE work alone, in this process on one thread…");
    let model = crisis_v1();
    let inputs: Vec<JobInput<'_>> = records
        .iter()
        .map(|r| JobInput {
            metadata: &r.metadata,
            proven_list: &r.proven_list,
            transcript: r.transcript_digest(),
        })
        .collect();
    let verifier = Verifier::new(app.clone());
    let start = Instant::now();
    run_job(
        &compute,
        &verifier,
        &schema,
        JobWork {
            key_id: KEY_ID,
            function: JobFunction::RiskScore(&model),
            records: &inputs,
            shards: None,
            noise_seed: None,
            task_records: None,
        },
        1,
        &AtomicI64::new(0),
    )?;
    let fhe = start.elapsed().as_secs_f64();
    eprintln!("scale: {fhe:.1} s");

    let dir = tempfile::tempdir()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("couldn't start the server's runtime")?;
    let compiled = model.compile(&schema)?;
    let expected: Vec<u64> = (0..args.records as u32)
        .flat_map(|i| {
            let (score, tier) = compiled.evaluate_clear(&session_record(i));
            [score, tier as u64]
        })
        .collect();
    let mut rows: Vec<Row> = Vec::new();
    for &w in &args.workers {
        // Each run has a fresh database, so a fresh key: the heads a key keeps belong to one
        // database, and the last run's would halt this one's chains.
        let key_file = dir.path().join(format!("audit-{w}.p8"));
        let (audit_key, _) = SigningKey::load_or_create(&key_file)?;
        let mut config = ServerConfig::new();
        config.admin_token = Some(AdminToken::new(ADMIN).map_err(anyhow::Error::msg)?);
        config.guard.rate_per_sec = 1e6;
        config.guard.burst = 1e6;
        config.task_records = args.task_records;
        let server = runtime.block_on(Server::start(
            &Backend::Postgres(url.clone()),
            config,
            Some((0, WorkerConfig::default(), audit_key.clone())),
        ))?;
        let outcome = run_once(
            &runtime,
            &server,
            (&bundle, &secret),
            &records,
            w,
            &key_file,
        );
        runtime.block_on(server.stop());
        let (wall, tasks, takeovers, values, key_load) = outcome?;
        let mismatches = values.iter().zip(&expected).filter(|(a, b)| a != b).count()
            + expected.len().abs_diff(values.len());
        let one = rows.first().map_or(wall, |r| r.wall_s);
        let row = Row {
            workers: w,
            records: records.len(),
            tasks,
            wall_s: wall,
            records_per_s: records.len() as f64 / wall,
            speedup: one / wall,
            efficiency: fhe / w.min(cores) as f64 / wall,
            takeovers,
            mismatches,
            key_load_s: key_load,
        };
        eprintln!(
            "scale: {w} worker(s): {:.1} s, {:.3} records/s, {:.2}× one, {:.0}% of the FHE work's pace",
            row.wall_s,
            row.records_per_s,
            row.speedup,
            row.efficiency * 1e2
        );
        rows.push(row);
    }
    let report = Report {
        run: run.finish(),
        cores,
        quick: args.quick,
        records: records.len(),
        task_records: args.task_records,
        fhe_one_thread_s: fhe,
        rows,
    };
    print_table(&report);
    blindsight_benches::write_json(args.json.as_deref(), &report)?;
    Ok(())
}

/// Uploads the records, starts `w` worker processes, runs the job and decrypts its scores:
/// (wall seconds, tasks, takeovers, decrypted values, the slowest worker's key load).
fn run_once(
    runtime: &tokio::runtime::Runtime,
    server: &Server,
    (bundle, secret): (&[u8], &blindsight_crypto::SecretKeys),
    records: &[RecordEnvelope],
    w: usize,
    key_file: &Path,
) -> anyhow::Result<(f64, usize, i64, Vec<u64>, f64)> {
    let admin = Client::new(&server.url, ADMIN).with_max_attempts(1);
    let tenant = admin.create_tenant("Scale bench", Some(TENANT))?;
    let keyholder = Client::new(&server.url, tenant.tokens.keyholder.expose()).with_max_attempts(1);
    keyholder.register_keyset(KEY_ID, bundle)?;
    let ingest = Client::new(&server.url, tenant.tokens.ingest.expose()).with_max_attempts(1);
    for r in records {
        ingest.upload_record(r)?;
    }
    let url = server
        .database_url
        .clone()
        .context("the server has no PostgreSQL database")?;
    let mut children: Vec<Child> = (0..w)
        .map(|_| {
            Command::new(std::env::current_exe()?)
                .arg("--as-worker")
                .arg(&url)
                .arg(key_file)
                .env("BLINDSIGHT_LOG", "warn")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
        })
        .collect::<Result<_, _>>()
        .context("couldn't start a worker process")?;
    let mut key_load = 0f64;
    for child in &mut children {
        key_load = key_load.max(ready(child)?);
    }
    let ids: Vec<String> = records
        .iter()
        .map(|r| r.metadata.record_id.clone())
        .collect();
    let request = JobRequest::risk_score(
        KEY_ID,
        ModelRef::crisis_v1(),
        Selection {
            record_ids: Some(ids),
            ..Selection::default()
        },
    );
    let outcome = (|| -> anyhow::Result<(f64, usize, i64, Vec<u64>, f64)> {
        let start = Instant::now();
        let created = keyholder.create_job(&request)?;
        let job =
            keyholder.wait_for_job(&created.job_id, |_| {}, Duration::from_secs(24 * 3600))?;
        let wall = start.elapsed().as_secs_f64();
        if job.status.name() != "succeeded" {
            bail!("the job failed: {:?}", job.error);
        }
        let tasks = job.tasks.map_or(1, |t| t.total as usize);
        let takeovers: i64 = runtime.block_on(
            sqlx::query_scalar("SELECT COUNT(*) FROM job_tasks WHERE attempts > 1")
                .fetch_one(server.state.db().pool()),
        )?;
        let bytes = keyholder.job_result(&created.job_id)?;
        let out = JobOutput::decode(&bytes, KEY_ID)?;
        Ok((
            wall,
            tasks,
            takeovers,
            out.decrypt(secret.client_key())?,
            key_load,
        ))
    })();
    for child in &mut children {
        // A worker ends when its standard input closes.
        drop(child.stdin.take());
        let _ = child.wait();
    }
    outcome
}

/// `--as-worker`: one job worker on one thread against `url`, signing receipts with the key
/// in `key_file`, until standard input closes. It loads the bench tenant's server key and
/// verifier first, as a worker that has been running holds them in its key cache, and then
/// prints `ready <seconds that took>`.
fn worker_process(url: &str, key_file: &Path) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let launch = Launch {
        database_url: Some(url.to_owned()),
        data_dir: dir.path().to_owned(),
        audit_key: SigningKey::load(key_file)?,
        config: ServerConfig::new(),
        workers: 1,
        worker: WorkerConfig {
            threads: 1,
            ..WorkerConfig::default()
        },
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let server = blindsight_server::Server::open(launch).await?;
        let start = Instant::now();
        let state = server.state().clone();
        let loaded = blindsight_server::registry::server_key(&state, TENANT, KEY_ID)
            .await
            .map_err(|e| anyhow::anyhow!("loading the server key: {e}"))?
            .is_some()
            && blindsight_server::registry::verifier(&state, TENANT, KEY_ID)
                .await
                .map_err(|e| anyhow::anyhow!("loading the verifier: {e}"))?
                .is_some();
        if !loaded {
            bail!("the bench's key set is not registered");
        }
        println!("ready {:.3}", start.elapsed().as_secs_f64());
        let closed = async {
            let _ = tokio::task::spawn_blocking(|| {
                let mut sink = Vec::new();
                let _ = std::io::stdin().read_to_end(&mut sink);
            })
            .await;
        };
        server.serve(None, closed).await?;
        Ok(())
    })
}

/// Waits for a worker process's `ready` line: the seconds it took to load the key.
fn ready(child: &mut Child) -> anyhow::Result<f64> {
    use std::io::BufRead;
    let stdout = child
        .stdout
        .take()
        .context("the worker's output is not piped")?;
    let mut line = String::new();
    std::io::BufReader::new(stdout).read_line(&mut line)?;
    line.trim()
        .strip_prefix("ready ")
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("the worker process did not start: {line:?}"))
}

fn print_table(r: &Report) {
    println!(
        "\n{}; {} cores; one risk-score job (crisis v1) over {} records in tasks of {}; the job's FHE work alone on one thread: {:.1} s\n",
        r.run.header(),
        r.cores,
        r.records,
        r.task_records,
        r.fhe_one_thread_s
    );
    println!(
        "| worker processes (1 thread each) | tasks | wall | records/s | speed-up over 1 | of the FHE work's pace | takeovers | mismatches | key load (before) |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for row in &r.rows {
        println!(
            "| {} | {} | {:.1} s | {:.3} | {:.2}× | {:.1}% | {} | {} | {:.1} s |",
            row.workers,
            row.tasks,
            row.wall_s,
            row.records_per_s,
            row.speedup,
            row.efficiency * 1e2,
            row.takeovers,
            row.mismatches,
            row.key_load_s
        );
    }
    println!(
        "\n\"Of the FHE work's pace\": the job's FHE work alone (one thread, one piece, in this \
         process) divided over min(workers, cores), against the run's wall time; what is left is \
         leasing, loading the records, writing partial results, the merge, polling, and on more \
         workers than cores, contention. Each worker process loads the tenant's server key and \
         verifier before the job, as a running worker has them cached (\"key load\", the slowest \
         process, not in the wall time)."
    );
}
