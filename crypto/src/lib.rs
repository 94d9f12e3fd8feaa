//! `blindsight-crypto`: Blindsight's cryptographic core, with no I/O and no async.
//!
//! - [`params`]: the one pinned TFHE parameter set and its id.
//! - [`KeySet`]: the key ceremony, split into [`SecretKeys`] and a [`PublicBundle`] /
//!   [`AppBundle`] pinned by a [`KeyManifest`].
//! - [`Envelope`]: the versioned frame for everything that crosses a trust boundary; every
//!   decoder has a size limit and a conformance check.
//! - [`RecordSchema`], [`encrypt_record`], [`Verifier`]: records as proven lane lists (one bit
//!   per slot) bound to their metadata, and the server-side verify + derivation of FHE values.
//! - [`lane`]: the additive lane: lane lists, sums without keys, exact decoding, and the FHE
//!   path's blocks derived from the same list.
//! - [`compute`]: risk models and cohort queries, evaluated on ciphertext (optimised and
//!   straightforward), in clear (the reference), and their encrypted outputs.
//! - [`seal`]/[`open`]: transcripts sealed to the key holder.
//! - [`seal_keystore`]/[`KeystoreFile`]: the passphrase-encrypted keystore format.
//!
//! Decoding never panics, whatever the input: each decoder is driven by a fuzz target and by
//! the tests over truncated, bit-flipped and random inputs.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod codec;
pub mod compute;
pub mod decoders;
pub mod dp;
mod envelope;
mod error;
mod keys;
mod keystore;
pub mod lane;
pub mod params;
pub mod receipt;
mod record;
mod results;
pub mod scan;
mod schema;
pub mod schemas;
mod seal;

pub use codec::{encoded_size, limits, sha256_hex};
pub use envelope::{Envelope, FORMAT_VERSION, Kind, MAGIC, check_key_id};
pub use error::{Error, Result};
pub use keys::{
    AppBundle, Fingerprints, KeyManifest, KeySet, KeygenStep, MANIFEST_FORMAT, PublicBundle,
    SecretKeys, TranscriptPublicKey, TranscriptSecretKey, decode_server_key, wipe_client_key,
};
pub use keystore::{
    DEFAULT_ITERATIONS, KeystoreFile, KeystoreHeader, MAX_ITERATIONS, MIN_ITERATIONS, seal_keystore,
};
pub use lane::{ComputeKey, LaneBody, LaneList, LanePublicKey, LaneSecret, LaneSum};
pub use params::{PARAMETER_SET_ID, TFHE_VERSION};
pub use record::{
    EncryptedValue, LANE_TAG, RecordEnvelope, RecordMetadata, TranscriptDigest, Verifier,
    check_shape, encrypt_record, encrypt_values, parse_transcript_digest, transcript_digest,
};
pub use results::{decode_result_list, encode_result_list};
pub use schema::{FieldSpec, FieldType, MAX_FIELDS, RecordSchema, RecordValues, Value};
pub use seal::{SEAL_VERSION, SealedTranscript, open, seal};
/// The tfhe crate this build is pinned to, re-exported so users name the same types.
pub use tfhe;

/// Constant-time equality for tokens, fingerprints and ids.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// `N` bytes from the operating system's CSPRNG (ring's `SystemRandom`).
pub fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    use ring::rand::SecureRandom;
    let mut out = [0u8; N];
    ring::rand::SystemRandom::new()
        .fill(&mut out)
        .map_err(|_| Error::Rng)?;
    Ok(out)
}
