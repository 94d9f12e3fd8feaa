//! The audit log on the wire: the signing key (`GET /v1/audit/key`), pages of a chain
//! (`GET /v1/audit`) and signed heads (`GET /v1/audit/head`, in [`crate::chain`]).

use serde::{Deserialize, Serialize};

use crate::chain::{Entry, key_id};
use crate::query::QueryString;

/// The audit signing key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditKey {
    /// `ed25519`.
    pub algorithm: String,
    /// The 32-byte public key, hex.
    pub public_key: String,
    /// SHA-256 of the public key, hex: what signed heads name.
    pub key_id: String,
}

impl AuditKey {
    /// The key as published for the Ed25519 public key `public_key`.
    pub fn ed25519(public_key: &[u8]) -> Self {
        Self {
            algorithm: "ed25519".into(),
            public_key: hex::encode(public_key),
            key_id: key_id(public_key),
        }
    }

    /// The public key's bytes, once checked: 32 bytes whose SHA-256 is `key_id`.
    pub fn checked_public_key(&self) -> Result<Vec<u8>, String> {
        let bytes = hex::decode(&self.public_key)
            .ok()
            .filter(|b| b.len() == 32)
            .ok_or("the audit key is not 64 hex digits")?;
        if key_id(&bytes) != self.key_id {
            return Err("the audit key's key_id is not the SHA-256 of its public key".into());
        }
        Ok(bytes)
    }
}

/// The query of `GET /v1/audit`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Only entries after this `seq` (default 0: from the first; the previous page's
    /// `next_after`).
    pub after: Option<i64>,
    /// Page size, 1–1000 (default 100).
    pub limit: Option<i64>,
}

impl AuditQuery {
    /// The query string, without the leading `?`.
    pub fn to_query_string(&self) -> String {
        let mut q = QueryString::default();
        q.opt("after", self.after);
        q.opt("limit", self.limit);
        q.finish()
    }
}

/// A page of a chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditPage {
    /// The entries, in chain order.
    pub entries: Vec<Entry>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_after: Option<i64>,
}
