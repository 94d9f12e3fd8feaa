//! The SDK's role types against a real `blindsight-server` (in-process, loopback, temporary
//! SQLite): an admin creates a tenant, the key holder registers keys and a custom schema, an
//! app records values of that schema (an out-of-range value is refused with the field named
//! and nothing is uploaded), the key holder opens the transcript, the auditor verifies.

mod common;

use blindsight_client::api::{NewTenant, Problem, RecordListQuery, Uploaded};
use blindsight_client::progress::Quiet;
use blindsight_client::record::{NewRecord, build_envelope};
use blindsight_client::{Admin, Auditor, Error, KeyHolder, Recorder};
use blindsight_crypto::{FieldSpec, FieldType, KeySet, RecordSchema, RecordValues, Value};
use common::{ADMIN, start_server};

fn journal() -> RecordSchema {
    let field = |name: &str, ty, max| FieldSpec {
        name: name.into(),
        ty,
        min: 0,
        max,
    };
    RecordSchema {
        id: "journal".into(),
        version: 1,
        fields: vec![
            field("mood", FieldType::U4, 10),
            field("slept_well", FieldType::Bool, 1),
        ],
        lane: Default::default(),
    }
}

fn values(mood: u32) -> RecordValues {
    RecordValues::from([
        ("mood".to_owned(), Value::Uint(mood)),
        ("slept_well".to_owned(), Value::Bool(true)),
    ])
}

#[test]
fn each_role_does_its_part_with_a_custom_schema() {
    let dir = tempfile::tempdir().unwrap();
    let url = start_server(dir.path());
    let tenant = Admin::connect(&url, ADMIN)
        .create_tenant(&NewTenant {
            name: "Journals".into(),
            tenant_id: Some("journals".into()),
            min_cohort_size: Some(2),
            privacy_budget: None,
        })
        .unwrap();
    let keyholder = KeyHolder::connect(&url, tenant.tokens.keyholder.expose(), "journals");
    let (secret, public) = KeySet::generate_with_id("journals-1", |_| {})
        .unwrap()
        .into_parts();
    let registered = keyholder.register(&public).unwrap();
    let schema = journal();
    let (_, created) = keyholder.register_schema(&schema).unwrap();
    assert!(created);
    let (_, created) = keyholder.register_schema(&schema).unwrap();
    assert!(
        !created,
        "the same schema again is not a second registration"
    );

    // A wrong pin is refused before anything is recorded.
    let err = Recorder::connect(
        &url,
        tenant.tokens.ingest.expose(),
        "journals",
        "journals-1",
        &"0".repeat(64),
    )
    .unwrap_err();
    assert!(err.to_string().contains("fingerprint"), "{err}");
    let recorder = Recorder::connect(
        &url,
        tenant.tokens.ingest.expose(),
        "journals",
        "journals-1",
        &registered.manifest_fingerprint,
    )
    .unwrap();

    let entry = NewRecord {
        schema: &schema,
        record_id: "j-1".into(),
        cohort: Some("spring".into()),
        recorded_at: Some(1_800_000_000),
        lexicon_version: None,
        values: values(7),
        transcript: Some("slept well, walked to work".into()),
    };
    assert!(matches!(
        recorder.record_values(&entry).unwrap(),
        Uploaded::Created(ref s) if s.record_id == "j-1"
    ));
    // The sans-I/O path builds the same kind of envelope without a server.
    let envelope = build_envelope(recorder.app_bundle(), "journals", &entry).unwrap();
    assert_eq!(envelope.metadata.schema_id, "journal");

    // Out of range: refused on the device with the field named; nothing is uploaded.
    let bad = NewRecord {
        record_id: "j-2".into(),
        values: values(11),
        ..entry.clone()
    };
    let err = recorder.record_values(&bad).unwrap_err();
    assert!(
        matches!(err, Error::Crypto(_)) && err.to_string().contains("mood"),
        "{err}"
    );
    let listed = keyholder
        .client()
        .records(&RecordListQuery::default())
        .unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].schema_id, "journal");

    // Only the key holder opens the transcript; the app's token may not fetch it.
    assert_eq!(
        keyholder.open_transcript("j-1", &secret).unwrap(),
        "slept well, walked to work"
    );
    let refused = recorder.client().sealed_transcript("j-1").unwrap_err();
    assert_eq!(refused.problem(), Some(Problem::Forbidden), "{refused}");

    // The auditor, holding only the published key, verifies everything.
    let auditor = Auditor::connect(&url, tenant.tokens.auditor.expose());
    let key = auditor.client().audit_key().unwrap();
    let report = auditor
        .verify(
            vec![hex::decode(&key.public_key).unwrap()],
            &Default::default(),
            &mut Quiet,
        )
        .unwrap();
    assert!(report.passed, "{}", report.render());
}
