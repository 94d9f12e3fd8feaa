use blindsight_crypto::tfhe::prelude::*;
use blindsight_crypto::tfhe::{FheUint8, set_server_key};
use blindsight_crypto::{
    EncryptedValue, Error, FieldSpec, LaneList, RecordEnvelope, RecordSchema, Value, Verifier,
    encrypt_record, limits, seal, transcript_digest,
};

use crate::common::{keys, meta, schema, use_server_key, values};

fn verifier() -> Verifier {
    Verifier::new(keys().public.app_bundle().clone())
}

fn proven(record_id: &str) -> Vec<u8> {
    let k = keys();
    let list = encrypt_record(
        k.public.app_bundle(),
        &schema(),
        &meta(record_id),
        &values(),
        None,
    )
    .unwrap();
    list.encode().unwrap()
}

#[test]
fn encrypt_verify_expand_decrypt_round_trip() {
    let k = use_server_key();
    let bytes = proven("rec-1");
    let values = verifier()
        .verify_and_expand(&k.compute, &bytes, &schema(), &meta("rec-1"), None)
        .unwrap();
    let ck = k.secret.client_key();
    let clear: Vec<u64> = values
        .iter()
        .map(|v| match v {
            EncryptedValue::U4(x) => u64::from(FheDecrypt::<u8>::decrypt(x, ck)),
            EncryptedValue::U2(x) => u64::from(FheDecrypt::<u8>::decrypt(x, ck)),
            EncryptedValue::Bool(x) => u64::from(FheDecrypt::<u8>::decrypt(x, ck)),
            EncryptedValue::U8(x) => u64::from(FheDecrypt::<u8>::decrypt(x, ck)),
            EncryptedValue::U10(x) => u64::from(FheDecrypt::<u16>::decrypt(x, ck)),
            other => panic!("unexpected type {other:?}"),
        })
        .collect();
    assert_eq!(clear, vec![7, 2, 1, 199, 999]);
    assert!(values.iter().all(|v| !v.is_trivial()));
}

#[test]
fn a_proof_bound_to_record_a_fails_for_record_b() {
    let bytes = proven("rec-a");
    let v = verifier();
    assert!(
        v.verify_record(&bytes, &schema(), &meta("rec-a"), None)
            .is_ok()
    );
    assert!(matches!(
        v.verify_record(&bytes, &schema(), &meta("rec-b"), None),
        Err(Error::ProofInvalid)
    ));
    // Any other bound field too: another tenant, cohort or time.
    let mut m = meta("rec-a");
    m.tenant = "tenant-b".into();
    assert!(matches!(
        v.verify_record(&bytes, &schema(), &m, None),
        Err(Error::ProofInvalid)
    ));
    let mut m = meta("rec-a");
    m.cohort = None;
    assert!(matches!(
        v.verify_record(&bytes, &schema(), &m, None),
        Err(Error::ProofInvalid)
    ));
}

#[test]
fn a_tampered_list_fails() {
    let bytes = proven("rec-t");
    let v = verifier();
    // Flip bits spread over the serialized list (ciphertext and proof); each must be refused
    // with a typed error, never accepted and never a panic.
    let step = bytes.len() / 24;
    for i in (step..bytes.len() - 1).step_by(step) {
        let mut t = bytes.clone();
        t[i] ^= 0x10;
        let r = v.verify_record(&t, &schema(), &meta("rec-t"), None);
        assert!(
            matches!(
                r,
                Err(Error::ProofInvalid
                    | Error::Malformed { .. }
                    | Error::NonConformant { .. }
                    | Error::ShapeMismatch(_))
            ),
            "flip at {i} gave {:?}",
            r.map(|_| ())
        );
    }
}

#[test]
fn metadata_mismatch_is_refused_before_verifying() {
    let bytes = proven("rec-m");
    let v = verifier();
    let mut m = meta("rec-m");
    m.key_id = "ks_other".into();
    assert!(matches!(
        v.verify_record(&bytes, &schema(), &m, None),
        Err(Error::MetadataMismatch(_))
    ));
    let mut m = meta("rec-m");
    m.schema_version = 2;
    assert!(matches!(
        v.verify_record(&bytes, &schema(), &m, None),
        Err(Error::MetadataMismatch(_))
    ));
}

#[test]
fn shape_mismatch_is_refused() {
    let bytes = proven("rec-s");
    let v = verifier();
    let mut other = schema();
    other.fields[0] = FieldSpec::uint("mood", 0, 200); // u8 where the list has u4
    assert!(matches!(
        v.verify_record(&bytes, &other, &meta("rec-s"), None),
        Err(Error::ShapeMismatch(_))
    ));
    let mut shorter = schema();
    shorter.fields.pop();
    assert!(matches!(
        v.verify_record(&bytes, &shorter, &meta("rec-s"), None),
        Err(Error::ShapeMismatch(_))
    ));
}

#[test]
fn missing_unknown_and_out_of_range_values_name_the_field() {
    let k = keys();
    let bundle = k.public.app_bundle();
    let mut v = values();
    v.remove("item");
    let Err(err) = encrypt_record(bundle, &schema(), &meta("r"), &v, None) else {
        panic!("accepted")
    };
    assert!(
        matches!(&err, Error::InvalidField { field, .. } if field == "item"),
        "{err}"
    );

    let mut v = values();
    v.insert("mood".into(), Value::Uint(11));
    let Err(err) = encrypt_record(bundle, &schema(), &meta("r"), &v, None) else {
        panic!("accepted")
    };
    assert!(
        matches!(&err, Error::InvalidField { field, .. } if field == "mood"),
        "{err}"
    );
    assert!(err.to_string().contains("out of range 0..=10"));

    let mut v = values();
    v.insert("flag".into(), Value::Uint(1));
    assert!(matches!(
        encrypt_record(bundle, &schema(), &meta("r"), &v, None),
        Err(Error::InvalidField { field, .. }) if field == "flag"
    ));

    let mut v = values();
    v.insert("nonsense".into(), Value::Uint(1));
    assert!(matches!(
        encrypt_record(bundle, &schema(), &meta("r"), &v, None),
        Err(Error::InvalidField { field, .. }) if field == "nonsense"
    ));
}

#[test]
fn invalid_schemas_are_refused() {
    let mut s = schema();
    s.fields.push(FieldSpec::uint("mood", 0, 3));
    assert!(matches!(s.validate(), Err(Error::InvalidSchema { .. })));
    let too_wide = RecordSchema {
        id: "wide".into(),
        version: 1,
        fields: (0..17)
            .map(|i| FieldSpec::uint(&format!("f{i}"), 0, u32::MAX))
            .collect(),
        lane: Default::default(),
    };
    assert!(matches!(
        too_wide.validate(),
        Err(Error::InvalidSchema { .. })
    ));
    let mut s = schema();
    s.fields[0].max = 16; // does not fit in u4
    assert!(matches!(s.validate(), Err(Error::InvalidSchema { .. })));
    // The 40-field u8 benchmark record fits the CRS.
    let forty = RecordSchema {
        id: "forty".into(),
        version: 1,
        fields: (0..40)
            .map(|i| FieldSpec::uint(&format!("f{i}"), 0, 255))
            .collect(),
        lane: Default::default(),
    };
    forty.validate().unwrap();
}

#[test]
fn oversize_list_is_refused_before_decoding() {
    let big = vec![0u8; limits::LANE_LIST as usize + 1];
    assert!(matches!(
        LaneList::decode(&big),
        Err(Error::TooLarge { .. })
    ));
}

#[test]
fn trivial_ciphertexts_are_detected() {
    let k = use_server_key();
    let trivial = EncryptedValue::U8(FheUint8::encrypt_trivial(5u8));
    assert!(trivial.is_trivial());
    let real = EncryptedValue::U8(FheUint8::encrypt(5u8, k.secret.client_key()));
    assert!(!real.is_trivial());
    set_server_key(k.server_key.clone());
}

#[test]
fn record_envelope_round_trips() {
    let k = keys();
    let m = meta("rec-e");
    let sealed = seal(
        k.public.app_bundle().transcript_key(),
        &m.transcript_aad(),
        b"hello",
    )
    .unwrap();
    let env = RecordEnvelope {
        metadata: m.clone(),
        proven_list: proven("rec-e"),
        sealed_transcript: sealed.clone(),
    };
    let bytes = env.encode().unwrap();
    let back = RecordEnvelope::decode(&bytes).unwrap();
    assert_eq!(back.metadata, m);
    assert_eq!(back.sealed_transcript, sealed);
    assert!(
        verifier()
            .verify_record(&back.proven_list, &schema(), &back.metadata, None)
            .is_ok()
    );
}

#[test]
fn batch_verification_reports_each_record_in_order() {
    let good = |id: &str| RecordEnvelope {
        metadata: meta(id),
        proven_list: proven(id),
        sealed_transcript: Vec::new(),
    };
    let mut replayed = good("rec-x");
    replayed.metadata.record_id = "rec-y".into();
    let records = [good("rec-p"), replayed, good("rec-q")];
    let results = verifier().verify_records(&records, &schema());
    assert!(results[0].is_ok());
    assert!(matches!(results[1], Err(Error::ProofInvalid)));
    assert!(results[2].is_ok());
}

/// The proof binds the sealed transcript's digest: a record whose transcript was changed after
/// proving (one byte), removed, or swapped for another record's fails at ingest.
#[test]
fn the_proof_binds_the_sealed_transcript() {
    let k = keys();
    let app = k.public.app_bundle();
    let m = meta("rec-transcript");
    let sealed = seal(app.transcript_key(), &m.transcript_aad(), b"we talked").unwrap();
    let digest = transcript_digest(&sealed);
    assert!(digest.is_some());
    assert_eq!(transcript_digest(&[]), None);
    let list = encrypt_record(app, &schema(), &m, &values(), digest.as_ref())
        .unwrap()
        .encode()
        .unwrap();
    let v = verifier();
    v.verify_record(&list, &schema(), &m, digest.as_ref())
        .unwrap();

    let mut flipped = sealed.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    let other = seal(app.transcript_key(), &m.transcript_aad(), b"we talked").unwrap();
    for (what, transcript) in [
        ("one byte flipped", transcript_digest(&flipped)),
        ("removed", None),
        ("sealed again", transcript_digest(&other)),
    ] {
        for stored in [false, true] {
            let r = if stored {
                v.verify_stored_record(&list, &schema(), &m, transcript.as_ref())
            } else {
                v.verify_record(&list, &schema(), &m, transcript.as_ref())
            };
            assert!(
                matches!(r, Err(Error::ProofInvalid)),
                "transcript {what} (stored: {stored}): {r:?}"
            );
        }
    }
}

/// Records proven before transcripts were bound (binding v2) keep verifying where they are
/// stored; ingest takes binding v3 only.
#[test]
fn a_legacy_proof_verifies_as_stored_only() {
    let k = keys();
    let app = k.public.app_bundle();
    let m = meta("rec-legacy");
    let schema = schema();
    let slots = schema
        .slot_map()
        .unwrap()
        .encode(&schema.order_values(&values()).unwrap());
    let list = app
        .lane_key()
        .encrypt_and_prove(&slots, app.crs(), &m.legacy_binding())
        .unwrap()
        .encode()
        .unwrap();
    let v = verifier();
    v.verify_stored_record(&list, &schema, &m, None).unwrap();
    // Ingest names it as an older SDK's proof.
    let err = v.verify_record(&list, &schema, &m, None).unwrap_err();
    assert!(matches!(err, Error::LegacyProof), "{err}");
    assert!(err.to_string().contains("update the SDK"));
    // Under another record's metadata it fails either way.
    assert!(matches!(
        v.verify_stored_record(&list, &schema, &meta("rec-other"), None),
        Err(Error::ProofInvalid)
    ));
}
