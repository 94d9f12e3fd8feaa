//! The one HTTP error type: every failure becomes RFC 7807 problem JSON
//! (`application/problem+json`) with a stable, machine-readable `type`. A 5xx never carries
//! internal detail; the detail is logged instead.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
pub(crate) use blindsight_proto::{Problem, ProblemDocument};

/// An error the API returns.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The request was refused by a check; `problem` is its stable type and status.
    #[error("{detail}")]
    Rejected {
        /// The problem type.
        problem: Problem,
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

impl ApiError {
    /// A refusal with a problem type and a detail for the caller.
    pub fn new(problem: Problem, detail: impl Into<String>) -> Self {
        ApiError::Rejected {
            problem,
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

    /// The problem type.
    pub fn problem(&self) -> Problem {
        match self {
            ApiError::Rejected { problem, .. } => *problem,
            ApiError::NotFound => Problem::NotFound,
            ApiError::Internal(_) => Problem::Internal,
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        // Every problem's status is a valid HTTP status (a test of the proto crate lists them).
        StatusCode::from_u16(self.problem().status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The stable problem type slug.
    pub fn slug(&self) -> &'static str {
        self.problem().slug()
    }
}

impl From<blindsight_crypto::Error> for ApiError {
    /// Every check in the crypto core gets its own stable problem type, so clients can tell a
    /// bad proof from an oversized body from a key-set mismatch.
    fn from(e: blindsight_crypto::Error) -> Self {
        use blindsight_crypto::Error as E;
        let problem = match &e {
            E::TooLarge { .. } => Problem::TooLarge,
            E::Malformed { .. } => Problem::Malformed,
            E::UnsupportedVersion(_) => Problem::UnsupportedFormatVersion,
            E::NonConformant { .. } => Problem::NonConformant,
            E::WrongParameterSet { .. } => Problem::WrongParameterSet,
            E::WrongKeyId { .. } => Problem::WrongKeyId,
            E::WrongKind { .. } => Problem::WrongEnvelopeKind,
            E::MetadataMismatch(_) => Problem::MetadataMismatch,
            E::ProofInvalid | E::LegacyProof => Problem::ProofInvalid,
            E::ShapeMismatch(_) => Problem::ShapeMismatch,
            E::TrivialCiphertext { .. } => Problem::TrivialCiphertext,
            E::InvalidField { .. } => Problem::InvalidField,
            E::InvalidSchema { .. } => Problem::InvalidSchema,
            E::InvalidModel { .. } => Problem::InvalidModel,
            E::InvalidQuery(_) => Problem::InvalidQuery,
            E::FingerprintMismatch { .. } => Problem::FingerprintMismatch,
            // Server-side sealing, keystore, tfhe or RNG failures are ours, not the caller's.
            _ => return ApiError::Internal(e.to_string()),
        };
        ApiError::new(problem, e.to_string())
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        match e {
            crate::store::StoreError::Halted(d) => {
                ApiError::new(Problem::AuditHalted, d.to_string())
            }
            e => ApiError::Internal(e.to_string()),
        }
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
        let mut problem = ProblemDocument::new(
            self.problem(),
            status.canonical_reason().unwrap_or("error"),
            detail.map(str::to_owned),
        );
        if let ApiError::Rejected { extensions, .. } = &self {
            problem.extensions = extensions.clone();
        }
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

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    /// Every problem type, as the server renders it, reads back on the client's side as the
    /// same problem with its status, detail and extensions.
    #[test]
    fn every_problem_round_trips_through_a_response() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        for &problem in Problem::ALL {
            let response = ApiError::new(problem, "what to do")
                .with_extension("minimum", 10.into())
                .into_response();
            assert_eq!(response.status().as_u16(), problem.status());
            assert_eq!(
                response.headers()[header::CONTENT_TYPE],
                "application/problem+json"
            );
            let body = runtime
                .block_on(response.into_body().collect())
                .unwrap()
                .to_bytes();
            let doc: ProblemDocument = serde_json::from_slice(&body).unwrap();
            assert_eq!(doc.problem(), Some(problem), "{doc:?}");
            assert_eq!(doc.detail.as_deref(), Some("what to do"));
            assert_eq!(doc.extensions["minimum"], 10);
        }
        let internal = ApiError::Internal("a secret path".into()).into_response();
        let body = runtime
            .block_on(internal.into_body().collect())
            .unwrap()
            .to_bytes();
        let doc: ProblemDocument = serde_json::from_slice(&body).unwrap();
        assert_eq!(doc.problem(), Some(Problem::Internal));
        assert_eq!(doc.detail, None, "a 5xx never carries internal detail");
    }
}
