//! The additive lane at cohort scale, end to end on SQLite: a real server in this process
//! (migrated SQLite database in a temporary directory, one job worker), N stored `session` v1
//! records, and one aggregate job with the demo's seven aggregates created and waited for over
//! HTTP exactly as a key holder does. The job reads every record from the database, adds the
//! lane lists, writes the output and signs its receipt; the key holder's client then decrypts
//! the results and the bench checks them against the clear computation.
//!
//! ```sh
//! cargo run --release -p blindsight-benches --bin lane                        # 1,000, 10,000, 100,000 records
//! cargo run --release -p blindsight-benches --bin lane -- --records 10000     # one size
//! cargo run --release -p blindsight-benches --bin lane -- --records 1000000   # rollups only (above a job's 100,000)
//! cargo run --release -p blindsight-benches --bin lane -- --quick             # 200 records
//! ```
//!
//! Records are stored as ingest stores them, each added to its cohort-and-day's lane rollup in
//! the same transaction. Each size runs the same query twice: over a selection that cuts a day
//! (the job lists its records and streams every list) and over whole days (the job reads the
//! rollup parts, their records' ids and digests, and nothing else).
//!
//! Proving costs an app ~0.8 s per record, so the bench proves 16 distinct records (each
//! verified) and stores the N records as copies of them under their own ids and metadata: the
//! stored proofs then do not verify for those ids (the ingest path would refuse them), which
//! the lane does not look at (it sums lists verified at ingest), and every stored list is its
//! own bytes in the database, read and decoded by the job. Reported, never asserted:
//! the job's wall time (created → succeeded as the client sees it, polling every 5 ms), the
//! worker's own time (`started_at` → `finished_at`), the peak resident memory of the process
//! during the job, and, outside the server, the time to add N lists already in memory and to
//! read their bytes once (the memory-bandwidth bound).
#![forbid(unsafe_code)]

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use blindsight_benches::{RunInfo, session_record, session_values};
use blindsight_client::api::{Client, JobRequest, Selection};
use blindsight_crypto::compute::{AggregateQuery, LaneAggregator};
use blindsight_crypto::schemas::session_v1;
use blindsight_crypto::{
    KeySet, LaneBody, LaneList, RecordMetadata, Value, Verifier, encrypt_record,
};
use blindsight_proto::{JobStatus, ListedSpec};
use blindsight_server::audit::SigningKey;
use blindsight_server::store::{self, RecordRow};
use blindsight_server::worker::WorkerConfig;
use blindsight_server::{AdminToken, Launch, Server, ServerConfig};
use rayon::prelude::*;
use serde::Serialize;

const ADMIN: &str = "admin-token-for-the-lane-bench-0123456789";
const TENANT: &str = "bench-lane";
const KEY_ID: &str = "ks-bench-lane";
const DISTINCT: usize = 16;

const USAGE: &str = "usage: lane [--records N[,N…]] [--quick] [--json PATH]
  --records L   cohort sizes, comma-separated (default 1000,10000,100000)
  --quick       200 records
  --json PATH   also write the table as JSON to PATH";

struct Args {
    sizes: Vec<usize>,
    quick: bool,
    json: Option<std::path::PathBuf>,
}

fn args() -> anyhow::Result<Args> {
    let mut out = Args {
        sizes: vec![1_000, 10_000, 100_000],
        quick: false,
        json: None,
    };
    let mut sizes = None;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => out.quick = true,
            "--records" => {
                let list = it
                    .next()
                    .context("--records needs a list, e.g. 1000,10000")?;
                let ns = list
                    .split(',')
                    .map(|n| n.trim().parse::<usize>())
                    .collect::<Result<Vec<_>, _>>()
                    .context("--records needs numbers")?;
                if ns.iter().any(|&n| !(10..=2_000_000).contains(&n)) {
                    bail!("--records: each size must be 10 to 2,000,000");
                }
                sizes = Some(ns);
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
        out.sizes = vec![200];
    }
    if let Some(ns) = sizes {
        out.sizes = ns;
    }
    Ok(out)
}

#[derive(Serialize)]
struct Row {
    records: usize,
    /// Storing the records (not part of the job).
    insert_s: f64,
    /// POST of the job that lists its records to the client seeing it succeed (`None` above
    /// a job's 100,000 records).
    job_wall_s: Option<f64>,
    /// The same for the job over whole days, which reads the rollups.
    rollup_wall_s: f64,
    /// Rollup parts that job read.
    rollup_parts: usize,
    /// Peak resident memory of the whole process during the job, and before it.
    rss_peak_mb: f64,
    rss_before_mb: f64,
    /// Adding N lists already in memory (the lane's arithmetic alone), one thread.
    sum_in_memory_ms: f64,
    /// Reading N lists' bytes once (a wrapping sum of every word): the memory-bandwidth bound.
    read_bound_ms: f64,
    /// Decrypting and checking the results on the key holder's side.
    decrypt_ms: f64,
    exact: bool,
    output_bytes: usize,
}

#[derive(Serialize)]
struct Report {
    #[serde(flatten)]
    run: RunInfo,
    distinct_proven: usize,
    list_bytes: usize,
    prove_s_per_record: f64,
    rows: Vec<Row>,
}

/// The demo's seven aggregates.
fn demo_query() -> AggregateQuery {
    serde_json::from_str(
        r#"{"aggregates":[
            {"op":"count"},
            {"op":"mean","field":"mood_change"},
            {"op":"mean","field":"phq9_total"},
            {"op":"histogram","field":"phq9_total","edges":[5,10,15,20]},
            {"op":"count_at_least","field":"gad7_total","threshold":10},
            {"op":"max","field":"phq9_9"},
            {"op":"sum_where","field":"mood_after","where_field":"phq9_total","at_least":10}
        ]}"#,
    )
    .expect("the demo query parses")
}

fn meta(i: usize) -> RecordMetadata {
    RecordMetadata {
        tenant: TENANT.into(),
        key_id: KEY_ID.into(),
        schema_id: "session".into(),
        schema_version: 1,
        record_id: format!("rec-{i:06}"),
        cohort: Some("all".into()),
        lexicon_version: Some("lex-1".into()),
        // Ten records a second: a day holds 864,000.
        recorded_at: Some(1_790_000_000 + i as u64 / 10),
    }
}

/// Peak and current resident memory of this process (Linux), in MB.
fn rss() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1e3)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// Resets the peak-memory mark (Linux: `clear_refs` 5), so the next peak is the job's.
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn main() -> anyhow::Result<()> {
    let args = args()?;
    let run = RunInfo::start();
    eprintln!("lane: generating a key set…");
    let (secret, public) = KeySet::generate_with_id(KEY_ID, |_| {})?.into_parts();
    let app = public.app_bundle().clone();
    let schema = session_v1();
    eprintln!("lane: proving {DISTINCT} distinct session records (and verifying them)…");
    let start = Instant::now();
    let proven: Vec<Vec<u8>> = (0..DISTINCT)
        .into_par_iter()
        .map(|i| -> anyhow::Result<Vec<u8>> {
            Ok(
                encrypt_record(&app, &schema, &meta(i), &session_values(i as u32), None)?
                    .encode()?,
            )
        })
        .collect::<anyhow::Result<_>>()?;
    let prove =
        start.elapsed().as_secs_f64() / DISTINCT as f64 * rayon::current_num_threads() as f64;
    let verifier = Verifier::new(app.clone());
    for (i, list) in proven.iter().enumerate() {
        verifier.verify_record(list, &schema, &meta(i), None)?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut rows = Vec::new();
    for &n in &args.sizes {
        rows.push(run_size(&runtime, n, &public.encode()?, &proven, &secret)?);
        let r = rows.last().expect("just pushed");
        eprintln!(
            "lane: {n} records: job {} s, over rollups {:.3} s, peak RSS {:.0} MB, sum in memory {:.1} ms, exact {}",
            r.job_wall_s.map_or("–".into(), |s| format!("{s:.3}")),
            r.rollup_wall_s,
            r.rss_peak_mb,
            r.sum_in_memory_ms,
            r.exact
        );
    }
    let report = Report {
        run: run.finish(),
        distinct_proven: DISTINCT,
        list_bytes: proven[0].len(),
        prove_s_per_record: prove,
        rows,
    };
    println!(
        "\n| records | insert | job, records listed | job over rollups (parts) | peak RSS | sum in memory | read bound | decrypt | exact |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|:---:|");
    for r in &report.rows {
        println!(
            "| {} | {:.1} s | {} | {:.3} s ({}) | {:.0} MB (before: {:.0}) | {:.1} ms | {:.1} ms | {:.1} ms | {} |",
            r.records,
            r.insert_s,
            r.job_wall_s.map_or("–".into(), |s| format!("{s:.3} s")),
            r.rollup_wall_s,
            r.rollup_parts,
            r.rss_peak_mb,
            r.rss_before_mb,
            r.sum_in_memory_ms,
            r.read_bound_ms,
            r.decrypt_ms,
            if r.exact { "yes" } else { "NO" }
        );
    }
    println!(
        "\n{} distinct records proven and verified ({:.2} s each on one thread), {} bytes per lane list; {}",
        report.distinct_proven,
        report.prove_s_per_record,
        report.list_bytes,
        report.run.header()
    );
    blindsight_benches::write_json(args.json.as_deref(), &report)?;
    if report.rows.iter().any(|r| !r.exact) {
        bail!("a lane result did not match the clear computation");
    }
    Ok(())
}

fn run_size(
    runtime: &tokio::runtime::Runtime,
    n: usize,
    bundle: &[u8],
    proven: &[Vec<u8>],
    secret: &blindsight_crypto::SecretKeys,
) -> anyhow::Result<Row> {
    let dir = tempfile::tempdir()?;
    let mut config = ServerConfig::new();
    config.admin_token = Some(AdminToken::new(ADMIN).map_err(anyhow::Error::msg)?);
    config.guard.rate_per_sec = 1e6;
    config.guard.burst = 1e6;
    let server = runtime.block_on(Server::open(Launch {
        database_url: None,
        data_dir: dir.path().to_owned(),
        audit_key: SigningKey::ephemeral().map_err(|e| anyhow::anyhow!("{e}"))?,
        config,
        workers: 1,
        worker: WorkerConfig {
            lease: Duration::from_secs(60),
            poll: Duration::from_millis(5),
            ..WorkerConfig::default()
        },
    }))?;
    let state = server.state().clone();
    let listener = runtime.block_on(tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))?;
    let url = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = runtime.spawn(server.serve(Some(listener), async {
        let _ = stopped.await;
    }));

    let admin = Client::new(&url, ADMIN).with_max_attempts(1);
    let tenant = admin.create_tenant("Lane bench", Some(TENANT))?;
    let keyholder = Client::new(&url, tenant.tokens.keyholder.expose()).with_max_attempts(1);
    keyholder.register_keyset(KEY_ID, bundle)?;

    eprintln!("lane: storing {n} records…");
    let start = Instant::now();
    let bodies: Vec<LaneBody> = proven
        .iter()
        .map(|l| LaneBody::decode(l))
        .collect::<Result<_, _>>()?;
    runtime.block_on(async {
        for i in 0..n {
            let list = &proven[i % proven.len()];
            let digest = blindsight_crypto::sha256_hex(list);
            let m = meta(i);
            store::insert_record(
                state.audit_log(),
                &RecordRow {
                    metadata: &m,
                    proven_list: list,
                    proven_list_digest: &digest,
                    sealed_transcript: None,
                    lane: Some(&bodies[i % proven.len()]),
                },
            )
            .await
            .map_err(|e| anyhow::anyhow!("storing record {i}: {e}"))?;
        }
        anyhow::Ok(())
    })?;
    let insert = start.elapsed();

    let query = demo_query();
    let clear: Vec<Vec<Value>> = (0..n)
        .map(|i| session_record((i % proven.len()) as u32))
        .collect();
    let expected = query.evaluate_clear(&session_v1(), &clear)?;
    let (_, rss_before) = rss();
    reset_peak();
    // One second past the last record: the selection cuts a day, so the job lists records.
    let listed = (n <= 100_000)
        .then(|| {
            let until = meta(n - 1).recorded_at.unwrap_or(0) as i64 + 1;
            let select = Selection {
                cohort: Some("all".into()),
                until: Some(until),
                ..serde_json::from_str("{}")?
            };
            run_job(&keyholder, &query, select, secret, &expected)
        })
        .transpose()?;
    let rolled = run_job(
        &keyholder,
        &query,
        Selection {
            cohort: Some("all".into()),
            ..serde_json::from_str("{}")?
        },
        secret,
        &expected,
    )?;
    let (peak, _) = rss();
    if listed.as_ref().is_some_and(|l| l.parts > 0) || rolled.parts == 0 {
        bail!("the jobs did not take the paths the bench measures");
    }

    // Outside the server: the lane's arithmetic alone, and the bytes read once (up to
    // 100,000 records: N lists are held in memory).
    let (sum_ms, read_ms) = if n <= 100_000 {
        in_memory(&query, n, proven)?
    } else {
        (f64::NAN, f64::NAN)
    };

    let _ = stop.send(());
    runtime.block_on(task)??;
    Ok(Row {
        records: n,
        insert_s: insert.as_secs_f64(),
        job_wall_s: listed.as_ref().map(|l| l.wall_s),
        rollup_wall_s: rolled.wall_s,
        rollup_parts: rolled.parts,
        rss_peak_mb: peak,
        rss_before_mb: rss_before,
        sum_in_memory_ms: sum_ms,
        read_bound_ms: read_ms,
        decrypt_ms: rolled.decrypt_ms,
        exact: rolled.exact && listed.as_ref().is_none_or(|l| l.exact),
        output_bytes: rolled.output_bytes,
    })
}

/// Adding `n` lists already in memory, and reading their bytes once: `(sum ms, read ms)`.
fn in_memory(query: &AggregateQuery, n: usize, proven: &[Vec<u8>]) -> anyhow::Result<(f64, f64)> {
    let lists: Vec<LaneList> = (0..n)
        .map(|i| LaneList::decode(&proven[i % proven.len()]))
        .collect::<Result<_, _>>()?;
    let compiled = query.compile(&session_v1(), n)?;
    let plan = compiled.lane_plan(&session_v1().slot_map()?);
    let start = Instant::now();
    let mut sum = LaneAggregator::new(&plan.manifest, lists[0].slots())?;
    for l in &lists {
        sum.push(l)?;
    }
    sum.finish()?;
    let sum_ms = start.elapsed().as_secs_f64() * 1e3;
    let bytes: Vec<Vec<u8>> = (0..n).map(|i| proven[i % proven.len()].clone()).collect();
    let start = Instant::now();
    let mut acc = 0u64;
    for b in &bytes {
        for w in b.chunks_exact(8) {
            acc = acc.wrapping_add(u64::from_le_bytes(w.try_into().expect("8 bytes")));
        }
    }
    std::hint::black_box(acc);
    let read_ms = start.elapsed().as_secs_f64() * 1e3;
    Ok((sum_ms, read_ms))
}

/// One job as the key holder runs it.
struct Ran {
    wall_s: f64,
    parts: usize,
    decrypt_ms: f64,
    exact: bool,
    output_bytes: usize,
}

/// Creates an aggregate job, polls it every 5 ms until it finishes, decrypts its results and
/// compares them with the clear computation.
fn run_job(
    keyholder: &Client,
    query: &AggregateQuery,
    select: Selection,
    secret: &blindsight_crypto::SecretKeys,
    expected: &[blindsight_crypto::compute::AggregateValue],
) -> anyhow::Result<Ran> {
    let start = Instant::now();
    let created = keyholder.create_job(&JobRequest::aggregate(KEY_ID, query.clone(), select))?;
    let job = loop {
        let job = keyholder.job(&created.job_id)?;
        if job.status.is_finished() {
            break job;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let wall_s = start.elapsed().as_secs_f64();
    if job.status != JobStatus::Succeeded {
        bail!("the job did not succeed: {:?}", job.error);
    }
    let parts = ListedSpec::parse(&job.spec)?.rollup.len();
    let start = Instant::now();
    let results = blindsight_client::results::fetch(keyholder, &created.job_id, secret)?;
    let decrypt_ms = start.elapsed().as_secs_f64() * 1e3;
    let exact = match &results.rows {
        blindsight_client::results::Rows::Aggregate(rows) => {
            rows.iter().map(|r| r.value.clone()).collect::<Vec<_>>() == expected
        }
        _ => false,
    };
    Ok(Ran {
        wall_s,
        parts,
        decrypt_ms,
        exact,
        output_bytes: keyholder.job_result(&created.job_id)?.len(),
    })
}
