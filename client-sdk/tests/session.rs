//! A session in the documented JSON format becomes a `session` v1 record that the server-side
//! verifier accepts and that decrypts to the session's answers and lexicon counts.

use blindsight_client::session::Session;
use blindsight_crypto::schemas::session_v1;
use blindsight_crypto::tfhe::prelude::*;
use blindsight_crypto::tfhe::set_server_key;
use blindsight_crypto::{
    ComputeKey, EncryptedValue, KeySet, PublicBundle, RecordEnvelope, SecretKeys, Verifier, open,
};

/// One key set per test process.
fn keys() -> &'static (SecretKeys, PublicBundle) {
    static KEYS: std::sync::OnceLock<(SecretKeys, PublicBundle)> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| KeySet::generate().unwrap().into_parts())
}

#[test]
fn example_session_round_trips_through_the_verifier() {
    let (secret, public) = keys();
    let app = public.app_bundle();
    let session: Session =
        serde_json::from_str(include_str!("../../docs/session-example.json")).unwrap();

    let upload = session
        .to_record(app, "clinic-1")
        .unwrap()
        .encode()
        .unwrap();
    let record = RecordEnvelope::decode(&upload).unwrap();
    assert_eq!(record.metadata.lexicon_version.as_deref(), Some("lex-1"));

    let key = ComputeKey::from_compressed(&public.server_key().unwrap()).unwrap();
    set_server_key(key.server_key().clone());
    let schema = session_v1();
    let values = Verifier::new(app.clone())
        .verify_and_expand(
            &key,
            &record.proven_list,
            &schema,
            &record.metadata,
            record.transcript_digest().as_ref(),
        )
        .unwrap();
    let field = |name: &str| schema.fields.iter().position(|f| f.name == name).unwrap();
    let ck = secret.client_key();
    let EncryptedValue::U2(item9) = &values[field("phq9_9")] else {
        panic!()
    };
    assert_eq!(FheDecrypt::<u8>::decrypt(item9, ck), 1);
    let EncryptedValue::Bool(wish) = &values[field("cssrs_wish_dead")] else {
        panic!()
    };
    assert_eq!(FheDecrypt::<u8>::decrypt(wish, ck), 1);
    let EncryptedValue::U8(hopeless) = &values[field("lex_hopelessness")] else {
        panic!()
    };
    assert_eq!(FheDecrypt::<u8>::decrypt(hopeless, ck), 1);

    let transcript = open(
        secret.transcript_secret(),
        &record.metadata.transcript_aad(),
        &record.sealed_transcript,
    )
    .unwrap();
    assert_eq!(
        Some(&transcript[..]),
        session.transcript.as_deref().map(str::as_bytes)
    );
}

#[test]
fn out_of_range_answers_are_refused_before_encryption() {
    let (_, public) = keys();
    let mut session: Session =
        serde_json::from_str(include_str!("../../docs/session-example.json")).unwrap();
    session.mood_after = 11;
    let err = session
        .to_record(public.app_bundle(), "clinic-1")
        .unwrap_err();
    assert!(err.to_string().contains("mood_after"), "{err}");
}
