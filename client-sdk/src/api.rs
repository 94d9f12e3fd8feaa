//! The HTTP client for `blindsight-server`: one [`Client`] per server and token, blocking (apps
//! call it from a worker thread; the CLI directly).
//!
//! Requests that fail for reasons that pass (the server shedding load, a per-token rate limit,
//! a dropped connection) are retried with the server's `Retry-After` or an exponential backoff.
//! Every retry is safe: record ids are chosen by the client, so a record upload retried after
//! its first attempt was stored is recognised (409 with `same_content`) and reported as
//! [`Uploaded::AlreadyStored`], never stored twice. Calls whose retry could do something
//! twice (creating a tenant, whose tokens are shown once; queueing a job) are retried only when
//! the server refused before starting on them, never after a lost connection.
//!
//! Key holders register risk models ([`Client::register_model`]), queue jobs
//! ([`Client::create_job`] with a [`JobRequest`]), follow them ([`Client::wait_for_job`]) and
//! fetch their encrypted outputs ([`Client::job_result`]), which [`crate::results`] decrypts.
//!
//! Auditors read the audit log ([`Client::audit_key`], [`Client::audit_head`],
//! [`Client::audit_entries`]), receipts ([`Client::job_receipt`]), schemas
//! ([`Client::schemas`]) and public key material ([`Client::keyset_public`],
//! [`Client::keyset_server_key`]); [`crate::audit`] gathers it all for `blindsight audit
//! verify`.

use std::time::{Duration, Instant};

use blindsight_crypto::compute::{AggregateQuery, RiskModel};
use blindsight_crypto::receipt::SignedReceipt;
use blindsight_crypto::schemas::{SESSION_SCHEMA_ID, SESSION_SCHEMA_VERSION};
use blindsight_crypto::{AppBundle, RecordEnvelope, RecordMetadata};
use blindsight_server::audit::{Entry, SignedHead};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use ureq::http::{self, Method};
use zeroize::Zeroizing;

/// The header carrying a key set's manifest fingerprint.
pub const MANIFEST_FINGERPRINT_HEADER: &str = "x-blindsight-manifest-fingerprint";

/// The largest response the client reads (a result list or a public bundle's app part).
const MAX_RESPONSE: u64 = 512 << 20;

/// What went wrong talking to the server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The server answered with a problem document.
    #[error("the server refused the request: {status} {slug}: {detail}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The problem type's slug (`proof-invalid`, `forbidden`, …).
        slug: String,
        /// The server's explanation.
        detail: String,
        /// For `record-exists`: whether the stored record is byte-identical to this upload.
        same_content: Option<bool>,
    },
    /// The server could not be reached.
    #[error("couldn't reach the server at {url}: {reason} (is it running, and is the URL right?)")]
    Unreachable {
        /// The base URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The server's answer was not what this client understands.
    #[error("the server's response was not understood: {0}")]
    BadResponse(String),
    /// A job did not finish within the time the caller was prepared to wait. It keeps running
    /// on the server; wait again or fetch it later.
    #[error(
        "job {job_id} did not finish within {} s (it is {status}, {done} of {total} steps); it keeps running on the server",
        waited.as_secs()
    )]
    WaitTimedOut {
        /// The job.
        job_id: String,
        /// How long the caller waited.
        waited: Duration,
        /// Its status when the wait ended.
        status: JobStatus,
        /// Steps done.
        done: i64,
        /// Steps in all (0 until known).
        total: i64,
    },
}

impl ApiError {
    /// The problem slug, when the server refused.
    pub fn slug(&self) -> Option<&str> {
        match self {
            ApiError::Refused { slug, .. } => Some(slug),
            _ => None,
        }
    }
}

#[derive(Deserialize)]
struct Problem {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    detail: Option<String>,
    #[serde(default)]
    same_content: Option<bool>,
}

/// A registered key set.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct KeysetRegistered {
    /// The key-set id.
    pub key_id: String,
    /// SHA-256 of the canonical manifest: what apps pin.
    pub manifest_fingerprint: String,
    /// The parameter-set id.
    pub parameter_set: String,
    /// Whether this call stored it (false: the same bundle was already there).
    pub created: bool,
}

/// A stored record.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct RecordStored {
    /// The record id.
    pub record_id: String,
    /// Position in the server's ingest order.
    pub seq: i64,
    /// SHA-256 of the stored proven list.
    pub proven_list_digest: String,
}

/// The outcome of a record upload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Uploaded {
    /// Stored by this call.
    Created(RecordStored),
    /// This exact record was stored before (an earlier attempt succeeded).
    AlreadyStored,
}

/// A record's routing metadata as the server lists it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct RecordSummary {
    /// Ingest order.
    pub seq: i64,
    /// Record id.
    pub record_id: String,
    /// Key set.
    pub key_id: String,
    /// Schema id.
    pub schema_id: String,
    /// Schema version.
    pub schema_version: i64,
    /// Cohort label.
    pub cohort: Option<String>,
    /// Lexicon version.
    pub lexicon_version: Option<String>,
    /// Declared recording time.
    pub recorded_at: Option<i64>,
    /// Server receipt time.
    pub received_at: i64,
    /// SHA-256 of the stored proven list.
    pub proven_list_digest: String,
    /// Whether a sealed transcript is stored.
    pub has_transcript: bool,
}

impl RecordSummary {
    /// The record's metadata as it was bound into its proof and its transcript's seal, rebuilt
    /// from what the server lists for `tenant` (the key holder opens a transcript with it).
    pub fn metadata(&self, tenant: &str) -> Result<RecordMetadata, ApiError> {
        let bad = |what: &str| {
            ApiError::BadResponse(format!("record {}: {what} out of range", self.record_id))
        };
        Ok(RecordMetadata {
            tenant: tenant.to_owned(),
            key_id: self.key_id.clone(),
            schema_id: self.schema_id.clone(),
            schema_version: u32::try_from(self.schema_version)
                .map_err(|_| bad("schema_version"))?,
            record_id: self.record_id.clone(),
            cohort: self.cohort.clone(),
            lexicon_version: self.lexicon_version.clone(),
            recorded_at: self
                .recorded_at
                .map(u64::try_from)
                .transpose()
                .map_err(|_| bad("recorded_at"))?,
        })
    }
}

#[derive(Deserialize)]
struct RecordPage {
    records: Vec<RecordSummary>,
    next_after: Option<i64>,
}

/// Which records to list.
#[derive(Clone, Debug, Default)]
pub struct RecordQuery {
    /// Only this cohort.
    pub cohort: Option<String>,
    /// Recorded at or after (seconds since the epoch).
    pub since: Option<i64>,
    /// Recorded before.
    pub until: Option<i64>,
}

/// A tenant as created by the admin.
#[derive(Clone, Debug, Deserialize)]
pub struct TenantCreated {
    /// The tenant id.
    pub tenant_id: String,
    /// The three tokens, shown once.
    pub tokens: TenantTokens,
}

/// A tenant's tokens.
#[derive(Clone, Deserialize)]
pub struct TenantTokens {
    /// Key holder.
    pub keyholder: String,
    /// Ingest (apps).
    pub ingest: String,
    /// Auditor.
    pub auditor: String,
}

impl std::fmt::Debug for TenantTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TenantTokens(redacted)")
    }
}

/// A new tenant, as the admin creates it ([`Client::create_tenant_with`]).
#[derive(Clone, Debug, Default, Serialize)]
pub struct NewTenant {
    /// A display name (1–200 characters).
    pub name: String,
    /// The tenant id; the server generates one when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    /// The smallest cohort an aggregate job may run over (at least 2); the server's default
    /// (normally 10) when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_cohort_size: Option<u32>,
}

/// A risk model as the server stored it (`POST /v1/models`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ModelRegistered {
    /// The model id.
    pub model_id: String,
    /// Its version.
    pub version: u32,
    /// SHA-256 of its canonical JSON: what receipts of jobs that ran it name.
    pub digest: String,
    /// `risk_score/<id>-v<version>`: the function id in its jobs' outputs.
    pub function_id: String,
    /// Whether this call stored it (false: the identical model was already registered).
    #[serde(skip_deserializing, default)]
    pub created: bool,
}

/// A model the server knows (`GET /v1/models`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ModelInfo {
    /// The model id.
    pub model_id: String,
    /// Its version.
    pub version: u32,
    /// SHA-256 of its canonical JSON.
    pub digest: String,
    /// `risk_score/<id>-v<version>`.
    pub function_id: String,
    /// Whether it is built into the server (such as `crisis` v1) rather than registered.
    #[serde(default)]
    pub builtin: bool,
    /// The model itself.
    pub definition: RiskModel,
}

#[derive(Deserialize)]
struct ModelList {
    models: Vec<ModelInfo>,
}

/// A risk model named by id and version.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ModelRef {
    /// Model id (the built-in default is `crisis`).
    pub id: String,
    /// Model version.
    pub version: u32,
}

impl ModelRef {
    /// The model `id` at `version`.
    pub fn new(id: impl Into<String>, version: u32) -> Self {
        Self {
            id: id.into(),
            version,
        }
    }

    /// The built-in `crisis` v1.
    pub fn crisis_v1() -> Self {
        Self::new(blindsight_crypto::compute::CRISIS_MODEL_ID, 1)
    }
}

/// Which records a job reads, by routing metadata only (the server never sees content).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Selection {
    /// Schema id (`session` by default).
    #[serde(default = "default_schema_id")]
    pub schema_id: String,
    /// Schema version (1 by default).
    #[serde(default = "default_schema_version")]
    pub schema_version: u32,
    /// Only records with this cohort label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cohort: Option<String>,
    /// Recorded (or, when undeclared, received) at or after, seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<i64>,
    /// Recorded (or received) before, seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<i64>,
    /// Only these records (each must also match the rest of the selection).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_ids: Option<Vec<String>>,
}

fn default_schema_id() -> String {
    SESSION_SCHEMA_ID.into()
}

fn default_schema_version() -> u32 {
    SESSION_SCHEMA_VERSION
}

impl Default for Selection {
    /// Every record of the built-in `session` v1 schema.
    fn default() -> Self {
        Self {
            schema_id: default_schema_id(),
            schema_version: default_schema_version(),
            cohort: None,
            since: None,
            until: None,
            record_ids: None,
        }
    }
}

/// A job request (`POST /v1/jobs`), tagged by `kind`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum JobRequest {
    /// Score every selected record with a risk model; each record's score and tier come back
    /// encrypted.
    RiskScore {
        /// The key set the records are encrypted under.
        key_id: String,
        /// The model.
        model: ModelRef,
        /// The records.
        #[serde(default)]
        select: Selection,
    },
    /// Compute aggregates over the selected cohort (at least the tenant's minimum cohort).
    Aggregate {
        /// The key set the records are encrypted under.
        key_id: String,
        /// The aggregates.
        query: AggregateQuery,
        /// The cohort.
        #[serde(default)]
        select: Selection,
    },
}

impl JobRequest {
    /// A risk-scoring job.
    pub fn risk_score(key_id: impl Into<String>, model: ModelRef, select: Selection) -> Self {
        JobRequest::RiskScore {
            key_id: key_id.into(),
            model,
            select,
        }
    }

    /// An aggregate job.
    pub fn aggregate(key_id: impl Into<String>, query: AggregateQuery, select: Selection) -> Self {
        JobRequest::Aggregate {
            key_id: key_id.into(),
            query,
            select,
        }
    }

    /// `risk_score` or `aggregate`.
    pub fn kind(&self) -> &'static str {
        match self {
            JobRequest::RiskScore { .. } => "risk_score",
            JobRequest::Aggregate { .. } => "aggregate",
        }
    }

    /// The key set.
    pub fn key_id(&self) -> &str {
        match self {
            JobRequest::RiskScore { key_id, .. } | JobRequest::Aggregate { key_id, .. } => key_id,
        }
    }

    /// The selection.
    pub fn select(&self) -> &Selection {
        match self {
            JobRequest::RiskScore { select, .. } | JobRequest::Aggregate { select, .. } => select,
        }
    }
}

/// A job's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    /// Waiting for a worker.
    Queued,
    /// A worker is computing it.
    Running,
    /// Its encrypted output is stored.
    Succeeded,
    /// The server gave up; [`Job::error`] says why.
    Failed,
}

impl JobStatus {
    /// Succeeded or failed: nothing more will happen.
    pub fn is_finished(self) -> bool {
        matches!(self, JobStatus::Succeeded | JobStatus::Failed)
    }

    /// Its lowercase name, as the server spells it.
    pub fn name(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
        }
    }
}

impl std::fmt::Display for JobStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A queued job (`POST /v1/jobs`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct JobCreated {
    /// The job id.
    pub job_id: String,
    /// `risk_score` or `aggregate`.
    pub kind: String,
    /// Records selected.
    pub records: u64,
    /// `queued`.
    pub status: JobStatus,
}

/// A job as the server reports it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Job {
    /// The job id.
    pub job_id: String,
    /// The owning tenant.
    pub tenant_id: String,
    /// The key set its inputs (and output) are encrypted under.
    pub key_id: String,
    /// `risk_score` or `aggregate`.
    pub kind: String,
    /// The job's parameters as frozen at creation (JSON): the request, the exact model of a
    /// risk job, the selected record ids. Never data.
    pub spec: String,
    /// State.
    pub status: JobStatus,
    /// Leases taken so far.
    pub attempts: i64,
    /// Leases allowed before the job fails.
    pub max_attempts: i64,
    /// Steps done.
    pub progress_done: i64,
    /// Steps in all (0 until known).
    pub progress_total: i64,
    /// Why it failed (or why the last attempt failed).
    pub error: Option<String>,
    /// Creation time (seconds since the epoch).
    pub created_at: i64,
    /// First lease time.
    pub started_at: Option<i64>,
    /// Completion time.
    pub finished_at: Option<i64>,
}

#[derive(Deserialize)]
struct JobList {
    jobs: Vec<Job>,
}

/// The key that signs audit heads and receipts, as the server publishes it
/// (`GET /v1/audit/key`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct AuditKey {
    /// `ed25519`.
    pub algorithm: String,
    /// The 32-byte public key, hex.
    pub public_key: String,
    /// SHA-256 of the public key, hex: what signed heads and receipts name.
    pub key_id: String,
}

#[derive(Deserialize)]
struct AuditPage {
    entries: Vec<Entry>,
    next_after: Option<i64>,
}

/// A registered (custom) record schema as the server lists it (`GET /v1/schemas`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SchemaInfo {
    /// Schema id.
    pub schema_id: String,
    /// Schema version.
    pub version: u32,
    /// Its JSON definition, exactly as stored.
    pub definition: String,
    /// SHA-256 of the definition.
    pub digest: String,
}

#[derive(Deserialize)]
struct SchemaList {
    schemas: Vec<SchemaInfo>,
}

/// A connection to one server with one token.
pub struct Client {
    base: String,
    token: Zeroizing<String>,
    agent: ureq::Agent,
    max_attempts: u32,
    poll_interval: Duration,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

struct Reply {
    status: u16,
    headers: http::HeaderMap,
    body: Vec<u8>,
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

impl Client {
    /// A client for the server at `base_url` (e.g. `http://127.0.0.1:8080`) using `token`.
    pub fn new(base_url: &str, token: &str) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(600)))
            .build()
            .into();
        Self {
            base: base_url.trim_end_matches('/').to_owned(),
            token: Zeroizing::new(token.to_owned()),
            agent,
            max_attempts: 5,
            poll_interval: Duration::from_millis(500),
        }
    }

    /// Sets how often [`Self::wait_for_job`] asks for a job's state (at least every 10 ms).
    #[must_use]
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval.max(Duration::from_millis(10));
        self
    }

    /// Sets how many times a request is tried in all (at least 1).
    #[must_use]
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    fn once(
        &self,
        method: &Method,
        path: &str,
        body: Option<(&[u8], &str)>,
    ) -> Result<Reply, ApiError> {
        let url = format!("{}{path}", self.base);
        let mut builder = http::Request::builder()
            .method(method.clone())
            .uri(&url)
            .header("authorization", format!("Bearer {}", self.token.as_str()));
        if let Some((_, content_type)) = body {
            builder = builder.header("content-type", content_type);
        }
        let unreachable = |e: &dyn std::fmt::Display| ApiError::Unreachable {
            url: self.base.clone(),
            reason: e.to_string(),
        };
        let result = match body {
            Some((bytes, _)) => self
                .agent
                .run(builder.body(bytes).map_err(|e| unreachable(&e))?),
            None => self
                .agent
                .run(builder.body(()).map_err(|e| unreachable(&e))?),
        };
        let mut response = result.map_err(|e| unreachable(&e))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE)
            .read_to_vec()
            .map_err(|e| unreachable(&e))?;
        Ok(Reply {
            status,
            headers,
            body,
        })
    }

    /// Sends a request, retrying what may pass, and turns any non-2xx answer into
    /// [`ApiError::Refused`].
    fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<(&[u8], &str)>,
    ) -> Result<Reply, ApiError> {
        self.send_with(method, path, body, true)
    }

    /// [`Self::send`]; with `idempotent` false, only refusals that happen before the server
    /// starts on the request (load shedding, readiness, rate limits) are retried, never a lost
    /// connection or a timeout, which may have committed.
    fn send_with(
        &self,
        method: Method,
        path: &str,
        body: Option<(&[u8], &str)>,
        idempotent: bool,
    ) -> Result<Reply, ApiError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let last = attempt >= self.max_attempts;
            let backoff = Duration::from_millis(500 << (attempt - 1).min(6));
            let reply = match self.once(&method, path, body) {
                Ok(r) => r,
                Err(e) if last || !idempotent => return Err(e),
                Err(_) => {
                    std::thread::sleep(backoff);
                    continue;
                }
            };
            if (200..300).contains(&reply.status) {
                return Ok(reply);
            }
            let problem: Option<Problem> = serde_json::from_slice(&reply.body).ok();
            let slug = problem
                .as_ref()
                .map(|p| p.kind.rsplit('/').next().unwrap_or_default().to_owned())
                .unwrap_or_default();
            let retryable = match (reply.status, slug.as_str()) {
                (503, "timeout") => idempotent,
                (503, _) | (429, "rate-limited") => true,
                _ => false,
            };
            if retryable && !last {
                let wait = reply
                    .headers
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                    .map_or(backoff, Duration::from_secs);
                std::thread::sleep(wait.min(Duration::from_secs(30)));
                continue;
            }
            return Err(ApiError::Refused {
                status: reply.status,
                detail: problem
                    .as_ref()
                    .and_then(|p| p.detail.clone())
                    .unwrap_or_else(|| {
                        String::from_utf8_lossy(&reply.body)
                            .chars()
                            .take(200)
                            .collect()
                    }),
                same_content: problem.and_then(|p| p.same_content),
                slug,
            });
        }
    }

    fn json<T: DeserializeOwned>(reply: &Reply) -> Result<T, ApiError> {
        serde_json::from_slice(&reply.body).map_err(|e| ApiError::BadResponse(e.to_string()))
    }

    /// Creates a tenant (admin token) with the server's default minimum cohort.
    pub fn create_tenant(
        &self,
        name: &str,
        tenant_id: Option<&str>,
    ) -> Result<TenantCreated, ApiError> {
        self.create_tenant_with(&NewTenant {
            name: name.to_owned(),
            tenant_id: tenant_id.map(str::to_owned),
            min_cohort_size: None,
        })
    }

    /// Creates a tenant (admin token) with every setting spelled out.
    pub fn create_tenant_with(&self, tenant: &NewTenant) -> Result<TenantCreated, ApiError> {
        let body = to_json(tenant)?;
        // Tokens are shown once: a retry after a lost response could only create a second
        // tenant, so a lost connection or timeout is reported, not retried.
        let reply = self.send_with(
            Method::POST,
            "/v1/tenants",
            Some((&body, "application/json")),
            false,
        )?;
        Self::json(&reply)
    }

    /// Registers a public bundle (keyholder token). Idempotent for the same bundle.
    pub fn register_keyset(
        &self,
        key_id: &str,
        bundle: &[u8],
    ) -> Result<KeysetRegistered, ApiError> {
        let path = format!("/v1/keysets/{}", percent_encode(key_id));
        let reply = self.send(
            Method::PUT,
            &path,
            Some((bundle, "application/octet-stream")),
        )?;
        Self::json(&reply)
    }

    /// Fetches a key set's app bundle and refuses it unless its manifest has the fingerprint
    /// the caller pinned (so a server cannot swap keys under an app).
    pub fn app_bundle(&self, key_id: &str, pinned_fingerprint: &str) -> crate::Result<AppBundle> {
        let path = format!("/v1/keysets/{}/public", percent_encode(key_id));
        let reply = self.send(Method::GET, &path, None)?;
        Ok(AppBundle::decode_pinned(&reply.body, pinned_fingerprint)?)
    }

    /// Uploads a record (ingest token). A retry of an upload that was stored reports
    /// [`Uploaded::AlreadyStored`]; a different record under a used id is refused.
    pub fn upload_record(&self, record: &RecordEnvelope) -> crate::Result<Uploaded> {
        let bytes = record.encode()?;
        match self.send(
            Method::POST,
            "/v1/records",
            Some((&bytes, "application/octet-stream")),
        ) {
            Ok(reply) => Ok(Uploaded::Created(Self::json(&reply)?)),
            Err(ApiError::Refused {
                same_content: Some(true),
                ..
            }) => Ok(Uploaded::AlreadyStored),
            Err(e) => Err(e.into()),
        }
    }

    /// Lists every record matching `query` (keyholder or auditor token), page by page.
    pub fn records(&self, query: &RecordQuery) -> Result<Vec<RecordSummary>, ApiError> {
        let mut out = Vec::new();
        let mut after: Option<i64> = None;
        loop {
            let mut params = vec!["limit=1000".to_owned()];
            if let Some(c) = &query.cohort {
                params.push(format!("cohort={}", percent_encode(c)));
            }
            if let Some(s) = query.since {
                params.push(format!("since={s}"));
            }
            if let Some(u) = query.until {
                params.push(format!("until={u}"));
            }
            if let Some(a) = after {
                params.push(format!("after={a}"));
            }
            let reply = self.send(
                Method::GET,
                &format!("/v1/records?{}", params.join("&")),
                None,
            )?;
            let page: RecordPage = Self::json(&reply)?;
            out.extend(page.records);
            match page.next_after {
                Some(a) => after = Some(a),
                None => return Ok(out),
            }
        }
    }

    /// A record's stored proven list (keyholder or auditor token).
    pub fn proof(&self, record_id: &str) -> Result<Vec<u8>, ApiError> {
        let path = format!("/v1/records/{}/proof", percent_encode(record_id));
        Ok(self.send(Method::GET, &path, None)?.body)
    }

    /// A record's sealed transcript (keyholder token).
    pub fn sealed_transcript(&self, record_id: &str) -> Result<Vec<u8>, ApiError> {
        let path = format!("/v1/records/{}/transcript", percent_encode(record_id));
        Ok(self.send(Method::GET, &path, None)?.body)
    }

    /// Registers a risk model (keyholder token). Registering the identical model again is
    /// not an error ([`ModelRegistered::created`] is false); other content under a used id
    /// and version is refused with `model-exists`, an invalid model with `invalid-model`.
    pub fn register_model(&self, model: &RiskModel) -> Result<ModelRegistered, ApiError> {
        let body = to_json(model)?;
        let reply = self.send(
            Method::POST,
            "/v1/models",
            Some((&body, "application/json")),
        )?;
        let mut registered: ModelRegistered = Self::json(&reply)?;
        registered.created = reply.status == 201;
        Ok(registered)
    }

    /// The models the server knows for this tenant (keyholder or auditor token).
    pub fn models(&self) -> Result<Vec<ModelInfo>, ApiError> {
        let reply = self.send(Method::GET, "/v1/models", None)?;
        Ok(Self::json::<ModelList>(&reply)?.models)
    }

    /// Queues a job (keyholder token). Every check that can refuse it (unknown key set,
    /// schema or model, an invalid query, no records, a cohort below the tenant's minimum:
    /// `cohort-too-small`) happens now, not when it runs. A lost connection is reported, not
    /// retried: the first attempt may have queued the job.
    pub fn create_job(&self, request: &JobRequest) -> Result<JobCreated, ApiError> {
        let body = to_json(request)?;
        let reply = self.send_with(
            Method::POST,
            "/v1/jobs",
            Some((&body, "application/json")),
            false,
        )?;
        Self::json(&reply)
    }

    /// The tenant's jobs, newest first (keyholder or auditor token).
    pub fn jobs(&self) -> Result<Vec<Job>, ApiError> {
        let reply = self.send(Method::GET, "/v1/jobs", None)?;
        Ok(Self::json::<JobList>(&reply)?.jobs)
    }

    /// One job's state and progress (keyholder or auditor token).
    pub fn job(&self, job_id: &str) -> Result<Job, ApiError> {
        let path = format!("/v1/jobs/{}", percent_encode(job_id));
        Self::json(&self.send(Method::GET, &path, None)?)
    }

    /// A finished job's encrypted output envelope (keyholder or auditor token; the server
    /// records every download in the audit log); decrypt it with [`crate::results::decrypt`].
    /// Refused with `job-not-finished` while the job is queued or running and `job-failed`
    /// when it failed.
    pub fn job_result(&self, job_id: &str) -> Result<Vec<u8>, ApiError> {
        let path = format!("/v1/jobs/{}/result", percent_encode(job_id));
        Ok(self.send(Method::GET, &path, None)?.body)
    }

    /// The server's base URL, as given to [`Self::new`] (without a trailing `/`).
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The published audit signing key (any caller). Refused as [`ApiError::BadResponse`]
    /// unless its `key_id` is the SHA-256 of its 32-byte public key.
    pub fn audit_key(&self) -> Result<AuditKey, ApiError> {
        let key: AuditKey = Self::json(&self.send(Method::GET, "/v1/audit/key", None)?)?;
        let bytes = hex::decode(&key.public_key)
            .ok()
            .filter(|b| b.len() == 32)
            .ok_or_else(|| ApiError::BadResponse("the audit key is not 64 hex digits".into()))?;
        if blindsight_server::audit::chain::key_id(&bytes) != key.key_id {
            return Err(ApiError::BadResponse(
                "the audit key's key_id is not the SHA-256 of its public key".into(),
            ));
        }
        Ok(key)
    }

    /// The signed head of the caller's audit chain (keyholder or auditor token; the admin
    /// token reads the server-wide chain).
    pub fn audit_head(&self) -> Result<SignedHead, ApiError> {
        Self::json(&self.send(Method::GET, "/v1/audit/head", None)?)
    }

    /// Every entry of the caller's audit chain, from the first, page by page; `on_page` sees
    /// how many entries have been read so far after each page.
    pub fn audit_entries(&self, mut on_page: impl FnMut(usize)) -> Result<Vec<Entry>, ApiError> {
        let mut out: Vec<Entry> = Vec::new();
        let mut after = 0i64;
        loop {
            let path = format!("/v1/audit?after={after}&limit=1000");
            let page: AuditPage = Self::json(&self.send(Method::GET, &path, None)?)?;
            out.extend(page.entries);
            on_page(out.len());
            match page.next_after {
                // A server that does not move forward would keep this loop going for ever.
                Some(next) if next > after => after = next,
                Some(next) => {
                    return Err(ApiError::BadResponse(format!(
                        "the audit log's next page starts after entry {next}, not after {after}"
                    )));
                }
                None => return Ok(out),
            }
        }
    }

    /// A key set's app bundle envelope as stored, unpinned, and the manifest fingerprint the
    /// server sends with it (any tenant token). Apps use [`Self::app_bundle`], which pins;
    /// auditors check the bytes themselves.
    pub fn keyset_public(&self, key_id: &str) -> Result<(Vec<u8>, Option<String>), ApiError> {
        let path = format!("/v1/keysets/{}/public", percent_encode(key_id));
        let reply = self.send(Method::GET, &path, None)?;
        let fingerprint = reply
            .headers
            .get(MANIFEST_FINGERPRINT_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok((reply.body, fingerprint))
    }

    /// A key set's compressed server key as stored (keyholder or auditor token): public
    /// evaluation material, needed to re-execute jobs.
    pub fn keyset_server_key(&self, key_id: &str) -> Result<Vec<u8>, ApiError> {
        let path = format!("/v1/keysets/{}/server-key", percent_encode(key_id));
        Ok(self.send(Method::GET, &path, None)?.body)
    }

    /// The tenant's registered schemas (keyholder or auditor token); the built-in ones are
    /// not listed.
    pub fn schemas(&self) -> Result<Vec<SchemaInfo>, ApiError> {
        let reply = self.send(Method::GET, "/v1/schemas", None)?;
        Ok(Self::json::<SchemaList>(&reply)?.schemas)
    }

    /// A finished job's signed receipt (keyholder or auditor token); `no-receipt` (404) when
    /// its result was stored without one.
    pub fn job_receipt(&self, job_id: &str) -> Result<SignedReceipt, ApiError> {
        let path = format!("/v1/jobs/{}/receipt", percent_encode(job_id));
        Self::json(&self.send(Method::GET, &path, None)?)
    }

    /// Polls a job until it has succeeded or failed and returns it as it finished (a failed
    /// job is returned, not an error: see [`Job::error`]). `on_progress` sees the job first and
    /// then whenever its status or progress changes. Gives up with
    /// [`ApiError::WaitTimedOut`] after `timeout`; the job keeps running on the server.
    pub fn wait_for_job(
        &self,
        job_id: &str,
        mut on_progress: impl FnMut(&Job),
        timeout: Duration,
    ) -> Result<Job, ApiError> {
        let start = Instant::now();
        let mut last: Option<(JobStatus, i64, i64, i64)> = None;
        loop {
            let job = self.job(job_id)?;
            let seen = (
                job.status,
                job.progress_done,
                job.progress_total,
                job.attempts,
            );
            if last != Some(seen) {
                last = Some(seen);
                on_progress(&job);
            }
            if job.status.is_finished() {
                return Ok(job);
            }
            let waited = start.elapsed();
            if waited >= timeout {
                return Err(ApiError::WaitTimedOut {
                    job_id: job.job_id,
                    waited,
                    status: job.status,
                    done: job.progress_done,
                    total: job.progress_total,
                });
            }
            std::thread::sleep(self.poll_interval.min(timeout - waited));
        }
    }
}

/// A request body as JSON (the types serialized here cannot fail to serialize).
fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(value).map_err(|e| ApiError::BadResponse(format!("request body: {e}")))
}
