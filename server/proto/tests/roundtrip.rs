//! Every `/v1` body type survives JSON both ways unchanged, as the server writes it and the
//! client reads it (and back), with the field names docs/API.md shows; unknown fields are
//! refused where the server refuses them.

use blindsight_crypto::compute::{Aggregate, AggregateQuery, crisis_v1};
use blindsight_proto::*;
use serde::Serialize;
use serde::de::DeserializeOwned;

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(value: T) -> String {
    let text = serde_json::to_string(&value).unwrap();
    let back: T = serde_json::from_str(&text).unwrap();
    assert_eq!(back, value, "{text}");
    text
}

fn job() -> Job {
    Job {
        job_id: "job-1".into(),
        tenant_id: "t".into(),
        key_id: "k".into(),
        kind: "aggregate".into(),
        spec: "{}".into(),
        status: JobStatus::Running,
        attempts: 1,
        max_attempts: 3,
        progress_done: 2,
        progress_total: 8,
        error: None,
        created_at: 1,
        started_at: Some(2),
        finished_at: None,
        tasks: Some(JobTasks {
            total: 4,
            succeeded: 1,
            running: 2,
        }),
    }
}

fn summary() -> RecordSummary {
    RecordSummary {
        seq: 7,
        record_id: "r-1".into(),
        key_id: "k".into(),
        schema_id: "session".into(),
        schema_version: 1,
        cohort: Some("a".into()),
        lexicon_version: Some("lex-1".into()),
        recorded_at: Some(1_800_000_000),
        received_at: 1_800_000_001,
        proven_list_digest: "ab".repeat(32),
        has_transcript: true,
        sealed_transcript_digest: Some("cd".repeat(32)),
        rollup_day: Some(20_833),
    }
}

fn entry() -> Entry {
    Entry {
        seq: 1,
        tenant_id: Some("t".into()),
        at: 5,
        kind: "tenant.created".into(),
        body: "{}".into(),
        prev_hash: "00".repeat(32),
        hash: "11".repeat(32),
    }
}

#[test]
fn every_body_round_trips() {
    let tenant = round_trip(TenantCreated {
        tenant_id: "t".into(),
        name: "North".into(),
        min_cohort_size: 10,
        privacy_budget: None,
        tokens: TenantTokens {
            keyholder: Token::new("bst_k".into()),
            ingest: Token::new("bst_i".into()),
            auditor: Token::new("bst_a".into()),
        },
    });
    assert!(tenant.contains(r#""keyholder":"bst_k""#), "{tenant}");
    round_trip(NewTenant {
        name: "North".into(),
        tenant_id: Some("t".into()),
        min_cohort_size: Some(2),
        privacy_budget: Some(blindsight_crypto::dp::Privacy {
            epsilon: 2.0,
            delta: 1e-6,
        }),
    });
    round_trip(KeysetRegistered {
        key_id: "k".into(),
        manifest_fingerprint: "f".into(),
        parameter_set: "p".into(),
        created: true,
    });
    round_trip(SchemaRegistered {
        schema_id: "s".into(),
        version: 1,
        digest: "d".into(),
        created: false,
    });
    round_trip(SchemaList {
        schemas: vec![SchemaInfo {
            schema_id: "s".into(),
            version: 1,
            definition: "{}".into(),
            digest: "d".into(),
        }],
    });
    round_trip(RecordStored {
        record_id: "r".into(),
        seq: 1,
        proven_list_digest: "d".into(),
    });
    round_trip(RecordPage {
        records: vec![summary()],
        next_after: Some(7),
    });
    round_trip(RecordListQuery {
        cohort: Some("a b".into()),
        since: Some(1),
        until: None,
        after: Some(3),
        limit: Some(10),
    });
    round_trip(ModelRegistered {
        model_id: "m".into(),
        version: 1,
        digest: "d".into(),
        function_id: "risk_score/m-v1".into(),
    });
    round_trip(ModelList {
        models: vec![ModelInfo {
            model_id: "crisis".into(),
            version: 1,
            digest: "d".into(),
            function_id: "risk_score/crisis-v1".into(),
            builtin: true,
            definition: crisis_v1(),
        }],
    });
    let request = JobRequest::aggregate(
        "k",
        AggregateQuery {
            aggregates: vec![Aggregate::Count],
            privacy: Some(blindsight_crypto::dp::Privacy {
                epsilon: 1.0,
                delta: 1e-6,
            }),
        },
        Selection {
            cohort: Some("a".into()),
            ..Selection::default()
        },
    );
    round_trip(request.clone());
    round_trip(JobRequest::risk_score(
        "k",
        ModelRef::crisis_v1(),
        Selection::default(),
    ));
    round_trip(JobSpec {
        request: request.clone(),
        model: None,
        records: vec!["r-1".into()],
        rollup: Vec::new(),
        task_records: Some(64),
    });
    round_trip(JobSpec {
        request,
        model: None,
        records: Vec::new(),
        rollup: vec![
            RollupPart {
                cohort: Some("north".into()),
                day: 20_833,
                part: 0,
                records: 16_384,
            },
            RollupPart {
                cohort: None,
                day: 20_834,
                part: 1,
                records: 3,
            },
        ],
        task_records: None,
    });
    round_trip(JobCreated {
        job_id: "job-1".into(),
        kind: "aggregate".into(),
        records: 12,
        status: JobStatus::Queued,
    });
    round_trip(JobList { jobs: vec![job()] });
    round_trip(JobReceipt {
        receipt: "{}".into(),
        key_id: "k".into(),
        signature: "s".into(),
    });
    round_trip(AuditKey::ed25519(&[7; 32]));
    round_trip(AuditQuery {
        after: Some(0),
        limit: Some(100),
    });
    round_trip(AuditPage {
        entries: vec![entry()],
        next_after: None,
    });
    round_trip(SignedHead {
        tenant_id: None,
        seq: 0,
        hash: "00".repeat(32),
        at: 1,
        prev_head: Some("00".repeat(32)),
        key_id: "k".into(),
        signature: "s".into(),
    });
    for status in JobStatus::ALL {
        round_trip(status);
        assert_eq!(JobStatus::from_name(status.name()), Some(status));
    }
}

#[test]
fn requests_with_unknown_fields_are_refused() {
    for text in [
        r#"{"name":"x","extra":1}"#,
        r#"{"name":"x","tenant_id":"t","min_cohort":2}"#,
    ] {
        assert!(serde_json::from_str::<NewTenant>(text).is_err(), "{text}");
    }
    let job =
        r#"{"kind":"risk_score","key_id":"k","model":{"id":"crisis","version":1},"extra":true}"#;
    assert!(serde_json::from_str::<JobRequest>(job).is_err());
    let select = r#"{"kind":"aggregate","key_id":"k","query":{"aggregates":[{"op":"count"}]},"select":{"cohorts":"a"}}"#;
    assert!(serde_json::from_str::<JobRequest>(select).is_err());
}

#[test]
fn a_listed_spec_is_read_frozen_or_bare() {
    let frozen = r#"{"request":{"kind":"aggregate","key_id":"k1","query":{"aggregates":[{"op":"count"}]}},"records":["r1"],"added_later":1}"#;
    let spec = ListedSpec::parse(frozen).unwrap();
    assert_eq!(spec.records, Some(vec!["r1".to_owned()]));
    let bare = r#"{"kind":"risk_score","key_id":"k1","model":{"id":"crisis","version":1}}"#;
    assert_eq!(
        ListedSpec::parse(bare).unwrap().request.kind(),
        "risk_score"
    );
    assert!(ListedSpec::parse("{}").is_err());
}

#[test]
fn query_strings_carry_every_present_parameter() {
    let q = RecordListQuery {
        cohort: Some("a&b".into()),
        since: Some(5),
        until: None,
        after: None,
        limit: Some(1000),
    };
    assert_eq!(q.to_query_string(), "cohort=a%26b&since=5&limit=1000");
    assert_eq!(
        AuditQuery {
            after: Some(9),
            limit: None
        }
        .to_query_string(),
        "after=9"
    );
}

#[test]
fn a_summary_rebuilds_the_metadata_its_proof_is_bound_to() {
    let meta = summary().metadata("t").unwrap();
    assert_eq!(meta.tenant, "t");
    assert_eq!(meta.recorded_at, Some(1_800_000_000));
    let mut bad = summary();
    bad.schema_version = -1;
    assert!(bad.metadata("t").is_none());
}
