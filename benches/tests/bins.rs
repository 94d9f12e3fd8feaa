//! Runs the `ingest`, `rss` and `lane` benchmark binaries as `cargo test --workspace` (and so
//! CI) does on every run, so the commands `docs/BENCHMARKS.md` documents keep working: `ingest
//! --quick` (a real server on a loopback port, SQLite, and PostgreSQL too when
//! `BLINDSIGHT_TEST_POSTGRES_URL` is set), `rss` with one tenant, and `lane --quick` (an
//! aggregate job over 200 stored records, checked exact by the bench itself), and `scale
//! --quick` (one risk job computed by 1, 2 and 4 worker processes on PostgreSQL, when
//! `BLINDSIGHT_TEST_POSTGRES_URL` is set). Their tables are printed
//! (numbers are reported, never asserted); the tests check only that every run was measured.

use std::path::PathBuf;
use std::process::Command;

fn report(bin: &str, args: &[&str], envs: &[(&str, String)]) -> serde_json::Value {
    let json = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{bin}-test.json"));
    let _ = std::fs::remove_file(&json);
    let mut cmd = Command::new(match bin {
        "ingest" => env!("CARGO_BIN_EXE_ingest"),
        "lane" => env!("CARGO_BIN_EXE_lane"),
        "scale" => env!("CARGO_BIN_EXE_scale"),
        _ => env!("CARGO_BIN_EXE_rss"),
    });
    cmd.args(args).arg("--json").arg(&json);
    cmd.env_remove("BLINDSIGHT_BENCH_POSTGRES_URL");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    // The child's output is not captured: its table lands in the test log.
    let status = cmd.status().unwrap_or_else(|e| panic!("{bin} runs: {e}"));
    assert!(status.success(), "{bin} {args:?} failed: {status}");
    serde_json::from_slice(&std::fs::read(&json).expect("the JSON was written")).unwrap()
}

#[test]
fn ingest_quick_measures_every_backend_and_uploader_count() {
    let postgres = std::env::var("BLINDSIGHT_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty());
    let envs: Vec<(&str, String)> = postgres
        .iter()
        .map(|u| ("BLINDSIGHT_BENCH_POSTGRES_URL", u.clone()))
        .collect();
    let report = report("ingest", &["--quick"], &envs);
    let rows = report["rows"].as_array().unwrap();
    let mut runs: Vec<(String, u64)> = rows
        .iter()
        .map(|r| {
            assert_eq!(r["records"], 8, "{r}");
            assert!(r["records_per_s"].as_f64().unwrap() > 0.0, "{r}");
            assert!(r["verify_mean_ms"].as_f64().unwrap() > 0.0, "{r}");
            (
                r["backend"].as_str().unwrap().to_owned(),
                r["uploaders"].as_u64().unwrap(),
            )
        })
        .collect();
    runs.sort();
    let mut expected = vec![("sqlite".to_owned(), 1), ("sqlite".to_owned(), 2)];
    if postgres.is_some() {
        expected.extend([("postgres".to_owned(), 1), ("postgres".to_owned(), 2)]);
        expected.sort();
    }
    assert_eq!(runs, expected);
}

#[test]
fn rss_with_one_tenant_measures_every_stage() {
    let report = report("rss", &["--tenants", "1"], &[]);
    let rows = report["rows"].as_array().unwrap();
    // Start, then the key set registered, the verifier loaded, the server key loaded.
    assert_eq!(rows.len(), 4, "{rows:?}");
    let last = rows.last().unwrap();
    assert_eq!(last["tenants_loaded"], 1, "{last}");
    assert!(
        last["key_cache_mib"].as_f64().unwrap() > 0.0
            && last["vm_rss_mib"].as_f64().unwrap() > rows[0]["vm_rss_mib"].as_f64().unwrap(),
        "{rows:?}"
    );
}

#[test]
fn lane_quick_runs_an_exact_aggregate_job_over_stored_records() {
    let report = report("lane", &["--quick"], &[]);
    let rows = report["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["records"], 200);
    assert_eq!(rows[0]["exact"], true, "{}", rows[0]);
    assert!(rows[0]["job_wall_s"].as_f64().unwrap() > 0.0);
}

#[test]
fn scale_quick_runs_one_job_on_one_two_and_four_worker_processes() {
    let Some(postgres) = std::env::var("BLINDSIGHT_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        eprintln!("BLINDSIGHT_TEST_POSTGRES_URL is unset: scale needs PostgreSQL, not run");
        return;
    };
    let report = report(
        "scale",
        &["--quick"],
        &[("BLINDSIGHT_BENCH_POSTGRES_URL", postgres)],
    );
    assert!(report["fhe_one_thread_s"].as_f64().unwrap() > 0.0);
    let rows = report["rows"].as_array().unwrap();
    let workers: Vec<u64> = rows
        .iter()
        .map(|r| r["workers"].as_u64().unwrap())
        .collect();
    assert_eq!(workers, [1, 2, 4]);
    for r in rows {
        assert_eq!(r["tasks"], 6, "{r}");
        assert_eq!(
            r["mismatches"], 0,
            "every score decrypts to the clear one: {r}"
        );
        assert!(r["records_per_s"].as_f64().unwrap() > 0.0, "{r}");
    }
}
