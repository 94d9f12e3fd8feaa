//! `blindsight-server`: verifies proofs, stores only ciphertext, computes on ciphertext and
//! signs what it did.
//!
//! This crate depends on `blindsight-crypto` and never on `blindsight-client`: no code path
//! in the server can hold a client key. So far it holds the public-bundle admission check the
//! key-registration route will use; the HTTP API, storage and jobs are built on it.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

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
