//! Set-up steps: what the docs leave to the reader.

use blindsight_client::session::Session;
use blindsight_crypto::AppBundle;

use crate::*;

// Set-up steps.

pub(crate) fn session_example() -> Session {
    serde_json::from_slice(&std::fs::read(workspace().join("docs/session-example.json")).unwrap())
        .unwrap()
}

pub(crate) fn write_sessions(sh: &mut Shell) {
    let mut lines = String::new();
    for (i, transcript) in [true, false].into_iter().enumerate() {
        let mut s = session_example();
        s.record_id = format!("north-{}", i + 1);
        s.cohort = Some("north".into());
        s.mood_after = 4 + i as u32;
        if !transcript {
            s.transcript = None;
        }
        lines.push_str(&serde_json::to_string(&s).unwrap());
        lines.push('\n');
    }
    std::fs::write(sh.cwd().join("sessions.jsonl"), lines).unwrap();
    sh.set("<record-id>", "north-1");
}

/// `training.jsonl`: two practice sessions of one trainee from docs/training-example.json, a
/// week apart.
pub(crate) fn write_training(sh: &mut Shell) {
    let example: blindsight_client::training::TrainingSession =
        serde_json::from_str(include_str!("../../../../docs/training-example.json")).unwrap();
    let mut lines = String::new();
    for i in 0..2u64 {
        let mut s = example.clone();
        s.record_id = format!("practice-{}", i + 1);
        s.recorded_at = s.recorded_at.map(|t| t + i * 7 * 86_400);
        lines.push_str(&serde_json::to_string(&s).unwrap());
        lines.push('\n');
    }
    std::fs::write(sh.cwd().join("training.jsonl"), lines).unwrap();
}

/// The `n`-th JSON block of `MODELS.md` that contains `marker`.
pub(crate) fn models_json(marker: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(workspace().join("docs/MODELS.md")).unwrap();
    let block = text
        .split("```json")
        .skip(1)
        .map(|b| b.split("```").next().unwrap())
        .find(|b| b.contains(marker))
        .unwrap_or_else(|| panic!("MODELS.md has no JSON block with {marker}"));
    serde_json::from_str(block).unwrap()
}

pub(crate) fn write_model_and_query(sh: &mut Shell) {
    let mut model = models_json("\"weights\"");
    model["id"] = "my-model".into();
    std::fs::write(
        sh.cwd().join("my-model.json"),
        serde_json::to_vec_pretty(&model).unwrap(),
    )
    .unwrap();
    std::fs::write(
        sh.cwd().join("analytics.json"),
        serde_json::to_vec_pretty(&models_json("\"aggregates\"")).unwrap(),
    )
    .unwrap();
}

pub(crate) fn check_csv(sh: &mut Shell) {
    let csv = std::fs::read_to_string(sh.cwd().join("out.csv")).expect("out.csv was written");
    assert!(csv.lines().count() > 1, "out.csv: {csv}");
}

pub(crate) fn key_file_placeholder(sh: &mut Shell) {
    sh.set("<key or file>", "audit-key.json");
}

pub(crate) fn file_placeholder(sh: &mut Shell) {
    let key_id = sh.var("<key-id>");
    sh.set("<file>", &format!("keys/{key_id}.public"));
}

pub(crate) fn write_record_envelope(sh: &mut Shell) {
    let bytes = std::fs::read(sh.cwd().join("app.bundle")).expect("app.bundle was downloaded");
    let app = AppBundle::decode_pinned(&bytes, &sh.var("<fingerprint>"))
        .expect("the downloaded bundle matches the fingerprint keygen printed");
    let mut session = session_example();
    session.record_id = "rec-1".into();
    session.cohort = Some("north".into());
    let envelope = session.to_record(&app, "northside").unwrap();
    std::fs::write(sh.cwd().join("record.env"), envelope.encode().unwrap()).unwrap();
}

pub(crate) fn check_proof(sh: &mut Shell) {
    let proof = std::fs::read(sh.cwd().join("rec-1.proof")).expect("rec-1.proof was written");
    assert!(proof.len() > 1000, "rec-1.proof is {} bytes", proof.len());
}

pub(crate) fn check_result(sh: &mut Shell) {
    let result = std::fs::read(sh.cwd().join("result.env")).expect("result.env was written");
    assert!(
        problem_type(&String::from_utf8_lossy(&result)).is_none() && result.len() > 1000,
        "result.env: {} bytes",
        result.len()
    );
}

pub(crate) fn copy_session_example(sh: &mut Shell) {
    std::fs::create_dir_all(sh.cwd().join("docs")).unwrap();
    std::fs::copy(
        workspace().join("docs/session-example.json"),
        sh.cwd().join("docs/session-example.json"),
    )
    .unwrap();
}
