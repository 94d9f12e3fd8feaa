//! Transcripts sealed to the key holder: ephemeral X25519, HKDF-SHA256 (ring),
//! ChaCha20-Poly1305, with the record's metadata as associated data.
//!
//! Layout, version 1: `0x01 || ephemeral public key (32) || ciphertext || tag (16)`.
//! The AEAD key and nonce both come from HKDF over the shared secret, salted with the
//! ephemeral and recipient public keys, so every seal uses a fresh key and the nonce is never
//! reused under one key.

use chacha20poly1305::ChaCha20Poly1305;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use ring::hkdf;
use x25519_dalek::{PublicKey as X25519Public, StaticSecret};
use zeroize::Zeroizing;

use crate::codec::limits;
use crate::envelope::Reader;
use crate::keys::{TranscriptPublicKey, TranscriptSecretKey};
use crate::{Error, Result, random_bytes};

/// The sealed-box layout version this build writes and reads.
pub const SEAL_VERSION: u8 = 1;
const TAG_LEN: usize = 16;
const HKDF_INFO: &[u8] = b"blindsight/transcript-seal/v1";

/// A parsed (still sealed) transcript.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedTranscript<'a> {
    ephemeral: [u8; 32],
    ciphertext: &'a [u8],
}

impl<'a> SealedTranscript<'a> {
    /// Parses a sealed box without opening it: version, length and limit checks.
    pub fn decode(bytes: &'a [u8]) -> Result<Self> {
        let limit = limits::TRANSCRIPT + 1 + 32 + TAG_LEN as u64;
        if bytes.len() as u64 > limit {
            return Err(Error::TooLarge {
                what: "sealed transcript",
                size: bytes.len() as u64,
                limit,
            });
        }
        let mut r = Reader::new("sealed transcript", bytes);
        let version = r.array::<1>()?[0];
        if version != SEAL_VERSION {
            return Err(r.malformed(&format!("unknown seal version {version}")));
        }
        let ephemeral = r.array::<32>()?;
        let ciphertext = r.rest();
        if ciphertext.len() < TAG_LEN {
            return Err(Error::Malformed {
                what: "sealed transcript",
                reason: "truncated".into(),
            });
        }
        Ok(Self {
            ephemeral,
            ciphertext,
        })
    }
}

struct OkmLen(usize);

impl hkdf::KeyType for OkmLen {
    fn len(&self) -> usize {
        self.0
    }
}

fn cipher_and_nonce(
    shared: &x25519_dalek::SharedSecret,
    ephemeral: &[u8; 32],
    recipient: &[u8; 32],
) -> Result<(ChaCha20Poly1305, [u8; 12])> {
    if !shared.was_contributory() {
        return Err(Error::Seal(
            "the transcript key is a low-order point; refusing to seal or open",
        ));
    }
    let mut salt = [0u8; 64];
    salt[..32].copy_from_slice(ephemeral);
    salt[32..].copy_from_slice(recipient);
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, &salt).extract(shared.as_bytes());
    let mut okm = Zeroizing::new([0u8; 44]);
    prk.expand(&[HKDF_INFO], OkmLen(44))
        .and_then(|o| o.fill(&mut okm[..]))
        .map_err(|_| Error::Seal("HKDF expansion failed"))?;
    let cipher = ChaCha20Poly1305::new_from_slice(&okm[..32])
        .map_err(|_| Error::Seal("bad AEAD key length"))?;
    let mut nonce = [0u8; 12];
    nonce.copy_from_slice(&okm[32..]);
    Ok((cipher, nonce))
}

/// Seals `plaintext` to `recipient`, bound to `aad` (a record's
/// [`crate::RecordMetadata::transcript_aad`]).
pub fn seal(recipient: &TranscriptPublicKey, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
    if plaintext.len() as u64 > limits::TRANSCRIPT {
        return Err(Error::TooLarge {
            what: "transcript",
            size: plaintext.len() as u64,
            limit: limits::TRANSCRIPT,
        });
    }
    let ephemeral_secret = StaticSecret::from(*Zeroizing::new(random_bytes::<32>()?));
    let ephemeral = X25519Public::from(&ephemeral_secret).to_bytes();
    let shared = ephemeral_secret.diffie_hellman(&X25519Public::from(*recipient.as_bytes()));
    let (cipher, nonce) = cipher_and_nonce(&shared, &ephemeral, recipient.as_bytes())?;
    let ciphertext = cipher
        .encrypt(
            &nonce.into(),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .map_err(|_| Error::Seal("transcript encryption failed"))?;
    let mut out = Vec::with_capacity(1 + 32 + ciphertext.len());
    out.push(SEAL_VERSION);
    out.extend_from_slice(&ephemeral);
    out.extend_from_slice(&ciphertext);
    Ok(out)
}

/// Opens a sealed transcript. A wrong key, wrong associated data or any modified byte gives
/// the same error, and nothing of the plaintext.
pub fn open(secret: &TranscriptSecretKey, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let parsed = SealedTranscript::decode(sealed)?;
    let shared = secret
        .inner()
        .diffie_hellman(&X25519Public::from(parsed.ephemeral));
    let recipient = secret.public_key();
    let (cipher, nonce) = cipher_and_nonce(&shared, &parsed.ephemeral, recipient.as_bytes())?;
    cipher
        .decrypt(
            &nonce.into(),
            Payload {
                msg: parsed.ciphertext,
                aad,
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| {
            Error::Seal(
                "the transcript does not open with this key and metadata (wrong key, wrong record, or modified)",
            )
        })
}
