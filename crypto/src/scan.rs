//! The auditor's storage scan: checks one stored payload column against the type the database
//! claims it holds.
//!
//! [`scan`] runs, in order:
//!
//! 1. **Client-key checks, on every payload whatever it claims to be.** A payload is reported
//!    as [`ScanFinding::ClientKey`] when it
//!    - is a keystore envelope: it decodes with [`Envelope::decode`] as [`Kind::Keystore`], or
//!      merely starts with a keystore envelope's header (magic, any format version, kind
//!      byte), so a truncated keystore or one under another parameter set is reported too;
//!    - is a safe-serialized `tfhe::ClientKey`: its tfhe serialization header names the
//!      client-key type (it is then decoded with the crate's safe decoder under
//!      [`limits::CLIENT_KEY`], and reported whether or not the rest decodes, since a damaged
//!      client key still holds most of the secret);
//!    - is an envelope (of any kind) whose payload, or one of the parts its payload is split
//!      into (bundles, records, outputs), is one of the above, up to [`MAX_NESTING`] levels
//!      down.
//!
//!    These checks read a few dozen header bytes first and go no further unless the header
//!    matches, so they cost next to nothing on large payloads of any other type.
//!
//!    tfhe 1.8.2 only implements `Named` (which its safe deserialization requires) for the
//!    high-level `tfhe::ClientKey`; `tfhe::integer::ClientKey` and `tfhe::shortint::ClientKey`
//!    have no safe-serialization form at all, so there is no header to recognise them by and
//!    they are not checked for.
//! 2. **For a sealed-transcript column, a plaintext heuristic** (see
//!    [`PLAINTEXT_THRESHOLD_PERCENT`]). It runs before the type check, so readable text is
//!    reported as [`ScanFinding::LooksLikePlaintext`] whether or not it carries the
//!    sealed-box framing.
//! 3. **The type check**: the payload must decode with the crate's own safe decoder for the
//!    claimed type (each with its size limit and conformance check); otherwise
//!    [`ScanFinding::NotClaimedType`]. Nothing here uses raw bincode, and nothing panics on any
//!    input.
//!
//! What the scan cannot see: a client key that was itself encrypted (e.g. inside a sealed
//! box or another AEAD), plaintext shorter than [`PLAINTEXT_MIN_LEN`] bytes, and readable text
//! that is mostly non-ASCII (the heuristic counts printable ASCII bytes only).
//!
//! Size: about 300 lines of code; the rest are its tests, one per payload kind and per way a
//! payload can be mislabelled.

use crate::codec::{self, limits};
use crate::compute::JobOutput;
use crate::envelope::{Envelope, Kind, MAGIC, Reader, decode_parts};
use crate::keys::{AppBundle, KeyManifest, decode_server_key, wipe_client_key};
use crate::lane::LaneList;
use crate::seal::SealedTranscript;

/// How many envelopes deep the client-key checks look into a payload (an app or public
/// bundle's components sit two levels down: bundle envelope, then component envelope).
pub const MAX_NESTING: usize = 3;

/// The most parts an envelope payload is split into for the client-key checks; the crate's
/// own layouts use 2, 4 and 5.
const MAX_PARTS: usize = 8;

/// The sealed-box header: the version byte and the 32-byte ephemeral public key.
const SEAL_HEADER_LEN: usize = 1 + 32;

/// A sealed-transcript payload (the whole of it, or the sealed box's bytes after its 33-byte
/// header) of at least [`PLAINTEXT_MIN_LEN`] bytes, at least this many percent of which are
/// printable ASCII or whitespace (`0x20..=0x7E`, tab, LF, CR), is reported as plaintext.
///
/// A real sealed box is ChaCha20-Poly1305 output after a random X25519 public key, so its bytes
/// are uniformly random, and each is printable with probability 98/256 ≈ 0.38. The chance that
/// a random box reaches 85% is a binomial tail: about 1.2 × 10⁻⁸ for 32 bytes (a 16-byte
/// transcript's ciphertext and tag), 2.2 × 10⁻¹¹ for 48 bytes, 4.6 × 10⁻¹⁵ for 64 bytes and
/// below 10⁻²¹ from 100 bytes on; checking the whole box as well (which starts with the
/// non-printable version byte 1) adds less than that again. Readable text, even with
/// punctuation, digits and line breaks, is essentially all printable.
pub const PLAINTEXT_THRESHOLD_PERCENT: usize = 85;

/// Payloads shorter than this are not judged by the plaintext heuristic (too few bytes to
/// tell text from random; see [`PLAINTEXT_THRESHOLD_PERCENT`]).
pub const PLAINTEXT_MIN_LEN: usize = 32;

/// What a stored column claims to hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stored {
    /// A key manifest envelope ([`KeyManifest::decode`]).
    Manifest,
    /// An app bundle envelope ([`AppBundle::decode`]).
    AppBundle,
    /// A raw safe-serialized compressed server key, as the `keysets.server_key` column holds
    /// it ([`crate::PublicBundle::server_key_bytes`], checked with [`decode_server_key`]).
    ServerKey,
    /// An encoded proven lane list ([`LaneList::decode`]).
    ProvenList,
    /// A transcript sealed to the key holder ([`SealedTranscript::decode`]).
    SealedTranscript,
    /// A job output envelope ([`JobOutput::decode`]).
    JobOutput,
}

impl Stored {
    /// Every kind of stored payload.
    pub const ALL: [Stored; 6] = [
        Stored::Manifest,
        Stored::AppBundle,
        Stored::ServerKey,
        Stored::ProvenList,
        Stored::SealedTranscript,
        Stored::JobOutput,
    ];

    /// A short human-readable name, used in findings.
    pub fn name(self) -> &'static str {
        match self {
            Stored::Manifest => "key manifest",
            Stored::AppBundle => "app bundle",
            Stored::ServerKey => "server key",
            Stored::ProvenList => "proven list",
            Stored::SealedTranscript => "sealed transcript",
            Stored::JobOutput => "job output",
        }
    }
}

/// What the scan found wrong with one payload.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScanFinding {
    /// It does not decode as what it claims to be.
    #[error("does not decode as a {claimed}: {reason}")]
    NotClaimedType {
        /// The claimed type's name ([`Stored::name`]).
        claimed: &'static str,
        /// Why the decoder refused it (never contains key material or plaintext).
        reason: String,
    },
    /// It decodes as (or wraps) a client key.
    #[error("decodes as a client key ({how})")]
    ClientKey {
        /// How the client key was recognised, e.g. `a keystore envelope`.
        how: &'static str,
    },
    /// A sealed-transcript column holds what looks like readable text.
    #[error("looks like plaintext ({printable}% printable bytes), not a sealed box")]
    LooksLikePlaintext {
        /// The percentage (rounded down) of printable ASCII or whitespace bytes.
        printable: u8,
    },
}

/// Scans one stored payload. `key_id` is the key set the row names (JobOutput decoding needs
/// it; others may ignore it).
///
/// See the [module documentation](self) for what is checked, and in which order.
pub fn scan(claimed: Stored, key_id: &str, bytes: &[u8]) -> Result<(), ScanFinding> {
    if let Some(how) = client_key_in(bytes, MAX_NESTING) {
        return Err(ScanFinding::ClientKey { how });
    }
    if claimed == Stored::SealedTranscript
        && let Some(printable) = looks_like_plaintext(bytes)
    {
        return Err(ScanFinding::LooksLikePlaintext { printable });
    }
    let decoded = match claimed {
        Stored::Manifest => KeyManifest::decode(bytes).map(drop),
        Stored::AppBundle => AppBundle::decode(bytes).map(drop),
        Stored::ServerKey => decode_server_key(bytes).map(drop),
        Stored::ProvenList => LaneList::decode(bytes).map(drop),
        Stored::SealedTranscript => SealedTranscript::decode(bytes).map(drop),
        Stored::JobOutput => JobOutput::decode(bytes, key_id).map(drop),
    };
    decoded.map_err(|e| ScanFinding::NotClaimedType {
        claimed: claimed.name(),
        reason: e.to_string(),
    })
}

/// A client key recognised in a payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hit {
    /// A keystore envelope that decodes.
    Keystore,
    /// Bytes that start like a keystore envelope but do not decode as one.
    KeystoreHeader,
    /// A `tfhe::ClientKey` that decodes.
    TfheClientKey,
    /// Bytes whose tfhe header names the client-key type but whose body does not decode.
    TfheClientKeyHeader,
}

/// Looks for a client key in `bytes` and, while `depth` allows, in the payloads (and their
/// parts) of the envelopes it finds.
fn client_key_in(bytes: &[u8], depth: usize) -> Option<&'static str> {
    if let Some(hit) = direct_hit(bytes) {
        return Some(match hit {
            Hit::Keystore => "a keystore envelope",
            Hit::KeystoreHeader => "a keystore envelope this build cannot fully decode",
            Hit::TfheClientKey => "a tfhe client key",
            Hit::TfheClientKeyHeader => "a tfhe client key that does not fully decode",
        });
    }
    if wraps_client_key(bytes, depth) {
        return Some("an envelope wrapping a client key");
    }
    None
}

/// Whether an envelope in `bytes` carries a client key in its payload or the payload's parts.
fn wraps_client_key(bytes: &[u8], depth: usize) -> bool {
    if depth == 0 {
        return false;
    }
    let Ok(envelope) = Envelope::decode(bytes) else {
        return false;
    };
    let payload = envelope.payload;
    if direct_hit(payload).is_some() || wraps_client_key(payload, depth - 1) {
        return true;
    }
    split_parts(payload)
        .into_iter()
        .any(|part| direct_hit(part).is_some() || wraps_client_key(part, depth - 1))
}

/// The parts of a payload laid out as the crate's part lists (a u16 count, then each part as
/// u64 length and bytes), or none when it is not one.
fn split_parts(payload: &[u8]) -> Vec<&[u8]> {
    let Some(&[hi, lo]) = payload.get(..2) else {
        return Vec::new();
    };
    let count = usize::from(u16::from_be_bytes([hi, lo]));
    if count == 0 || count > MAX_PARTS {
        return Vec::new();
    }
    decode_parts("envelope parts", payload, count).unwrap_or_default()
}

/// Whether `bytes` themselves are a keystore envelope or a tfhe client key.
fn direct_hit(bytes: &[u8]) -> Option<Hit> {
    match Envelope::decode(bytes) {
        Ok(envelope) if envelope.kind == Kind::Keystore => return Some(Hit::Keystore),
        // Another kind of envelope: it starts with the envelope magic, not a tfhe header.
        Ok(_) => return None,
        Err(_) if starts_like_keystore(bytes) => return Some(Hit::KeystoreHeader),
        Err(_) => {}
    }
    let name = tfhe_type_name(bytes)?;
    if !names_client_key(name) {
        return None;
    }
    match codec::decode_unchecked::<tfhe::ClientKey>("client key", bytes, limits::CLIENT_KEY) {
        Ok(key) => {
            // It is a secret: wipe the copy decoded here.
            wipe_client_key(key);
            Some(Hit::TfheClientKey)
        }
        Err(_) => Some(Hit::TfheClientKeyHeader),
    }
}

/// Whether `bytes` start with the envelope magic and (after the 2-byte format version, any
/// value) the keystore's kind byte. Random bytes match with probability 2⁻⁴⁰.
fn starts_like_keystore(bytes: &[u8]) -> bool {
    bytes.len() > 6 && bytes[..4] == MAGIC && bytes[6] == Kind::Keystore as u8
}

/// Whether a tfhe type name is `tfhe::ClientKey`'s (or one of its accepted aliases).
fn names_client_key(name: &str) -> bool {
    use tfhe::named::Named;
    name == tfhe::ClientKey::NAME || tfhe::ClientKey::BACKWARD_COMPATIBILITY_ALIASES.contains(&name)
}

/// The type name in the tfhe safe-serialization header `bytes` start with, if they start with
/// one. The header is bincode with fixed-width little-endian integers: the header version
/// (u64 length + UTF-8), the versioning mode (u32 variant 0 or 1, then u64 length + UTF-8),
/// then the type name (u64 length + UTF-8). Only these few bytes are read, and each length is
/// bounded, so this is cheap on any input.
fn tfhe_type_name(bytes: &[u8]) -> Option<&str> {
    fn string<'a>(r: &mut Reader<'a>, max: u64) -> Option<&'a [u8]> {
        let len = u64::from_le_bytes(r.array().ok()?);
        if len > max {
            return None;
        }
        r.take(usize::try_from(len).ok()?).ok()
    }
    let mut r = Reader::new("tfhe header", bytes);
    string(&mut r, 16)?;
    if u32::from_le_bytes(r.array().ok()?) > 1 {
        return None;
    }
    string(&mut r, 64)?;
    std::str::from_utf8(string(&mut r, 128)?).ok()
}

/// The printable percentage of a sealed-transcript payload that looks like plaintext: either
/// the sealed box's bytes after its header or the whole payload (see
/// [`PLAINTEXT_THRESHOLD_PERCENT`]).
fn looks_like_plaintext(bytes: &[u8]) -> Option<u8> {
    let body = bytes.get(SEAL_HEADER_LEN..).unwrap_or_default();
    [body, bytes].into_iter().find_map(|candidate| {
        if candidate.len() < PLAINTEXT_MIN_LEN {
            return None;
        }
        let printable = candidate
            .iter()
            .filter(|&&b| matches!(b, 0x20..=0x7E | b'\t' | b'\n' | b'\r'))
            .count();
        (printable * 100 >= candidate.len() * PLAINTEXT_THRESHOLD_PERCENT)
            .then(|| u8::try_from(printable * 100 / candidate.len()).unwrap_or(100))
    })
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use super::*;
    use crate::envelope::encode_parts;
    use crate::keys::{Fingerprints, MANIFEST_FORMAT, SecretKeys, TranscriptSecretKey};
    use crate::params::{self, LANE_MAX_SLOTS, PARAMETER_SET_ID, TFHE_VERSION};
    use crate::{MIN_ITERATIONS, SEAL_VERSION, seal, seal_keystore};

    const KEY_ID: &str = "scan-test";

    /// A tiny deterministic PRNG (xorshift) for random-input tests.
    struct XorShift(u64);

    impl XorShift {
        fn bytes(&mut self, n: usize) -> Vec<u8> {
            (0..n)
                .map(|_| {
                    self.0 ^= self.0 << 13;
                    self.0 ^= self.0 >> 7;
                    self.0 ^= self.0 << 17;
                    self.0 as u8
                })
                .collect()
        }
    }

    /// A safe-serialized `tfhe::ClientKey` and a keystore holding it, made once per process
    /// (client-key generation takes about a second with tfhe built optimised).
    struct Secrets {
        client_key: Vec<u8>,
        keystore: Vec<u8>,
    }

    fn secrets() -> &'static Secrets {
        static SECRETS: OnceLock<Secrets> = OnceLock::new();
        SECRETS.get_or_init(|| {
            let key = tfhe::ClientKey::generate(params::config());
            let client_key = codec::encode("client key", &key, limits::CLIENT_KEY).unwrap();
            let public = tfhe::CompactPublicKey::try_new(&key).unwrap();
            let secret = SecretKeys::new(
                KEY_ID.into(),
                key,
                TranscriptSecretKey::generate().unwrap(),
                &public,
            )
            .unwrap();
            let keystore = seal_keystore(&secret, "correct horse", MIN_ITERATIONS).unwrap();
            Secrets {
                client_key,
                keystore,
            }
        })
    }

    fn manifest() -> Vec<u8> {
        let fp = "ab".repeat(32);
        KeyManifest {
            format: MANIFEST_FORMAT,
            key_id: KEY_ID.into(),
            tfhe_version: TFHE_VERSION.into(),
            parameter_set: PARAMETER_SET_ID.into(),
            created_at: 1_790_000_000,
            crs_max_slots: LANE_MAX_SLOTS as u32,
            fingerprints: Fingerprints {
                server_key: fp.clone(),
                compact_public_key: fp.clone(),
                crs: fp.clone(),
                transcript_public_key: fp,
            },
        }
        .encode()
        .unwrap()
    }

    fn sealed(len: usize) -> Vec<u8> {
        let recipient = TranscriptSecretKey::generate().unwrap().public_key();
        let text = "the session went well; mood 7/10. ".repeat(len / 34 + 1);
        seal(&recipient, b"record aad", &text.as_bytes()[..len]).unwrap()
    }

    fn assert_not_claimed(claimed: Stored, bytes: &[u8]) {
        match scan(claimed, KEY_ID, bytes) {
            Err(ScanFinding::NotClaimedType { claimed: name, .. }) => {
                assert_eq!(name, claimed.name());
            }
            other => panic!("{claimed:?}, {} bytes: {other:?}", bytes.len()),
        }
    }

    /// Random bytes are a valid (unopenable) sealed box when they start with the seal version
    /// and are long enough: a sealed box is indistinguishable from random by design.
    fn could_be_sealed_box(bytes: &[u8]) -> bool {
        bytes.first() == Some(&SEAL_VERSION) && bytes.len() >= SEAL_HEADER_LEN + 16
    }

    #[test]
    fn names() {
        let names: Vec<_> = Stored::ALL.iter().map(|s| s.name()).collect();
        assert_eq!(
            names,
            [
                "key manifest",
                "app bundle",
                "server key",
                "proven list",
                "sealed transcript",
                "job output"
            ]
        );
    }

    #[test]
    fn random_bytes_are_not_the_claimed_type() {
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        let mut lengths: Vec<usize> = (0..=300).collect();
        lengths.extend([1024, 4096, 65_536, 2 << 20]);
        for len in lengths {
            let mut bytes = rng.bytes(len);
            for claimed in Stored::ALL {
                if claimed == Stored::SealedTranscript && could_be_sealed_box(&bytes) {
                    assert_eq!(scan(claimed, KEY_ID, &bytes), Ok(()));
                } else {
                    assert_not_claimed(claimed, &bytes);
                }
            }
            // The same bytes under each envelope and tfhe-looking prefix the decoders branch on.
            if len >= 8 {
                bytes[..4].copy_from_slice(&MAGIC);
                bytes[4..6].copy_from_slice(&crate::FORMAT_VERSION.to_be_bytes());
                // Every kind but the keystore's (which is a finding of its own; see below).
                bytes[6] = (len % 10) as u8 + 1;
                for claimed in Stored::ALL {
                    assert_not_claimed(claimed, &bytes);
                }
                bytes[..8].copy_from_slice(&3u64.to_le_bytes());
                for claimed in Stored::ALL {
                    assert_not_claimed(claimed, &bytes);
                }
            }
        }
        let zeros = vec![0u8; 2 << 20];
        for claimed in Stored::ALL {
            assert_not_claimed(claimed, &zeros);
        }
    }

    #[test]
    fn truncated_inputs_are_not_the_claimed_type() {
        let manifest = manifest();
        for n in 0..manifest.len() {
            for claimed in Stored::ALL {
                match scan(claimed, KEY_ID, &manifest[..n]) {
                    // A manifest is mostly readable JSON, which a transcript column must not hold.
                    Err(ScanFinding::LooksLikePlaintext { .. })
                        if claimed == Stored::SealedTranscript => {}
                    _ => assert_not_claimed(claimed, &manifest[..n]),
                }
            }
        }
        let sealed = sealed(64);
        for n in 0..sealed.len() {
            for claimed in Stored::ALL {
                if claimed == Stored::SealedTranscript && could_be_sealed_box(&sealed[..n]) {
                    // Truncation past the header is only caught when the box is opened.
                    assert_eq!(scan(claimed, KEY_ID, &sealed[..n]), Ok(()));
                } else {
                    assert_not_claimed(claimed, &sealed[..n]);
                }
            }
        }
    }

    #[test]
    fn real_sealed_transcripts_pass() {
        for len in (32..=256).chain([1000, 10_000]) {
            let sealed = sealed(len);
            assert_eq!(scan(Stored::SealedTranscript, KEY_ID, &sealed), Ok(()));
            for claimed in Stored::ALL {
                if claimed != Stored::SealedTranscript {
                    assert_not_claimed(claimed, &sealed);
                }
            }
        }
    }

    #[test]
    fn readable_text_in_a_transcript_column_is_plaintext() {
        let text = b"Client reported low mood most days this week.\nPlan: follow up on Friday.";
        let mut framed = vec![SEAL_VERSION];
        framed.extend_from_slice(&[0x5A; 32]);
        framed.extend_from_slice(text);
        // Framed as a sealed box (it even decodes as one), bare, and with a random header.
        let mut random_header = framed.clone();
        random_header[1..SEAL_HEADER_LEN].copy_from_slice(&XorShift(7).bytes(32));
        for bytes in [&framed[..], &text[..], &random_header[..]] {
            assert!(
                matches!(
                    scan(Stored::SealedTranscript, KEY_ID, bytes),
                    Err(ScanFinding::LooksLikePlaintext { printable }) if printable >= 85
                ),
                "{:?}",
                scan(Stored::SealedTranscript, KEY_ID, bytes)
            );
        }
        assert_eq!(
            scan(Stored::SealedTranscript, KEY_ID, &text[..]),
            Err(ScanFinding::LooksLikePlaintext { printable: 100 })
        );
        // Too short to judge: it decodes as a sealed box and passes.
        let mut short = vec![SEAL_VERSION];
        short.extend_from_slice(&[0; 32]);
        short.extend_from_slice(&text[..PLAINTEXT_MIN_LEN - 1]);
        assert_eq!(scan(Stored::SealedTranscript, KEY_ID, &short), Ok(()));
        // The heuristic only applies to transcript columns.
        assert_not_claimed(Stored::ProvenList, &text[..]);
    }

    #[test]
    fn a_real_manifest_passes_only_as_a_manifest() {
        let manifest = manifest();
        assert_eq!(scan(Stored::Manifest, KEY_ID, &manifest), Ok(()));
        assert_eq!(scan(Stored::Manifest, "another-key", &manifest), Ok(()));
        for claimed in [
            Stored::AppBundle,
            Stored::ServerKey,
            Stored::ProvenList,
            Stored::JobOutput,
        ] {
            assert_not_claimed(claimed, &manifest);
        }
        assert!(matches!(
            scan(Stored::ProvenList, KEY_ID, &manifest),
            Err(ScanFinding::NotClaimedType {
                claimed: "proven list",
                ..
            })
        ));
        assert!(matches!(
            scan(Stored::SealedTranscript, KEY_ID, &manifest),
            Err(ScanFinding::LooksLikePlaintext { .. })
        ));
    }

    #[test]
    fn a_keystore_is_a_client_key_whatever_it_claims_to_be() {
        let keystore = &secrets().keystore;
        for claimed in Stored::ALL {
            assert_eq!(
                scan(claimed, KEY_ID, keystore),
                Err(ScanFinding::ClientKey {
                    how: "a keystore envelope"
                })
            );
        }
        // Truncated, it is still reported (as one that does not decode).
        for n in [7, 40, keystore.len() / 2, keystore.len() - 1] {
            for claimed in Stored::ALL {
                assert_eq!(
                    scan(claimed, KEY_ID, &keystore[..n]),
                    Err(ScanFinding::ClientKey {
                        how: "a keystore envelope this build cannot fully decode"
                    })
                );
            }
        }
    }

    #[test]
    fn a_tfhe_client_key_is_a_client_key_whatever_it_claims_to_be() {
        let key = &secrets().client_key;
        assert_eq!(tfhe_type_name(key), Some("high_level_api::ClientKey"));
        for claimed in Stored::ALL {
            assert_eq!(
                scan(claimed, KEY_ID, key),
                Err(ScanFinding::ClientKey {
                    how: "a tfhe client key"
                })
            );
        }
        for n in [60, key.len() / 2, key.len() - 1] {
            assert_eq!(
                scan(Stored::ServerKey, KEY_ID, &key[..n]),
                Err(ScanFinding::ClientKey {
                    how: "a tfhe client key that does not fully decode"
                })
            );
        }
        let mut trailing = key.clone();
        trailing.push(0);
        assert_eq!(
            scan(Stored::ServerKey, KEY_ID, &trailing),
            Err(ScanFinding::ClientKey {
                how: "a tfhe client key that does not fully decode"
            })
        );
    }

    #[test]
    fn a_client_key_inside_an_envelope_is_reported() {
        let s = secrets();
        let wrapped = ScanFinding::ClientKey {
            how: "an envelope wrapping a client key",
        };
        // As a server-key envelope's payload.
        let direct = Envelope::encode(Kind::ServerKey, KEY_ID, &[], &s.client_key).unwrap();
        assert_eq!(
            scan(Stored::ServerKey, KEY_ID, &direct),
            Err(wrapped.clone())
        );
        // As one part of a bundle, directly and inside a component envelope.
        let manifest = manifest();
        let inner = Envelope::encode(Kind::Crs, KEY_ID, &[], &s.client_key).unwrap();
        for part in [&s.client_key, &s.keystore, &inner] {
            let bundle = Envelope::encode(
                Kind::AppBundle,
                KEY_ID,
                &[],
                &encode_parts(&[&manifest, part, &manifest, &manifest]),
            )
            .unwrap();
            for claimed in Stored::ALL {
                assert_eq!(scan(claimed, KEY_ID, &bundle), Err(wrapped.clone()));
            }
        }
        // Without a client key the same bundle layout is merely not an app bundle.
        let bundle = Envelope::encode(
            Kind::AppBundle,
            KEY_ID,
            &[],
            &encode_parts(&[&manifest, &manifest, &manifest, &manifest]),
        )
        .unwrap();
        assert_not_claimed(Stored::AppBundle, &bundle);
    }
    /// Real stored payloads of every kind pass as what they are and fail as anything else.
    /// A full key set takes a while to generate (and the server key to decompress), so this
    /// runs only when asked for.
    #[test]
    #[ignore = "generates a full key set (slow); run with --ignored"]
    fn real_payloads_pass_only_as_what_they_are() {
        use tfhe::FheUint8;
        use tfhe::prelude::*;

        use crate::compute::{OutputManifest, OutputSpec, compress_outputs};
        use crate::{
            FieldSpec, FieldType, KeySet, RecordMetadata, RecordSchema, Value, encrypt_record,
        };

        let (secret, public) = KeySet::generate_with_id(KEY_ID, |_| {})
            .unwrap()
            .into_parts();
        let schema = RecordSchema {
            id: "scan-test".into(),
            version: 1,
            fields: vec![FieldSpec::uint("mood", 0, 10), FieldSpec::boolean("flag")],
            lane: Default::default(),
        };
        let meta = RecordMetadata {
            tenant: "tenant-a".into(),
            key_id: KEY_ID.into(),
            schema_id: "scan-test".into(),
            schema_version: 1,
            record_id: "rec-1".into(),
            cohort: None,
            lexicon_version: None,
            recorded_at: None,
        };
        let values = [("mood", Value::Uint(7)), ("flag", Value::Bool(true))]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        let proven = encrypt_record(public.app_bundle(), &schema, &meta, &values, None)
            .unwrap()
            .encode()
            .unwrap();

        tfhe::set_server_key(public.server_key().unwrap().decompress());
        let specs = vec![OutputSpec::new("rec-1/score", FieldType::U8)];
        let radix = FheUint8::encrypt(7u8, secret.client_key())
            .into_raw_parts()
            .0;
        let output = JobOutput {
            manifest: OutputManifest {
                function: "scan-test/v1".into(),
                outputs: specs.clone(),
                clear: Default::default(),
                lane: None,
                lists: Vec::new(),
            },
            lists: vec![compress_outputs(&specs, vec![radix]).unwrap()],
            lane: Vec::new(),
        }
        .encode(KEY_ID)
        .unwrap();
        let transcript = seal(
            public.app_bundle().transcript_key(),
            &meta.transcript_aad(),
            b"The session went well.",
        )
        .unwrap();

        let payloads = [
            (Stored::Manifest, public.manifest().encode().unwrap()),
            (Stored::AppBundle, public.app_bundle().encode().unwrap()),
            (Stored::ServerKey, public.server_key_bytes().to_vec()),
            (Stored::ProvenList, proven),
            (Stored::SealedTranscript, transcript),
            (Stored::JobOutput, output),
        ];
        for (kind, bytes) in &payloads {
            assert_eq!(scan(*kind, KEY_ID, bytes), Ok(()), "{kind:?}");
            for claimed in Stored::ALL {
                if claimed != *kind {
                    assert!(
                        scan(claimed, KEY_ID, bytes).is_err(),
                        "{kind:?} as {claimed:?}"
                    );
                }
            }
        }
        // An output belongs to one key set.
        let other = scan(Stored::JobOutput, "another-key", &payloads[5].1);
        assert!(
            matches!(other, Err(ScanFinding::NotClaimedType { .. })),
            "{other:?}"
        );
    }
}
