//! The client library against a real `blindsight-server`, started in-process on a loopback
//! port over a temporary SQLite database: tenant, key registration with pinning, record
//! upload with a safe retry, listing, and opening a transcript.

mod common;

use blindsight_client::api::{ApiError, Client, RecordListQuery, Uploaded};
use blindsight_client::session::Session;
use blindsight_crypto::{KeySet, open};
use common::{ADMIN, start_server};

#[test]
fn an_app_and_a_key_holder_work_against_a_real_server() {
    let dir = tempfile::tempdir().unwrap();
    let url = start_server(dir.path());

    let admin = Client::new(&url, ADMIN);
    let tenant = admin.create_tenant("Northside", Some("northside")).unwrap();
    let keyholder = Client::new(&url, tenant.tokens.keyholder.expose());
    let app_client = Client::new(&url, tenant.tokens.ingest.expose());
    let auditor = Client::new(&url, tenant.tokens.auditor.expose());

    let (secret, public) = KeySet::generate_with_id("northside-1", |_| {})
        .unwrap()
        .into_parts();
    let reg = keyholder
        .register_keyset("northside-1", &public.encode().unwrap())
        .unwrap();
    assert!(reg.created);
    let pin = public.manifest().fingerprint().unwrap();
    assert_eq!(reg.manifest_fingerprint, pin);

    // The app loads the bundle pinned; a different pin is refused.
    let bundle = app_client.app_bundle("northside-1", &pin).unwrap();
    let wrong = app_client
        .app_bundle("northside-1", &"0".repeat(64))
        .unwrap_err();
    assert!(wrong.to_string().contains("fingerprint"), "{wrong}");

    let session: Session =
        serde_json::from_str(include_str!("../../docs/session-example.json")).unwrap();
    let record = session.to_record(&bundle, &tenant.tenant_id).unwrap();
    let first = app_client.upload_record(&record).unwrap();
    assert!(matches!(first, Uploaded::Created(ref s) if s.record_id == session.record_id));
    // The retry of an upload whose response was lost: recognised, not stored twice.
    assert_eq!(
        app_client.upload_record(&record).unwrap(),
        Uploaded::AlreadyStored
    );
    // Another record under the same id is refused.
    let mut other = session.clone();
    other.mood_after = (other.mood_after + 1) % 11;
    let err = app_client
        .upload_record(&other.to_record(&bundle, &tenant.tenant_id).unwrap())
        .unwrap_err();
    assert!(err.to_string().contains("record-exists"), "{err}");

    // Auditor lists and fetches the proof; the key holder opens the transcript.
    let listed = auditor.records(&RecordListQuery::default()).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].record_id, session.record_id);
    assert_eq!(
        auditor.proof(&session.record_id).unwrap(),
        record.proven_list
    );
    let sealed = keyholder.sealed_transcript(&session.record_id).unwrap();
    let text = open(
        secret.transcript_secret(),
        &record.metadata.transcript_aad(),
        &sealed,
    )
    .unwrap();
    assert_eq!(
        std::str::from_utf8(&text).unwrap(),
        session.transcript.as_deref().unwrap()
    );
    // Roles hold over the client too.
    match auditor.sealed_transcript(&session.record_id).unwrap_err() {
        ApiError::Refused { status, slug, .. } => {
            assert_eq!((status, slug.as_str()), (403, "forbidden"))
        }
        e => panic!("{e}"),
    }
}

#[test]
fn an_unreachable_server_is_named_with_a_hint() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let err = Client::new(&url, "bst_x")
        .with_max_attempts(2)
        .records(&RecordListQuery::default())
        .unwrap_err();
    assert!(matches!(err, ApiError::Unreachable { .. }));
    assert!(err.to_string().contains(&url), "{err}");
}

/// A server that accepts connections and drops them: idempotent calls are retried, creating a
/// tenant (whose tokens are shown once) is not.
#[test]
fn lost_connections_are_retried_only_where_a_retry_is_safe() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&accepted);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            counter.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    let client = Client::new(&url, "bst_x").with_max_attempts(3);
    assert!(client.records(&RecordListQuery::default()).is_err());
    assert_eq!(accepted.swap(0, Ordering::SeqCst), 3);
    assert!(client.create_tenant("x", None).is_err());
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}
