//! The `blindsight` CLI against a real server (in-process, loopback, temporary SQLite):
//! keygen → register → record a JSONL batch → transcript open; and the one-line errors.

mod common;

use std::process::{Command, Output};

use blindsight_client::api::{Client, RecordQuery};
use common::{ADMIN, start_server};

const PASSPHRASE: &str = "correct horse battery staple";

fn blindsight(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_blindsight"));
    cmd.args(args).env("BLINDSIGHT_PASSPHRASE", PASSPHRASE);
    for var in [
        "BLINDSIGHT_URL",
        "BLINDSIGHT_TOKEN",
        "BLINDSIGHT_TENANT",
        "BLINDSIGHT_CONFIG",
    ] {
        cmd.env_remove(var);
    }
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn session_line(record_id: &str, mood_after: u32, transcript: &str) -> String {
    let mut s: serde_json::Value =
        serde_json::from_str(include_str!("../../docs/session-example.json")).unwrap();
    s["record_id"] = record_id.into();
    s["mood_after"] = mood_after.into();
    s["transcript"] = transcript.into();
    serde_json::to_string(&s).unwrap()
}

#[test]
fn keygen_register_record_and_open_a_transcript() {
    let dir = tempfile::tempdir().unwrap();
    let url = start_server(&dir.path().join("server"));
    let tenant = Client::new(&url, ADMIN)
        .create_tenant("Northside", Some("northside"))
        .unwrap();
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
        ("BLINDSIGHT_TOKEN", tenant.tokens.keyholder.as_str()),
    ];
    let ingest = [
        ("BLINDSIGHT_CONFIG", cfg),
        ("BLINDSIGHT_TOKEN", tenant.tokens.ingest.as_str()),
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
    let auditor = Client::new(&url, &tenant.tokens.auditor);
    assert!(auditor.records(&RecordQuery::default()).unwrap().is_empty());

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
    assert_eq!(auditor.records(&RecordQuery::default()).unwrap().len(), 3);

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
}
