use blindsight_crypto::tfhe::FheUint8;
use blindsight_crypto::tfhe::prelude::*;
use blindsight_crypto::{Envelope, Error, KeystoreFile, MIN_ITERATIONS, open, seal, seal_keystore};

use crate::common::{bit_flips, keys};

#[test]
fn round_trip_and_wrong_passphrase() {
    let k = keys();
    let bytes = seal_keystore(&k.secret, "correct horse battery", MIN_ITERATIONS).unwrap();
    let file = KeystoreFile::decode(&bytes).unwrap();
    assert_eq!(file.key_id, k.secret.key_id());
    assert!(file.header.iterations >= 600_000);

    let reopened = file.open("correct horse battery").unwrap();
    // The reopened client key decrypts what the original encrypted, and the transcript key
    // opens what was sealed to the original.
    let ct = FheUint8::encrypt(42u8, k.secret.client_key());
    let back: u8 = ct.decrypt(reopened.client_key());
    assert_eq!(back, 42);
    let sealed = seal(&k.secret.transcript_secret().public_key(), b"a", b"t").unwrap();
    assert_eq!(
        &open(reopened.transcript_secret(), b"a", &sealed).unwrap()[..],
        b"t"
    );

    assert!(matches!(file.open("wrong"), Err(Error::WrongPassphrase)));
    // The ciphertext does not contain the passphrase or obviously the key bytes.
    assert!(!bytes.windows(5).any(|w| w == b"horse"));
}

#[test]
fn tampering_and_weak_parameters_are_refused() {
    let k = keys();
    let bytes = seal_keystore(&k.secret, "pass phrase 1", MIN_ITERATIONS).unwrap();
    // Flipping bits anywhere: never opens, never panics.
    for flipped in bit_flips(&bytes, 48) {
        if let Ok(f) = KeystoreFile::decode(&flipped) {
            assert!(f.open("pass phrase 1").is_err());
        }
    }
    // Fewer iterations than the minimum is refused when parsing.
    let env = Envelope::decode(&bytes).unwrap();
    let meta = String::from_utf8(env.metadata.to_vec()).unwrap();
    let weak = meta.replace("600000", "1000");
    let forged = Envelope::encode(env.kind, env.key_id, weak.as_bytes(), env.payload).unwrap();
    assert!(matches!(
        KeystoreFile::decode(&forged),
        Err(Error::Malformed { .. })
    ));
    // Raising the count keeps it parseable but the header is authenticated.
    let raised = meta.replace("600000", "600001");
    let forged = Envelope::encode(env.kind, env.key_id, raised.as_bytes(), env.payload).unwrap();
    assert!(matches!(
        KeystoreFile::decode(&forged).unwrap().open("pass phrase 1"),
        Err(Error::WrongPassphrase)
    ));
    // A weak iteration count or an empty passphrase is refused when sealing.
    assert!(seal_keystore(&k.secret, "pass phrase 1", 1000).is_err());
    assert!(seal_keystore(&k.secret, "", MIN_ITERATIONS).is_err());
}
