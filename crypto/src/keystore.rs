//! The passphrase-encrypted keystore format: PBKDF2-HMAC-SHA256 (ring) derives a key that
//! encrypts the secrets with ChaCha20-Poly1305. Writing the file (atomically, mode 0600) is
//! the client SDK's job; this module only turns secrets into bytes and back.

use std::num::NonZeroU32;

use chacha20poly1305::ChaCha20Poly1305;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use serde::{Deserialize, Serialize};
use tfhe::ClientKey;
use zeroize::Zeroizing;

use crate::codec::{self, limits};
use crate::envelope::{Envelope, Kind, decode_parts, encode_parts};
use crate::keys::{SecretKeys, TranscriptSecretKey};
use crate::params::{LANE_MAX_SLOTS, PARAMETER_SET_ID};
use crate::{Error, Result, random_bytes};

/// The fewest PBKDF2 iterations accepted (OWASP's 2023 figure for PBKDF2-HMAC-SHA256).
pub const MIN_ITERATIONS: u32 = 600_000;
/// The iterations new keystores use.
pub const DEFAULT_ITERATIONS: u32 = 600_000;
/// The most iterations accepted, so a crafted file cannot make opening take hours.
pub const MAX_ITERATIONS: u32 = 20_000_000;

const KDF: &str = "pbkdf2-hmac-sha256";
const AEAD: &str = "chacha20poly1305";

/// The keystore's clear header, stored as envelope metadata and authenticated as AAD.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeystoreHeader {
    /// Always `pbkdf2-hmac-sha256`.
    pub kdf: String,
    /// PBKDF2 iterations.
    pub iterations: u32,
    /// 16-byte salt, hex.
    pub salt: String,
    /// Always `chacha20poly1305`.
    pub aead: String,
    /// 12-byte nonce, hex.
    pub nonce: String,
}

/// A parsed (still encrypted) keystore.
#[derive(Clone, Debug)]
pub struct KeystoreFile<'a> {
    /// The key set the keystore holds the secrets of.
    pub key_id: &'a str,
    /// The clear header.
    pub header: KeystoreHeader,
    salt: [u8; 16],
    nonce: [u8; 12],
    aad: Vec<u8>,
    ciphertext: &'a [u8],
}

fn aad(key_id: &str, header: &[u8]) -> Vec<u8> {
    let mut out = b"blindsight/keystore/v1\0".to_vec();
    out.extend_from_slice(PARAMETER_SET_ID.as_bytes());
    out.push(0);
    out.extend_from_slice(key_id.as_bytes());
    out.push(0);
    out.extend_from_slice(header);
    out
}

fn derive_cipher(passphrase: &str, salt: &[u8; 16], iterations: u32) -> Result<ChaCha20Poly1305> {
    let iterations = NonZeroU32::new(iterations).ok_or(Error::Seal("zero PBKDF2 iterations"))?;
    let mut key = Zeroizing::new([0u8; 32]);
    ring::pbkdf2::derive(
        ring::pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        salt,
        passphrase.as_bytes(),
        &mut key[..],
    );
    ChaCha20Poly1305::new_from_slice(&key[..]).map_err(|_| Error::Seal("bad AEAD key length"))
}

fn hex_array<const N: usize>(field: &str, s: &str) -> Result<[u8; N]> {
    let mut out = [0u8; N];
    hex::decode_to_slice(s, &mut out).map_err(|_| Error::Malformed {
        what: "keystore",
        reason: format!("{field} must be {} hex digits", 2 * N),
    })?;
    Ok(out)
}

impl<'a> KeystoreFile<'a> {
    /// Parses a keystore without decrypting it.
    pub fn decode(bytes: &'a [u8]) -> Result<Self> {
        let envelope = Envelope::decode_expecting(bytes, Kind::Keystore, None)?;
        let header: KeystoreHeader = envelope.metadata_as()?;
        let malformed = |reason: String| Error::Malformed {
            what: "keystore",
            reason,
        };
        if header.kdf != KDF || header.aead != AEAD {
            return Err(malformed(format!(
                "unsupported kdf/aead {:?}/{:?}",
                header.kdf, header.aead
            )));
        }
        if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&header.iterations) {
            return Err(malformed(format!(
                "PBKDF2 iterations must be in {MIN_ITERATIONS}..={MAX_ITERATIONS}"
            )));
        }
        if envelope.key_id.is_empty() {
            return Err(malformed("no key id".into()));
        }
        Ok(Self {
            key_id: envelope.key_id,
            salt: hex_array("salt", &header.salt)?,
            nonce: hex_array("nonce", &header.nonce)?,
            aad: aad(envelope.key_id, envelope.metadata),
            header,
            ciphertext: envelope.payload,
        })
    }

    /// Decrypts the secrets. A wrong passphrase (or any modified byte) is
    /// [`Error::WrongPassphrase`].
    pub fn open(&self, passphrase: &str) -> Result<SecretKeys> {
        let cipher = derive_cipher(passphrase, &self.salt, self.header.iterations)?;
        let plaintext = Zeroizing::new(
            cipher
                .decrypt(
                    &self.nonce.into(),
                    Payload {
                        msg: self.ciphertext,
                        aad: &self.aad,
                    },
                )
                .map_err(|_| Error::WrongPassphrase)?,
        );
        let parts = decode_parts("keystore contents", &plaintext, 3)?;
        let client_key: ClientKey =
            codec::decode_unchecked("client key", parts[0], limits::CLIENT_KEY)?;
        let transcript: [u8; 32] = parts[1].try_into().map_err(|_| Error::Malformed {
            what: "keystore contents",
            reason: "the transcript secret is not 32 bytes".into(),
        })?;
        let transcript = Zeroizing::new(transcript);
        if parts[2].len() != 8 * LANE_MAX_SLOTS {
            return Err(Error::Malformed {
                what: "keystore contents",
                reason: format!("the lane bias table is not {} bytes", 8 * LANE_MAX_SLOTS),
            });
        }
        let lane_bias = Zeroizing::new(
            parts[2]
                .chunks_exact(8)
                .map(|c| i64::from_be_bytes(c.try_into().expect("8-byte chunks")))
                .collect(),
        );
        Ok(SecretKeys {
            key_id: self.key_id.to_owned(),
            client_key: Some(client_key),
            transcript: TranscriptSecretKey::from_bytes(*transcript),
            lane_bias,
        })
    }
}

/// Encrypts `secret` under `passphrase` with `iterations` rounds of PBKDF2.
pub fn seal_keystore(secret: &SecretKeys, passphrase: &str, iterations: u32) -> Result<Vec<u8>> {
    if passphrase.is_empty() {
        return Err(Error::Seal("the keystore passphrase must not be empty"));
    }
    if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
        return Err(Error::Seal("PBKDF2 iterations out of the accepted range"));
    }
    let salt = random_bytes::<16>()?;
    let nonce = random_bytes::<12>()?;
    let header = KeystoreHeader {
        kdf: KDF.into(),
        iterations,
        salt: hex::encode(salt),
        aead: AEAD.into(),
        nonce: hex::encode(nonce),
    };
    let header_json = serde_json::to_vec(&header).map_err(|e| Error::Malformed {
        what: "keystore",
        reason: e.to_string(),
    })?;
    let client_key = Zeroizing::new(codec::encode(
        "client key",
        secret.client_key(),
        limits::CLIENT_KEY,
    )?);
    let transcript = secret.transcript.to_bytes();
    let lane_bias: Zeroizing<Vec<u8>> = Zeroizing::new(
        secret
            .lane_bias
            .iter()
            .flat_map(|b| b.to_be_bytes())
            .collect(),
    );
    let plaintext = Zeroizing::new(encode_parts(&[&client_key, &transcript[..], &lane_bias]));
    let cipher = derive_cipher(passphrase, &salt, iterations)?;
    let ciphertext = cipher
        .encrypt(
            &nonce.into(),
            Payload {
                msg: &plaintext,
                aad: &aad(&secret.key_id, &header_json),
            },
        )
        .map_err(|_| Error::Seal("keystore encryption failed"))?;
    Envelope::encode(Kind::Keystore, &secret.key_id, &header_json, &ciphertext)
}
