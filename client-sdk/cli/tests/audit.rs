//! `blindsight audit verify` against a real server (in-process, loopback, temporary SQLite,
//! one job worker): a tenant records three sessions and scores them; its auditor verifies
//! everything over the API (one job re-executed), then from the server's database with the
//! published key; a missing or wrong key is reported as such.

mod common;

use std::process::Output;
use std::time::Duration;

use blindsight_client::api::{Client, JobRequest, JobStatus, ModelRef, Selection};
use blindsight_client::session::Session;
use blindsight_crypto::KeySet;
use common::{blindsight, northside, start_server, stderr, stdout};

/// A failed run's last stderr line: the one-line error (progress lines may come before it).
fn error_line(o: &Output) -> String {
    assert!(
        !o.status.success(),
        "stdout: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    let err = stderr(o);
    let last = err.trim_end().lines().last().unwrap_or_default().to_owned();
    assert!(last.starts_with("error: "), "{err}");
    last
}

/// Three sessions: two with transcripts, one without.
fn sessions() -> Vec<Session> {
    let example: Session =
        serde_json::from_str(include_str!("../../../docs/session-example.json")).unwrap();
    (1..=3)
        .map(|i| {
            let mut s = example.clone();
            s.record_id = format!("a-{i}");
            s.cohort = Some("pilot".into());
            s.mood_after = 3 + i;
            if i == 3 {
                s.transcript = None;
            }
            s
        })
        .collect()
}

fn report(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: stdout: {}\nstderr: {}",
            String::from_utf8_lossy(&o.stdout),
            stderr(o)
        )
    })
}

fn check<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no {name} check: {report}"))
}

/// One server, tenant, key set and job for every case: keys and FHE work are slow.
#[test]
fn an_auditor_verifies_a_server_over_its_api_and_from_its_database() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("server");
    let server = start_server(&data);
    let url = server.url().to_owned();
    let tenant = northside(&url);
    let keyholder = Client::new(&url, tenant.tokens.keyholder.expose());
    let app = Client::new(&url, tenant.tokens.ingest.expose());
    let (_secret, public) = KeySet::generate_with_id("north-1", |_| {})
        .unwrap()
        .into_parts();
    keyholder
        .register_keyset("north-1", &public.encode().unwrap())
        .unwrap();
    let bundle = app
        .app_bundle("north-1", &public.manifest().fingerprint().unwrap())
        .unwrap();
    for s in sessions() {
        app.upload_record(&s.to_record(&bundle, "northside").unwrap())
            .unwrap();
    }
    let job = keyholder
        .create_job(&JobRequest::risk_score(
            "north-1",
            ModelRef::crisis_v1(),
            Selection::default(),
        ))
        .unwrap();
    let job = keyholder
        .wait_for_job(&job.job_id, |_| {}, Duration::from_secs(900))
        .unwrap();
    assert_eq!(job.status, JobStatus::Succeeded, "{:?}", job.error);

    // The new routes: the server key (public evaluation material) and the schemas.
    let auditor = Client::new(&url, tenant.tokens.auditor.expose());
    assert_eq!(
        auditor.keyset_server_key("north-1").unwrap(),
        public.server_key_bytes()
    );
    assert!(auditor.schemas().unwrap().is_empty());
    let err = Client::new(&url, tenant.tokens.ingest.expose())
        .keyset_server_key("north-1")
        .unwrap_err();
    assert_eq!(err.slug(), Some("forbidden"));
    assert_eq!(
        auditor.keyset_server_key("north-2").unwrap_err().slug(),
        Some("unknown-key-set")
    );

    let as_auditor = [
        ("BLINDSIGHT_URL", url.as_str()),
        ("BLINDSIGHT_TOKEN", tenant.tokens.auditor.expose()),
    ];

    // Over the API with the key the server serves: every check passes, one job re-executed,
    // and a warning that the key came from the server being audited.
    let o = blindsight(&["audit", "verify", "--reexecute", "1"], &as_auditor);
    let out = stdout(&o);
    assert!(out.starts_with(&format!("audit of {url}")), "{out}");
    assert!(out.contains("result: every check passed"), "{out}");
    assert!(out.contains("1 job re-executed"), "{out}");
    assert!(out.contains(&job.job_id), "{out}");
    let err = stderr(&o);
    assert!(
        err.lines()
            .any(|l| l.starts_with("warning: trusting audit key") && l.contains("--audit-key")),
        "{err}"
    );

    // As JSON, with the key pinned: no warning.
    let key = Client::new(&url, "").audit_key().unwrap();
    let o = blindsight(
        &["audit", "verify", "--json", "--audit-key", &key.public_key],
        &as_auditor,
    );
    stdout(&o);
    let doc = report(&o);
    assert_eq!(doc["passed"], true, "{doc}");
    assert_eq!(doc["first_failure"], serde_json::Value::Null);
    assert_eq!(check(&doc, "proofs")["checked"], 3);
    assert_eq!(check(&doc, "receipts")["checked"], 1);
    assert!(!stderr(&o).contains("warning"), "{}", stderr(&o));

    // From the database (read-only, while the server runs), with the published key as the JSON
    // of GET /v1/audit/key. The environment's URL and token do not count as a second source.
    let key_file = dir.path().join("audit-key.json");
    std::fs::write(&key_file, serde_json::to_string(&key).unwrap()).unwrap();
    let key_path = key_file.to_str().unwrap();
    let db = data.to_str().unwrap();
    let o = blindsight(
        &["audit", "verify", "--db", db, "--audit-key", key_path],
        &as_auditor,
    );
    let out = stdout(&o);
    assert!(out.starts_with("audit of sqlite://"), "{out}");
    assert!(out.contains("result: every check passed"), "{out}");
    // Offline, sealed transcripts and server keys are scanned too.
    assert!(!out.contains("not scanned"), "{out}");

    // Heads kept between runs: saved after a passing run, checked by the next one.
    let verify_db = |flag: &str, file: &str| {
        blindsight(
            &[
                "audit",
                "verify",
                "--db",
                db,
                "--audit-key",
                key_path,
                flag,
                file,
            ],
            &[],
        )
    };
    let heads = dir.path().join("heads.json");
    let heads_path = heads.to_str().unwrap();
    let o = verify_db("--save-heads", heads_path);
    assert!(stdout(&o).contains("every check passed"));
    assert!(
        stderr(&o).contains("saved 2 verified head(s)"),
        "{}",
        stderr(&o)
    );
    let saved = std::fs::read_to_string(&heads).unwrap();
    assert!(saved.contains("blindsight-audit-heads/v1"), "{saved}");
    let out = stdout(&verify_db("--since", heads_path));
    assert!(
        out.contains("2 kept heads from an earlier run checked")
            && out.contains("every check passed"),
        "{out}"
    );
    // A kept head the chain does not contain (here: a forged one) fails the run, named.
    let mut forged: serde_json::Value = serde_json::from_str(&saved).unwrap();
    forged["heads"][0]["seq"] = 1000.into();
    let forged_path = dir.path().join("forged.json");
    std::fs::write(&forged_path, forged.to_string()).unwrap();
    let err = error_line(&verify_db("--since", forged_path.to_str().unwrap()));
    assert!(
        err.contains("kept head: signature does not verify"),
        "{err}"
    );
    let err = error_line(&verify_db("--since", "nope.json"));
    assert!(
        err.contains("couldn't read the kept heads nope.json"),
        "{err}"
    );

    // Offline without a key: nothing to check the signatures against.
    let err = error_line(&blindsight(&["audit", "verify", "--db", db], &[]));
    assert!(
        err.contains("no audit key")
            && err.contains(
                "hint: pass the published key: --audit-key <hex or file from GET /v1/audit/key>"
            ),
        "{err}"
    );

    // A wrong key: the chain check fails naming the head, and the run exits non-zero.
    let wrong = "11".repeat(32);
    let o = blindsight(
        &[
            "audit",
            "verify",
            "--db",
            db,
            "--audit-key",
            &wrong,
            "--json",
        ],
        &[],
    );
    // The server-wide chain (the signing key recorded when the server started) is checked
    // before the tenant's: either head is refused, with the key named.
    let err = error_line(&o);
    assert!(
        err.starts_with("error: audit verification failed: ")
            && err.contains("head: signed by key")
            && err.contains("which is not a trusted audit key"),
        "{err}"
    );
    assert!(err.contains("hint: "), "{err}");
    let doc = report(&o);
    let failures = &check(&doc, "chain")["failures"];
    assert!(
        failures.as_array().unwrap().iter().any(|f| f
            .as_str()
            .unwrap()
            .starts_with("tenant \"northside\": head: ")),
        "the tenant's head is refused too: {failures}"
    );
    assert_eq!(doc["passed"], false, "{doc}");
    assert_eq!(check(&doc, "chain")["passed"], false, "{doc}");
    assert_eq!(check(&doc, "proofs")["passed"], true, "{doc}");
    let o = blindsight(&["audit", "verify", "--audit-key", &wrong], &as_auditor);
    assert!(String::from_utf8_lossy(&o.stdout).contains("FAIL  chain"));
    assert!(error_line(&o).contains("head: "));

    // One source only; and an auditor's (or key holder's) token.
    let err = error_line(&blindsight(
        &[
            "audit",
            "verify",
            "--db",
            db,
            "--url",
            &url,
            "--audit-key",
            key_path,
        ],
        &[],
    ));
    assert!(err.contains("--db and --url"), "{err}");
    let err = error_line(&blindsight(
        &["audit", "verify"],
        &[
            ("BLINDSIGHT_URL", url.as_str()),
            ("BLINDSIGHT_TOKEN", tenant.tokens.ingest.expose()),
        ],
    ));
    assert!(
        err.contains("forbidden") && err.contains("hint: audit verify needs the tenant's auditor"),
        "{err}"
    );
}
