use blindsight_crypto::{Envelope, Error, Kind, PARAMETER_SET_ID};

use crate::common::{bit_flips, truncations};

fn sample() -> Vec<u8> {
    Envelope::encode(Kind::Record, "ks_abc", br#"{"a":1}"#, b"payload bytes").unwrap()
}

#[test]
fn round_trip() {
    let bytes = sample();
    let env = Envelope::decode(&bytes).unwrap();
    assert_eq!(env.kind, Kind::Record);
    assert_eq!(env.key_id, "ks_abc");
    assert_eq!(env.metadata, br#"{"a":1}"#);
    assert_eq!(env.payload, b"payload bytes");
    assert!(Envelope::decode_expecting(&bytes, Kind::Record, Some("ks_abc")).is_ok());
}

#[test]
fn every_kind_round_trips() {
    for &kind in Kind::ALL {
        let bytes = Envelope::encode(kind, "k", b"", b"x").unwrap();
        assert_eq!(Envelope::decode(&bytes).unwrap().kind, kind);
    }
}

#[test]
fn wrong_kind_and_key_id_are_refused() {
    let bytes = sample();
    assert!(matches!(
        Envelope::decode_expecting(&bytes, Kind::Manifest, None),
        Err(Error::WrongKind { .. })
    ));
    assert!(matches!(
        Envelope::decode_expecting(&bytes, Kind::Record, Some("ks_other")),
        Err(Error::WrongKeyId { .. })
    ));
}

#[test]
fn wrong_magic_version_and_parameter_set_are_refused() {
    let mut bytes = sample();
    bytes[0] = b'X';
    assert!(matches!(
        Envelope::decode(&bytes),
        Err(Error::Malformed { .. })
    ));

    let mut bytes = sample();
    bytes[5] = 2;
    assert!(matches!(
        Envelope::decode(&bytes),
        Err(Error::UnsupportedVersion(2))
    ));

    let mut bytes = sample();
    // The parameter-set id starts after magic (4), version (2), kind (1) and its length (1).
    let last = 8 + PARAMETER_SET_ID.len() - 1;
    bytes[last] = b'X';
    assert!(matches!(
        Envelope::decode(&bytes),
        Err(Error::WrongParameterSet { .. })
    ));

    let mut bytes = sample();
    bytes[6] = 200;
    assert!(matches!(
        Envelope::decode(&bytes),
        Err(Error::Malformed { .. })
    ));
}

#[test]
fn truncation_and_trailing_bytes_are_refused() {
    let bytes = sample();
    for prefix in truncations(&bytes, usize::MAX) {
        assert!(
            Envelope::decode(prefix).is_err(),
            "prefix of {} decoded",
            prefix.len()
        );
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(matches!(
        Envelope::decode(&longer),
        Err(Error::Malformed { .. })
    ));
}

#[test]
fn bit_flips_never_panic() {
    let bytes = sample();
    for flipped in bit_flips(&bytes, usize::MAX) {
        // Flips in the payload or metadata bytes still frame correctly; anything else must fail.
        let _ = Envelope::decode(&flipped);
    }
}

#[test]
fn oversize_is_refused_before_reading() {
    let mut bytes = Envelope::encode(Kind::TranscriptKey, "k", b"", &[0u8; 32]).unwrap();
    // Claim a 33-byte payload for a kind whose limit is 32.
    let len_at = bytes.len() - 32 - 8;
    bytes[len_at..len_at + 8].copy_from_slice(&33u64.to_be_bytes());
    assert!(matches!(
        Envelope::decode(&bytes),
        Err(Error::TooLarge { .. })
    ));
    assert!(matches!(
        Envelope::encode(Kind::TranscriptKey, "k", b"", &[0u8; 33]),
        Err(Error::TooLarge { .. })
    ));
    // A huge claimed length with no bytes behind it is refused without allocating.
    let mut bytes = Envelope::encode(Kind::Record, "k", b"", b"").unwrap();
    let n = bytes.len();
    bytes[n - 8..].copy_from_slice(&(1u64 << 20).to_be_bytes());
    assert!(matches!(
        Envelope::decode(&bytes),
        Err(Error::Malformed { .. })
    ));
}

#[test]
fn bad_key_ids_are_refused() {
    assert!(Envelope::encode(Kind::Record, "has space", b"", b"").is_err());
    assert!(Envelope::encode(Kind::Record, &"k".repeat(65), b"", b"").is_err());
}
