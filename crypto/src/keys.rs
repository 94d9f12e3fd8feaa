//! The key ceremony: secret keys (client key, transcript secret), the public bundle, and the
//! key manifest that pins every public component by its SHA-256 fingerprint.
//!
//! The split is by type: [`SecretKeys`] is the only type that can decrypt, and nothing in
//! [`PublicBundle`] or [`AppBundle`] holds or derives from a secret beyond what the public
//! keys themselves are.
//!
//! Size: every key type with its secret/public split and the manifest that pins them, kept in
//! one file so that each place a secret becomes something public is reviewed together.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tfhe::shortint::client_key::atomic_pattern::AtomicPatternClientKey;
use tfhe::zk::CompactPkeCrs;
use tfhe::{ClientKey, CompactPublicKey, CompressedServerKey};
use x25519_dalek::{PublicKey as X25519Public, StaticSecret};
use zeroize::{Zeroize, Zeroizing};

use crate::codec::{self, limits, sha256_hex};
use crate::envelope::{Envelope, Kind, decode_parts, encode_parts};
use crate::lane::LanePublicKey;
use crate::params::{self, LANE_MAX_SLOTS, PARAMETER_SET_ID, TFHE_VERSION};
use crate::{Error, Result, random_bytes};

/// The version of the manifest's JSON layout.
pub const MANIFEST_FORMAT: u32 = 1;

/// Steps of [`KeySet::generate_with_progress`], for progress reporting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeygenStep {
    /// Generating the FHE client key.
    ClientKey,
    /// Generating the compressed server (evaluation) key.
    ServerKey,
    /// Deriving the compact public key.
    PublicKey,
    /// Generating the ZK CRS.
    Crs,
    /// Serializing and fingerprinting the public components.
    Manifest,
}

impl KeygenStep {
    /// All steps, in order.
    pub const ALL: [KeygenStep; 5] = [
        KeygenStep::ClientKey,
        KeygenStep::ServerKey,
        KeygenStep::PublicKey,
        KeygenStep::Crs,
        KeygenStep::Manifest,
    ];

    /// A human-readable description.
    pub fn describe(self) -> &'static str {
        match self {
            KeygenStep::ClientKey => "generating FHE client key",
            KeygenStep::ServerKey => "generating compressed server key",
            KeygenStep::PublicKey => "deriving compact public key",
            KeygenStep::Crs => "generating zero-knowledge CRS",
            KeygenStep::Manifest => "fingerprinting public components",
        }
    }
}

/// The key holder's X25519 secret for opening transcripts. Zeroized on drop; `Debug` redacts.
pub struct TranscriptSecretKey(StaticSecret);

impl TranscriptSecretKey {
    pub(crate) fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(StaticSecret::from(bytes))
    }

    /// A fresh random transcript key pair.
    pub fn generate() -> Result<Self> {
        let bytes = Zeroizing::new(random_bytes::<32>()?);
        Ok(Self::from_bytes(*bytes))
    }

    /// Derives the public half. This is the only way from the secret to something public.
    pub fn public_key(&self) -> TranscriptPublicKey {
        TranscriptPublicKey(X25519Public::from(&self.0).to_bytes())
    }

    pub(crate) fn inner(&self) -> &StaticSecret {
        &self.0
    }

    pub(crate) fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_bytes())
    }
}

impl fmt::Debug for TranscriptSecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TranscriptSecretKey")
            .finish_non_exhaustive()
    }
}

/// The key holder's X25519 public key; transcripts are sealed to it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct TranscriptPublicKey(pub(crate) [u8; 32]);

impl TranscriptPublicKey {
    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Builds the key from 32 raw bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
}

/// The secrets of one key set: the FHE client key and the transcript secret.
///
/// `Debug` prints only the key id. Both secrets are zeroized on drop: the transcript secret by
/// x25519-dalek, the FHE client key by [`wipe_client_key`] (tfhe 1.8.2 does not implement
/// `Zeroize`, so its secret-key buffers are taken apart and wiped here). Every serialized copy
/// this crate makes of the client key lives in a `Zeroizing` buffer.
pub struct SecretKeys {
    pub(crate) key_id: String,
    /// Always `Some` outside `Drop`.
    pub(crate) client_key: Option<ClientKey>,
    pub(crate) transcript: TranscriptSecretKey,
    /// The lane's bias table (2β per slot, see [`crate::lane::secret`]), derived from the
    /// compact public key's secret error at key generation.
    pub(crate) lane_bias: Zeroizing<Vec<i64>>,
}

impl Drop for SecretKeys {
    fn drop(&mut self) {
        if let Some(key) = self.client_key.take() {
            wipe_client_key(key);
        }
    }
}

fn wipe<T: Zeroize>(mut words: Vec<T>) -> usize {
    let n = words.len();
    words.zeroize();
    n
}

/// Takes a tfhe client key apart and zeroizes every secret-key buffer in it (the compute GLWE
/// and LWE keys, the compact-public-key secret and the compression key's secret); returns the
/// number of key words wiped. Components the pinned parameters never create (noise squashing,
/// OPRF, transciphering) are dropped as they are.
pub fn wipe_client_key(key: ClientKey) -> usize {
    let (integer, compact, compression, _squash, _squash_comp, _rerand, _oprf, _trans, _tag) =
        key.into_raw_parts();
    let mut wiped = match integer.into_raw_parts().atomic_pattern {
        AtomicPatternClientKey::Standard(k) => {
            let (glwe, lwe, _, _) = k.into_raw_parts();
            wipe(glwe.into_container()) + wipe(lwe.into_container())
        }
        AtomicPatternClientKey::KeySwitch32(k) => {
            let (glwe, lwe, _) = k.into_raw_parts();
            wipe(glwe.into_container()) + wipe(lwe.into_container())
        }
    };
    if let Some((compact, _)) = compact {
        let (lwe, _) = compact.into_raw_parts().into_raw_parts();
        wiped += wipe(lwe.into_container());
    }
    if let Some(compression) = compression {
        wiped += wipe(
            compression
                .into_raw_parts()
                .post_packing_ks_key
                .into_container(),
        );
    }
    wiped
}

impl fmt::Debug for SecretKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretKeys")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl SecretKeys {
    /// The key set these secrets belong to.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The FHE client key, for decrypting results.
    pub fn client_key(&self) -> &ClientKey {
        // The key is only taken out in `Drop`, after which `self` is unreachable.
        self.client_key
            .as_ref()
            .expect("client key is present until drop")
    }

    /// Secrets for `client_key`, with the lane bias table computed from the key set's compact
    /// public key.
    pub(crate) fn new(
        key_id: String,
        client_key: ClientKey,
        transcript: TranscriptSecretKey,
        public_key: &CompactPublicKey,
    ) -> Result<Self> {
        let words = compact_secret_words(&client_key)?;
        let lane_bias = crate::lane::secret::compute_bias(
            &words,
            &LanePublicKey::from_compact_public_key(public_key),
        )?;
        Ok(Self {
            key_id,
            client_key: Some(client_key),
            transcript,
            lane_bias,
        })
    }

    /// The lane secret: the compact secret key's words and the key's bias table, for
    /// decrypting lane outputs. The copy of the client key taken apart here is wiped.
    pub fn lane_secret(&self) -> Result<crate::LaneSecret> {
        crate::LaneSecret::from_parts(compact_secret_words(self.client_key())?, &self.lane_bias)
    }

    /// The X25519 secret, for opening transcripts.
    pub fn transcript_secret(&self) -> &TranscriptSecretKey {
        &self.transcript
    }
}

/// Takes a copy of a client key apart, lends its integer key, compact private key and
/// compression private keys to `body` (an expression that must not return early), then
/// reassembles the copy and wipes it ([`wipe_client_key`]). tfhe reaches those parts only by
/// value, so every use of them goes through one copy that this wipes.
macro_rules! with_client_key_parts {
    ($key:expr, |$integer:ident, $compact:ident, $compression:ident| $body:expr) => {{
        let (integer, compact, compression, squash, squash_comp, rerand, oprf, trans, tag) =
            $key.clone().into_raw_parts();
        let result = {
            let ($integer, $compact, $compression) = (&integer, &compact, &compression);
            $body
        };
        $crate::keys::wipe_client_key(tfhe::ClientKey::from_raw_parts(
            integer,
            compact,
            compression,
            squash,
            squash_comp,
            rerand,
            oprf,
            trans,
            tag,
        ));
        result
    }};
}
pub(crate) use with_client_key_parts;

/// The compact secret key's words, from a copy of `client_key` that is wiped afterwards.
pub(crate) fn compact_secret_words(client_key: &ClientKey) -> Result<Zeroizing<Vec<u64>>> {
    let words = with_client_key_parts!(client_key, |_integer, compact, _compression| {
        compact
            .as_ref()
            .map(|(k, _)| Zeroizing::new(k.key().key().as_ref().to_vec()))
    });
    words.ok_or_else(|| {
        Error::Fhe("the client key has no compact secret key; it was not made by this build".into())
    })
}

/// SHA-256 fingerprints (lowercase hex) of each public component's encoded bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fingerprints {
    /// The safe-serialized compressed server key.
    pub server_key: String,
    /// The safe-serialized compact public key.
    pub compact_public_key: String,
    /// The safe-serialized CRS.
    pub crs: String,
    /// The 32 raw bytes of the X25519 transcript public key.
    pub transcript_public_key: String,
}

/// What a key set is: created at key generation, stored by the server, pinned by apps and
/// auditors (by [`KeyManifest::fingerprint`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyManifest {
    /// Layout version of this JSON ([`MANIFEST_FORMAT`]).
    pub format: u32,
    /// The key set's id.
    pub key_id: String,
    /// The tfhe release the keys were made with.
    pub tfhe_version: String,
    /// The parameter-set id ([`PARAMETER_SET_ID`]).
    pub parameter_set: String,
    /// Creation time, seconds since the Unix epoch.
    pub created_at: u64,
    /// Slots (one bit each) the lane CRS can prove in one record's list.
    pub crs_max_slots: u32,
    /// The fingerprint of every public component.
    pub fingerprints: Fingerprints,
}

impl KeyManifest {
    /// Encodes the manifest as an envelope; these bytes are what [`Self::fingerprint`] hashes.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let json = serde_json::to_vec(self).map_err(|e| Error::Malformed {
            what: "key manifest",
            reason: e.to_string(),
        })?;
        Envelope::encode(Kind::Manifest, &self.key_id, &[], &json)
    }

    /// Decodes and checks a manifest envelope: layout version, tfhe version, parameter set,
    /// and that the envelope's key id is the manifest's.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let envelope = Envelope::decode_expecting(bytes, Kind::Manifest, None)?;
        let manifest: KeyManifest =
            serde_json::from_slice(envelope.payload).map_err(|e| Error::Malformed {
                what: "key manifest",
                reason: e.to_string(),
            })?;
        manifest.check()?;
        if envelope.key_id != manifest.key_id {
            return Err(Error::WrongKeyId {
                expected: envelope.key_id.to_owned(),
                found: manifest.key_id.chars().take(64).collect(),
            });
        }
        Ok(manifest)
    }

    fn check(&self) -> Result<()> {
        let malformed = |reason: String| Error::Malformed {
            what: "key manifest",
            reason,
        };
        if self.format != MANIFEST_FORMAT {
            return Err(malformed(format!(
                "layout version {} is not supported (expected {MANIFEST_FORMAT})",
                self.format
            )));
        }
        params::check_parameter_set(&self.parameter_set)?;
        if self.tfhe_version != TFHE_VERSION {
            return Err(malformed(format!(
                "made with tfhe {:?}, this build uses tfhe {TFHE_VERSION}",
                self.tfhe_version.chars().take(32).collect::<String>()
            )));
        }
        if self.crs_max_slots as usize != LANE_MAX_SLOTS {
            return Err(malformed(format!(
                "CRS sized for {} slots, this build expects {LANE_MAX_SLOTS}",
                self.crs_max_slots
            )));
        }
        crate::envelope::check_key_id(&self.key_id)?;
        if self.key_id.is_empty() {
            return Err(malformed("empty key id".into()));
        }
        let f = &self.fingerprints;
        for fp in [
            &f.server_key,
            &f.compact_public_key,
            &f.crs,
            &f.transcript_public_key,
        ] {
            if fp.len() != 64
                || !fp
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            {
                return Err(malformed("fingerprints are 64 lowercase hex digits".into()));
            }
        }
        Ok(())
    }

    /// The manifest's own fingerprint: SHA-256 of its encoded envelope. Apps and auditors pin
    /// a key set by this value.
    pub fn fingerprint(&self) -> Result<String> {
        Ok(sha256_hex(&self.encode()?))
    }
}

fn check_fingerprint(component: &'static str, expected: &str, bytes: &[u8]) -> Result<()> {
    let found = sha256_hex(bytes);
    if crate::ct_eq(found.as_bytes(), expected.as_bytes()) {
        Ok(())
    } else {
        Err(Error::FingerprintMismatch {
            component,
            expected: expected.to_owned(),
            found,
        })
    }
}

/// Decodes a compact public key with the pinned conformance check.
pub(crate) fn decode_compact_public_key(bytes: &[u8]) -> Result<CompactPublicKey> {
    codec::decode_conformant(
        "compact public key",
        bytes,
        limits::COMPACT_PUBLIC_KEY,
        &params::PKE_PARAMS,
    )
}

/// Decodes a CRS and checks it has exactly the lane CRS's shape and capacity (one bit per
/// slot, [`LANE_MAX_SLOTS`] slots).
pub(crate) fn decode_crs(bytes: &[u8]) -> Result<CompactPkeCrs> {
    let conformance = crate::lane::lane_crs_conformance()?;
    codec::decode_conformant("CRS", bytes, limits::CRS, &conformance)
}

/// Decodes a compressed server key with the pinned conformance check.
pub fn decode_server_key(bytes: &[u8]) -> Result<CompressedServerKey> {
    codec::decode_conformant(
        "server key",
        bytes,
        limits::SERVER_KEY,
        &params::config().into(),
    )
}

fn decode_transcript_key(bytes: &[u8]) -> Result<TranscriptPublicKey> {
    let raw: [u8; 32] = bytes.try_into().map_err(|_| Error::Malformed {
        what: "transcript public key",
        reason: format!("expected 32 bytes, found {}", bytes.len()),
    })?;
    Ok(TranscriptPublicKey(raw))
}

/// What an app needs to record sessions: the compact public key and CRS (to encrypt and
/// prove), the transcript public key (to seal), and the manifest that pins them. It holds no
/// server key and nothing that can decrypt.
#[derive(Clone)]
pub struct AppBundle {
    pub(crate) manifest: KeyManifest,
    pub(crate) public_key: CompactPublicKey,
    pub(crate) lane_key: LanePublicKey,
    pub(crate) crs: CompactPkeCrs,
    pub(crate) transcript: TranscriptPublicKey,
    pub(crate) public_key_bytes: Vec<u8>,
    pub(crate) crs_bytes: Vec<u8>,
}

impl fmt::Debug for AppBundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppBundle")
            .field("key_id", &self.manifest.key_id)
            .finish_non_exhaustive()
    }
}

impl AppBundle {
    /// The manifest pinning this bundle.
    pub fn manifest(&self) -> &KeyManifest {
        &self.manifest
    }

    /// The key set's id.
    pub fn key_id(&self) -> &str {
        &self.manifest.key_id
    }

    /// The compact public key records are encrypted under.
    pub fn public_key(&self) -> &CompactPublicKey {
        &self.public_key
    }

    /// The compact public key as the lane encrypts under it (same key, lane encoding).
    pub fn lane_key(&self) -> &LanePublicKey {
        &self.lane_key
    }

    /// The lane CRS record proofs are made and checked against.
    pub fn crs(&self) -> &CompactPkeCrs {
        &self.crs
    }

    /// The key transcripts are sealed to.
    pub fn transcript_key(&self) -> &TranscriptPublicKey {
        &self.transcript
    }

    fn component_parts(&self) -> Result<[Vec<u8>; 4]> {
        let id = self.key_id();
        Ok([
            self.manifest.encode()?,
            Envelope::encode(Kind::CompactPublicKey, id, &[], &self.public_key_bytes)?,
            Envelope::encode(Kind::Crs, id, &[], &self.crs_bytes)?,
            Envelope::encode(Kind::TranscriptKey, id, &[], &self.transcript.0)?,
        ])
    }

    /// Encodes the bundle as an envelope.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let parts = self.component_parts()?;
        let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        Envelope::encode(Kind::AppBundle, self.key_id(), &[], &encode_parts(&refs))
    }

    /// Decodes a bundle and checks every component against its manifest (size limits,
    /// conformance, fingerprints). It does not pin the manifest: see [`Self::decode_pinned`].
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let envelope = Envelope::decode_expecting(bytes, Kind::AppBundle, None)?;
        let parts = decode_parts("app bundle", envelope.payload, 4)?;
        Self::from_parts(envelope.key_id, &parts)
    }

    /// Decodes a bundle and refuses it unless its manifest has the fingerprint the caller
    /// pinned, so a server cannot swap keys under an app.
    pub fn decode_pinned(bytes: &[u8], manifest_fingerprint: &str) -> Result<Self> {
        let bundle = Self::decode(bytes)?;
        let found = bundle.manifest.fingerprint()?;
        if !crate::ct_eq(found.as_bytes(), manifest_fingerprint.as_bytes()) {
            return Err(Error::FingerprintMismatch {
                component: "key manifest",
                expected: manifest_fingerprint.chars().take(64).collect(),
                found,
            });
        }
        Ok(bundle)
    }

    fn from_parts(key_id: &str, parts: &[&[u8]]) -> Result<Self> {
        let manifest = KeyManifest::decode(parts[0])?;
        if manifest.key_id != key_id {
            return Err(Error::WrongKeyId {
                expected: key_id.to_owned(),
                found: manifest.key_id,
            });
        }
        let id = Some(key_id);
        let f = &manifest.fingerprints;
        let pk = Envelope::decode_expecting(parts[1], Kind::CompactPublicKey, id)?.payload;
        check_fingerprint("compact public key", &f.compact_public_key, pk)?;
        let crs = Envelope::decode_expecting(parts[2], Kind::Crs, id)?.payload;
        check_fingerprint("CRS", &f.crs, crs)?;
        let tk = Envelope::decode_expecting(parts[3], Kind::TranscriptKey, id)?.payload;
        check_fingerprint("transcript public key", &f.transcript_public_key, tk)?;
        let public_key = decode_compact_public_key(pk)?;
        Ok(Self {
            lane_key: LanePublicKey::from_compact_public_key(&public_key),
            public_key,
            crs: decode_crs(crs)?,
            transcript: decode_transcript_key(tk)?,
            public_key_bytes: pk.to_vec(),
            crs_bytes: crs.to_vec(),
            manifest,
        })
    }
}

/// Everything public about a key set: the [`AppBundle`] plus the compressed server key. This
/// is what the key holder registers with the server. It offers no way to decrypt.
#[derive(Clone)]
pub struct PublicBundle {
    pub(crate) app: AppBundle,
    pub(crate) server_key_bytes: Vec<u8>,
}

impl fmt::Debug for PublicBundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicBundle")
            .field("key_id", &self.app.manifest.key_id)
            .field("server_key_bytes", &self.server_key_bytes.len())
            .finish_non_exhaustive()
    }
}

impl PublicBundle {
    /// The part an app needs (no server key).
    pub fn app_bundle(&self) -> &AppBundle {
        &self.app
    }

    /// The manifest.
    pub fn manifest(&self) -> &KeyManifest {
        &self.app.manifest
    }

    /// The key set's id.
    pub fn key_id(&self) -> &str {
        self.app.key_id()
    }

    /// The safe-serialized compressed server key, as fingerprinted in the manifest.
    pub fn server_key_bytes(&self) -> &[u8] {
        &self.server_key_bytes
    }

    /// Decodes (with the conformance check) the compressed server key.
    pub fn server_key(&self) -> Result<CompressedServerKey> {
        decode_server_key(&self.server_key_bytes)
    }

    /// Encodes the bundle as an envelope.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let [m, pk, crs, tk] = self.app.component_parts()?;
        let sk = Envelope::encode(Kind::ServerKey, self.key_id(), &[], &self.server_key_bytes)?;
        let payload = encode_parts(&[&m, &pk, &crs, &tk, &sk]);
        Envelope::encode(Kind::PublicBundle, self.key_id(), &[], &payload)
    }

    /// Decodes a bundle and checks every component against its manifest (size limits,
    /// conformance of every key, fingerprints).
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        Self::decode_with_server_key(bytes).map(|(bundle, _)| bundle)
    }

    /// [`Self::decode`], also returning the server key it decoded and checked, so a caller
    /// that needs the key does not decode its ~100 MB a second time.
    pub fn decode_with_server_key(bytes: &[u8]) -> Result<(Self, CompressedServerKey)> {
        let envelope = Envelope::decode_expecting(bytes, Kind::PublicBundle, None)?;
        let parts = decode_parts("public bundle", envelope.payload, 5)?;
        let app = AppBundle::from_parts(envelope.key_id, &parts[..4])?;
        let sk = Envelope::decode_expecting(parts[4], Kind::ServerKey, Some(envelope.key_id))?;
        check_fingerprint(
            "server key",
            &app.manifest.fingerprints.server_key,
            sk.payload,
        )?;
        let server_key = decode_server_key(sk.payload)?;
        let bundle = Self {
            app,
            server_key_bytes: sk.payload.to_vec(),
        };
        Ok((bundle, server_key))
    }
}

/// A freshly generated key set: secrets and public bundle, to be split with
/// [`KeySet::into_parts`].
pub struct KeySet {
    /// The secrets (client key, transcript secret).
    pub secret: SecretKeys,
    /// The public bundle.
    pub public: PublicBundle,
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySet")
            .field("key_id", &self.secret.key_id)
            .finish_non_exhaustive()
    }
}

impl KeySet {
    /// Runs the key ceremony under the pinned parameters.
    pub fn generate() -> Result<Self> {
        Self::generate_with_progress(|_| {})
    }

    /// Runs the key ceremony, calling `progress` before each step.
    pub fn generate_with_progress(progress: impl FnMut(KeygenStep)) -> Result<Self> {
        let key_id = format!("ks_{}", hex::encode(random_bytes::<12>()?));
        Self::generate_with_id(&key_id, progress)
    }

    /// Runs the key ceremony under a key-set id the key holder chose (e.g. `clinic-2026-q4`):
    /// at most 64 characters of `A–Z a–z 0–9 - _`.
    pub fn generate_with_id(key_id: &str, mut progress: impl FnMut(KeygenStep)) -> Result<Self> {
        crate::envelope::check_key_id(key_id)?;
        let key_id = key_id.to_owned();
        let config = params::config();

        progress(KeygenStep::ClientKey);
        let client_key = ClientKey::generate(config);
        progress(KeygenStep::ServerKey);
        let server_key = CompressedServerKey::new(&client_key);
        progress(KeygenStep::PublicKey);
        let public_key =
            CompactPublicKey::try_new(&client_key).map_err(|e| Error::Fhe(e.to_string()))?;
        progress(KeygenStep::Crs);
        let crs = crate::lane::generate_lane_crs()?;
        let transcript = TranscriptSecretKey::generate()?;

        progress(KeygenStep::Manifest);
        let server_key_bytes = codec::encode("server key", &server_key, limits::SERVER_KEY)?;
        drop(server_key);
        let public_key_bytes = codec::encode(
            "compact public key",
            &public_key,
            limits::COMPACT_PUBLIC_KEY,
        )?;
        let crs_bytes = codec::encode("CRS", &crs, limits::CRS)?;
        let transcript_public = transcript.public_key();
        let manifest = KeyManifest {
            format: MANIFEST_FORMAT,
            key_id: key_id.clone(),
            tfhe_version: TFHE_VERSION.to_owned(),
            parameter_set: PARAMETER_SET_ID.to_owned(),
            created_at: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            crs_max_slots: LANE_MAX_SLOTS as u32,
            fingerprints: Fingerprints {
                server_key: sha256_hex(&server_key_bytes),
                compact_public_key: sha256_hex(&public_key_bytes),
                crs: sha256_hex(&crs_bytes),
                transcript_public_key: sha256_hex(transcript_public.as_bytes()),
            },
        };
        Ok(KeySet {
            secret: SecretKeys::new(key_id, client_key, transcript, &public_key)?,
            public: PublicBundle {
                app: AppBundle {
                    manifest,
                    lane_key: LanePublicKey::from_compact_public_key(&public_key),
                    public_key,
                    crs,
                    transcript: transcript_public,
                    public_key_bytes,
                    crs_bytes,
                },
                server_key_bytes,
            },
        })
    }

    /// Splits the key set into its secret and public halves.
    pub fn into_parts(self) -> (SecretKeys, PublicBundle) {
        (self.secret, self.public)
    }
}
