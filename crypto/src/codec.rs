//! tfhe safe serialization with an explicit size limit per type and a conformance check.
//!
//! This is the only place untrusted bytes are turned into tfhe objects. Raw bincode of
//! untrusted bytes is a bug: every decode goes through tfhe's `safe_deserialize*`, which
//! checks the type name and version header and bounds every allocation by the limit.
//! See <https://docs.zama.org/tfhe-rs> ("Serialization/deserialization").

use serde::Serialize;
use serde::de::DeserializeOwned;
use tfhe::conformance::ParameterSetConformant;
use tfhe::named::Named;
use tfhe::safe_serialization::{DeserializationConfig, SerializationConfig};
use tfhe::{Unversionize, Versionize};

use crate::{Error, Result};

/// Size limits, in bytes, for every type that crosses a trust boundary. Each is the measured
/// size of the largest legitimate object with headroom (see `docs/FORMATS.md`).
pub mod limits {
    /// A compressed server (evaluation) key: ~106 MB measured.
    pub const SERVER_KEY: u64 = 192 << 20;
    /// A compact public key: ~33 KB measured.
    pub const COMPACT_PUBLIC_KEY: u64 = 1 << 20;
    /// The lane CRS sized for [`crate::params::LANE_MAX_SLOTS`] slots.
    pub const CRS: u64 = 64 << 20;
    /// A proven lane list (one record's ciphertext and proof).
    pub const LANE_LIST: u64 = crate::lane::LANE_LIST_LIMIT;
    /// A compressed list of results (one job's output).
    pub const RESULT_LIST: u64 = 256 << 20;
    /// An FHE client key (only ever inside a keystore).
    pub const CLIENT_KEY: u64 = 64 << 20;
    /// A key manifest.
    pub const MANIFEST: u64 = 16 << 10;
    /// Envelope metadata.
    pub const METADATA: u64 = 16 << 10;
    /// A plaintext transcript.
    pub const TRANSCRIPT: u64 = 1 << 20;
}

/// Serializes a tfhe object with versioning and a size limit.
pub(crate) fn encode<T: Serialize + Versionize + Named>(
    what: &'static str,
    object: &T,
    limit: u64,
) -> Result<Vec<u8>> {
    let config = SerializationConfig::new(limit);
    let size = config
        .serialized_size(object)
        .map_err(|e| Error::Fhe(format!("couldn't size {what}: {e}")))?;
    if size > limit {
        return Err(Error::TooLarge { what, size, limit });
    }
    let mut out = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    config
        .serialize_into(object, &mut out)
        .map_err(|e| Error::Fhe(format!("couldn't serialize {what}: {e}")))?;
    Ok(out)
}

/// Deserializes a tfhe object and checks it conforms to `params`.
pub(crate) fn decode_conformant<T>(
    what: &'static str,
    bytes: &[u8],
    limit: u64,
    params: &T::ParameterSet,
) -> Result<T>
where
    T: DeserializeOwned + Unversionize + Named + ParameterSetConformant,
{
    let object: T = decode_unchecked(what, bytes, limit)?;
    if !object.is_conformant(params) {
        return Err(Error::NonConformant {
            what,
            reason: "its dimensions, moduli or list sizes differ from the pinned parameters".into(),
        });
    }
    Ok(object)
}

/// Deserializes a tfhe object with the size limit and header check but no parameter
/// conformance; callers check what tfhe does not (see [`crate::results`]).
pub(crate) fn decode_unchecked<T>(what: &'static str, bytes: &[u8], limit: u64) -> Result<T>
where
    T: DeserializeOwned + Unversionize + Named,
{
    let size = bytes.len() as u64;
    if size > limit {
        return Err(Error::TooLarge { what, size, limit });
    }
    let mut reader = bytes;
    let object: T = DeserializationConfig::new(limit)
        .disable_conformance()
        .deserialize_from(&mut reader)
        .map_err(|reason| Error::Malformed { what, reason })?;
    if !reader.is_empty() {
        return Err(Error::Malformed {
            what,
            reason: format!("{} trailing bytes after the object", reader.len()),
        });
    }
    Ok(object)
}

/// Lowercase hex SHA-256 of `bytes`: the fingerprint of every public component.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes))
}

/// The size of `value`'s plain bincode encoding: for tfhe keys, which are mostly flat vectors
/// of integers, a close estimate of the memory they occupy (used to bound key caches).
pub fn encoded_size<T: Serialize>(value: &T) -> u64 {
    bincode::serialized_size(value).unwrap_or(u64::MAX)
}
