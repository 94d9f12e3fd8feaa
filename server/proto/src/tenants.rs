//! `POST /v1/tenants`: a new tenant and the tokens issued for it.

use std::fmt;

use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

/// The largest minimum cohort a tenant may set (a million records: larger is no longer a
/// minimum but a refusal of every aggregate).
pub const MAX_MIN_COHORT: u32 = 1_000_000;

/// `POST /v1/tenants` (admin): a new tenant.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewTenant {
    /// A display name (kept in the server's tenants table and audit log): 1–200 printable
    /// characters.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 200))]
    pub name: String,
    /// The tenant id (1–128 letters, digits, `-`, `_`, `.`, `:`, `@`); generated when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(
            pattern = "^[A-Za-z0-9._:@-]{1,128}$",
            min_length = 1,
            max_length = 128
        )
    )]
    pub tenant_id: Option<String>,
    /// The smallest cohort an aggregate job may read, 2 to [`MAX_MIN_COHORT`] (default: the
    /// server's `min_cohort_size`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 2, maximum = 1_000_000))]
    pub min_cohort_size: Option<u32>,
    /// The total differential privacy the tenant's jobs with privacy may spend, as
    /// `{"epsilon": ε, "delta": δ}` (kept as zCDP ρ; jobs' ρ add up). Absent: the tenant runs
    /// no job with privacy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub privacy_budget: Option<blindsight_crypto::dp::Privacy>,
}

/// A bearer token, as issued once when its tenant is created. Its `Debug` never shows it and
/// its text is wiped when it is dropped.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Token(String);

impl Drop for Token {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(redacted)")
    }
}

impl Token {
    /// Wraps a token's text.
    pub fn new(text: String) -> Self {
        Self(text)
    }

    /// The token text, to send as `Authorization: Bearer <token>` or hand to its holder once.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// The tenant's tokens, shown once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TenantTokens {
    /// Registers keys, schemas and models; requests jobs; reads results and transcripts.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub keyholder: Token,
    /// Uploads records (what apps hold).
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub ingest: Token,
    /// Reads proofs, audit entries and receipts.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub auditor: Token,
}

/// The reply to `POST /v1/tenants`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TenantCreated {
    /// The tenant id.
    pub tenant_id: String,
    /// Its display name.
    pub name: String,
    /// The smallest cohort an aggregate job may read.
    pub min_cohort_size: u32,
    /// Its privacy budget, as asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub privacy_budget: Option<blindsight_crypto::dp::Privacy>,
    /// Its tokens: shown once, stored only as hashes.
    pub tokens: TenantTokens,
}
