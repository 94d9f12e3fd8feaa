//! The one HTTP error type: every failure becomes RFC 7807 problem JSON
//! (`application/problem+json`) with a stable, machine-readable `type`. A 5xx never carries
//! internal detail; the detail is logged instead.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// The prefix of every problem `type`; the suffix is the stable slug.
pub const PROBLEM_BASE: &str = "https://blindsight.dev/problems/";

/// An error the API returns.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The request was refused by a check; `slug` is its stable type.
    #[error("{detail}")]
    Rejected {
        /// HTTP status.
        status: StatusCode,
        /// Stable problem type slug (e.g. `proof-invalid`).
        slug: &'static str,
        /// What was wrong and what to do.
        detail: String,
        /// Seconds after which a retry may succeed (`Retry-After`), for 429 and 503.
        retry_after: Option<u64>,
        /// RFC 7807 extension members (e.g. `same_content` on `record-exists`).
        extensions: serde_json::Map<String, serde_json::Value>,
    },
    /// No route or resource.
    #[error("not found")]
    NotFound,
    /// Anything unexpected: logged, never shown.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The RFC 7807 problem document every error response carries (for the OpenAPI document).
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Problem)]
pub struct ProblemDoc {
    /// `https://blindsight.dev/problems/<slug>`: stable, machine-readable.
    #[serde(rename = "type")]
    pub kind: String,
    /// The HTTP status text.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What was wrong and what to do (absent on 5xx).
    pub detail: Option<String>,
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'a str>,
    #[serde(flatten)]
    extensions: Option<&'a serde_json::Map<String, serde_json::Value>>,
}

impl ApiError {
    /// A refusal with a status, a stable slug and a detail for the caller.
    pub fn rejected(status: StatusCode, slug: &'static str, detail: impl Into<String>) -> Self {
        ApiError::Rejected {
            status,
            slug,
            detail: detail.into(),
            retry_after: None,
            extensions: serde_json::Map::new(),
        }
    }

    /// Adds an RFC 7807 extension member to a refusal.
    #[must_use]
    pub fn with_extension(mut self, key: &str, value: serde_json::Value) -> Self {
        if let ApiError::Rejected { extensions, .. } = &mut self {
            extensions.insert(key.to_owned(), value);
        }
        self
    }

    /// Adds a `Retry-After` (rounded up to whole seconds, at least 1).
    #[must_use]
    pub fn with_retry_after(mut self, after: std::time::Duration) -> Self {
        if let ApiError::Rejected { retry_after, .. } = &mut self {
            let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
            *retry_after = Some(secs.max(1));
        }
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Rejected { status, .. } => *status,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable problem type slug.
    pub fn slug(&self) -> &'static str {
        match self {
            ApiError::Rejected { slug, .. } => slug,
            ApiError::NotFound => "not-found",
            ApiError::Internal(_) => "internal",
        }
    }
}

impl From<blindsight_crypto::Error> for ApiError {
    /// Every check in the crypto core gets its own stable problem type, so clients can tell a
    /// bad proof from an oversized body from a key-set mismatch.
    fn from(e: blindsight_crypto::Error) -> Self {
        use blindsight_crypto::Error as E;
        let (status, slug) = match &e {
            E::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "too-large"),
            E::Malformed { .. } => (StatusCode::BAD_REQUEST, "malformed"),
            E::UnsupportedVersion(_) => (StatusCode::BAD_REQUEST, "unsupported-format-version"),
            E::NonConformant { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "non-conformant"),
            E::WrongParameterSet { .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, "wrong-parameter-set")
            }
            E::WrongKeyId { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "wrong-key-id"),
            E::WrongKind { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "wrong-envelope-kind"),
            E::MetadataMismatch(_) => (StatusCode::UNPROCESSABLE_ENTITY, "metadata-mismatch"),
            E::ProofInvalid => (StatusCode::UNPROCESSABLE_ENTITY, "proof-invalid"),
            E::ShapeMismatch(_) => (StatusCode::UNPROCESSABLE_ENTITY, "shape-mismatch"),
            E::TrivialCiphertext { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "trivial-ciphertext"),
            E::InvalidField { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "invalid-field"),
            E::InvalidSchema { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "invalid-schema"),
            E::InvalidModel { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "invalid-model"),
            E::InvalidQuery(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid-query"),
            E::FingerprintMismatch { .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, "fingerprint-mismatch")
            }
            // Server-side sealing, keystore, tfhe or RNG failures are ours, not the caller's.
            _ => return ApiError::Internal(e.to_string()),
        };
        ApiError::rejected(status, slug, e.to_string())
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        ApiError::Internal(format!("database: {e}"))
    }
}

impl From<crate::db::DbError> for ApiError {
    fn from(e: crate::db::DbError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let detail = match &self {
            ApiError::Rejected { detail, .. } => Some(detail.as_str()),
            ApiError::NotFound => None,
            ApiError::Internal(internal) => {
                tracing::error!(error = %internal, "internal error");
                None
            }
        };
        let problem = Problem {
            kind: format!("{PROBLEM_BASE}{}", self.slug()),
            title: status.canonical_reason().unwrap_or("error"),
            status: status.as_u16(),
            detail,
            extensions: match &self {
                ApiError::Rejected { extensions, .. } => Some(extensions),
                _ => None,
            },
        };
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/problem+json"),
            )],
            body,
        )
            .into_response();
        if let ApiError::Rejected {
            retry_after: Some(secs),
            ..
        } = &self
        {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(*secs));
        }
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"blindsight\""),
            );
        }
        response
    }
}
