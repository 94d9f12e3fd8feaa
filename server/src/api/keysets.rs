//! Key sets: `PUT /v1/keysets/{key_id}` (keyholder) registers a public bundle;
//! `GET /v1/keysets/{key_id}/public` (any role) serves what an app needs;
//! `GET /v1/keysets/{key_id}/server-key` (keyholder, auditor) serves the compressed server key,
//! public evaluation material auditors need to re-execute jobs. Decoded key material is cached
//! per key set under the configured memory bound.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use blindsight_crypto::PublicBundle;

use super::{Caller, octets, read_envelope};
use crate::auth::Role;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::{self, KeysetOutcome, KeysetRow};
use blindsight_proto::{KeysetRegistered, MANIFEST_FINGERPRINT_HEADER, Problem};

fn not_found(key_id: &str) -> ApiError {
    ApiError::new(
        Problem::UnknownKeySet,
        format!(
            "this tenant has no key set {key_id:?}; register it with PUT /v1/keysets/{{key_id}}"
        ),
    )
}

/// Registers a key set's public bundle (compressed server key, compact public key, CRS,
/// transcript public key and manifest), after checking every component's size, conformance to
/// the pinned parameters and fingerprint. Idempotent for the same bundle.
#[utoipa::path(
    put,
    path = "/v1/keysets/{key_id}",
    tag = "keysets",
    params(("key_id" = String, Path, description = "The key-set id (must match the bundle's)")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The public bundle envelope written by `blindsight keygen`"),
    security(("token" = ["keyholder"])),
    responses(
        (status = 201, description = "Stored", body = KeysetRegistered),
        (status = 200, description = "The same bundle was already stored", body = KeysetRegistered),
        (status = 400, description = "Not a public bundle envelope", body = blindsight_proto::ProblemDocument),
        (status = 401, description = "Missing or invalid token", body = blindsight_proto::ProblemDocument),
        (status = 403, description = "Not a keyholder token", body = blindsight_proto::ProblemDocument),
        (status = 409, description = "A different bundle is stored under this id", body = blindsight_proto::ProblemDocument),
        (status = 413, description = "Larger than the key-upload limit", body = blindsight_proto::ProblemDocument),
        (status = 422, description = "Wrong parameter set, non-conformant key, fingerprint or key-id mismatch", body = blindsight_proto::ProblemDocument),
        (status = 503, description = "Other key-set uploads are being checked (`overloaded`, `Retry-After`)", body = blindsight_proto::ProblemDocument),
    )
)]
pub async fn register(
    State(state): State<AppState>,
    caller: Caller,
    Path(key_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    caller.require(&[Role::Keyholder])?;
    blindsight_crypto::check_key_id(&key_id)?;
    let limit = state.config().limits.keyset_body_bytes;
    // Each upload may hold a few hundred MB while it is read and checked: only a few at once
    // (garbage is refused from its first bytes, without a permit).
    let (bytes, _permit) = read_envelope(
        &headers,
        body,
        limit,
        blindsight_crypto::Kind::PublicBundle,
        Some(state.large_uploads()),
    )
    .await?;
    let digest = blindsight_crypto::sha256_hex(&bytes);
    let tenant = caller.tenant_id.as_str();
    // The same bytes again: they were checked when first stored.
    if store::keyset_digest(state.db(), tenant, &key_id)
        .await?
        .as_deref()
        == Some(digest.as_str())
        && let Some((_, fingerprint)) = store::app_bundle(state.db(), tenant, &key_id).await?
    {
        return Ok(registered(StatusCode::OK, key_id, fingerprint, false));
    }
    // Anything else is checked in full before it can even conflict, so garbage gets 400, not
    // 409. Conformance of a ~100 MB server key takes seconds: off the async runtime.
    let checked = state
        .fhe()
        .run(move || -> Result<_, blindsight_crypto::Error> {
            let bundle = PublicBundle::decode(&bytes)?;
            let manifest = bundle.manifest();
            Ok((
                manifest.key_id.clone(),
                manifest.parameter_set.clone(),
                manifest.fingerprint()?,
                manifest.encode()?,
                bundle.app_bundle().encode()?,
                bundle,
            ))
        })
        .await??;
    let (bundle_key_id, parameter_set, fingerprint, manifest, app_bundle, bundle) = checked;
    if bundle_key_id != key_id {
        return Err(ApiError::new(
            Problem::WrongKeyId,
            format!("the bundle is for key set {bundle_key_id:?}, the path names {key_id:?}"),
        ));
    }
    let row = KeysetRow {
        tenant_id: tenant,
        key_id: &key_id,
        parameter_set: &parameter_set,
        manifest_fingerprint: &fingerprint,
        bundle_digest: &digest,
        manifest: &manifest,
        app_bundle: &app_bundle,
        server_key: bundle.server_key_bytes(),
    };
    match store::insert_keyset(state.audit_log(), &row).await? {
        KeysetOutcome::Created => {
            tracing::info!(tenant, key_id = %key_id, fingerprint = %fingerprint, "key set registered");
            Ok(registered(StatusCode::CREATED, key_id, fingerprint, true))
        }
        KeysetOutcome::Unchanged => Ok(registered(StatusCode::OK, key_id, fingerprint, false)),
        KeysetOutcome::Conflict => Err(conflict(&key_id)),
    }
}

fn conflict(key_id: &str) -> ApiError {
    ApiError::new(
        Problem::KeySetConflict,
        format!(
            "a different bundle is registered as key set {key_id:?}; key sets are immutable, register new keys under a new id"
        ),
    )
}

fn registered(status: StatusCode, key_id: String, fingerprint: String, created: bool) -> Response {
    (
        status,
        Json(KeysetRegistered {
            key_id,
            manifest_fingerprint: fingerprint,
            parameter_set: blindsight_crypto::PARAMETER_SET_ID.to_owned(),
            created,
        }),
    )
        .into_response()
}

/// The public material an app needs to encrypt and prove records: the app bundle envelope
/// (compact public key, CRS, transcript public key, manifest). No server key.
#[utoipa::path(
    get,
    path = "/v1/keysets/{key_id}/public",
    tag = "keysets",
    params(("key_id" = String, Path, description = "The key-set id")),
    security(("token" = ["keyholder", "ingest", "auditor"])),
    responses(
        (status = 200, description = "The app bundle envelope; pin it with the manifest fingerprint header", content_type = "application/octet-stream", body = Vec<u8>,
         headers(("x-blindsight-manifest-fingerprint" = String, description = "SHA-256 of the manifest"))),
        (status = 401, description = "Missing or invalid token", body = blindsight_proto::ProblemDocument),
        (status = 404, description = "No such key set for this tenant", body = blindsight_proto::ProblemDocument),
    )
)]
pub async fn public(
    State(state): State<AppState>,
    caller: Caller,
    Path(key_id): Path<String>,
) -> Result<Response, ApiError> {
    blindsight_crypto::check_key_id(&key_id)?;
    let (bytes, fingerprint) = store::app_bundle(state.db(), &caller.tenant_id, &key_id)
        .await?
        .ok_or_else(|| not_found(&key_id))?;
    let mut response = octets(bytes);
    if let Ok(v) = HeaderValue::from_str(&fingerprint) {
        response
            .headers_mut()
            .insert(MANIFEST_FINGERPRINT_HEADER, v);
    }
    Ok(response)
}

/// A key set's compressed server key, exactly as stored (safe-serialized): public evaluation
/// material, which decrypts nothing. Auditors fetch it to re-execute jobs and check their
/// outputs against the signed receipts; its SHA-256 is the manifest's `server_key`
/// fingerprint.
#[utoipa::path(
    get,
    path = "/v1/keysets/{key_id}/server-key",
    tag = "keysets",
    params(("key_id" = String, Path, description = "The key-set id")),
    security(("token" = ["keyholder", "auditor"])),
    responses(
        (status = 200, description = "The compressed server key (safe-serialized)", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 401, description = "Missing or invalid token", body = blindsight_proto::ProblemDocument),
        (status = 403, description = "An ingest token", body = blindsight_proto::ProblemDocument),
        (status = 404, description = "No such key set for this tenant", body = blindsight_proto::ProblemDocument),
    )
)]
pub async fn get_server_key(
    State(state): State<AppState>,
    caller: Caller,
    Path(key_id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(&[Role::Keyholder, Role::Auditor])?;
    blindsight_crypto::check_key_id(&key_id)?;
    let bytes = store::server_key(state.db(), &caller.tenant_id, &key_id)
        .await?
        .ok_or_else(|| not_found(&key_id))?;
    Ok(octets(bytes))
}
