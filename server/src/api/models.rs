//! Risk models: `POST /v1/models` registers a versioned model (clear weights, thresholds and
//! rules over a schema's fields), `GET /v1/models` lists them. The built-in `crisis` v1 (over
//! `session` v1) and `bias` v1 (over `training` v1) are always available. Models are
//! immutable per id and version.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use blindsight_crypto::compute::{RiskModel, builtin_model, builtin_models};

use super::{Caller, parse_json, read_body};
use crate::auth::Role;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::{self, WriteError};
use blindsight_proto::{ModelInfo, ModelList, ModelRegistered, Problem};

fn canonical(model: &RiskModel) -> Result<(String, String), ApiError> {
    let definition = serde_json::to_string(model)
        .map_err(|e| ApiError::Internal(format!("model encoding: {e}")))?;
    let digest = blindsight_crypto::sha256_hex(definition.as_bytes());
    Ok((definition, digest))
}

/// Registers a risk model. It is checked against its schema (built in, or registered by the
/// tenant) before it is stored: unknown features, weights that could overflow, thresholds out
/// of order and rules that do nothing are refused with the reason.
#[utoipa::path(
    post,
    path = "/v1/models",
    tag = "models",
    request_body(content = Object, content_type = "application/json", description = "A risk model: `{\"id\", \"version\", \"schema_id\", \"schema_version\", \"weights\": {feature: weight}, \"thresholds\": {\"low\", \"moderate\", \"high\"}, \"rules\": [{\"field\", \"at_least\", \"tier\"}]}`"),
    security(("token" = ["keyholder"])),
    responses(
        (status = 201, description = "Stored", body = ModelRegistered),
        (status = 200, description = "The same model was already stored", body = ModelRegistered),
        (status = 400, description = "Malformed JSON or unknown field", body = blindsight_proto::ProblemDocument),
        (status = 403, description = "Not a keyholder token", body = blindsight_proto::ProblemDocument),
        (status = 409, description = "A different model is stored under this id and version, or it is built in", body = blindsight_proto::ProblemDocument),
        (status = 422, description = "An invalid model, or one over an unknown schema", body = blindsight_proto::ProblemDocument),
    )
)]
pub async fn register(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    caller.require(&[Role::Keyholder])?;
    let limit = state.config().limits.json_body_bytes;
    let model: RiskModel = parse_json(&read_body(&headers, body, limit, "model").await?)?;
    let tenant = &caller.tenant_id;
    let schema = crate::registry::schema(&state, tenant, &model.schema_id, model.schema_version)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                Problem::UnknownSchema,
                format!(
                    "schema {}@{} is neither built in nor registered; register it first",
                    model.schema_id, model.schema_version
                ),
            )
        })?;
    model.compile(&schema)?;
    let (definition, digest) = canonical(&model)?;
    let reply = |status| {
        (
            status,
            Json(ModelRegistered {
                model_id: model.id.clone(),
                version: model.version,
                digest: digest.clone(),
                function_id: model.function_id(),
            }),
        )
            .into_response()
    };
    let conflict = |why: String| ApiError::new(Problem::ModelExists, why);
    if builtin_model(&model.id, model.version).is_some() {
        return Err(conflict(format!(
            "{}@{} is built in; register your own models under another id",
            model.id, model.version
        )));
    }
    let same_or_conflict = |stored: Option<store::ModelRow>| match stored {
        Some(row) if row.digest == digest => Ok(reply(StatusCode::OK)),
        _ => Err(conflict(format!(
            "a different {}@{} is registered; models are immutable, use a new version",
            model.id, model.version
        ))),
    };
    if let Some(row) = store::model(state.db(), tenant, &model.id, model.version).await? {
        return same_or_conflict(Some(row));
    }
    match store::insert_model(state.audit_log(), tenant, &model, &definition, &digest).await {
        Ok(()) => {
            tracing::info!(tenant = %tenant, model = %model.id, version = model.version, "model registered");
            Ok(reply(StatusCode::CREATED))
        }
        Err(WriteError::Exists) => {
            same_or_conflict(store::model(state.db(), tenant, &model.id, model.version).await?)
        }
        Err(WriteError::Store(e)) => Err(e.into()),
    }
}

/// Lists the models a job can name: the built-in ones and the tenant's.
#[utoipa::path(
    get,
    path = "/v1/models",
    tag = "models",
    security(("token" = ["keyholder", "auditor"])),
    responses(
        (status = 200, description = "The models", body = ModelList),
        (status = 403, description = "An ingest token", body = blindsight_proto::ProblemDocument),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<ModelList>, ApiError> {
    caller.require(&[Role::Keyholder, Role::Auditor])?;
    let mut models = Vec::new();
    for definition in builtin_models() {
        let (_, digest) = canonical(&definition)?;
        models.push(ModelInfo {
            model_id: definition.id.clone(),
            version: definition.version,
            digest,
            function_id: definition.function_id(),
            builtin: true,
            definition,
        });
    }
    for row in store::list_models(state.db(), &caller.tenant_id).await? {
        let definition: RiskModel = serde_json::from_str(&row.definition)
            .map_err(|e| ApiError::Internal(format!("stored model {}: {e}", row.model_id)))?;
        models.push(ModelInfo {
            model_id: row.model_id,
            version: definition.version,
            digest: row.digest,
            function_id: definition.function_id(),
            builtin: false,
            definition,
        });
    }
    Ok(Json(ModelList { models }))
}
