//! Jobs: the request a key holder sends (`POST /v1/jobs`), the spec it is frozen into, and the
//! job as the server reports it.

use std::fmt;

use blindsight_crypto::compute::{
    AGGREGATE_FUNCTION, AggregateQuery, CRISIS_MODEL_ID, JobFunction, JobInput, JobWork, RiskModel,
};
use blindsight_crypto::receipt::SignedReceipt;
use blindsight_crypto::schemas::{SESSION_SCHEMA_ID, SESSION_SCHEMA_VERSION};
use serde::{Deserialize, Serialize};

/// A risk model named by id and version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
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

    /// The built-in `crisis` v1 model.
    pub fn crisis_v1() -> Self {
        Self::new(CRISIS_MODEL_ID, 1)
    }
}

fn default_schema_id() -> String {
    SESSION_SCHEMA_ID.into()
}

fn default_schema_version() -> u32 {
    SESSION_SCHEMA_VERSION
}

/// Which records a job reads, by routing metadata (never by content).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = SelectionRequest))]
#[serde(deny_unknown_fields)]
pub struct Selection {
    /// Schema id (default `session`).
    #[serde(default = "default_schema_id")]
    pub schema_id: String,
    /// Schema version (default 1).
    #[serde(default = "default_schema_version")]
    pub schema_version: u32,
    /// Only this cohort label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cohort: Option<String>,
    /// Recorded (or, when undeclared, received) at or after (seconds since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<i64>,
    /// Recorded (or received) before (seconds since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<i64>,
    /// Only these records (each must match the rest of the selection).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_ids: Option<Vec<String>>,
}

impl Default for Selection {
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum JobRequest {
    /// Score every selected record with a risk model.
    RiskScore {
        /// The key set the records are encrypted under.
        key_id: String,
        /// The model.
        model: ModelRef,
        /// The records.
        #[serde(default)]
        select: Selection,
    },
    /// Compute aggregates over the selected cohort.
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
    /// A risk-score job.
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

/// A job as frozen at creation: the request, the exact model it runs (risk jobs), and the
/// records it reads, in ingest order. Stored as the job's `spec` (JSON) and listed with the
/// job; holds no data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    /// What the key holder asked for.
    pub request: JobRequest,
    /// The model definition resolved at creation (risk jobs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<RiskModel>,
    /// The selected record ids (empty when the job reads rollup parts).
    #[serde(default)]
    pub records: Vec<String>,
    /// The lane rollup parts an aggregate reads instead of its records one by one: the
    /// selection was whole UTC days (or unbounded), the lane answers every aggregate, and every
    /// selected record was rolled up at ingest.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rollup: Vec<RollupPart>,
    /// Records per task when the job is cut into tasks that workers compute independently
    /// and one merge combines (`None`: one piece). Part of what the output depends on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_records: Option<u64>,
}

/// One part of a lane rollup, as a job reads it: the running sum the server keeps of the lane
/// lists of one key set, schema, cohort and UTC day, in parts of at most
/// `LANE_ROLLUP_PART_RECORDS` records (in ingest order: a part starts when the one before is
/// full).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollupPart {
    /// The cohort label; `None` for records that name no cohort.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cohort: Option<String>,
    /// The UTC day (days since the epoch) of the records' time: recorded, or when undeclared,
    /// received.
    pub day: i64,
    /// The part's index within its cohort and day, from 0.
    pub part: u32,
    /// How many of the part's records the job reads: the first this many, as the part held
    /// when the job was created.
    pub records: u64,
}

/// The records of a rollup job, part by part: `(part, first, count)` where the part's records
/// the job reads are its cohort-and-day's records `first .. first + count` in ingest order.
pub fn rollup_ranges(parts: &[RollupPart]) -> impl Iterator<Item = (&RollupPart, u64, u64)> {
    parts.iter().map(|p| {
        (
            p,
            u64::from(p.part) * blindsight_crypto::params::LANE_ROLLUP_PART_RECORDS,
            p.records,
        )
    })
}

/// The lane's shard sizes for a job over rollup parts: whole parts packed by
/// `pack_rollup_shards`, as the server sums them and the key holder expects them; `None`
/// (equal shards) for a job that lists its records. `Err` for parts no server writes.
pub fn rollup_shards(parts: &[RollupPart]) -> Result<Option<Vec<u64>>, String> {
    if parts.is_empty() {
        return Ok(None);
    }
    let sizes: Vec<u64> = parts.iter().map(|p| p.records).collect();
    let shards =
        blindsight_crypto::compute::pack_rollup_shards(&sizes).map_err(|e| e.to_string())?;
    Ok(Some(
        shards.into_iter().map(|r| sizes[r].iter().sum()).collect(),
    ))
}

impl JobSpec {
    /// The zCDP ρ (millionths) the job spends of its tenant's privacy budget: an aggregate
    /// whose query asks for privacy.
    pub fn privacy_rho_micro(&self) -> Option<u64> {
        match &self.request {
            JobRequest::Aggregate { query, .. } => {
                query.privacy.as_ref().and_then(|p| p.rho_micro().ok())
            }
            JobRequest::RiskScore { .. } => None,
        }
    }

    /// How many records the job reads.
    pub fn record_count(&self) -> u64 {
        if self.rollup.is_empty() {
            self.records.len() as u64
        } else {
            self.rollup.iter().map(|p| p.records).sum()
        }
    }

    /// The fewest records this aggregate may read given the tenant's minimum cohort: that
    /// minimum (at least 2), except over the built-in `training` schema, whose records are
    /// about trainees (`blindsight_crypto::schemas::minimum_cohort`).
    pub fn minimum_cohort(&self, tenant_minimum: u64) -> u64 {
        let select = self.request.select();
        blindsight_crypto::schemas::minimum_cohort(
            &select.schema_id,
            select.schema_version,
            tenant_minimum,
        )
    }

    /// The lane's shard sizes when the job reads rollup parts (whole parts packed by
    /// `pack_rollup_shards`); `None` for equal shards. `Err` for parts no server writes.
    pub fn lane_shards(&self) -> Result<Option<Vec<u64>>, String> {
        rollup_shards(&self.rollup)
    }

    /// The function id (`risk_score/<model>-v<version>` or `aggregate/v2`) and, for risk jobs,
    /// the digest of the model's canonical JSON: what the audit log and receipts name.
    pub fn function_and_model_digest(&self) -> (String, Option<String>) {
        match &self.model {
            Some(model) => (
                model.function_id(),
                serde_json::to_string(model)
                    .ok()
                    .map(|definition| blindsight_crypto::sha256_hex(definition.as_bytes())),
            ),
            None => (AGGREGATE_FUNCTION.to_owned(), None),
        }
    }

    /// The job's work over `inputs` (its records, in the spec's order), as
    /// `blindsight_crypto::compute::run_job` takes it.
    pub fn work<'a>(&'a self, inputs: &'a [JobInput<'a>]) -> Result<JobWork<'a>, String> {
        Ok(JobWork {
            key_id: self.request.key_id(),
            function: self.function()?,
            records: inputs,
            shards: self.lane_shards()?,
            noise_seed: None,
            task_records: self.task_records,
        })
    }

    /// What the job computes, as the pure compute function takes it. A risk job's spec must
    /// carry its model (frozen at creation); `Err` says what is missing.
    pub fn function(&self) -> Result<JobFunction<'_>, String> {
        match &self.request {
            JobRequest::RiskScore { .. } => self
                .model
                .as_ref()
                .map(JobFunction::RiskScore)
                .ok_or_else(|| "a risk job without its model".to_owned()),
            JobRequest::Aggregate { query, .. } => Ok(JobFunction::Aggregate(query)),
        }
    }
}

/// A job's spec as a client reads it from the job's listing: fields a newer server adds are
/// ignored, and a spec that is a bare [`JobRequest`] (no frozen model or records) is read too.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedSpec {
    /// What the key holder asked for.
    pub request: JobRequest,
    /// The model frozen at creation (risk jobs), when the spec names it.
    pub model: Option<RiskModel>,
    /// The selected record ids, when the spec lists them (not for a job over rollup parts).
    pub records: Option<Vec<String>>,
    /// The rollup parts a job over rollups reads.
    pub rollup: Vec<RollupPart>,
}

#[derive(Deserialize)]
struct FrozenSpec {
    request: JobRequest,
    #[serde(default)]
    model: Option<RiskModel>,
    #[serde(default)]
    records: Option<Vec<String>>,
    #[serde(default)]
    rollup: Vec<RollupPart>,
}

impl ListedSpec {
    /// Reads a listed job's `spec`.
    pub fn parse(text: &str) -> Result<Self, serde_json::Error> {
        let value: serde_json::Value = serde_json::from_str(text)?;
        if value.get("request").is_some() {
            let s: FrozenSpec = serde_json::from_value(value)?;
            Ok(Self {
                request: s.request,
                model: s.model,
                records: s.records.filter(|_| s.rollup.is_empty()),
                rollup: s.rollup,
            })
        } else {
            Ok(Self {
                request: serde_json::from_value(value)?,
                model: None,
                records: None,
                rollup: Vec::new(),
            })
        }
    }
}

/// A job's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    /// Waiting for a worker (new, or released for a retry).
    Queued,
    /// Leased by a worker.
    Running,
    /// Its result is stored.
    Succeeded,
    /// Gave up; `error` says why.
    Failed,
}

impl JobStatus {
    /// Every state.
    pub const ALL: [JobStatus; 4] = [
        JobStatus::Queued,
        JobStatus::Running,
        JobStatus::Succeeded,
        JobStatus::Failed,
    ];

    /// Succeeded or failed: it will not change again.
    pub fn is_finished(self) -> bool {
        matches!(self, JobStatus::Succeeded | JobStatus::Failed)
    }

    /// The name on the wire and in the database.
    pub fn name(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
        }
    }

    /// Parses a name.
    pub fn from_name(s: &str) -> Option<Self> {
        JobStatus::ALL.into_iter().find(|j| j.name() == s)
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The reply to `POST /v1/jobs` (202).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

/// A job, as `GET /v1/jobs/{job_id}` shows it and its `progress` events carry it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Job {
    /// The job id.
    pub job_id: String,
    /// The owning tenant.
    pub tenant_id: String,
    /// The key set its inputs are encrypted under.
    pub key_id: String,
    /// What it computes (`risk_score`, `aggregate`).
    pub kind: String,
    /// The frozen [`JobSpec`] (JSON): functions, models and selections, never data.
    pub spec: String,
    /// State.
    pub status: JobStatus,
    /// Leases taken so far.
    pub attempts: i64,
    /// Leases allowed before the job fails.
    pub max_attempts: i64,
    /// Work units done.
    pub progress_done: i64,
    /// Work units in all (0 until known).
    pub progress_total: i64,
    /// Why it failed (or why the last attempt failed).
    pub error: Option<String>,
    /// Creation time (seconds).
    pub created_at: i64,
    /// First lease time.
    pub started_at: Option<i64>,
    /// Completion time.
    pub finished_at: Option<i64>,
    /// How far its tasks are, for a job cut into tasks that several workers compute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tasks: Option<JobTasks>,
}

/// The tasks of a job cut into tasks: parts of its records that workers compute
/// independently, then one merge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobTasks {
    /// Part tasks in all.
    pub total: i64,
    /// Parts whose partial result is stored.
    pub succeeded: i64,
    /// Parts a worker holds now.
    pub running: i64,
}

/// The reply to `GET /v1/jobs`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobList {
    /// Newest first.
    pub jobs: Vec<Job>,
}

/// A job receipt as the server signed it (`GET /v1/jobs/{job_id}/receipt`; docs/FORMATS.md,
/// "Receipts"). [`SignedReceipt`] verifies it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

impl From<SignedReceipt> for JobReceipt {
    fn from(s: SignedReceipt) -> Self {
        Self {
            receipt: s.receipt,
            key_id: s.key_id,
            signature: s.signature,
        }
    }
}

impl From<JobReceipt> for SignedReceipt {
    fn from(r: JobReceipt) -> Self {
        Self {
            receipt: r.receipt,
            key_id: r.key_id,
            signature: r.signature,
        }
    }
}
