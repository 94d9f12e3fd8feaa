//! The audit log over HTTP: `GET /v1/audit/key` publishes the signing key, `GET
//! /v1/audit/head` returns a chain's signed head and `GET /v1/audit` pages through a chain.
//!
//! Each tenant has its own chain, read with the tenant's keyholder or auditor token; the
//! server-wide chain (failed authentications, lockouts, signing keys) is read with the admin
//! token. A tenant's auditor thus verifies its whole chain from genesis without seeing
//! anything of another tenant, not even how much it does.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;

use super::{Caller, bearer, client_ip, locked_out};
use crate::auth::Role;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store;
use blindsight_proto::{AuditKey, AuditPage, AuditQuery, Problem, SignedHead};

/// Who reads the audit log, and so which chain: the operator (admin token) reads the
/// server-wide chain; a keyholder or auditor token reads its tenant's chain.
#[derive(Debug, Clone)]
pub enum AuditReader {
    /// The admin token.
    Operator,
    /// A tenant's keyholder or auditor token.
    Tenant(String),
}

impl AuditReader {
    /// The chain this reader sees: a tenant id, or `None` for the server-wide chain.
    pub fn chain(&self) -> Option<&str> {
        match self {
            AuditReader::Operator => None,
            AuditReader::Tenant(t) => Some(t),
        }
    }
}

impl FromRequestParts<AppState> for AuditReader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        state
            .guard()
            .check_address(client_ip(parts, state))
            .map_err(locked_out)?;
        if let (Some(admin), Some(token)) = (&state.config().admin_token, bearer(parts))
            && admin.matches(token)
        {
            return Ok(AuditReader::Operator);
        }
        let caller = Caller::from_request_parts(parts, state).await?;
        caller.require(&[Role::Keyholder, Role::Auditor])?;
        Ok(AuditReader::Tenant(caller.tenant_id))
    }
}

/// The public key that signs audit heads. Public: pin its `key_id`.
#[utoipa::path(
    get,
    path = "/v1/audit/key",
    tag = "audit",
    responses((status = 200, description = "The Ed25519 public key", body = AuditKey))
)]
pub async fn key(State(state): State<AppState>) -> Json<AuditKey> {
    let key = state.audit_key();
    Json(AuditKey {
        algorithm: "ed25519".into(),
        public_key: hex::encode(key.public_key()),
        key_id: key.key_id().to_owned(),
    })
}

/// The signed head of the caller's chain: how many entries it holds, the last one's hash and
/// the digest of the head before it, as signed when the chain last moved (docs/FORMATS.md
/// gives the signed bytes). A head stored unsigned, or signed by a key this server no longer
/// uses, is signed now over the same fields, unless the chain no longer extends the last head
/// this server signed (503 `audit-halted`).
#[utoipa::path(
    get,
    path = "/v1/audit/head",
    tag = "audit",
    security(("token" = ["keyholder", "auditor"]), ("admin" = [])),
    responses(
        (status = 200, description = "The signed head", body = SignedHead),
        (status = 401, description = "Missing or invalid token", body = blindsight_proto::ProblemDocument),
        (status = 403, description = "An ingest token", body = blindsight_proto::ProblemDocument),
        (status = 503, description = "The chain no longer extends the last head this server signed (`audit-halted`)", body = blindsight_proto::ProblemDocument),
    )
)]
pub async fn head(
    State(state): State<AppState>,
    reader: AuditReader,
) -> Result<Json<SignedHead>, ApiError> {
    // Whoever can write the database but lacks the key cannot make a rewritten chain's head
    // verify, here or offline, nor get a shortened chain's head signed.
    let head = store::audit::current_head(state.db(), state.audit_key(), reader.chain()).await?;
    Ok(Json(head))
}

/// Pages through the caller's chain, in order from the first entry. With the signed head and
/// the published key, anyone can verify it (`blindsight_server::audit::verify_chain`).
#[utoipa::path(
    get,
    path = "/v1/audit",
    tag = "audit",
    params(AuditQuery),
    security(("token" = ["keyholder", "auditor"]), ("admin" = [])),
    responses(
        (status = 200, description = "A page of entries", body = AuditPage),
        (status = 400, description = "An unknown or malformed query parameter", body = blindsight_proto::ProblemDocument),
        (status = 401, description = "Missing or invalid token", body = blindsight_proto::ProblemDocument),
        (status = 403, description = "An ingest token", body = blindsight_proto::ProblemDocument),
    )
)]
pub async fn entries(
    State(state): State<AppState>,
    reader: AuditReader,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Json<AuditPage>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::new(Problem::MalformedQuery, e.body_text()))?;
    let max = super::records::MAX_PAGE;
    let limit = q.limit.unwrap_or(100);
    if !(1..=max).contains(&limit) {
        return Err(ApiError::new(
            Problem::MalformedQuery,
            format!("`limit` must be between 1 and {max}"),
        ));
    }
    let after = q.after.unwrap_or(0);
    if after < 0 {
        return Err(ApiError::new(
            Problem::MalformedQuery,
            "`after` must not be negative",
        ));
    }
    let mut entries = store::audit::entries(state.db(), reader.chain(), after, limit + 1).await?;
    let next_after = if entries.len() as i64 > limit {
        entries.truncate(limit as usize);
        entries.last().map(|e| e.seq)
    } else {
        None
    };
    Ok(Json(AuditPage {
        entries,
        next_after,
    }))
}

/// Records a download of a job's output in the tenant's chain before it is sent; a download
/// that cannot be recorded is refused (500).
pub async fn result_downloaded(
    state: &AppState,
    tenant: &str,
    job_id: &str,
) -> Result<(), ApiError> {
    store::audit::result_downloaded(state.audit_log(), tenant, job_id)
        .await?
        .map(drop)
        .ok_or_else(|| ApiError::Internal(format!("job {job_id} has no stored result")))
}
