//! The comparison harness: in one run on one machine, for each workload, our evaluation, the
//! straightforward tfhe high-level evaluation of the same work, the PBS count of each, the
//! PBS lower bound (PBS count × measured single-PBS latency ÷ threads) and the ratios.
//!
//! ```sh
//! cargo run --release -p blindsight-benches --bin compare            # full: cohorts of 10, 100, 1,000
//! cargo run --release -p blindsight-benches --bin compare -- --quick # cohorts of 4, ~2 minutes; also writes JSON
//! ```
//! Numbers are reported, never asserted. Records are encrypted with the client key (no
//! proofs): expansion, which every evaluation pays alike, is measured by the crypto bench.
//!
//! A second table puts the additive lane beside it: each aggregate the `session` v1 lane
//! layout answers, at 1,000, 10,000 and 100,000 records (100 with `--quick`): the server's sum
//! of the lane lists (all in memory), the key holder's decryption and decoding, and the
//! memory-bandwidth bound (reading every list's bytes once). A few records are proven and
//! verified; the cohort is copies of them (each its own bytes in memory), so the sums are of
//! real, proven lists and every decoded result is checked against the clear computation.
//! The end-to-end version (records read from SQLite by a worker, output, receipt) is the
//! `lane` bench.
#![forbid(unsafe_code)]

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use blindsight_benches::{
    aggregate_workloads, bench_meta, machine, pbs_count, reset_pbs_count, schema_record,
    session_record, session_values,
};
use blindsight_crypto::compute::LaneAggregator;
use blindsight_crypto::compute::{
    bias_v1, crisis_v1, pool_with_key, score_record_reference, score_records,
};
use blindsight_crypto::schemas::{session_v1, training_v1};
use blindsight_crypto::tfhe::integer::IntegerCiphertext;
use blindsight_crypto::tfhe::prelude::*;
use blindsight_crypto::tfhe::{FheUint2, ServerKey};
use blindsight_crypto::{
    EncryptedValue, KeySet, LaneList, Verifier, encrypt_record, encrypt_values,
};
use rayon::prelude::*;
use serde::Serialize;

/// One row of the table.
#[derive(Serialize)]
struct Row {
    workload: String,
    records: usize,
    ours_s: f64,
    ours_pbs: u64,
    lower_bound_s: f64,
    ours_over_lower_bound: f64,
    straightforward_s: Option<f64>,
    straightforward_pbs: Option<u64>,
    straightforward_over_ours: Option<f64>,
    pbs_ratio: Option<f64>,
}

#[derive(Serialize)]
struct Report {
    machine: String,
    threads: usize,
    pbs_latency_ms: f64,
    quick: bool,
    rows: Vec<Row>,
    lane_rows: Vec<LaneRow>,
}

/// One row of the lane table.
#[derive(Serialize)]
struct LaneRow {
    workload: String,
    records: usize,
    /// The server's sum of every list (and forming the output ciphertexts).
    lane_sum_ms: f64,
    /// The key holder: decrypting and decoding every output.
    decode_ms: f64,
    /// Reading every list's bytes once.
    read_bound_ms: f64,
    /// Ciphertexts sent to the key holder.
    terms: usize,
    /// Our FHE evaluation of the same aggregate at this size, when the first table has it.
    fhe_s: Option<f64>,
    exact: bool,
}

struct Args {
    quick: bool,
    json: Option<PathBuf>,
}

fn args() -> anyhow::Result<Args> {
    let mut out = Args {
        quick: false,
        json: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => out.quick = true,
            "--json" => out.json = Some(it.next().context("--json needs a path")?.into()),
            "-h" | "--help" => {
                println!(
                    "usage: compare [--quick] [--json PATH]\n  --quick  cohorts of 4, about 2 minutes on 2 cores; writes JSON (default compare-quick.json)\n  --json   also write the table as JSON to PATH"
                );
                std::process::exit(0);
            }
            other => anyhow::bail!("unknown argument {other:?}; try --help"),
        }
    }
    if out.quick && out.json.is_none() {
        out.json = Some("compare-quick.json".into());
    }
    Ok(out)
}

/// Runs `f`, returning its result, the time it took and the PBS it performed.
fn measure<T>(f: impl FnOnce() -> T) -> (T, Duration, u64) {
    reset_pbs_count();
    let start = Instant::now();
    let out = f();
    (out, start.elapsed(), pbs_count().unwrap_or(0))
}

/// The median time of one bootstrap on one thread.
fn pbs_latency(key: &ServerKey, ck: &blindsight_crypto::tfhe::ClientKey) -> Duration {
    let block = FheUint2::encrypt(1u8, ck).into_raw_parts().0;
    let block = &block.blocks()[0];
    let short: &blindsight_crypto::tfhe::shortint::ServerKey = key.as_ref().as_ref();
    let lut = short.generate_lookup_table(|x| x);
    let mut times: Vec<Duration> = (0..25)
        .map(|_| {
            let t = Instant::now();
            let _ = std::hint::black_box(short.apply_lookup_table(block, &lut));
            t.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn main() -> anyhow::Result<()> {
    let args = args()?;
    // Every measurement runs on one pool whose threads hold the server key (as jobs do).
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    eprintln!(
        "compare: {threads} threads, quick={}; generating a key set…",
        args.quick
    );
    let (secret, public) = KeySet::generate()?.into_parts();
    let key = public.server_key()?.decompress();
    let pool = pool_with_key(&key, threads)?;
    pool.install(|| run(args, threads, (&secret, &public), &key))
}

fn run(
    args: Args,
    threads: usize,
    (secret, public): (
        &blindsight_crypto::SecretKeys,
        &blindsight_crypto::PublicBundle,
    ),
    key: &ServerKey,
) -> anyhow::Result<()> {
    if pbs_count().is_none() {
        anyhow::bail!("built without the pbs-stats feature; run with the default features");
    }
    let say = |msg: String| {
        eprintln!("{msg}");
        let _ = std::io::stderr().flush();
    };
    let ck = secret.client_key();
    let latency = pbs_latency(key, ck);
    say(format!(
        "one PBS: {:.2} ms on one thread",
        latency.as_secs_f64() * 1e3
    ));
    let lower_bound = |pbs: u64| latency.mul_f64(pbs as f64 / threads as f64);

    let schema = session_v1();
    let max_records = if args.quick { 4 } else { 1000 };
    say(format!("encrypting {max_records} records…"));
    let clear: Vec<_> = (0..max_records as u32).map(session_record).collect();
    let records: Vec<Vec<EncryptedValue>> = clear
        .par_iter()
        .map(|v| encrypt_values(ck, &schema, v))
        .collect::<Result<_, _>>()?;
    let mut rows = Vec::new();

    // Risk scoring, per record: crisis v1 over sessions, bias v1 over training sessions.
    let training = training_v1();
    let training_records: Vec<Vec<EncryptedValue>> = (0..max_records.min(16) as u32)
        .into_par_iter()
        .map(|i| encrypt_values(ck, &training, &schema_record(&training, i)))
        .collect::<Result<_, _>>()?;
    let (ours_n, ref_n) = if args.quick { (4, 2) } else { (16, 4) };
    for (name, model, records) in [
        ("crisis-v1", crisis_v1().compile(&schema)?, &records),
        ("bias-v1", bias_v1().compile(&training)?, &training_records),
    ] {
        say(format!("risk_score {name}: ours over {ours_n} records…"));
        let (_, t, pbs) = measure(|| score_records(key, &model, &records[..ours_n]));
        let (ours_t, ours_pbs) = (t / ours_n as u32, pbs / ours_n as u64);
        say(format!(
            "risk_score {name}: straightforward over {ref_n} records…"
        ));
        let (_, t, pbs) = measure(|| {
            records[..ref_n]
                .par_iter()
                .map(|r| score_record_reference(&model, r))
                .collect::<Result<Vec<_>, _>>()
        });
        let (ref_t, ref_pbs) = (t / ref_n as u32, pbs / ref_n as u64);
        rows.push(row(
            &format!("risk_score/{name} (per record)"),
            1,
            ours_t,
            ours_pbs,
            lower_bound(ours_pbs),
            Some((ref_t, ref_pbs)),
        ));
    }

    // Aggregates at each cohort size; the straightforward version at the smallest.
    let sizes: &[usize] = if args.quick { &[4] } else { &[10, 100, 1000] };
    for (name, query) in aggregate_workloads() {
        for &n in sizes {
            let compiled = query.compile(&schema, n)?;
            say(format!("aggregate {name}: ours over {n} records…"));
            let (out, t, pbs) = measure(|| compiled.evaluate(key, &records[..n]));
            out?;
            let straightforward = if n == sizes[0] {
                say(format!(
                    "aggregate {name}: straightforward over {n} records…"
                ));
                let (out, t, pbs) = measure(|| compiled.evaluate_reference(&records[..n]));
                out?;
                Some((t, pbs))
            } else {
                None
            };
            rows.push(row(
                &format!("aggregate/{name}"),
                n,
                t,
                pbs,
                lower_bound(pbs),
                straightforward,
            ));
        }
    }

    let lane_rows = lane(&args, (secret, public), &rows, &say)?;
    let report = Report {
        machine: machine(),
        threads,
        pbs_latency_ms: latency.as_secs_f64() * 1e3,
        quick: args.quick,
        rows,
        lane_rows,
    };
    print_table(&report);
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("couldn't write {}", path.display()))?;
        say(format!("wrote {}", path.display()));
    }
    Ok(())
}

/// The lane table (see the module documentation).
fn lane(
    args: &Args,
    (secret, public): (
        &blindsight_crypto::SecretKeys,
        &blindsight_crypto::PublicBundle,
    ),
    fhe_rows: &[Row],
    say: &dyn Fn(String),
) -> anyhow::Result<Vec<LaneRow>> {
    let distinct = if args.quick { 2 } else { 8 };
    let app = public.app_bundle();
    let schema = session_v1();
    let verifier = Verifier::new(app.clone());
    say(format!(
        "lane: proving and verifying {distinct} session records…"
    ));
    let proven: Vec<LaneList> = (0..distinct)
        .map(|i| -> anyhow::Result<LaneList> {
            let meta = bench_meta(app.key_id(), &format!("lane-{i}"));
            let meta = blindsight_crypto::RecordMetadata {
                schema_id: "session".into(),
                ..meta
            };
            let list = encrypt_record(app, &schema, &meta, &session_values(i as u32), None)?;
            verifier.verify_record(&list.encode()?, &schema, &meta, None)?;
            Ok(list)
        })
        .collect::<anyhow::Result<_>>()?;
    let lane_secret = secret.lane_secret()?;
    let sizes: &[usize] = if args.quick {
        &[100]
    } else {
        &[1_000, 10_000, 100_000]
    };
    let mut rows = Vec::new();
    for &n in sizes {
        let lists: Vec<LaneList> = (0..n).map(|i| proven[i % distinct].clone()).collect();
        let clear: Vec<_> = (0..n)
            .map(|i| session_record((i % distinct) as u32))
            .collect();
        // As many words as the lists hold, each in its own allocation.
        let words: Vec<Vec<u64>> = lists
            .iter()
            .map(|l| vec![l.slots() as u64; 2048 + l.slots()])
            .collect();
        for (name, query) in aggregate_workloads() {
            let compiled = query.compile(&schema, n)?;
            let plan = compiled.lane_plan(&schema.slot_map()?);
            if !plan.by_lane.iter().all(|&b| b) {
                continue;
            }
            say(format!("lane {name}: {n} records…"));
            let start = Instant::now();
            let mut sum = LaneAggregator::new(&plan.manifest, lists[0].slots())?;
            for l in &lists {
                sum.push(l)?;
            }
            let cts = sum.finish()?;
            let lane_sum = start.elapsed();
            let start = Instant::now();
            let decoded = plan.manifest.decrypt(&lane_secret, &cts)?;
            let values = compiled.interpret_split(&plan, &[], &decoded)?;
            let decode = start.elapsed();
            let start = Instant::now();
            let mut acc = 0u64;
            for b in &words {
                for w in b {
                    acc = acc.wrapping_add(*w);
                }
            }
            std::hint::black_box(acc);
            let read = start.elapsed();
            rows.push(LaneRow {
                workload: format!("aggregate/{name}"),
                records: n,
                lane_sum_ms: secs(lane_sum) * 1e3,
                decode_ms: secs(decode) * 1e3,
                read_bound_ms: secs(read) * 1e3,
                terms: plan.manifest.terms.len(),
                fhe_s: fhe_rows
                    .iter()
                    .find(|r| r.workload == format!("aggregate/{name}") && r.records == n)
                    .map(|r| r.ours_s),
                exact: values == query.evaluate_clear(&schema, &clear)?,
            });
        }
    }
    Ok(rows)
}

fn row(
    workload: &str,
    records: usize,
    ours: Duration,
    ours_pbs: u64,
    lower: Duration,
    straightforward: Option<(Duration, u64)>,
) -> Row {
    Row {
        workload: workload.into(),
        records,
        ours_s: secs(ours),
        ours_pbs,
        lower_bound_s: secs(lower),
        ours_over_lower_bound: secs(ours) / secs(lower).max(1e-9),
        straightforward_s: straightforward.map(|(t, _)| secs(t)),
        straightforward_pbs: straightforward.map(|(_, p)| p),
        straightforward_over_ours: straightforward.map(|(t, _)| secs(t) / secs(ours).max(1e-9)),
        pbs_ratio: straightforward.map(|(_, p)| p as f64 / ours_pbs.max(1) as f64),
    }
}

fn print_table(r: &Report) {
    println!(
        "\nmachine: {}; rayon threads: {}; one PBS: {:.2} ms (single thread)\n",
        r.machine, r.threads, r.pbs_latency_ms
    );
    println!(
        "| workload | records | ours | ours PBS | PBS lower bound | ours / bound | straightforward | straightforward PBS | straightforward / ours (time) | PBS ratio |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for row in &r.rows {
        let opt = |v: Option<f64>, unit: &str| v.map_or("–".into(), |v| format!("{v:.2}{unit}"));
        println!(
            "| {} | {} | {:.2} s | {} | {:.2} s | {:.2}× | {} | {} | {} | {} |",
            row.workload,
            row.records,
            row.ours_s,
            row.ours_pbs,
            row.lower_bound_s,
            row.ours_over_lower_bound,
            opt(row.straightforward_s, " s"),
            row.straightforward_pbs
                .map_or("–".into(), |p| p.to_string()),
            opt(row.straightforward_over_ours, "×"),
            opt(row.pbs_ratio, "×"),
        );
    }
    println!(
        "\n| workload (lane) | records | server sum | key holder decode | read bound | ciphertexts | FHE path (ours) | exact |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|:---:|");
    for row in &r.lane_rows {
        println!(
            "| {} | {} | {:.2} ms | {:.2} ms | {:.2} ms | {} | {} | {} |",
            row.workload,
            row.records,
            row.lane_sum_ms,
            row.decode_ms,
            row.read_bound_ms,
            row.terms,
            row.fhe_s.map_or("–".into(), |s| format!("{s:.2} s")),
            if row.exact { "yes" } else { "NO" }
        );
    }
}
