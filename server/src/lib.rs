//! `blindsight-server`: verifies proofs, stores only ciphertext, computes on ciphertext and
//! signs what it did.
//!
//! This crate depends on `blindsight-crypto` and never on `blindsight-client`: no code path
//! in the server can hold a client key.
//!
//! - [`http`]: the router (`app()`), driven by tests in-process and by `serve` over a socket.
//! - [`ApiError`]: the one error type, rendered as RFC 7807 problem JSON with stable types.
//! - [`admit_public_bundle`]: the admission check key registration uses.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod error;
pub mod http;

pub use error::{ApiError, PROBLEM_BASE};

use blindsight_crypto::{KeyManifest, PublicBundle};

/// Decodes a public bundle as the server admits it: every component within its size limit,
/// conformant to the pinned parameters, and matching the fingerprints in its manifest.
///
/// ```
/// let err = blindsight_server::admit_public_bundle(b"not a bundle").unwrap_err();
/// assert!(err.to_string().contains("envelope magic"));
/// ```
pub fn admit_public_bundle(bytes: &[u8]) -> blindsight_crypto::Result<KeyManifest> {
    let bundle = PublicBundle::decode(bytes)?;
    Ok(bundle.manifest().clone())
}
