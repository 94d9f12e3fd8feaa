//! The Rust side of the binding's overhead benchmark (`bench/overhead.mjs` runs it): the same
//! calls through `blindsight-client` directly, timed the same way, one line of JSON out.
//!
//! - `node_overhead record <record-id prefix> <n>`: records `n` sessions (the benchmark's
//!   session, ids `<prefix>-<i>`) with `Recorder::record`, timing each call.
//! - `node_overhead results <job id> <reps>`: decrypts the job's results `reps` times with
//!   `KeyHolder::results`, timing each call.
//!
//! Connection details come from the environment (`BENCH_URL`, `BENCH_TENANT`, `BENCH_INGEST`,
//! `BENCH_KEYHOLDER`, `BENCH_KEY_ID`, `BENCH_PIN`, `BENCH_KEYSTORE`, `BENCH_PASSPHRASE`);
//! connecting and opening the keystore are not timed, as in the Node half.

use std::time::Instant;

use blindsight_client::session::Session;
use blindsight_client::{KeyHolder, Recorder, keystore};

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set (bench/overhead.mjs sets it)"))
}

/// The benchmark's session (the same as `session()` in bench/overhead.mjs).
fn session(record_id: String) -> Session {
    serde_json::from_value(serde_json::json!({
        "record_id": record_id,
        "cohort": "bench",
        "recorded_at": 1795300000,
        "mood_before": 4,
        "mood_after": 6,
        "duration_min": 50,
        "phq9": [1, 2, 1, 0, 1, 0, 1, 0, 0],
        "gad7": [1, 1, 0, 1, 0, 0, 1],
        "cssrs": {"wish_dead": false, "thoughts": false, "method": false,
                  "intent": false, "plan": false, "behavior": false},
        "transcript": "We talked about the week. I slept better and went for a walk twice."
    }))
    .expect("the benchmark session parses")
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut ms = Vec::new();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["record", prefix, n] => {
            let n: usize = n.parse().expect("a count");
            let recorder = Recorder::connect(
                &var("BENCH_URL"),
                &var("BENCH_INGEST"),
                &var("BENCH_TENANT"),
                &var("BENCH_KEY_ID"),
                &var("BENCH_PIN"),
            )
            .expect("connect");
            for i in 0..n {
                let s = session(format!("{prefix}-{i}"));
                let start = Instant::now();
                recorder.record(&s).expect("record");
                ms.push(start.elapsed().as_secs_f64() * 1e3);
            }
        }
        ["results", job_id, reps] => {
            let reps: usize = reps.parse().expect("a count");
            let keyholder = KeyHolder::connect(
                &var("BENCH_URL"),
                &var("BENCH_KEYHOLDER"),
                &var("BENCH_TENANT"),
            );
            let secret = keystore::load(var("BENCH_KEYSTORE").as_ref(), &var("BENCH_PASSPHRASE"))
                .expect("keystore");
            for _ in 0..reps {
                let start = Instant::now();
                let results = keyholder.results(job_id, &secret).expect("results");
                std::hint::black_box(&results);
                ms.push(start.elapsed().as_secs_f64() * 1e3);
            }
        }
        _ => panic!("usage: node_overhead record <prefix> <n> | results <job-id> <reps>"),
    }
    println!("{}", serde_json::json!({ "ms": ms }));
}
