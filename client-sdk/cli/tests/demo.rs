//! The demo (the README's main job) end to end on small cohorts: an embedded server, a
//! synthetic cohort recorded, scored and aggregated on ciphertext, a synthetic training group
//! scored and analysed for its supervisor, and every decrypted value equal to the plaintext
//! computation.

use blindsight_cli::demo::{self, Options, Quiet};

#[test]
fn a_small_cohort_decrypts_to_the_plaintext_computation_and_its_data_dir_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let kept = dir.path().join("kept");
    let options = Options {
        records: 4,
        seed: 7,
        data_dir: Some(kept.clone()),
    };
    let mut out = Vec::new();
    let report = demo::run(&options, &mut out, &mut Quiet).expect("the demo runs");
    let text = String::from_utf8(out).unwrap();
    assert_eq!(
        report.mismatches, 0,
        "{:?}\n{text}",
        report.mismatch_details
    );
    assert_eq!(
        (report.records, report.scored, report.aggregates),
        (4, 4, 7),
        "{text}"
    );
    // Four records are one of each archetype: every tier once.
    assert_eq!(report.tiers, [1, 1, 1, 1], "{text}");
    // The training group: 3 trainees × 4 sessions, each scored with bias v1, and 10 views
    // (the group's, and per trainee all, first 2 and last 2 sessions).
    assert_eq!(
        (
            report.training_sessions,
            report.training_scored,
            report.training_views
        ),
        (12, 12, 10),
        "{text}"
    );
    assert_eq!(
        report.summary(),
        "demo: records=4 scored=4 aggregates=7 training=12 bias_scored=12 training_views=10 mismatches=0"
    );
    for expected in [
        "[1/9] server: embedded blindsight-server on http://127.0.0.1:",
        "tiers: high 1, moderate 1, low 1, none 1",
        "histogram(phq9_total; [5, 10, 15, 20])",
        "sum(mood_after where phq9_total >= 10)",
        "[7/9] key holder: opened the sealed transcript of demo-",
        "[8/9] training platform: 12 practice session(s) of 3 trainee(s)",
        "Bias scores per practice session (bias v1;",
        "Supervisor report (training v1, decrypted by the key holder)",
        ": bias v1 score per session, first to last (4 sessions)",
        "[9/9] auditor: every claim checked in ",
        "every decrypted value equals the plaintext computation",
    ] {
        assert!(text.contains(expected), "{expected:?} in\n{text}");
    }
    assert!(!text.contains("MISMATCH"), "{text}");
    // Every record appears in the table with its cohort.
    for id in ["demo-0001", "demo-0002", "demo-0003", "demo-0004"] {
        assert!(
            text.lines()
                .any(|l| l.starts_with(id) && (l.contains("north") || l.contains("south"))),
            "{id} in\n{text}"
        );
    }
    // Every practice session appears in the bias table, checked.
    let group = demo::synthetic_training_group(demo::TRAINEES, demo::SESSIONS_PER_TRAINEE, 7);
    for s in &group {
        assert!(
            text.lines()
                .any(|l| l.starts_with(&s.record_id) && l.trim_end().ends_with("ok")),
            "{} in\n{text}",
            s.record_id
        );
    }

    // The data directory is kept: the server's database and the keystore, owner-only.
    assert_eq!(report.data_dir.as_deref(), Some(kept.as_path()));
    assert!(kept.join("server").is_dir());
    assert!(
        text.contains(&format!(
            "audit it offline: blindsight audit verify --db {} --audit-key ",
            kept.join("server").display()
        )),
        "{text}"
    );
    let keystores: Vec<_> = std::fs::read_dir(&kept)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "keystore"))
        .collect();
    assert_eq!(keystores.len(), 1, "{keystores:?}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&keystores[0])
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    blindsight_client::keystore::load(&keystores[0], demo::DEMO_PASSPHRASE).unwrap();
}

#[test]
fn a_cohort_below_the_tenant_minimum_is_scored_and_the_refusal_is_said_clearly() {
    let options = Options {
        records: 1,
        seed: 3,
        data_dir: None,
    };
    let mut out = Vec::new();
    let report = demo::run(&options, &mut out, &mut Quiet).expect("the demo runs");
    let text = String::from_utf8(out).unwrap();
    assert_eq!(
        report.mismatches, 0,
        "{:?}\n{text}",
        report.mismatch_details
    );
    assert_eq!(
        report.summary(),
        "demo: records=1 scored=1 aggregates=0 training=12 bias_scored=12 training_views=10 mismatches=0"
    );
    assert!(
        text.contains("aggregate job refused: the cohort has 1 record(s), below the tenant's minimum cohort of 2"),
        "{text}"
    );
}
