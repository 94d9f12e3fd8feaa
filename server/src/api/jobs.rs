//! Jobs: `POST /v1/jobs` freezes a request into a spec (the selected records, the exact
//! model) after every check that can refuse it, including the minimum cohort size, and queues
//! it; workers compute. `GET /v1/jobs/{job_id}` shows status and progress, `/events` streams
//! them, `/result` returns the encrypted output once it is written.

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::{Caller, check_id, octets, parse_json, read_body};
use crate::auth::Role;
use crate::compute::{JobRequest, JobSpec};
use crate::error::ApiError;
use crate::http::AppState;
use crate::jobs::{self, Job, JobStatus, NewJob};
use crate::store::{self, MAX_JOB_RECORDS, Selection};

/// Leases a job may take before it fails for good.
pub const MAX_ATTEMPTS: u32 = 3;

/// A queued job.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobCreated {
    /// The job id.
    pub job_id: String,
    /// `risk_score` or `aggregate`.
    pub kind: String,
    /// Records selected.
    pub records: usize,
    /// `queued`.
    pub status: JobStatus,
}

/// Job list.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct JobList {
    /// Newest first.
    pub jobs: Vec<Job>,
}

fn unprocessable(slug: &'static str, detail: String) -> ApiError {
    ApiError::rejected(StatusCode::UNPROCESSABLE_ENTITY, slug, detail)
}

fn unknown_job(job_id: &str) -> ApiError {
    ApiError::rejected(
        StatusCode::NOT_FOUND,
        "unknown-job",
        format!("this tenant has no job {job_id:?}"),
    )
}

/// Creates a job: a risk score over selected records, or aggregates over a cohort.
#[utoipa::path(
    post,
    path = "/v1/jobs",
    tag = "jobs",
    request_body(content = Object, content_type = "application/json", description = "`{\"kind\": \"risk_score\", \"key_id\", \"model\": {\"id\", \"version\"}, \"select\"}` or `{\"kind\": \"aggregate\", \"key_id\", \"query\": {\"aggregates\": [...]}, \"select\"}`; `select`: `{\"schema_id\", \"schema_version\", \"cohort\", \"since\", \"until\", \"record_ids\"}`"),
    security(("token" = ["keyholder"])),
    responses(
        (status = 202, description = "Queued", body = JobCreated),
        (status = 400, description = "Malformed JSON or unknown field", body = crate::error::ProblemDoc),
        (status = 403, description = "Not a keyholder token", body = crate::error::ProblemDoc),
        (status = 422, description = "Unknown key set, schema, model or record; invalid model or query; no records; a cohort below the minimum size; too many records", body = crate::error::ProblemDoc),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    caller.require(&[Role::Keyholder])?;
    let limit = state.config().limits.json_body_bytes;
    let request: JobRequest = parse_json(&read_body(&headers, body, limit, "job request").await?)?;
    let tenant = caller.tenant_id.as_str();
    let key_id = request.key_id();
    check_id("key id", key_id)?;
    let select = request.select().clone();
    if let Some(c) = &select.cohort {
        check_id("cohort", c)?;
    }
    if store::keyset_digest(state.db(), tenant, key_id)
        .await?
        .is_none()
    {
        return Err(unprocessable(
            "unknown-key-set",
            format!("this tenant has no key set {key_id:?}"),
        ));
    }
    let schema = super::schemas::resolve(&state, tenant, &select.schema_id, select.schema_version)
        .await?
        .ok_or_else(|| {
            unprocessable(
                "unknown-schema",
                format!(
                    "schema {}@{} is neither built in nor registered",
                    select.schema_id, select.schema_version
                ),
            )
        })?;
    // Everything about the computation is checked before the records are selected.
    let model = match &request {
        JobRequest::RiskScore { model, .. } => {
            let m = super::models::resolve(&state, tenant, &model.id, model.version)
                .await?
                .ok_or_else(|| {
                    unprocessable(
                        "unknown-model",
                        format!(
                            "model {}@{} is neither built in nor registered (POST /v1/models)",
                            model.id, model.version
                        ),
                    )
                })?;
            m.compile(&schema)?;
            Some(m)
        }
        JobRequest::Aggregate { query, .. } => {
            query.compile(&schema, 1)?;
            None
        }
    };
    let mut records = store::select_records(
        state.db(),
        tenant,
        &Selection {
            key_id,
            schema_id: &schema.id,
            schema_version: schema.version,
            cohort: select.cohort.as_deref(),
            since: select.since,
            until: select.until,
        },
    )
    .await?;
    if let Some(wanted) = &select.record_ids {
        let selected: std::collections::HashSet<&String> = records.iter().collect();
        if let Some(missing) = wanted.iter().find(|id| !selected.contains(id)) {
            return Err(unprocessable(
                "unknown-record",
                format!(
                    "record {missing:?} is not stored under key set {key_id:?} and schema {}@{} (or is outside the selection)",
                    schema.id, schema.version
                ),
            ));
        }
        let wanted: std::collections::HashSet<&String> = wanted.iter().collect();
        records.retain(|id| wanted.contains(id));
    }
    if records.len() as i64 > MAX_JOB_RECORDS {
        return Err(unprocessable(
            "too-many-records",
            format!("a job reads at most {MAX_JOB_RECORDS} records; narrow the selection"),
        ));
    }
    if records.is_empty() {
        return Err(unprocessable(
            "no-records",
            "no stored record matches the selection".into(),
        ));
    }
    if let JobRequest::Aggregate { .. } = &request {
        let minimum = store::tenant_min_cohort(state.db(), tenant)
            .await?
            .unwrap_or(i64::from(state.config().default_min_cohort))
            .max(2);
        if (records.len() as i64) < minimum {
            return Err(unprocessable(
                "cohort-too-small",
                format!(
                    "the selection holds {} record{}; aggregates need at least {minimum}, so that no individual can be singled out",
                    records.len(),
                    if records.len() == 1 { "" } else { "s" }
                ),
            )
            .with_extension("records", records.len().into())
            .with_extension("minimum", minimum.into()));
        }
    }
    // Milliseconds first, so ids sort (and workers take jobs) in creation order; random
    // bits after, so ids cannot be guessed.
    let job_id = format!(
        "job-{:012x}{}",
        jobs::now_ms(),
        hex::encode(
            blindsight_crypto::random_bytes::<8>()
                .map_err(|e| ApiError::Internal(e.to_string()))?
        )
    );
    let count = records.len();
    let spec = JobSpec {
        request: request.clone(),
        model,
        records,
    };
    let spec_json =
        serde_json::to_string(&spec).map_err(|e| ApiError::Internal(format!("job spec: {e}")))?;
    jobs::create(
        state.db(),
        &NewJob {
            job_id: &job_id,
            tenant_id: tenant,
            key_id,
            kind: request.kind(),
            spec: &spec_json,
            max_attempts: MAX_ATTEMPTS,
        },
    )
    .await?;
    tracing::info!(tenant = %tenant, job = %job_id, kind = request.kind(), records = count, "job queued");
    Ok((
        StatusCode::ACCEPTED,
        Json(JobCreated {
            job_id,
            kind: request.kind().into(),
            records: count,
            status: JobStatus::Queued,
        }),
    )
        .into_response())
}

/// Lists the tenant's jobs, newest first (at most 1,000).
#[utoipa::path(
    get,
    path = "/v1/jobs",
    tag = "jobs",
    security(("token" = ["keyholder", "auditor"])),
    responses((status = 200, description = "Jobs", body = JobList))
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<JobList>, ApiError> {
    caller.require(&[Role::Keyholder, Role::Auditor])?;
    Ok(Json(JobList {
        jobs: jobs::list(state.db(), &caller.tenant_id, 1000).await?,
    }))
}

async fn load(state: &AppState, caller: &Caller, job_id: &str) -> Result<Job, ApiError> {
    check_id("job id", job_id)?;
    jobs::get(state.db(), &caller.tenant_id, job_id)
        .await?
        .ok_or_else(|| unknown_job(job_id))
}

/// A job's status and progress.
#[utoipa::path(
    get,
    path = "/v1/jobs/{job_id}",
    tag = "jobs",
    params(("job_id" = String, Path, description = "The job id")),
    security(("token" = ["keyholder", "auditor"])),
    responses(
        (status = 200, description = "The job", body = Job),
        (status = 404, description = "No such job for this tenant", body = crate::error::ProblemDoc),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(job_id): Path<String>,
) -> Result<Json<Job>, ApiError> {
    caller.require(&[Role::Keyholder, Role::Auditor])?;
    Ok(Json(load(&state, &caller, &job_id).await?))
}

/// Refuses a job that has not succeeded: 409 while it is queued or running, 422 when it
/// failed.
fn succeeded(job: &Job) -> Result<(), ApiError> {
    let job_id = &job.job_id;
    match job.status {
        JobStatus::Queued | JobStatus::Running => Err(ApiError::rejected(
            StatusCode::CONFLICT,
            "job-not-finished",
            format!(
                "job {job_id} is {} ({} of {} steps); wait for it (GET /v1/jobs/{job_id}/events) and retry",
                serde_json::to_value(job.status).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default(),
                job.progress_done,
                job.progress_total
            ),
        )
        .with_retry_after(Duration::from_secs(2))),
        JobStatus::Failed => Err(unprocessable(
            "job-failed",
            format!(
                "job {job_id} failed: {}",
                job.error.as_deref().unwrap_or("no reason recorded")
            ),
        )),
        JobStatus::Succeeded => Ok(()),
    }
}

/// A finished job's encrypted output: a `result list` envelope (manifest + compressed
/// ciphertext list) that only the key holder can decrypt. Auditors may fetch it too (to
/// check it against its receipt); every download is recorded in the audit log.
#[utoipa::path(
    get,
    path = "/v1/jobs/{job_id}/result",
    tag = "jobs",
    params(("job_id" = String, Path, description = "The job id")),
    security(("token" = ["keyholder", "auditor"])),
    responses(
        (status = 200, description = "The output envelope", body = Vec<u8>, content_type = "application/octet-stream"),
        (status = 404, description = "No such job for this tenant", body = crate::error::ProblemDoc),
        (status = 409, description = "Not finished yet (queued or running)", body = crate::error::ProblemDoc),
        (status = 422, description = "The job failed; `detail` says why", body = crate::error::ProblemDoc),
    )
)]
pub async fn result(
    State(state): State<AppState>,
    caller: Caller,
    Path(job_id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(&[Role::Keyholder, Role::Auditor])?;
    let job = load(&state, &caller, &job_id).await?;
    succeeded(&job)?;
    let bytes = jobs::result(state.db(), &caller.tenant_id, &job_id)
        .await?
        .ok_or_else(|| ApiError::Internal(format!("job {job_id} succeeded without a result")))?;
    tracing::info!(tenant = %caller.tenant_id, job = %job_id, bytes = bytes.len(), "job result downloaded");
    super::audit::result_downloaded(&state, &caller.tenant_id, &job_id).await?;
    Ok(octets(bytes))
}

/// A job receipt as the server signed it (docs/FORMATS.md, "Receipts").
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobReceipt {
    /// The receipt: canonical JSON (job, function, model, spec, inputs root, output digest,
    /// server-key fingerprint, parameter set, build, time), exactly as signed.
    pub receipt: String,
    /// The signing key's id (`GET /v1/audit/key`).
    pub key_id: String,
    /// Ed25519 signature, 128 hex digits.
    pub signature: String,
}

/// The signed receipt of a finished job: verify it with the published audit key
/// (`blindsight audit verify` does, for every job).
#[utoipa::path(
    get,
    path = "/v1/jobs/{job_id}/receipt",
    tag = "jobs",
    params(("job_id" = String, Path, description = "The job id")),
    security(("token" = ["keyholder", "auditor"])),
    responses(
        (status = 200, description = "The signed receipt", body = JobReceipt),
        (status = 404, description = "No such job for this tenant, or no receipt stored with its result", body = crate::error::ProblemDoc),
        (status = 409, description = "Not finished yet (queued or running)", body = crate::error::ProblemDoc),
        (status = 422, description = "The job failed; `detail` says why", body = crate::error::ProblemDoc),
    )
)]
pub async fn receipt(
    State(state): State<AppState>,
    caller: Caller,
    Path(job_id): Path<String>,
) -> Result<Json<JobReceipt>, ApiError> {
    caller.require(&[Role::Keyholder, Role::Auditor])?;
    let job = load(&state, &caller, &job_id).await?;
    succeeded(&job)?;
    let stored = jobs::receipt(state.db(), &caller.tenant_id, &job_id)
        .await?
        .ok_or_else(|| {
            ApiError::rejected(
                StatusCode::NOT_FOUND,
                "no-receipt",
                format!("job {job_id}'s result was stored without a receipt"),
            )
        })?;
    serde_json::from_str(&stored).map(Json).map_err(|e| {
        ApiError::Internal(format!("job {job_id}'s stored receipt is unreadable: {e}"))
    })
}

/// How often the event stream looks at the job.
const EVENT_POLL: Duration = Duration::from_millis(500);

/// Server-sent events for a job: `progress` with the job (JSON) whenever it changes, then
/// `done` with the final job, and the stream ends.
#[utoipa::path(
    get,
    path = "/v1/jobs/{job_id}/events",
    tag = "jobs",
    params(("job_id" = String, Path, description = "The job id")),
    security(("token" = ["keyholder", "auditor"])),
    responses(
        (status = 200, description = "`text/event-stream`: `progress` events, then `done`", body = String, content_type = "text/event-stream"),
        (status = 404, description = "No such job for this tenant", body = crate::error::ProblemDoc),
    )
)]
pub async fn events(
    State(state): State<AppState>,
    caller: Caller,
    Path(job_id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(&[Role::Keyholder, Role::Auditor])?;
    let first = load(&state, &caller, &job_id).await?;
    struct Cursor {
        state: AppState,
        tenant: String,
        job_id: String,
        last: Option<String>,
        pending: Option<Job>,
        finished: bool,
    }
    let cursor = Cursor {
        state,
        tenant: caller.tenant_id,
        job_id,
        last: None,
        pending: Some(first),
        finished: false,
    };
    let stream = futures_util::stream::unfold(cursor, |mut c| async move {
        if c.finished {
            return None;
        }
        loop {
            let job = match c.pending.take() {
                Some(j) => j,
                None => {
                    tokio::time::sleep(EVENT_POLL).await;
                    match jobs::get(c.state.db(), &c.tenant, &c.job_id).await {
                        Ok(Some(j)) => j,
                        // The job cannot disappear; a database error ends the stream and the
                        // client falls back to polling.
                        _ => return None,
                    }
                }
            };
            let json = serde_json::to_string(&job).unwrap_or_default();
            let terminal = matches!(job.status, JobStatus::Succeeded | JobStatus::Failed);
            if terminal {
                c.finished = true;
                let event = Event::default().event("done").data(json);
                return Some((Ok::<Event, Infallible>(event), c));
            }
            if c.last.as_deref() != Some(json.as_str()) {
                c.last = Some(json.clone());
                let event = Event::default().event("progress").data(json);
                return Some((Ok(event), c));
            }
        }
    });
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}
