//! Training sessions against a real `blindsight-server` (in-process, loopback, temporary
//! SQLite, one job worker): a platform records practice sessions of two trainees, and the
//! supervising clinic's report (per-trainee and group views on the lane, each session's
//! `bias` v1 score) decrypts to exactly the clear computation. Per-trainee views of one
//! session run although the tenant's minimum cohort is 10: their subject is the trainee.

mod common;

use std::time::Duration;

use blindsight_client::api::{ApiError, Client, JobRequest, NewTenant, Problem, Selection};
use blindsight_client::progress::Quiet;
use blindsight_client::supervisor::{Window, supervisor_query};
use blindsight_client::training::{Message, Role, TrainingSession};
use blindsight_client::{Auditor, KeyHolder, Recorder, Uploaded};
use blindsight_crypto::compute::{Tier, bias_v1};
use blindsight_crypto::schemas::training_v1;
use blindsight_crypto::{KeySet, Value};
use common::{ADMIN, start_server};

const WAIT: Duration = Duration::from_secs(900);

fn say(role: Role, text: &str) -> Message {
    Message {
        role,
        text: text.into(),
    }
}

/// Trainee `t-a`: a skilled session, then a biased one; trainee `t-b`: one session.
fn sessions() -> Vec<TrainingSession> {
    let example: TrainingSession =
        serde_json::from_str(include_str!("../../docs/training-example.json")).unwrap();
    let mut a1 = example.clone();
    a1.record_id = "t-a-1".into();
    a1.trainee = "t-a".into();
    a1.recorded_at = Some(1_795_000_000);
    let mut a2 = example.clone();
    a2.record_id = "t-a-2".into();
    a2.trainee = "t-a".into();
    a2.recorded_at = Some(1_795_100_000);
    a2.supervisor_rating = None;
    a2.messages = vec![
        say(Role::Trainee, "Are you still drinking every night?"),
        say(Role::Client, "Most nights, yes."),
        say(
            Role::Trainee,
            "Honestly, addicts always say that. You should just stop, it's your own fault.",
        ),
        say(Role::Client, "That's not fair."),
        say(Role::Trainee, "Just get over it. Junkies never change."),
    ];
    let mut b1 = example;
    b1.record_id = "t-b-1".into();
    b1.trainee = "t-b".into();
    b1.recorded_at = Some(1_795_050_000);
    b1.scenario = "grief".into();
    b1.talk_share_pct = Some(35);
    vec![a1, a2, b1]
}

fn clear(s: &TrainingSession) -> Vec<Value> {
    training_v1().order_values(&s.values().unwrap()).unwrap()
}

#[test]
fn supervisor_reports_decrypt_to_the_clear_computation() {
    let dir = tempfile::tempdir().unwrap();
    let url = start_server(dir.path());
    let tenant = Client::new(&url, ADMIN)
        .create_tenant_with(&NewTenant {
            name: "Training institute".into(),
            tenant_id: Some("institute".into()),
            min_cohort_size: Some(10),
            privacy_budget: None,
        })
        .unwrap();
    let (secret, public) = KeySet::generate_with_id("train-1", |_| {})
        .unwrap()
        .into_parts();
    let keyholder = KeyHolder::connect(&url, tenant.tokens.keyholder.expose(), "institute");
    keyholder.register(&public).unwrap();
    let pin = public.manifest().fingerprint().unwrap();
    let recorder = Recorder::connect(
        &url,
        tenant.tokens.ingest.expose(),
        "institute",
        "train-1",
        &pin,
    )
    .unwrap();
    let sessions = sessions();
    for s in &sessions {
        assert!(matches!(
            recorder.record_training(s).unwrap(),
            Uploaded::Created(_)
        ));
    }
    // The biased session is what its words say (so the check below means something).
    let biased = clear(&sessions[1]);
    let model = bias_v1().compile(&training_v1()).unwrap();
    assert_eq!(model.evaluate_clear(&biased).1, Tier::High);
    assert_eq!(model.evaluate_clear(&clear(&sessions[0])), (0, Tier::None));

    let report = keyholder
        .supervisor_report("train-1", &secret, &[], 1, &mut Quiet, WAIT)
        .unwrap();
    // The group, then per trainee all, first 1 and last 1.
    assert_eq!(report.views.len(), 1 + 2 * 3);
    let query = supervisor_query();
    for view in &report.views {
        let records: Vec<Vec<Value>> = view
            .plan
            .records
            .iter()
            .map(|id| clear(sessions.iter().find(|s| &s.record_id == id).unwrap()))
            .collect();
        let want = query.evaluate_clear(&training_v1(), &records).unwrap();
        assert_eq!(view.stats.values(), &want[..], "{}", view.label());
    }
    assert_eq!(report.views[0].plan.records, ["t-a-1", "t-b-1", "t-a-2"]);
    let last_a = &report.views[3];
    assert_eq!(
        (last_a.plan.trainee.as_deref(), last_a.plan.window),
        (Some("t-a"), Window::Last(1))
    );
    assert!(last_a.stats.bias_per_session().unwrap() > 0.0);
    assert_eq!(last_a.stats.sessions_with_slur(), 1);
    for (trainee, scores) in &report.scores {
        for s in scores {
            let session = sessions
                .iter()
                .find(|x| x.record_id == s.record_id)
                .unwrap();
            assert_eq!(&session.trainee, trainee);
            assert_eq!(
                (s.score, s.tier),
                model.evaluate_clear(&clear(session)),
                "{}",
                s.record_id
            );
        }
    }
    assert_eq!(report.scores["t-a"].len(), 2);
    let chart = report.chart("t-a").unwrap();
    assert!(chart.contains("first 1 vs last 1"), "{chart}");

    // Patient records keep the tenant's minimum: one session is refused.
    let patient: blindsight_client::session::Session =
        serde_json::from_str(include_str!("../../docs/session-example.json")).unwrap();
    recorder.record(&patient).unwrap();
    let count =
        serde_json::from_value(serde_json::json!({"aggregates": [{"op": "count"}]})).unwrap();
    let err = keyholder
        .client()
        .create_job(&JobRequest::aggregate(
            "train-1",
            count,
            Selection::default(),
        ))
        .unwrap_err();
    match err {
        ApiError::Refused {
            problem: Some(Problem::CohortTooSmall),
            ref detail,
            ..
        } => assert!(detail.contains("at least 10"), "{detail}"),
        e => panic!("expected cohort-too-small, got {e}"),
    }
    // The auditor's checks pass, `cohorts` included: one-session views over training records
    // are within policy.
    let auditor = Auditor::connect(&url, tenant.tokens.auditor.expose());
    let key = auditor.client().audit_key().unwrap();
    let audit = auditor
        .verify(
            vec![hex::decode(&key.public_key).unwrap()],
            &Default::default(),
            &mut Quiet,
        )
        .unwrap();
    assert!(audit.passed, "{}", audit.render());
    assert!(audit.render().contains("cohorts"), "{}", audit.render());

    // An unknown trainee is named.
    let err = keyholder
        .supervisor_report("train-1", &secret, &["t-z".into()], 1, &mut Quiet, WAIT)
        .unwrap_err();
    assert!(err.to_string().contains("t-z"), "{err}");
}
