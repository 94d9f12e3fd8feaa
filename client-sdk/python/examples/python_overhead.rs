//! The Rust side of the binding's overhead benchmark (`bench/overhead.py` runs it): the same
//! `record` and `results` calls the Python benchmark makes through the binding, made on
//! `blindsight-client` directly, each timed alone.
//!
//! Reads a JSON config (argv[1]): `url`, `ingest_token`, `keyholder_token`, `tenant`,
//! `key_id`, `pin`, `keystore`, `passphrase`, `sessions` (recorded one by one, timed) and
//! `job_id` with `results_repeat` (the job's results fetched and decrypted that many times,
//! timed). Prints `{"record_s": [...], "results_s": [...], "rows": n}`.

use std::time::Instant;

use blindsight_client::results::Rows;
use blindsight_client::session::Session;
use blindsight_client::{KeyHolder, Recorder, keystore};
use serde_json::{Value, json};

fn text(config: &Value, key: &str) -> String {
    config[key]
        .as_str()
        .unwrap_or_else(|| panic!("the config has no string {key:?}"))
        .to_owned()
}

fn main() {
    let path = std::env::args()
        .nth(1)
        .expect("usage: python_overhead <config.json>");
    let config: Value =
        serde_json::from_slice(&std::fs::read(&path).expect("the config")).expect("JSON");
    let url = text(&config, "url");
    let tenant = text(&config, "tenant");
    let recorder = Recorder::connect(
        &url,
        &text(&config, "ingest_token"),
        &tenant,
        &text(&config, "key_id"),
        &text(&config, "pin"),
    )
    .expect("the recorder");
    let sessions: Vec<Session> =
        serde_json::from_value(config["sessions"].clone()).expect("sessions");
    let mut record_s = Vec::new();
    for session in &sessions {
        let start = Instant::now();
        recorder.record(session).expect("record");
        record_s.push(start.elapsed().as_secs_f64());
    }

    let mut results_s = Vec::new();
    let mut rows = 0;
    if let Some(job_id) = config["job_id"].as_str() {
        let secret = keystore::load(
            text(&config, "keystore").as_ref(),
            &text(&config, "passphrase"),
        )
        .expect("the keystore");
        let keyholder = KeyHolder::connect(&url, &text(&config, "keyholder_token"), &tenant);
        for _ in 0..config["results_repeat"].as_u64().unwrap_or(10) {
            let start = Instant::now();
            let results = keyholder.results(job_id, &secret).expect("results");
            results_s.push(start.elapsed().as_secs_f64());
            rows = match &results.rows {
                Rows::Risk(r) => r.len(),
                Rows::Aggregate(r) => r.len(),
                _ => 0,
            };
        }
    }
    println!(
        "{}",
        json!({"record_s": record_s, "results_s": results_s, "rows": rows})
    );
}
