//! `POST /v1/tenants` (admin): a tenant and its three tokens.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::{Admin, check_id, parse_json, read_body};
use blindsight_proto::{NewTenant, Problem, TenantCreated, TenantTokens};

use crate::auth::{Role, TokenHash, issue_token};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::{self, WriteError};

/// Creates a tenant and issues its keyholder, ingest and auditor tokens.
#[utoipa::path(
    post,
    path = "/v1/tenants",
    tag = "tenants",
    request_body = NewTenant,
    security(("admin" = [])),
    responses(
        (status = 201, description = "Created; the tokens are shown only now", body = TenantCreated),
        (status = 400, description = "Malformed JSON, unknown field, or invalid id", body = blindsight_proto::ProblemDocument),
        (status = 401, description = "Missing or wrong admin token", body = blindsight_proto::ProblemDocument),
        (status = 409, description = "The tenant id is taken", body = blindsight_proto::ProblemDocument),
        (status = 422, description = "A minimum cohort outside 2–1,000,000 or an empty name", body = blindsight_proto::ProblemDocument),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    _admin: Admin,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let limit = state.config().limits.json_body_bytes;
    let req: NewTenant = parse_json(&read_body(&headers, body, limit, "request body").await?)?;
    let name = req.name.trim();
    if name.is_empty() || req.name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(ApiError::new(
            Problem::InvalidField,
            "`name` must be 1–200 printable characters",
        ));
    }
    let min_cohort_size = req
        .min_cohort_size
        .unwrap_or(state.config().default_min_cohort.max(2));
    if min_cohort_size < 2 {
        return Err(ApiError::new(
            Problem::InvalidField,
            "`min_cohort_size` must be at least 2: a cohort of one is one person's data",
        ));
    }
    if min_cohort_size > blindsight_proto::MAX_MIN_COHORT {
        return Err(ApiError::new(
            Problem::InvalidField,
            format!(
                "`min_cohort_size` must be at most {}",
                blindsight_proto::MAX_MIN_COHORT
            ),
        ));
    }
    let privacy_budget = req
        .privacy_budget
        .map(|p| {
            p.rho_micro().map_err(|e| {
                ApiError::new(
                    Problem::InvalidField,
                    format!("`privacy_budget`: {e}").replace("privacy.", ""),
                )
            })
        })
        .transpose()?;
    let tenant_id = match req.tenant_id {
        Some(id) => {
            check_id("tenant id", &id)?;
            id
        }
        None => format!("t-{}", hex::encode(blindsight_crypto::random_bytes::<8>()?)),
    };
    let tokens = TenantTokens {
        keyholder: issue_token()?,
        ingest: issue_token()?,
        auditor: issue_token()?,
    };
    let hashes = [
        (Role::Keyholder, TokenHash::of(tokens.keyholder.expose())),
        (Role::Ingest, TokenHash::of(tokens.ingest.expose())),
        (Role::Auditor, TokenHash::of(tokens.auditor.expose())),
    ];
    match store::create_tenant(
        state.audit_log(),
        &tenant_id,
        name,
        min_cohort_size,
        privacy_budget,
        &hashes,
    )
    .await
    {
        Ok(()) => {}
        Err(WriteError::Exists) => {
            return Err(ApiError::new(
                Problem::TenantExists,
                format!("a tenant with id {tenant_id:?} exists; choose another id"),
            ));
        }
        Err(WriteError::Store(e)) => return Err(e.into()),
    }
    tracing::info!(tenant = %tenant_id, "tenant created");
    Ok((
        StatusCode::CREATED,
        Json(TenantCreated {
            tenant_id,
            name: name.to_owned(),
            min_cohort_size,
            privacy_budget: req.privacy_budget,
            tokens,
        }),
    )
        .into_response())
}
