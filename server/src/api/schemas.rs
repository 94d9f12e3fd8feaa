//! Record schemas: the built-in ones (`session` v1) and custom ones a key holder registers
//! with `PUT /v1/schemas/{schema_id}/{version}` and key holders and auditors list with `GET
//! /v1/schemas`. A schema holds field names, types and ranges: no data.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use blindsight_crypto::RecordSchema;
use serde::{Deserialize, Serialize};

use super::{Caller, check_id, parse_json, read_body};
use crate::auth::Role;
use crate::error::ApiError;
use crate::http::AppState;
use crate::store::{self, WriteError};

/// A registered schema.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SchemaRegistered {
    /// Schema id.
    pub schema_id: String,
    /// Schema version.
    pub version: u32,
    /// SHA-256 of the schema's canonical JSON.
    pub digest: String,
    /// `true` when stored by this request, `false` when the same schema was already stored.
    pub created: bool,
}

/// A registered schema, as listed.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SchemaInfo {
    /// Schema id.
    pub schema_id: String,
    /// Schema version.
    pub version: u32,
    /// Its JSON definition, exactly as stored (the text `digest` is taken over).
    pub definition: String,
    /// SHA-256 of `definition`, as stored and logged when it was registered.
    pub digest: String,
}

/// The tenant's registered schemas.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SchemaList {
    /// By id, then version. The built-in schemas (`session` v1) are not listed.
    pub schemas: Vec<SchemaInfo>,
}

/// The schema a record names: a built-in one, or one the tenant registered.
pub async fn resolve(
    state: &AppState,
    tenant: &str,
    schema_id: &str,
    version: u32,
) -> Result<Option<RecordSchema>, ApiError> {
    if let Some(s) = blindsight_crypto::schemas::builtin(schema_id, version) {
        return Ok(Some(s));
    }
    let Some((definition, _)) = store::schema(state.db(), tenant, schema_id, version).await? else {
        return Ok(None);
    };
    serde_json::from_str(&definition)
        .map(Some)
        .map_err(|e| ApiError::Internal(format!("stored schema {schema_id}@{version}: {e}")))
}

/// Registers a custom record schema (JSON: `id`, `version`, `fields`). Schemas are immutable:
/// the same definition again is accepted, a different one under the same id and version is
/// refused.
#[utoipa::path(
    put,
    path = "/v1/schemas/{schema_id}/{version}",
    tag = "schemas",
    params(
        ("schema_id" = String, Path, description = "The schema id"),
        ("version" = u32, Path, description = "The schema version"),
    ),
    request_body(content = Object, content_type = "application/json", description = "A record schema: `{\"id\", \"version\", \"fields\": [{\"name\", \"type\", \"min\", \"max\"}]}`"),
    security(("token" = ["keyholder"])),
    responses(
        (status = 201, description = "Stored", body = SchemaRegistered),
        (status = 200, description = "The same schema was already stored", body = SchemaRegistered),
        (status = 400, description = "Malformed JSON or unknown field", body = crate::error::ProblemDoc),
        (status = 403, description = "Not a keyholder token", body = crate::error::ProblemDoc),
        (status = 409, description = "A different schema is stored under this id and version, or the id is built in", body = crate::error::ProblemDoc),
        (status = 422, description = "An invalid schema, or one whose id/version differ from the path", body = crate::error::ProblemDoc),
    )
)]
pub async fn register(
    State(state): State<AppState>,
    caller: Caller,
    Path((schema_id, version)): Path<(String, u32)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    caller.require(&[Role::Keyholder])?;
    check_id("schema id", &schema_id)?;
    let limit = state.config().limits.json_body_bytes;
    let schema: RecordSchema = parse_json(&read_body(&headers, body, limit, "schema").await?)?;
    if schema.id != schema_id || schema.version != version {
        return Err(ApiError::rejected(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-schema",
            format!(
                "the body defines {}@{}, the path names {schema_id}@{version}",
                schema.id, schema.version
            ),
        ));
    }
    schema.validate()?;
    if blindsight_crypto::schemas::builtin(&schema_id, version).is_some() {
        return Err(ApiError::rejected(
            StatusCode::CONFLICT,
            "schema-exists",
            format!("{schema_id}@{version} is built in; register custom schemas under another id"),
        ));
    }
    let definition = serde_json::to_string(&schema)
        .map_err(|e| ApiError::Internal(format!("schema encoding: {e}")))?;
    let digest = blindsight_crypto::sha256_hex(definition.as_bytes());
    let tenant = &caller.tenant_id;
    let reply = |status, created| {
        (
            status,
            Json(SchemaRegistered {
                schema_id: schema_id.clone(),
                version,
                digest: digest.clone(),
                created,
            }),
        )
            .into_response()
    };
    let same_or_conflict = |stored: Option<(String, String)>| match stored {
        Some((_, d)) if d == digest => Ok(reply(StatusCode::OK, false)),
        _ => Err(ApiError::rejected(
            StatusCode::CONFLICT,
            "schema-exists",
            format!(
                "a different {schema_id}@{version} is registered; schemas are immutable, use a new version"
            ),
        )),
    };
    if let Some(stored) = store::schema(state.db(), tenant, &schema_id, version).await? {
        return same_or_conflict(Some(stored));
    }
    match store::insert_schema(
        state.db(),
        tenant,
        &schema_id,
        version,
        &definition,
        &digest,
    )
    .await
    {
        Ok(()) => Ok(reply(StatusCode::CREATED, true)),
        Err(WriteError::Exists) => {
            same_or_conflict(store::schema(state.db(), tenant, &schema_id, version).await?)
        }
        Err(WriteError::Sql(e)) => Err(e.into()),
    }
}

/// Lists the tenant's registered (custom) schemas with their stored definitions and digests,
/// for key holders and auditors (`blindsight audit verify` checks them against the audit log).
#[utoipa::path(
    get,
    path = "/v1/schemas",
    tag = "schemas",
    security(("token" = ["keyholder", "auditor"])),
    responses(
        (status = 200, description = "The registered schemas", body = SchemaList),
        (status = 401, description = "Missing or invalid token", body = crate::error::ProblemDoc),
        (status = 403, description = "An ingest token", body = crate::error::ProblemDoc),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<SchemaList>, ApiError> {
    caller.require(&[Role::Keyholder, Role::Auditor])?;
    let schemas = store::list_schemas(state.db(), &caller.tenant_id)
        .await?
        .into_iter()
        .map(|(schema_id, version, definition, digest)| {
            let version = u32::try_from(version).map_err(|_| {
                ApiError::Internal(format!("stored schema {schema_id}: version {version}"))
            })?;
            Ok(SchemaInfo {
                schema_id,
                version,
                definition,
                digest,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    Ok(Json(SchemaList { schemas }))
}
