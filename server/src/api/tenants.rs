//! `POST /v1/tenants` (admin): a tenant and its three tokens.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::{Admin, check_id, parse_json, read_body};
use crate::auth::{Role, Token};
use crate::error::ApiError;
use crate::http::AppState;
use crate::store::{self, WriteError};

/// A new tenant.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    /// A display name (1–200 characters).
    pub name: String,
    /// The tenant id; generated (`t-` and 16 hex digits) when absent.
    #[serde(default)]
    pub tenant_id: Option<String>,
    /// The smallest cohort an aggregate may run over (at least 2; the server's default,
    /// normally 10, when absent).
    #[serde(default)]
    pub min_cohort_size: Option<u32>,
}

/// The three tokens of a tenant. Shown once: the server keeps only their hashes.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TenantTokens {
    /// Registers keys, schemas and models; requests jobs; reads results and transcripts.
    #[schema(value_type = String)]
    pub keyholder: Token,
    /// Uploads records (what apps hold).
    #[schema(value_type = String)]
    pub ingest: Token,
    /// Reads proofs, audit entries and receipts.
    #[schema(value_type = String)]
    pub auditor: Token,
}

/// A created tenant.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TenantCreated {
    /// The tenant id (bound into every record's proof).
    pub tenant_id: String,
    /// The display name.
    pub name: String,
    /// The smallest cohort an aggregate may run over.
    pub min_cohort_size: u32,
    /// The tokens, shown only in this response.
    pub tokens: TenantTokens,
}

/// Creates a tenant and issues its keyholder, ingest and auditor tokens.
#[utoipa::path(
    post,
    path = "/v1/tenants",
    tag = "tenants",
    request_body = CreateTenant,
    security(("admin" = [])),
    responses(
        (status = 201, description = "Created; the tokens are shown only now", body = TenantCreated),
        (status = 400, description = "Malformed JSON, unknown field, or invalid id", body = crate::error::ProblemDoc),
        (status = 401, description = "Missing or wrong admin token", body = crate::error::ProblemDoc),
        (status = 409, description = "The tenant id is taken", body = crate::error::ProblemDoc),
        (status = 422, description = "A minimum cohort below 2 or an empty name", body = crate::error::ProblemDoc),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    _admin: Admin,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let limit = state.config().limits.json_body_bytes;
    let req: CreateTenant = parse_json(&read_body(&headers, body, limit, "request body").await?)?;
    let name = req.name.trim();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(ApiError::rejected(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-field",
            "`name` must be 1–200 printable characters",
        ));
    }
    let min_cohort_size = req
        .min_cohort_size
        .unwrap_or(state.config().default_min_cohort.max(2));
    if min_cohort_size < 2 {
        return Err(ApiError::rejected(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-field",
            "`min_cohort_size` must be at least 2: a cohort of one is one person's data",
        ));
    }
    let tenant_id = match req.tenant_id {
        Some(id) => {
            check_id("tenant id", &id)?;
            id
        }
        None => format!("t-{}", hex::encode(blindsight_crypto::random_bytes::<8>()?)),
    };
    let tokens = TenantTokens {
        keyholder: Token::generate()?,
        ingest: Token::generate()?,
        auditor: Token::generate()?,
    };
    let hashes = [
        (Role::Keyholder, tokens.keyholder.hash()),
        (Role::Ingest, tokens.ingest.hash()),
        (Role::Auditor, tokens.auditor.hash()),
    ];
    match store::create_tenant(state.db(), &tenant_id, name, min_cohort_size, &hashes).await {
        Ok(()) => {}
        Err(WriteError::Exists) => {
            return Err(ApiError::rejected(
                StatusCode::CONFLICT,
                "tenant-exists",
                format!("a tenant with id {tenant_id:?} exists; choose another id"),
            ));
        }
        Err(WriteError::Sql(e)) => return Err(e.into()),
    }
    tracing::info!(tenant = %tenant_id, "tenant created");
    Ok((
        StatusCode::CREATED,
        Json(TenantCreated {
            tenant_id,
            name: name.to_owned(),
            min_cohort_size,
            tokens,
        }),
    )
        .into_response())
}
