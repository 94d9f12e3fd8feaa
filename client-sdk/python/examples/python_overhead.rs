//! The Rust side of the binding's overhead benchmark (`bench/overhead.py` runs it): the same
//! `record` and `results` calls the Python benchmark makes through the binding, made on
//! `blindsight-client` directly, each timed alone.
//!
//! Reads a JSON config (argv[1]): `url`, `ingest_token`, `keyholder_token`, `tenant`,
//! `key_id`, `pin`, `keystore`, `passphrase`. Then serves one call per line of standard input,
//! so the benchmark can alternate calls with the binding's: `{"record": <session>}` or
//! `{"results": "<job id>"}`, answering `{"s": <seconds>, "rows": n}` on standard output
//! (after a first `{"ready": true}` once it has connected and opened the keystore).

use std::io::{BufRead, Write};
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
    let secret = keystore::load(
        text(&config, "keystore").as_ref(),
        &text(&config, "passphrase"),
    )
    .expect("the keystore");
    let keyholder = KeyHolder::connect(&url, &text(&config, "keyholder_token"), &tenant);
    let mut out = std::io::stdout().lock();
    // Ready: the benchmark starts timing only now.
    writeln!(out, "{}", json!({"ready": true})).unwrap();
    out.flush().unwrap();
    for line in std::io::stdin().lock().lines() {
        let request: Value = serde_json::from_str(&line.expect("a line")).expect("JSON");
        let (elapsed, rows) = if let Some(session) = request.get("record") {
            let session: Session = serde_json::from_value(session.clone()).expect("a session");
            let start = Instant::now();
            recorder.record(&session).expect("record");
            (start.elapsed(), 0)
        } else {
            let job_id = request["results"].as_str().expect("a job id");
            let start = Instant::now();
            let results = keyholder.results(job_id, &secret).expect("results");
            let elapsed = start.elapsed();
            let rows = match &results.rows {
                Rows::Risk(r) => r.len(),
                Rows::Aggregate(r) => r.len(),
                _ => 0,
            };
            (elapsed, rows)
        };
        writeln!(out, "{}", json!({"s": elapsed.as_secs_f64(), "rows": rows})).unwrap();
        out.flush().unwrap();
    }
}
