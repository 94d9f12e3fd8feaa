//! The `blindsight` CLI against a real server (in-process, loopback, temporary SQLite, one job
//! worker): keygen → register → record a JSONL batch → transcript open → model → score →
//! query → jobs → results (table, CSV, JSON); the one-line errors with their hints; and
//! `blindsight demo` on a small cohort.

mod common;

use std::process::Output;

use blindsight_client::api::{Client, RecordListQuery};
use blindsight_client::session::Session;
use blindsight_crypto::compute::{AggregateQuery, crisis_v1};
use blindsight_crypto::schemas::session_v1;
use common::{blindsight, northside, start_server, stderr, stdout};

fn session_line(record_id: &str, mood_after: u32, transcript: &str) -> String {
    let mut s: serde_json::Value =
        serde_json::from_str(include_str!("../../../docs/session-example.json")).unwrap();
    s["record_id"] = record_id.into();
    s["mood_after"] = mood_after.into();
    s["transcript"] = transcript.into();
    serde_json::to_string(&s).unwrap()
}

/// A failure reported as one line on stderr.
fn one_line_error(o: &Output) -> String {
    assert!(
        !o.status.success(),
        "stdout: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    let err = stderr(o);
    assert!(
        err.starts_with("error: ") && err.trim_end().lines().count() == 1,
        "{err}"
    );
    err
}

/// One key set, server and batch for the whole CLI story: keys are generated once.
#[test]
fn keygen_register_record_open_a_transcript_score_query_and_decrypt() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(&dir.path().join("server"));
    let url = server.url().to_owned();
    let tenant = northside(&url);
    let keys = dir.path().join("keys");
    std::fs::create_dir_all(&keys).unwrap();

    let out = stdout(&blindsight(
        &[
            "keygen",
            "--out-dir",
            keys.to_str().unwrap(),
            "--key-id",
            "north-1",
        ],
        &[],
    ));
    let pin = out
        .lines()
        .find_map(|l| l.strip_prefix("manifest fingerprint "))
        .unwrap()
        .to_owned();

    // A config file carries the defaults; tokens come from the environment.
    let config = dir.path().join("blindsight.json");
    std::fs::write(
        &config,
        serde_json::json!({
            "url": url,
            "tenant": "northside",
            "key_id": "north-1",
            "manifest_fingerprint": pin,
            "keystore": keys.join("north-1.keystore"),
        })
        .to_string(),
    )
    .unwrap();
    let cfg = config.to_str().unwrap();
    let keyholder = [
        ("BLINDSIGHT_CONFIG", cfg),
        ("BLINDSIGHT_TOKEN", tenant.tokens.keyholder.expose()),
    ];
    let ingest = [
        ("BLINDSIGHT_CONFIG", cfg),
        ("BLINDSIGHT_TOKEN", tenant.tokens.ingest.expose()),
    ];
    let bundle = keys.join("north-1.public");
    let out = stdout(&blindsight(
        &["register", bundle.to_str().unwrap()],
        &keyholder,
    ));
    assert!(out.contains("key set north-1 registered"), "{out}");
    assert!(out.contains(&pin));

    // A batch with one invalid line: refused, naming the line, and nothing uploaded.
    let batch = dir.path().join("batch.jsonl");
    let bad = session_line("s-bad", 11, "x");
    std::fs::write(&batch, [session_line("s-1", 6, "one"), bad].join("\n")).unwrap();
    let o = blindsight(&["record", batch.to_str().unwrap()], &ingest);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("line 2") && err.contains("mood_after"),
        "{err}"
    );
    let auditor = Client::new(&url, tenant.tokens.auditor.expose());
    assert!(
        auditor
            .records(&RecordListQuery::default())
            .unwrap()
            .is_empty()
    );

    // A good batch; then again (every record already stored, nothing duplicated).
    std::fs::write(
        &batch,
        [
            session_line("s-1", 6, "one"),
            session_line("s-2", 7, "two"),
            session_line("s-3", 8, "three"),
        ]
        .join("\n"),
    )
    .unwrap();
    let out = stdout(&blindsight(&["record", batch.to_str().unwrap()], &ingest));
    assert!(
        out.contains("3 record(s) stored, 0 already stored, 0 skipped"),
        "{out}"
    );
    let o = blindsight(&["record", batch.to_str().unwrap()], &ingest);
    assert!(stdout(&o).contains("0 record(s) stored, 0 already stored, 3 skipped"));
    assert!(String::from_utf8_lossy(&o.stderr).contains("skipped s-2"));
    assert_eq!(
        auditor.records(&RecordListQuery::default()).unwrap().len(),
        3
    );

    // The key holder opens one transcript.
    let out = stdout(&blindsight(&["transcript", "open", "s-2"], &keyholder));
    assert_eq!(out.trim(), "two");

    // A wrong pin is refused before anything is encrypted.
    let o = blindsight(
        &["record", batch.to_str().unwrap(), "--pin", &"0".repeat(64)],
        &ingest,
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.starts_with("error: ") && err.contains("fingerprint"),
        "{err}"
    );
    // No token: a one-line error with the hint.
    let o = blindsight(
        &["register", bundle.to_str().unwrap(), "--config", cfg],
        &[],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("BLINDSIGHT_TOKEN"),
        "{err}"
    );

    let batch: Vec<Session> = std::fs::read_to_string(&batch)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    jobs_through_the_cli(dir.path(), &keyholder, &batch);
}

/// Models, risk scores, aggregates and their decrypted results through the CLI, checked
/// against the clear reference of the batch.
fn jobs_through_the_cli(dir: &std::path::Path, keyholder: &[(&str, &str)], batch: &[Session]) {
    // A model: registered, then recognised; an unknown one is refused with a hint.
    let mut model = crisis_v1();
    model.id = "crisis-local".into();
    model.version = 2;
    let model_file = dir.join("model.json");
    std::fs::write(&model_file, serde_json::to_string(&model).unwrap()).unwrap();
    let out = stdout(&blindsight(
        &["model", model_file.to_str().unwrap()],
        keyholder,
    ));
    assert!(out.contains("model crisis-local v2 registered"), "{out}");
    assert!(out.contains(&model.digest()), "{out}");
    let out = stdout(&blindsight(
        &["model", model_file.to_str().unwrap()],
        keyholder,
    ));
    assert!(out.contains("was already registered"), "{out}");
    let out = stdout(&blindsight(&["models"], keyholder));
    assert!(
        out.lines()
            .any(|l| l.starts_with("crisis ") && l.contains("built in")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("crisis-local") && l.contains(&model.digest())),
        "{out}"
    );
    let err = one_line_error(&blindsight(&["score", "--model", "nope"], keyholder));
    assert!(
        err.contains("unknown-model") && err.contains("hint: register it"),
        "{err}"
    );

    // Risk scores: the job id alone on stdout, plain progress lines on stderr (no terminal).
    let o = blindsight(&["score", "--wait"], keyholder);
    let job_id = stdout(&o).trim().to_owned();
    assert!(job_id.starts_with("job-"), "{job_id}");
    let err = stderr(&o);
    assert!(
        err.contains("over 3 record(s)") && err.contains("succeeded"),
        "{err}"
    );
    let csv = dir.join("scores.csv");
    let json = dir.join("scores.json");
    let out = stdout(&blindsight(
        &[
            "results",
            &job_id,
            "--csv",
            csv.to_str().unwrap(),
            "--json",
            json.to_str().unwrap(),
        ],
        keyholder,
    ));
    let compiled = crisis_v1().compile(&session_v1()).unwrap();
    let csv = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(csv.lines().next(), Some("record_id,score,tier"));
    for s in batch {
        let values = session_v1().order_values(&s.values().unwrap()).unwrap();
        let (score, tier) = compiled.evaluate_clear(&values);
        assert!(
            csv.contains(&format!("{},{score},{tier}\n", s.record_id)),
            "{csv}"
        );
        assert!(out.contains(&s.record_id), "{out}");
    }
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(doc["function"], "risk_score/crisis-v1");
    assert_eq!(doc["rows"].as_array().unwrap().len(), 3);
    // Decrypted data is written for the owner only.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&json).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // Aggregates over the cohort: queued without waiting, then `results` waits and decrypts.
    let query = dir.join("query.json");
    let query_json = serde_json::json!({"aggregates": [
        {"op": "count"},
        {"op": "mean", "field": "mood_change"},
        {"op": "histogram", "field": "phq9_total", "edges": [5, 10]},
    ]});
    std::fs::write(&query, query_json.to_string()).unwrap();
    let q = query.to_str().unwrap();
    let cohort = batch[0].cohort.clone().unwrap();
    let job_id = stdout(&blindsight(&["query", q, "--cohort", &cohort], keyholder))
        .trim()
        .to_owned();
    let csv = dir.join("aggregates.csv");
    let out = stdout(&blindsight(
        &["results", &job_id, "--csv", csv.to_str().unwrap()],
        keyholder,
    ));
    assert!(out.contains("mean(mood_change)"), "{out}");
    let reference = serde_json::from_value::<AggregateQuery>(query_json)
        .unwrap()
        .evaluate_clear(
            &session_v1(),
            &batch
                .iter()
                .map(|s| session_v1().order_values(&s.values().unwrap()).unwrap())
                .collect::<Vec<_>>(),
        )
        .unwrap();
    let csv = std::fs::read_to_string(&csv).unwrap();
    assert!(csv.contains("count,count,3\n"), "{csv}");
    let blindsight_crypto::compute::AggregateValue::Mean { sum, count } = reference[1] else {
        panic!("{reference:?}")
    };
    assert!(
        csv.contains(&format!("mean(mood_change),sum,{sum}\n")),
        "{csv}"
    );
    assert!(
        csv.contains(&format!("mean(mood_change),count,{count}\n")),
        "{csv}"
    );
    let blindsight_crypto::compute::AggregateValue::Histogram { buckets } = &reference[2] else {
        panic!("{reference:?}")
    };
    let histogram = "\"histogram(phq9_total; [5, 10])\"";
    for (label, n) in ["< 5", "\"[5, 10)\"", ">= 10"].iter().zip(buckets) {
        assert!(csv.contains(&format!("{histogram},{label},{n}\n")), "{csv}");
    }

    // A cohort below the tenant's minimum: one line, with the hint.
    let err = one_line_error(&blindsight(&["query", q, "--record", "s-1"], keyholder));
    assert!(
        err.contains("cohort-too-small") && err.contains("hint: widen the selection"),
        "{err}"
    );

    // The jobs, listed and shown.
    let out = stdout(&blindsight(&["jobs"], keyholder));
    assert_eq!(
        out.lines().filter(|l| l.starts_with("job-")).count(),
        2,
        "{out}"
    );
    let out = stdout(&blindsight(&["jobs", &job_id], keyholder));
    assert!(out.contains("status    succeeded"), "{out}");
    assert!(out.contains("records   3"), "{out}");
}

/// `blindsight demo` on a small cohort: the report on stdout ending with the summary line,
/// one plain progress line per stage on stderr (no terminal), and nothing left in the
/// temporary directory.
#[test]
fn the_demo_runs_from_the_cli_and_leaves_nothing_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let o = blindsight(
        &["demo", "--records", "3", "--seed", "11"],
        &[("TMPDIR", tmp.path().to_str().unwrap())],
    );
    let out = stdout(&o);
    assert_eq!(
        out.lines().last(),
        Some(
            "demo: records=3 scored=3 aggregates=7 training=12 bias_scored=12 training_views=10 mismatches=0"
        ),
        "{out}"
    );
    assert_eq!(
        out.lines().filter(|l| l.starts_with("demo: ")).count(),
        1,
        "{out}"
    );
    assert!(
        out.contains("[1/9] server: embedded blindsight-server"),
        "{out}"
    );
    // One line as each stage begins and one as it ends, never the same line twice.
    let err = stderr(&o);
    assert!(err.contains("encrypt + prove + upload…\n"), "{err}");
    assert!(err.contains("encrypt + prove + upload: 3/3 in "), "{err}");
    assert!(err.contains("risk_score (crisis v1) job: "), "{err}");
    let mut seen = std::collections::HashSet::new();
    for line in err.lines() {
        assert!(seen.insert(line), "{line:?} printed twice: {err}");
    }
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}
