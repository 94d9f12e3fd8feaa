//! Records: `POST /v1/records` (ingest) verifies a record's proof against the tenant's key set
//! with the record's own metadata, then stores it; `GET /v1/records` lists routing metadata;
//! `GET /v1/records/{record_id}/proof` and `/transcript` return the stored blobs.

use std::time::Instant;

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use blindsight_crypto::{LaneList, RecordEnvelope};

use super::{Caller, check_id, octets, read_body};
use crate::audit::Event;
use crate::auth::Role;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::{self, RecordFilter, RecordRow, WriteError};
use blindsight_proto::{Problem, RecordListQuery, RecordPage, RecordStored};

/// 409 for a used record id. `same_content` (the stored record is identical to this upload:
/// every metadata field, the proven list and the sealed transcript, byte for byte) tells a
/// client retrying an upload whose first attempt was stored, its response lost, that it is
/// done; it reveals nothing the uploader does not hold already.
fn exists(record_id: &str, same: bool) -> ApiError {
    ApiError::new(Problem::RecordExists, if same {
            format!("record {record_id:?} is already stored with this exact content (an earlier attempt succeeded)")
        } else {
            format!("record {record_id:?} is already stored with other content; record ids are never reused")
        },
    )
    .with_extension("same_content", serde_json::Value::Bool(same))
}

/// Uploads one record envelope: metadata, proven list and sealed transcript. The proof is
/// verified against the tenant's CRS and public key with the envelope's own metadata before
/// anything is stored.
#[utoipa::path(
    post,
    path = "/v1/records",
    tag = "records",
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "A record envelope"),
    security(("token" = ["ingest"])),
    responses(
        (status = 201, description = "Verified and stored", body = RecordStored),
        (status = 400, description = "Not a record envelope, or a malformed one", body = blindsight_proto::ProblemDocument),
        (status = 401, description = "Missing or invalid token", body = blindsight_proto::ProblemDocument),
        (status = 403, description = "Not an ingest token", body = blindsight_proto::ProblemDocument),
        (status = 409, description = "The record id is already stored", body = blindsight_proto::ProblemDocument),
        (status = 413, description = "Larger than the record limit", body = blindsight_proto::ProblemDocument),
        (status = 422, description = "Proof invalid, metadata for another tenant, unknown key set or schema, wrong parameter set, shape mismatch", body = blindsight_proto::ProblemDocument),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    caller.require(&[Role::Ingest])?;
    let limit = state.config().limits.record_body_bytes;
    let bytes = read_body(&headers, body, limit, "record envelope").await?;
    let envelope = state
        .fhe()
        .run(move || RecordEnvelope::decode(&bytes))
        .await??;
    let meta = &envelope.metadata;
    let tenant = caller.tenant_id.as_str();
    if meta.tenant != tenant {
        return Err(ApiError::new(
            Problem::MetadataMismatch,
            "the record's metadata names another tenant than this token's; encrypt it with this tenant's id",
        ));
    }
    let schema = crate::registry::schema(&state, tenant, &meta.schema_id, meta.schema_version)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                Problem::UnknownSchema,
                format!(
                    "schema {}@{} is neither built in nor registered for this tenant",
                    meta.schema_id, meta.schema_version
                ),
            )
        })?;
    let verifier = crate::registry::verifier(&state, tenant, &meta.key_id)
        .await?
        .ok_or_else(|| {
            ApiError::new(Problem::UnknownKeySetRef, format!(
                    "the record is encrypted under key set {:?}, which this tenant has not registered",
                    meta.key_id
                ),
            )
        })?;
    // Cheap refusal of a replay before the proof is checked; the unique key below is what
    // guarantees it under concurrency.
    let digest = blindsight_crypto::sha256_hex(&envelope.proven_list);
    if let Some(same) = store::record_is_identical(state.db(), tenant, &envelope, &digest).await? {
        return Err(exists(&meta.record_id, same));
    }
    let (envelope, outcome, took) = state
        .fhe()
        .run(move || {
            let start = Instant::now();
            let outcome = verifier
                .verify_record(
                    &envelope.proven_list,
                    &schema,
                    &envelope.metadata,
                    envelope.transcript_digest().as_ref(),
                )
                .map(LaneList::into_body);
            (envelope, outcome, start.elapsed())
        })
        .await?;
    state
        .metrics()
        .observe_proof(if outcome.is_ok() { "valid" } else { "invalid" }, took);
    let lane = match outcome {
        Ok(lane) => lane,
        Err(e) => {
            tracing::info!(tenant, record = %envelope.metadata.record_id, error = %e, "record refused");
            return Err(e.into());
        }
    };
    let row = RecordRow {
        metadata: &envelope.metadata,
        proven_list: &envelope.proven_list,
        proven_list_digest: &digest,
        sealed_transcript: (!envelope.sealed_transcript.is_empty())
            .then_some(envelope.sealed_transcript.as_slice()),
        lane: Some(&lane),
    };
    let record_id = envelope.metadata.record_id.clone();
    let seq = match store::insert_record(state.audit_log(), &row).await {
        Ok(seq) => seq,
        // A concurrent upload of the same id committed first.
        Err(WriteError::Exists) => {
            let same = store::record_is_identical(state.db(), tenant, &envelope, &digest).await?;
            return Err(exists(&record_id, same == Some(true)));
        }
        Err(WriteError::Store(e)) => return Err(e.into()),
    };
    tracing::info!(tenant, record = %record_id, seq, verify_ms = took.as_millis() as u64, "record stored");
    let mut response = (
        StatusCode::CREATED,
        Json(RecordStored {
            record_id: record_id.clone(),
            seq,
            proven_list_digest: digest,
        }),
    )
        .into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/records/{record_id}/proof")) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// The largest page.
pub const MAX_PAGE: i64 = 1000;

/// Lists the tenant's records (routing metadata and digests only), filtered by cohort and
/// time, in pages.
#[utoipa::path(
    get,
    path = "/v1/records",
    tag = "records",
    params(RecordListQuery),
    security(("token" = ["keyholder", "auditor"])),
    responses(
        (status = 200, description = "A page of records", body = RecordPage),
        (status = 400, description = "An unknown or malformed query parameter", body = blindsight_proto::ProblemDocument),
        (status = 401, description = "Missing or invalid token", body = blindsight_proto::ProblemDocument),
        (status = 403, description = "Not a keyholder or auditor token", body = blindsight_proto::ProblemDocument),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<RecordListQuery>, QueryRejection>,
) -> Result<Json<RecordPage>, ApiError> {
    caller.require(&[Role::Keyholder, Role::Auditor])?;
    let Query(q) = query.map_err(|e| ApiError::new(Problem::MalformedQuery, e.body_text()))?;
    if let Some(c) = &q.cohort {
        check_id("cohort", c)?;
    }
    let limit = q.limit.unwrap_or(100);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::new(
            Problem::MalformedQuery,
            format!("`limit` must be between 1 and {MAX_PAGE}"),
        ));
    }
    let filter = RecordFilter {
        cohort: q.cohort,
        since: q.since,
        until: q.until,
        after: q.after,
        limit: limit + 1,
    };
    let mut records = store::list_records(state.db(), &caller.tenant_id, &filter).await?;
    let next_after = if records.len() as i64 > limit {
        records.truncate(limit as usize);
        records.last().map(|r| r.seq)
    } else {
        None
    };
    Ok(Json(RecordPage {
        records,
        next_after,
    }))
}

async fn blob(
    state: &AppState,
    caller: &Caller,
    record_id: &str,
    transcript: bool,
) -> Result<Vec<u8>, ApiError> {
    check_id("record id", record_id)?;
    match store::record_blob(state.db(), &caller.tenant_id, record_id, transcript).await? {
        None => Err(ApiError::new(
            Problem::UnknownRecord,
            format!("this tenant has no record {record_id:?}"),
        )),
        Some(None) => Err(ApiError::new(
            Problem::NoTranscript,
            format!("record {record_id:?} was uploaded without a transcript"),
        )),
        Some(Some(bytes)) => Ok(bytes),
    }
}

/// The stored proven list of a record (for re-verification with its listed metadata).
#[utoipa::path(
    get,
    path = "/v1/records/{record_id}/proof",
    tag = "records",
    params(("record_id" = String, Path, description = "The record id")),
    security(("token" = ["keyholder", "auditor"])),
    responses(
        (status = 200, description = "The safe-serialized proven list", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 403, description = "Not a keyholder or auditor token", body = blindsight_proto::ProblemDocument),
        (status = 404, description = "No such record for this tenant", body = blindsight_proto::ProblemDocument),
    )
)]
pub async fn proof(
    State(state): State<AppState>,
    caller: Caller,
    Path(record_id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(&[Role::Keyholder, Role::Auditor])?;
    Ok(octets(blob(&state, &caller, &record_id, false).await?))
}

/// The sealed transcript of a record: only the key holder's transcript key opens it. Each
/// download is recorded in the tenant's audit chain before the bytes are sent.
#[utoipa::path(
    get,
    path = "/v1/records/{record_id}/transcript",
    tag = "records",
    params(("record_id" = String, Path, description = "The record id")),
    security(("token" = ["keyholder"])),
    responses(
        (status = 200, description = "The sealed box", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 403, description = "Not a keyholder token", body = blindsight_proto::ProblemDocument),
        (status = 404, description = "No such record, or no transcript with it", body = blindsight_proto::ProblemDocument),
    )
)]
pub async fn transcript(
    State(state): State<AppState>,
    caller: Caller,
    Path(record_id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(&[Role::Keyholder])?;
    let bytes = blob(&state, &caller, &record_id, true).await?;
    store::audit::append_alone(
        state.audit_log(),
        Some(&caller.tenant_id),
        &[Event::TranscriptDownloaded {
            record_id: &record_id,
            sealed_transcript_digest: &blindsight_crypto::sha256_hex(&bytes),
        }],
    )
    .await?;
    Ok(octets(bytes))
}
