//! Runs the comparison harness in `--quick` mode, as `cargo test --workspace` (and so CI)
//! does on every run: its table is printed (the numbers are reported, never asserted), and the
//! test checks only that every workload was measured both ways with PBS counted.

use std::process::Command;

#[test]
fn the_quick_comparison_harness_runs_and_reports_every_workload() {
    let json = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("compare-quick.json");
    // The child's output is not captured: the table lands in the test log.
    let status = Command::new(env!("CARGO_BIN_EXE_compare"))
        .args(["--quick", "--json"])
        .arg(&json)
        .status()
        .expect("the compare binary runs");
    assert!(status.success(), "compare --quick failed: {status}");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).expect("the JSON was written")).unwrap();
    assert_eq!(report["quick"], true);
    assert!(report["pbs_latency_ms"].as_f64().unwrap() > 0.0);
    let rows = report["rows"].as_array().unwrap();
    let workloads: Vec<&str> = rows
        .iter()
        .map(|r| r["workload"].as_str().unwrap())
        .collect();
    for expected in [
        "risk_score/crisis-v1",
        "risk_score/bias-v1",
        "aggregate/sum/",
        "aggregate/mean/",
        "aggregate/max/",
        "aggregate/histogram/",
    ] {
        assert!(
            workloads.iter().any(|w| w.starts_with(expected)),
            "{expected} missing from {workloads:?}"
        );
    }
    // The lane table: every aggregate the session layout answers, decoded exactly.
    let lane = report["lane_rows"].as_array().unwrap();
    assert!(lane.len() >= 4, "{lane:?}");
    for row in lane {
        assert_eq!(row["exact"], true, "{row}");
    }
    for row in rows {
        assert!(row["ours_pbs"].as_u64().unwrap() > 0, "{row}");
        assert!(row["lower_bound_s"].as_f64().unwrap() > 0.0, "{row}");
        // Every workload is compared with its straightforward version, by PBS count.
        assert!(row["straightforward_pbs"].as_u64().is_some(), "{row}");
        assert!(row["pbs_ratio"].as_f64().is_some(), "{row}");
    }
}
