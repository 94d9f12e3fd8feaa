//! Jobs: `POST /v1/jobs` freezes a request into a spec (the selected records, the exact
//! model) after every check that can refuse it, including the minimum cohort size, and queues
//! it; workers compute. `GET /v1/jobs/{job_id}` shows status and progress, `/events` streams
//! them, `/result` returns the encrypted output once it is written.

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};

use super::{Caller, check_id, octets, parse_json, read_body};
use crate::auth::Role;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::jobs;
use blindsight_proto::{Job, JobCreated, JobList, JobReceipt, JobRequest, JobStatus, Problem};

fn unknown_job(job_id: &str) -> ApiError {
    ApiError::new(
        Problem::UnknownJob,
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
        (status = 400, description = "Malformed JSON or unknown field", body = blindsight_proto::ProblemDocument),
        (status = 403, description = "Not a keyholder token", body = blindsight_proto::ProblemDocument),
        (status = 422, description = "Unknown key set, schema, model or record; invalid model or query; no records; a cohort below the minimum size; too many records", body = blindsight_proto::ProblemDocument),
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
    let created = crate::jobs::create(&state, &caller.tenant_id, request).await?;
    Ok((StatusCode::ACCEPTED, Json(created)).into_response())
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
        (status = 404, description = "No such job for this tenant", body = blindsight_proto::ProblemDocument),
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
        JobStatus::Queued | JobStatus::Running => Err(ApiError::new(Problem::JobNotFinished, format!(
                "job {job_id} is {} ({} of {} steps); wait for it (GET /v1/jobs/{job_id}/events) and retry",
                serde_json::to_value(job.status).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default(),
                job.progress_done,
                job.progress_total
            ),
        )
        .with_retry_after(Duration::from_secs(2))),
        JobStatus::Failed => Err(ApiError::new(Problem::JobFailed, format!(
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
        (status = 404, description = "No such job for this tenant", body = blindsight_proto::ProblemDocument),
        (status = 409, description = "Not finished yet (queued or running)", body = blindsight_proto::ProblemDocument),
        (status = 422, description = "The job failed; `detail` says why", body = blindsight_proto::ProblemDocument),
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
        (status = 404, description = "No such job for this tenant, or no receipt stored with its result", body = blindsight_proto::ProblemDocument),
        (status = 409, description = "Not finished yet (queued or running)", body = blindsight_proto::ProblemDocument),
        (status = 422, description = "The job failed; `detail` says why", body = blindsight_proto::ProblemDocument),
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
            ApiError::new(
                Problem::NoReceipt,
                format!("job {job_id}'s result was stored without a receipt"),
            )
        })?;
    serde_json::from_str(&stored).map(Json).map_err(|e| {
        ApiError::Internal(format!("job {job_id}'s stored receipt is unreadable: {e}"))
    })
}

/// How often the event stream looks at the job.
const EVENT_POLL: Duration = Duration::from_millis(500);

/// A job's events, as both transports carry them: `progress` with the job (JSON) whenever it
/// changes, then `done` with the final job, and the sequence ends (also on a database error,
/// or when the server stops: the client falls back to polling). Holds an open-stream slot
/// while it lives.
fn job_events(
    state: AppState,
    tenant: String,
    job_id: String,
    first: Job,
) -> impl futures_util::Stream<Item = (&'static str, String)> {
    struct Cursor {
        state: AppState,
        tenant: String,
        job_id: String,
        last: Option<String>,
        pending: Option<Job>,
        finished: bool,
        _slot: StreamSlot,
    }
    let cursor = Cursor {
        _slot: StreamSlot::open(&state),
        state,
        tenant,
        job_id,
        last: None,
        pending: Some(first),
        finished: false,
    };
    futures_util::stream::unfold(cursor, |mut c| async move {
        if c.finished {
            return None;
        }
        loop {
            let job = match c.pending.take() {
                Some(j) => j,
                None => {
                    tokio::time::sleep(EVENT_POLL).await;
                    // A server shutting down ends its streams (the client polls or reconnects
                    // elsewhere) rather than wait for their jobs.
                    if !c.state.is_ready() {
                        return None;
                    }
                    match jobs::get(c.state.db(), &c.tenant, &c.job_id).await {
                        Ok(Some(j)) => j,
                        _ => return None,
                    }
                }
            };
            let json = serde_json::to_string(&job).unwrap_or_default();
            if job.status.is_finished() {
                c.finished = true;
                return Some((("done", json), c));
            }
            if c.last.as_deref() != Some(json.as_str()) {
                c.last = Some(json.clone());
                return Some((("progress", json), c));
            }
        }
    })
}

/// One open event stream (SSE or WebSocket), counted while it lives: the
/// `blindsight_event_streams` gauge, and the cap on open streams.
struct StreamSlot(AppState);

impl StreamSlot {
    fn open(state: &AppState) -> Self {
        state.event_streams().fetch_add(1, Ordering::SeqCst);
        Self(state.clone())
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.0.event_streams().fetch_sub(1, Ordering::SeqCst);
    }
}

/// A job's events: server-sent events, or the same events over a WebSocket when the request
/// asks to upgrade (`Upgrade: websocket`). SSE: `event: progress` / `event: done` with the job
/// as `data`. WebSocket: one text message per event, `{"event": "progress" | "done", "job":
/// {…}}`, then a normal close; the server reads nothing from the client but its close. Either
/// way the stream ends after `done`, and a client that goes away ends it on the server too.
#[utoipa::path(
    get,
    path = "/v1/jobs/{job_id}/events",
    tag = "jobs",
    params(("job_id" = String, Path, description = "The job id")),
    security(("token" = ["keyholder", "auditor"])),
    responses(
        (status = 200, description = "`text/event-stream`: `progress` events, then `done`", body = String, content_type = "text/event-stream"),
        (status = 101, description = "Switching to a WebSocket (request with `Upgrade: websocket`): one text message per event, `{\"event\": \"progress\" | \"done\", \"job\": {…}}`"),
        (status = 404, description = "No such job for this tenant", body = blindsight_proto::ProblemDocument),
        (status = 503, description = "Too many event streams are open", body = blindsight_proto::ProblemDocument),
    )
)]
pub async fn events(
    State(state): State<AppState>,
    caller: Caller,
    Path(job_id): Path<String>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    caller.require(&[Role::Keyholder, Role::Auditor])?;
    let first = load(&state, &caller, &job_id).await?;
    if state.event_streams().load(Ordering::SeqCst) >= state.config().limits.max_event_streams {
        return Err(ApiError::new(
            Problem::Overloaded,
            "too many job event streams are open; poll GET /v1/jobs/{job_id} instead, or retry",
        ));
    }
    let wants_websocket = headers
        .get(axum::http::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let events = job_events(state, caller.tenant_id, job_id, first);
    if wants_websocket {
        let upgrade = upgrade.map_err(|e| {
            ApiError::new(
                Problem::InvalidUpgrade,
                format!("the WebSocket upgrade was refused: {e}; send a GET with `Connection: Upgrade`, `Upgrade: websocket`, `Sec-WebSocket-Version: 13` and a `Sec-WebSocket-Key`, or no upgrade for server-sent events"),
            )
        })?;
        return Ok(upgrade.on_upgrade(move |socket| websocket_events(socket, events)));
    }
    let stream = futures_util::StreamExt::map(events, |(kind, json)| {
        Ok::<Event, Infallible>(Event::default().event(kind).data(json))
    });
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// Sends a job's events over an upgraded WebSocket, and stops as soon as the client closes
/// or goes away (the event stream, and its slot, are dropped with it).
async fn websocket_events(
    mut socket: WebSocket,
    events: impl futures_util::Stream<Item = (&'static str, String)>,
) {
    use futures_util::StreamExt;
    let mut events = std::pin::pin!(events);
    loop {
        tokio::select! {
            next = events.next() => {
                let Some((kind, json)) = next else { break };
                let text = format!("{{\"event\":\"{kind}\",\"job\":{json}}}");
                if socket.send(Message::Text(text.into())).await.is_err() {
                    return;
                }
            }
            incoming = socket.recv() => match incoming {
                // Pings are answered by the protocol layer; anything else is ignored.
                Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
        }
    }
    let _ = socket.send(Message::Close(None)).await;
}
