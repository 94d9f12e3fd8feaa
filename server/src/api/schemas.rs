//! Record schemas: the built-in ones (`session` v1) and custom ones a key holder registers
//! with `PUT /v1/schemas/{schema_id}/{version}` and key holders and auditors list with `GET
//! /v1/schemas`. A schema holds field names, types and ranges: no data.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use blindsight_crypto::RecordSchema;

use super::{Caller, check_id, parse_json, read_body};
use crate::auth::Role;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::{self, WriteError};
use blindsight_proto::{Problem, SchemaInfo, SchemaList, SchemaRegistered};

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
        (status = 400, description = "Malformed JSON or unknown field", body = blindsight_proto::ProblemDocument),
        (status = 403, description = "Not a keyholder token", body = blindsight_proto::ProblemDocument),
        (status = 409, description = "A different schema is stored under this id and version, or the id is built in", body = blindsight_proto::ProblemDocument),
        (status = 422, description = "An invalid schema, or one whose id/version differ from the path", body = blindsight_proto::ProblemDocument),
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
        return Err(ApiError::new(
            Problem::InvalidSchema,
            format!(
                "the body defines {}@{}, the path names {schema_id}@{version}",
                schema.id, schema.version
            ),
        ));
    }
    schema.validate()?;
    if blindsight_crypto::schemas::builtin(&schema_id, version).is_some() {
        return Err(ApiError::new(
            Problem::SchemaExists,
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
        _ => Err(ApiError::new(
            Problem::SchemaExists,
            format!(
                "a different {schema_id}@{version} is registered; schemas are immutable, use a new version"
            ),
        )),
    };
    if let Some(stored) = store::schema(state.db(), tenant, &schema_id, version).await? {
        return same_or_conflict(Some(stored));
    }
    match store::insert_schema(
        state.audit_log(),
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
        Err(WriteError::Store(e)) => Err(e.into()),
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
        (status = 401, description = "Missing or invalid token", body = blindsight_proto::ProblemDocument),
        (status = 403, description = "An ingest token", body = blindsight_proto::ProblemDocument),
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
