use blindsight_crypto::tfhe::zk::CompactPkeCrs;
use blindsight_crypto::tfhe::{ClientKey, CompactPublicKey, ConfigBuilder};
use blindsight_crypto::{
    AppBundle, Envelope, Error, KeyManifest, Kind, PublicBundle, TFHE_VERSION, params,
};

use crate::common::keys;

#[test]
fn tfhe_version_constant_matches_the_lockfile() {
    let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.lock"))
        .expect("Cargo.lock is committed");
    let needle = format!("name = \"tfhe\"\nversion = \"{TFHE_VERSION}\"");
    assert!(
        lock.contains(&needle),
        "Cargo.lock does not pin tfhe {TFHE_VERSION}"
    );
}

#[test]
fn manifest_round_trips_and_pins_every_component() {
    let k = keys();
    let manifest = k.public.manifest();
    assert_eq!(manifest.tfhe_version, TFHE_VERSION);
    assert_eq!(manifest.parameter_set, params::PARAMETER_SET_ID);
    assert_eq!(
        &KeyManifest::decode(&manifest.encode().unwrap()).unwrap(),
        manifest
    );
    // The fingerprint is stable across encodings.
    assert_eq!(
        manifest.fingerprint().unwrap(),
        manifest.fingerprint().unwrap()
    );
}

#[test]
fn manifest_refuses_unknown_fields_and_other_versions() {
    let manifest = keys().public.manifest().clone();
    let mut json: serde_json::Value = serde_json::to_value(&manifest).unwrap();
    json["extra"] = serde_json::json!(1);
    let bytes = Envelope::encode(
        Kind::Manifest,
        &manifest.key_id,
        b"",
        &serde_json::to_vec(&json).unwrap(),
    )
    .unwrap();
    assert!(matches!(
        KeyManifest::decode(&bytes),
        Err(Error::Malformed { .. })
    ));

    let mut other = manifest.clone();
    other.tfhe_version = "1.0.0".into();
    assert!(KeyManifest::decode(&other.encode().unwrap()).is_err());
    let mut other = manifest.clone();
    other.parameter_set = "another".into();
    assert!(matches!(
        KeyManifest::decode(&other.encode().unwrap()),
        Err(Error::WrongParameterSet { .. })
    ));
    // An envelope whose key id differs from the manifest's.
    let json = serde_json::to_vec(&manifest).unwrap();
    let bytes = Envelope::encode(Kind::Manifest, "ks_other", b"", &json).unwrap();
    assert!(matches!(
        KeyManifest::decode(&bytes),
        Err(Error::WrongKeyId { .. })
    ));
}

#[test]
fn public_bundle_round_trips_with_conformance_and_fingerprints() {
    let k = keys();
    let bytes = k.public.encode().unwrap();
    let decoded = PublicBundle::decode(&bytes).unwrap();
    assert_eq!(decoded.manifest(), k.public.manifest());
    assert_eq!(decoded.server_key_bytes(), k.public.server_key_bytes());
    let (with_key, _server_key) = PublicBundle::decode_with_server_key(&bytes).unwrap();
    assert_eq!(with_key.manifest(), k.public.manifest());
    let app = AppBundle::decode(&k.public.app_bundle().encode().unwrap()).unwrap();
    assert_eq!(app.manifest(), k.public.manifest());
    // The app bundle is not a public bundle and vice versa.
    assert!(matches!(
        PublicBundle::decode(&k.public.app_bundle().encode().unwrap()),
        Err(Error::WrongKind { .. })
    ));
}

#[test]
fn app_bundle_pinning_refuses_another_manifest() {
    let k = keys();
    let bytes = k.public.app_bundle().encode().unwrap();
    let pin = k.public.manifest().fingerprint().unwrap();
    assert!(AppBundle::decode_pinned(&bytes, &pin).is_ok());
    let wrong = "0".repeat(64);
    assert!(matches!(
        AppBundle::decode_pinned(&bytes, &wrong),
        Err(Error::FingerprintMismatch {
            component: "key manifest",
            ..
        })
    ));
}

/// The component envelopes of an encoded app bundle.
fn split_bundle(bytes: &[u8]) -> (String, Vec<Vec<u8>>) {
    let env = Envelope::decode(bytes).unwrap();
    // Parts: u16 count, then (u64 len, bytes)*.
    let mut p = &env.payload[2..];
    let mut parts = Vec::new();
    while !p.is_empty() {
        let len = u64::from_be_bytes(p[..8].try_into().unwrap()) as usize;
        parts.push(p[8..8 + len].to_vec());
        p = &p[8 + len..];
    }
    (env.key_id.to_owned(), parts)
}

fn join_bundle(key_id: &str, parts: &[Vec<u8>]) -> Vec<u8> {
    let mut payload = (parts.len() as u16).to_be_bytes().to_vec();
    for part in parts {
        payload.extend_from_slice(&(part.len() as u64).to_be_bytes());
        payload.extend_from_slice(part);
    }
    Envelope::encode(Kind::AppBundle, key_id, b"", &payload).unwrap()
}

/// Rebuilds the shared app bundle with one component's payload replaced and, when given,
/// another manifest.
fn with_replaced_component(kind: Kind, payload: &[u8], manifest: Option<&KeyManifest>) -> Vec<u8> {
    let (key_id, mut parts) = split_bundle(&keys().public.app_bundle().encode().unwrap());
    for part in &mut parts {
        let e = Envelope::decode(part).unwrap();
        if e.kind == kind {
            *part = Envelope::encode(kind, e.key_id, e.metadata, payload).unwrap();
        }
    }
    if let Some(m) = manifest {
        parts[0] = m.encode().unwrap();
    }
    join_bundle(&key_id, &parts)
}

#[test]
fn a_swapped_component_fails_its_fingerprint() {
    let swapped = with_replaced_component(Kind::TranscriptKey, &[7u8; 32], None);
    assert!(matches!(
        AppBundle::decode(&swapped),
        Err(Error::FingerprintMismatch {
            component: "transcript public key",
            ..
        })
    ));
}

#[test]
fn non_conformant_public_key_and_crs_are_refused() {
    use blindsight_crypto::tfhe::safe_serialization::safe_serialize;

    // A compact public key under the default (non-ZK) parameters.
    let ck = ClientKey::generate(ConfigBuilder::default());
    let pk = CompactPublicKey::new(&ck);
    let mut pk_bytes = Vec::new();
    safe_serialize(&pk, &mut pk_bytes, 1 << 30).unwrap();
    let err = AppBundle::decode(&with_replaced_component(
        Kind::CompactPublicKey,
        &pk_bytes,
        None,
    ));
    // The fingerprint check comes first; decode the key directly for the conformance check.
    assert!(matches!(err, Err(Error::FingerprintMismatch { .. })));

    let k = keys();
    let mut manifest = k.public.manifest().clone();
    manifest.fingerprints.compact_public_key = blindsight_crypto::sha256_hex(&pk_bytes);
    let bundle = with_replaced_component(Kind::CompactPublicKey, &pk_bytes, Some(&manifest));
    assert!(matches!(
        AppBundle::decode(&bundle),
        Err(Error::NonConformant { .. })
    ));

    // A CRS sized for fewer bits than the pinned maximum.
    let small = CompactPkeCrs::from_config(params::config(), 64).unwrap();
    let mut crs_bytes = Vec::new();
    safe_serialize(&small, &mut crs_bytes, 1 << 30).unwrap();
    let mut manifest = k.public.manifest().clone();
    manifest.fingerprints.crs = blindsight_crypto::sha256_hex(&crs_bytes);
    let bundle = with_replaced_component(Kind::Crs, &crs_bytes, Some(&manifest));
    assert!(matches!(
        AppBundle::decode(&bundle),
        Err(Error::NonConformant { .. })
    ));
}

#[test]
fn no_secret_appears_in_debug_output() {
    let k = keys();
    let transcript_secret_hex = {
        // The only way to see the secret's bytes is through the sealed keystore, so compare
        // against what Debug of every type prints instead: it must be short and name no bytes.
        format!("{:?}", k.secret.transcript_secret())
    };
    assert_eq!(transcript_secret_hex, "TranscriptSecretKey { .. }");
    let dbg = format!("{:?}", k.secret);
    assert!(
        dbg.starts_with("SecretKeys { key_id: ") && dbg.ends_with(", .. }"),
        "{dbg}"
    );
    assert!(!dbg.contains("client_key"));
    for dbg in [
        format!("{:?}", k.public),
        format!("{:?}", k.public.app_bundle()),
    ] {
        assert!(dbg.len() < 200, "{dbg}");
    }
    // The public key derived from the secret is not the secret.
    let public = k.secret.transcript_secret().public_key();
    assert_eq!(&public, k.public.app_bundle().transcript_key());
}

#[test]
fn wiping_a_client_key_reaches_every_secret_buffer() {
    let key = ClientKey::generate(params::config());
    let p = params::COMPUTE_PARAMS;
    let compute = p.glwe_dimension.0 * p.polynomial_size.0 + p.lwe_dimension.0;
    let compact = params::PKE_PARAMS.encryption_lwe_dimension.0;
    let wiped = blindsight_crypto::wipe_client_key(key);
    // Compute GLWE + LWE keys, the compact-public-key secret, and the compression secret.
    assert!(wiped > compute + compact, "wiped only {wiped} words");
}
