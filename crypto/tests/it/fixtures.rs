//! Format fixtures: files written under parameter set 2 (records as lane lists), committed,
//! and tested to still load. Parameter set 1's fixtures were retired with it: this build reads
//! nothing of set 1 (see docs/FORMATS.md). Regenerate (only when adding a new version's fixtures, never to "fix" an old one) with
//! `BLINDSIGHT_WRITE_FIXTURES=1 cargo test -p blindsight-crypto --test it -- --ignored write_fixtures`.

use std::path::PathBuf;

use blindsight_crypto::tfhe::CompressedCiphertextListBuilder;
use blindsight_crypto::tfhe::prelude::*;
use blindsight_crypto::tfhe::{FheBool, FheUint8};
use blindsight_crypto::{
    AppBundle, Envelope, Error, FieldType, KeyManifest, KeystoreFile, Kind, MIN_ITERATIONS,
    RecordEnvelope, Verifier, decode_result_list, encode_result_list, encrypt_record, open, seal,
    seal_keystore, transcript_digest,
};

use crate::common::{meta, schema, use_server_key, values};

const PASSPHRASE: &str = "fixture passphrase (test only)";
const TRANSCRIPT: &str = "fixture transcript: test data only";

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v2")
}

fn corpus(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target)
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(dir().join(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

#[test]
#[ignore = "writes fixtures; run explicitly"]
fn write_fixtures() {
    assert!(std::env::var_os("BLINDSIGHT_WRITE_FIXTURES").is_some());
    let k = use_server_key();
    let app = k.public.app_bundle();
    let m = meta("fixture-record");
    let sealed = seal(
        app.transcript_key(),
        &m.transcript_aad(),
        TRANSCRIPT.as_bytes(),
    )
    .unwrap();
    let list = encrypt_record(
        app,
        &schema(),
        &m,
        &values(),
        transcript_digest(&sealed).as_ref(),
    )
    .unwrap();
    let record = RecordEnvelope {
        metadata: m,
        proven_list: list.encode().unwrap(),
        sealed_transcript: sealed.clone(),
    };
    let mut builder = CompressedCiphertextListBuilder::new();
    builder
        .push(FheBool::encrypt(true, k.secret.client_key()))
        .push(FheUint8::encrypt(200u8, k.secret.client_key()));
    let results = encode_result_list(&builder.build().unwrap()).unwrap();
    let keystore = seal_keystore(&k.secret, PASSPHRASE, MIN_ITERATIONS).unwrap();
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("manifest.bin", k.public.manifest().encode().unwrap()),
        ("app_bundle.bin", app.encode().unwrap()),
        ("record.bin", record.encode().unwrap()),
        ("lane_list.bin", record.proven_list.clone()),
        ("result_list.bin", results.clone()),
        ("sealed_transcript.bin", sealed),
        ("keystore.bin", keystore),
    ];
    std::fs::create_dir_all(dir()).unwrap();
    for (name, bytes) in &files {
        std::fs::write(dir().join(name), bytes).unwrap();
    }
    // Seed corpora: the small valid fixtures, and a few named bad ones.
    let seeds: Vec<(&str, &str, Vec<u8>)> = vec![
        ("envelope", "valid-manifest", files[0].1.clone()),
        (
            "envelope",
            "valid-small",
            Envelope::encode(Kind::Record, "k", b"{}", b"x").unwrap(),
        ),
        ("manifest", "valid", files[0].1.clone()),
        ("record", "valid", files[2].1.clone()),
        ("lane_list", "valid", files[3].1.clone()),
        ("result_list", "valid", files[4].1.clone()),
        ("sealed_transcript", "valid", files[5].1.clone()),
        ("keystore", "valid", files[6].1.clone()),
        ("app_bundle", "bad-manifest-only", files[0].1.clone()),
        ("public_bundle", "bad-app-bundle", files[0].1.clone()),
        ("envelope", "bad-empty", Vec::new()),
    ];
    for (target, name, bytes) in seeds {
        std::fs::create_dir_all(corpus(target)).unwrap();
        std::fs::write(corpus(target).join(name), bytes).unwrap();
    }
}

#[test]
fn v2_fixtures_still_load() {
    let manifest = KeyManifest::decode(&read("manifest.bin")).unwrap();
    let app = AppBundle::decode_pinned(&read("app_bundle.bin"), &manifest.fingerprint().unwrap())
        .unwrap();
    let record = RecordEnvelope::decode(&read("record.bin")).unwrap();
    assert_eq!(record.metadata.record_id, "fixture-record");
    assert_eq!(record.proven_list, read("lane_list.bin"));
    // The proof still verifies against the fixture's public material, its own metadata and its
    // transcript. The committed fixture was proven under binding v2, before transcripts were
    // bound: stored records of that version keep verifying, ingest refuses them.
    let verifier = Verifier::new(app);
    let transcript = record.transcript_digest();
    verifier
        .verify_stored_record(
            &record.proven_list,
            &schema(),
            &record.metadata,
            transcript.as_ref(),
        )
        .unwrap();
    assert!(matches!(
        verifier.verify_record(
            &record.proven_list,
            &schema(),
            &record.metadata,
            transcript.as_ref()
        ),
        Err(Error::LegacyProof)
    ));
    decode_result_list(&read("result_list.bin"), &[FieldType::Bool, FieldType::U8]).unwrap();
    let secret = KeystoreFile::decode(&read("keystore.bin"))
        .unwrap()
        .open(PASSPHRASE)
        .unwrap();
    assert_eq!(secret.key_id(), manifest.key_id);
    let opened = open(
        secret.transcript_secret(),
        &record.metadata.transcript_aad(),
        &read("sealed_transcript.bin"),
    )
    .unwrap();
    assert_eq!(&opened[..], TRANSCRIPT.as_bytes());
}
