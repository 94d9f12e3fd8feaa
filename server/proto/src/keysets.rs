//! `PUT /v1/keysets/{key_id}` and the public bundle's pinning header.

use serde::{Deserialize, Serialize};

/// The header carrying a key set's manifest fingerprint on `GET /v1/keysets/{key_id}/public`.
pub const MANIFEST_FINGERPRINT_HEADER: &str = "x-blindsight-manifest-fingerprint";

/// The reply to `PUT /v1/keysets/{key_id}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeysetRegistered {
    /// The key-set id.
    pub key_id: String,
    /// SHA-256 of the canonical manifest: what apps and auditors pin.
    pub manifest_fingerprint: String,
    /// The parameter-set id.
    pub parameter_set: String,
    /// Whether this call stored it (false: the same bundle was already registered).
    pub created: bool,
}
