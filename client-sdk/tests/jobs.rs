//! Models, jobs and results against a real `blindsight-server` (in-process, loopback,
//! temporary SQLite, one job worker): a key holder registers keys, an app records a small
//! batch, the key holder scores it and runs aggregates on ciphertext, and the decrypted results
//! are exactly the clear reference (`crisis_v1` and `AggregateQuery::evaluate_clear` over the
//! plaintext sessions).

mod common;

use std::time::Duration;

use blindsight_client::api::{
    ApiError, Client, JobRequest, JobStatus, ModelRef, NewTenant, Selection,
};
use blindsight_client::results::{self, RiskRow, Rows};
use blindsight_client::session::Session;
use blindsight_crypto::compute::{AggregateQuery, Tier, crisis_v1};
use blindsight_crypto::schemas::session_v1;
use blindsight_crypto::{KeySet, Value};
use common::{ADMIN, start_server};

const WAIT: Duration = Duration::from_secs(900);

/// Three sessions unlike each other: the example (PHQ-9 item 9 and a wish to be dead), a good
/// week, and a bad one with a method and absolutist words. Two in cohort `pilot-a`.
fn sessions() -> Vec<Session> {
    let example: Session =
        serde_json::from_str(include_str!("../../docs/session-example.json")).unwrap();
    let mut s1 = example.clone();
    s1.record_id = "s-1".into();
    s1.cohort = Some("pilot-a".into());
    let mut s2 = example.clone();
    s2.record_id = "s-2".into();
    s2.cohort = Some("pilot-a".into());
    s2.mood_before = 6;
    s2.mood_after = 8;
    s2.phq9 = vec![0; 9];
    s2.gad7 = vec![1, 0, 0, 0, 0, 0, 0];
    s2.cssrs.wish_dead = false;
    s2.transcript = Some("A good week: I went for a walk with friends and slept well.".into());
    let mut s3 = example;
    s3.record_id = "s-3".into();
    s3.cohort = Some("pilot-b".into());
    s3.mood_before = 2;
    s3.mood_after = 1;
    s3.phq9 = vec![3, 3, 3, 2, 2, 2, 1, 1, 0];
    s3.gad7 = vec![3, 3, 2, 2, 1, 1, 1];
    s3.cssrs.wish_dead = true;
    s3.cssrs.method = true;
    s3.transcript = Some(
        "I always feel worthless and completely alone. Nothing ever helps, it is hopeless.".into(),
    );
    vec![s1, s2, s3]
}

fn clear_values(s: &Session) -> Vec<Value> {
    session_v1().order_values(&s.values().unwrap()).unwrap()
}

fn refused(err: &ApiError) -> (u16, &str) {
    match err {
        ApiError::Refused { status, slug, .. } => (*status, slug.as_str()),
        e => panic!("expected a refusal, got {e}"),
    }
}

#[test]
fn risk_scores_and_aggregates_decrypt_to_the_clear_reference() {
    let dir = tempfile::tempdir().unwrap();
    let url = start_server(dir.path());
    let tenant = Client::new(&url, ADMIN)
        .create_tenant_with(&NewTenant {
            name: "Northside".into(),
            tenant_id: Some("northside".into()),
            min_cohort_size: Some(2),
            privacy_budget: None,
        })
        .unwrap();
    let keyholder = Client::new(&url, tenant.tokens.keyholder.expose());
    let app = Client::new(&url, tenant.tokens.ingest.expose());
    let auditor = Client::new(&url, tenant.tokens.auditor.expose());

    let (secret, public) = KeySet::generate_with_id("north-1", |_| {})
        .unwrap()
        .into_parts();
    keyholder
        .register_keyset("north-1", &public.encode().unwrap())
        .unwrap();
    let bundle = app
        .app_bundle("north-1", &public.manifest().fingerprint().unwrap())
        .unwrap();
    let sessions = sessions();
    for s in &sessions {
        app.upload_record(&s.to_record(&bundle, &tenant.tenant_id).unwrap())
            .unwrap();
    }

    // Risk scores for every record, with the built-in model.
    let created = keyholder
        .create_job(&JobRequest::risk_score(
            "north-1",
            ModelRef::crisis_v1(),
            Selection::default(),
        ))
        .unwrap();
    assert_eq!((created.kind.as_str(), created.records), ("risk_score", 3));
    assert_eq!(created.status, JobStatus::Queued);
    // A wait that ends at once either finds the job finished or says it is still going.
    match keyholder.wait_for_job(&created.job_id, |_| {}, Duration::ZERO) {
        Ok(job) => assert!(job.status.is_finished()),
        Err(ApiError::WaitTimedOut { job_id, status, .. }) => {
            assert_eq!(job_id, created.job_id);
            assert!(!status.is_finished());
        }
        Err(e) => panic!("{e}"),
    }
    let mut seen = Vec::new();
    let job = keyholder
        .wait_for_job(&created.job_id, |j| seen.push(j.status), WAIT)
        .unwrap();
    assert_eq!(job.status, JobStatus::Succeeded, "{:?}", job.error);
    assert_eq!(seen.last(), Some(&JobStatus::Succeeded));
    assert_eq!(job.progress_done, job.progress_total);

    let model = crisis_v1().compile(&session_v1()).unwrap();
    let expected: Vec<RiskRow> = sessions
        .iter()
        .map(|s| {
            let (score, tier) = model.evaluate_clear(&clear_values(s));
            RiskRow {
                record_id: s.record_id.clone(),
                score,
                tier,
            }
        })
        .collect();
    // The reference itself covers more than one tier (so the check means something).
    assert_eq!(expected[0].tier, Tier::High);
    assert_ne!(expected[1].tier, Tier::High);
    let scored = results::fetch(&keyholder, &created.job_id, &secret).unwrap();
    assert_eq!(scored.function, "risk_score/crisis-v1");
    assert_eq!(scored.records, 3);
    assert_eq!(scored.rows, Rows::Risk(expected.clone()));
    let csv = scored.to_csv();
    assert_eq!(csv.lines().count(), 4, "{csv}");
    assert!(
        csv.contains(&format!("s-1,{},high", expected[0].score)),
        "{csv}"
    );

    // Aggregates over cohort pilot-a (two records: the tenant's minimum).
    let query: AggregateQuery = serde_json::from_value(serde_json::json!({"aggregates": [
        {"op": "count"},
        {"op": "mean", "field": "mood_change"},
        {"op": "histogram", "field": "phq9_total", "edges": [5, 10, 15]},
        {"op": "count_at_least", "field": "gad7_total", "threshold": 1},
        {"op": "sum_where", "field": "mood_after", "where_field": "phq9_total", "at_least": 10},
        {"op": "min", "field": "mood_before"},
        {"op": "max", "field": "lex_hopelessness"},
    ]}))
    .unwrap();
    let cohort = Selection {
        cohort: Some("pilot-a".into()),
        ..Selection::default()
    };
    let created = keyholder
        .create_job(&JobRequest::aggregate(
            "north-1",
            query.clone(),
            cohort.clone(),
        ))
        .unwrap();
    assert_eq!(created.records, 2);
    let job = keyholder
        .wait_for_job(&created.job_id, |_| {}, WAIT)
        .unwrap();
    assert_eq!(job.status, JobStatus::Succeeded, "{:?}", job.error);
    let bytes = keyholder.job_result(&job.job_id).unwrap();
    let aggregated = results::decrypt(&job, &bytes, &secret).unwrap();
    let reference = query
        .evaluate_clear(
            &session_v1(),
            &sessions[..2].iter().map(clear_values).collect::<Vec<_>>(),
        )
        .unwrap();
    let Rows::Aggregate(rows) = &aggregated.rows else {
        panic!("{:?}", aggregated.rows)
    };
    assert_eq!(rows.len(), query.aggregates.len());
    for (row, (asked, want)) in rows.iter().zip(query.aggregates.iter().zip(&reference)) {
        assert_eq!(&row.aggregate, asked);
        assert_eq!(&row.value, want, "{}", asked.describe());
    }
    assert_eq!(aggregated.records, 2);
    assert!(aggregated.table().contains("mean(mood_change)"));

    // A cohort below the tenant's minimum is refused before anything is queued.
    let small = Selection {
        cohort: Some("pilot-b".into()),
        ..Selection::default()
    };
    let err = keyholder
        .create_job(&JobRequest::aggregate("north-1", query.clone(), small))
        .unwrap_err();
    assert_eq!(refused(&err), (422, "cohort-too-small"));
    let text = err.to_string();
    assert!(
        text.contains("cohort-too-small") && text.contains("at least 2"),
        "{text}"
    );
    // So is a selection of records by id that is too small.
    let one = Selection {
        record_ids: Some(vec!["s-2".into()]),
        ..Selection::default()
    };
    let err = keyholder
        .create_job(&JobRequest::aggregate("north-1", query, one))
        .unwrap_err();
    assert_eq!(refused(&err), (422, "cohort-too-small"));
    // Scoring one record is not an aggregate: no minimum.
    let one = Selection {
        record_ids: Some(vec!["s-2".into()]),
        ..Selection::default()
    };
    let single = keyholder
        .create_job(&JobRequest::risk_score(
            "north-1",
            ModelRef::crisis_v1(),
            one,
        ))
        .unwrap();
    assert_eq!(single.records, 1);

    // Jobs are listed newest first, to the auditor too, who may fetch the encrypted output
    // (to check it against its receipt) but holds no key that reads it.
    let jobs = auditor.jobs().unwrap();
    assert_eq!(jobs.len(), 3);
    assert_eq!(jobs[0].job_id, single.job_id);
    assert_eq!(jobs[1].job_id, job.job_id);
    assert_eq!(
        auditor.job(&job.job_id).unwrap().status,
        JobStatus::Succeeded
    );
    assert_eq!(
        auditor.job_result(&job.job_id).unwrap(),
        keyholder.job_result(&job.job_id).unwrap()
    );
    let single = keyholder
        .wait_for_job(&single.job_id, |_| {}, WAIT)
        .unwrap();
    let one_row = results::fetch(&keyholder, &single.job_id, &secret).unwrap();
    assert_eq!(one_row.rows, Rows::Risk(vec![expected[1].clone()]));

    // The output of one job is not accepted as another's.
    let err = results::decrypt(
        &job,
        &keyholder.job_result(&single.job_id).unwrap(),
        &secret,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("does not match its request"), "{err}");
}

#[test]
fn models_register_once_per_version_and_bad_requests_queue_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let url = start_server(dir.path());
    let tenant = Client::new(&url, ADMIN)
        .create_tenant("Eastside", Some("eastside"))
        .unwrap();
    let keyholder = Client::new(&url, tenant.tokens.keyholder.expose());

    let mut model = crisis_v1();
    model.id = "crisis-local".into();
    model.version = 2;
    model.thresholds.low = 12;
    let (first, created) = keyholder.register_model(&model).unwrap();
    assert!(created);
    assert_eq!(first.function_id, "risk_score/crisis-local-v2");
    assert_eq!(first.digest, model.digest());
    let (again, created) = keyholder.register_model(&model).unwrap();
    assert!(!created);
    assert_eq!(again.digest, first.digest);

    let mut changed = model.clone();
    changed.thresholds.low = 11;
    let err = keyholder.register_model(&changed).unwrap_err();
    assert_eq!(refused(&err), (409, "model-exists"));
    let mut invalid = model.clone();
    invalid.version = 3;
    invalid.weights.insert("no_such_field".into(), 1);
    let err = keyholder.register_model(&invalid).unwrap_err();
    assert_eq!(refused(&err), (422, "invalid-model"));
    assert!(err.to_string().contains("no_such_field"), "{err}");

    let listed = keyholder.models().unwrap();
    let mine = listed
        .iter()
        .find(|m| m.model_id == "crisis-local")
        .expect("the registered model is listed");
    assert_eq!((mine.version, mine.definition.clone()), (2, model));
    assert!(!mine.builtin);
    assert!(
        listed
            .iter()
            .any(|m| m.builtin && m.model_id == "crisis" && m.version == 1)
    );

    // Refused before anything is queued: an unknown key set.
    let err = keyholder
        .create_job(&JobRequest::risk_score(
            "nope",
            ModelRef::crisis_v1(),
            Selection::default(),
        ))
        .unwrap_err();
    assert_eq!(refused(&err).0, 422);
    assert!(refused(&err).1.starts_with("unknown-key"), "{err}");
    assert!(keyholder.jobs().unwrap().is_empty());
    let err = keyholder.job("job-0000").unwrap_err();
    assert_eq!(refused(&err), (404, "unknown-job"));
}
