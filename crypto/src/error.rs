//! The one error type of `blindsight-crypto`.

/// Everything that can go wrong in `blindsight-crypto`. Messages say what was wrong and, where
/// it helps, what to do; none of them ever contains key material or plaintext.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input is larger than the limit for its type.
    #[error("{what} is too large: {size} bytes, the limit is {limit} bytes")]
    TooLarge {
        /// What was being decoded.
        what: &'static str,
        /// Its size in bytes.
        size: u64,
        /// The limit for this type.
        limit: u64,
    },
    /// A computation was stopped between records ([`crate::compute::stop`]): the process is
    /// shutting down, and its task goes back to the queue.
    #[error("the computation was stopped between records (the process is shutting down)")]
    Stopped,
    /// The bytes are not a well-formed encoding of the expected type.
    #[error("{what} is malformed: {reason}")]
    Malformed {
        /// What was being decoded.
        what: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// The object decoded but does not conform to the pinned parameter set.
    #[error("{what} does not conform to the pinned parameter set ({reason})")]
    NonConformant {
        /// What was being checked.
        what: &'static str,
        /// Which check failed.
        reason: String,
    },
    /// The object names another parameter set.
    #[error("parameter set {found:?} is not supported; this build only accepts {expected:?}")]
    WrongParameterSet {
        /// The only accepted parameter set.
        expected: &'static str,
        /// The one found.
        found: String,
    },
    /// The object belongs to another key set.
    #[error("object belongs to key set {found:?}, expected {expected:?}")]
    WrongKeyId {
        /// The key id that was expected.
        expected: String,
        /// The key id found.
        found: String,
    },
    /// An envelope of another kind was given where this kind was expected.
    #[error("expected a {expected} envelope, found a {found} envelope")]
    WrongKind {
        /// The kind that was expected.
        expected: &'static str,
        /// The kind found.
        found: &'static str,
    },
    /// The envelope's format version is not one this build reads.
    #[error("envelope format version {0} is not supported (this build reads version 1)")]
    UnsupportedVersion(u16),
    /// A record's metadata does not match what it was checked against.
    #[error("metadata mismatch: {0}")]
    MetadataMismatch(String),
    /// The zero-knowledge proof did not verify.
    #[error(
        "the zero-knowledge proof does not verify for this ciphertext, public key, CRS, metadata and sealed transcript"
    )]
    ProofInvalid,
    /// The proof verifies only under record binding v2, which does not cover the sealed
    /// transcript: it was made by an SDK from before transcripts were bound into proofs.
    #[error(
        "the proof was made by an older SDK (record binding v2, which does not cover the sealed transcript); update the SDK and record the session again"
    )]
    LegacyProof,
    /// The proven list holds a different number or type of values than the schema says.
    #[error("arity/type mismatch: {0}")]
    ShapeMismatch(String),
    /// A client sent a noiseless (trivial) ciphertext, which would carry its value in clear.
    #[error(
        "value {index} is a trivial (noiseless) ciphertext; only real encryptions are accepted"
    )]
    TrivialCiphertext {
        /// The position of the offending value.
        index: usize,
    },
    /// A record value is missing, unknown or out of range.
    #[error("field {field:?}: {reason}")]
    InvalidField {
        /// The field's name.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A record schema is not well-formed.
    #[error("schema {schema:?} is invalid: {reason}")]
    InvalidSchema {
        /// The schema id.
        schema: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Sealing or opening a transcript failed.
    #[error("{0}")]
    Seal(&'static str),
    /// The keystore could not be opened with this passphrase.
    #[error("wrong passphrase, or the keystore file was modified (authentication failed)")]
    WrongPassphrase,
    /// A public component does not match the fingerprint its manifest pins.
    #[error(
        "{component} does not match the key manifest (fingerprint {found}, manifest says {expected})"
    )]
    FingerprintMismatch {
        /// Which component.
        component: &'static str,
        /// The fingerprint in the manifest.
        expected: String,
        /// The fingerprint of the bytes given.
        found: String,
    },
    /// A risk model is not well-formed or does not fit its schema.
    #[error("model {model:?} is invalid: {reason}")]
    InvalidModel {
        /// The model id.
        model: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An aggregate query is not well-formed or does not fit its schema.
    #[error("invalid query: {0}")]
    InvalidQuery(String),
    /// tfhe reported an error while building keys, encrypting or expanding.
    #[error("FHE operation failed: {0}")]
    Fhe(String),
    /// The system random number generator failed.
    #[error("the system random number generator failed")]
    Rng,
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
