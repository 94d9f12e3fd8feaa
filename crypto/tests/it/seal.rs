use blindsight_crypto::{Error, SealedTranscript, TranscriptPublicKey, open, seal};

use crate::common::{bit_flips, keys, meta, truncations};

const TEXT: &[u8] = "I haven't slept — everything feels heavy.".as_bytes();

#[test]
fn round_trip() {
    let k = keys();
    let aad = meta("r1").transcript_aad();
    let sealed = seal(k.public.app_bundle().transcript_key(), &aad, TEXT).unwrap();
    let opened = open(k.secret.transcript_secret(), &aad, &sealed).unwrap();
    assert_eq!(&opened[..], TEXT);
    // Sealing twice gives different boxes (fresh ephemeral key).
    let again = seal(k.public.app_bundle().transcript_key(), &aad, TEXT).unwrap();
    assert_ne!(sealed, again);
}

#[test]
fn wrong_metadata_fails() {
    let k = keys();
    let sealed = seal(
        k.public.app_bundle().transcript_key(),
        &meta("r1").transcript_aad(),
        TEXT,
    )
    .unwrap();
    let err = open(
        k.secret.transcript_secret(),
        &meta("r2").transcript_aad(),
        &sealed,
    );
    assert!(matches!(err, Err(Error::Seal(_))));
    // The proof binding of the same record is not the transcript AAD (domain separation).
    let err = open(
        k.secret.transcript_secret(),
        &meta("r1").binding(None),
        &sealed,
    );
    assert!(matches!(err, Err(Error::Seal(_))));
}

#[test]
fn wrong_key_fails() {
    let k = keys();
    let other = blindsight_crypto::TranscriptSecretKey::generate().unwrap();
    let aad = meta("r1").transcript_aad();
    let sealed = seal(k.public.app_bundle().transcript_key(), &aad, TEXT).unwrap();
    assert!(matches!(open(&other, &aad, &sealed), Err(Error::Seal(_))));
}

#[test]
fn every_bit_flip_and_truncation_fails() {
    let k = keys();
    let aad = meta("r1").transcript_aad();
    let sealed = seal(k.public.app_bundle().transcript_key(), &aad, TEXT).unwrap();
    for flipped in bit_flips(&sealed, usize::MAX) {
        assert!(open(k.secret.transcript_secret(), &aad, &flipped).is_err());
    }
    for prefix in truncations(&sealed, usize::MAX) {
        assert!(open(k.secret.transcript_secret(), &aad, prefix).is_err());
    }
}

#[test]
fn low_order_recipient_is_refused() {
    let zero = TranscriptPublicKey::from_bytes([0u8; 32]);
    assert!(matches!(seal(&zero, b"aad", TEXT), Err(Error::Seal(_))));
}

#[test]
fn oversize_and_unknown_versions_are_refused() {
    let k = keys();
    let big = vec![0u8; (blindsight_crypto::limits::TRANSCRIPT + 1) as usize];
    assert!(matches!(
        seal(k.public.app_bundle().transcript_key(), b"", &big),
        Err(Error::TooLarge { .. })
    ));
    let mut sealed = seal(k.public.app_bundle().transcript_key(), b"", TEXT).unwrap();
    sealed[0] = 2;
    assert!(matches!(
        SealedTranscript::decode(&sealed),
        Err(Error::Malformed { .. })
    ));
}
