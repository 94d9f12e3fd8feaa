//! What jobs compute: the request a key holder sends, the spec it is frozen into when the job
//! is created (the selected record ids and, for risk jobs, the exact model), and the FHE work
//! a worker runs on a blocking thread.
//!
//! Every record a job reads is verified again (its proof, with its own metadata) and expanded
//! on the worker before any computation, on a rayon pool of the job's own whose threads each
//! hold the tenant's server key; evaluation is deterministic, so the same spec and key give the same output bytes.

use std::sync::atomic::{AtomicI64, Ordering};

use blindsight_crypto::compute::{
    AggregateQuery, JobOutput, RiskModel, aggregate_output, pool_with_key, risk_output,
    score_record,
};
use blindsight_crypto::receipt::{RECEIPT_VERSION, Receipt, fft_path, inputs_root_of_lists};
use blindsight_crypto::tfhe::ServerKey;
use blindsight_crypto::{RecordSchema, Verifier};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::store::StoredRecord;

/// A risk model named by id and version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelRef {
    /// Model id (the built-in default is `crisis`).
    pub id: String,
    /// Model version.
    pub version: u32,
}

fn default_schema_id() -> String {
    blindsight_crypto::schemas::SESSION_SCHEMA_ID.into()
}

fn default_schema_version() -> u32 {
    blindsight_crypto::schemas::SESSION_SCHEMA_VERSION
}

/// Which records a job reads, by routing metadata (never by content).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SelectionRequest {
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

impl Default for SelectionRequest {
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
        select: SelectionRequest,
    },
    /// Compute aggregates over the selected cohort.
    Aggregate {
        /// The key set the records are encrypted under.
        key_id: String,
        /// The aggregates.
        query: AggregateQuery,
        /// The cohort.
        #[serde(default)]
        select: SelectionRequest,
    },
}

impl JobRequest {
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
    pub fn select(&self) -> &SelectionRequest {
        match self {
            JobRequest::RiskScore { select, .. } | JobRequest::Aggregate { select, .. } => select,
        }
    }
}

/// A job as frozen at creation: the request, the exact model it runs (risk jobs), and the
/// records it reads, in ingest order. Stored as the job's `spec` (JSON); holds no data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    /// What the key holder asked for.
    pub request: JobRequest,
    /// The model definition resolved at creation (risk jobs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<RiskModel>,
    /// The selected record ids.
    pub records: Vec<String>,
}

impl JobSpec {
    /// The function id (`risk_score/<model>-v<version>` or `aggregate/v1`) and, for risk jobs,
    /// the digest of the model's canonical JSON: what the audit log and receipts name.
    pub fn function_and_model_digest(&self) -> (String, Option<String>) {
        match &self.model {
            Some(model) => (
                model.function_id(),
                serde_json::to_string(model)
                    .ok()
                    .map(|definition| blindsight_crypto::sha256_hex(definition.as_bytes())),
            ),
            None => (
                blindsight_crypto::compute::AGGREGATE_FUNCTION.to_owned(),
                None,
            ),
        }
    }
}

/// The server build that signs receipts: the package version, and the build id the release
/// pipeline sets in `BLINDSIGHT_BUILD_ID` when it compiles the server (e.g. a commit hash).
pub fn build_id() -> String {
    match option_env!("BLINDSIGHT_BUILD_ID") {
        Some(id) if !id.is_empty() => {
            format!("blindsight-server/{}+{id}", env!("CARGO_PKG_VERSION"))
        }
        _ => format!("blindsight-server/{}", env!("CARGO_PKG_VERSION")),
    }
}

/// What a job's receipt states, for a job that read `records` (in the spec's order) with the
/// server key whose manifest fingerprint is `server_key_fingerprint` and produced `output`.
/// The input digests are taken over the bytes the job computed on.
pub fn receipt(
    job: &crate::jobs::Job,
    spec: &JobSpec,
    records: &[StoredRecord],
    server_key_fingerprint: &str,
    output: &[u8],
    at: i64,
) -> Receipt {
    let (function, model_digest) = spec.function_and_model_digest();
    Receipt {
        version: RECEIPT_VERSION,
        job_id: job.job_id.clone(),
        tenant_id: job.tenant_id.clone(),
        kind: job.kind.clone(),
        function,
        spec_digest: blindsight_crypto::sha256_hex(job.spec.as_bytes()),
        model_digest,
        key_id: job.key_id.clone(),
        server_key_fingerprint: server_key_fingerprint.to_owned(),
        parameter_set: blindsight_crypto::PARAMETER_SET_ID.to_owned(),
        fft: fft_path().to_owned(),
        inputs: records.len() as u64,
        inputs_root: inputs_root_of_lists(
            records
                .iter()
                .map(|r| (r.metadata.record_id.as_str(), r.proven_list.as_slice())),
        ),
        output_digest: blindsight_crypto::sha256_hex(output),
        build: build_id(),
        at,
    }
}

/// Why a job's computation failed.
#[derive(Debug, thiserror::Error)]
pub enum ComputeError {
    /// A record or the spec was refused (not worth retrying).
    #[error("{0}")]
    Refused(#[from] blindsight_crypto::Error),
    /// The spec does not describe a job this server runs.
    #[error("invalid job spec: {0}")]
    Spec(String),
}

/// Runs a job's FHE work: verifies and expands every record, computes, and returns the
/// encoded output envelope. Blocking and CPU-bound: call it from a worker thread.
/// `progress` counts records expanded, then records computed (`2 × records` in all).
pub fn execute(
    key: &ServerKey,
    verifier: &Verifier,
    schema: &RecordSchema,
    spec: &JobSpec,
    records: &[StoredRecord],
    progress: &AtomicI64,
) -> Result<Vec<u8>, ComputeError> {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let pool = pool_with_key(key, threads)?;
    pool.install(|| evaluate(key, verifier, schema, spec, records, progress))
}

fn evaluate(
    key: &ServerKey,
    verifier: &Verifier,
    schema: &RecordSchema,
    spec: &JobSpec,
    records: &[StoredRecord],
    progress: &AtomicI64,
) -> Result<Vec<u8>, ComputeError> {
    // Runs on a pool whose every thread holds `key` (see `pool_with_key`).
    let key_id = spec.request.key_id();
    let expanded = records
        .par_iter()
        .map(|r| {
            let values = verifier
                .verify_and_expand(&r.proven_list, schema, &r.metadata)
                .map_err(|e| blindsight_crypto::Error::Malformed {
                    what: "stored record",
                    reason: format!("record {:?}: {e}", r.metadata.record_id),
                })?;
            progress.fetch_add(1, Ordering::Relaxed);
            Ok(values)
        })
        .collect::<Result<Vec<_>, blindsight_crypto::Error>>()?;
    let output: JobOutput = match &spec.request {
        JobRequest::RiskScore { .. } => {
            let model = spec
                .model
                .as_ref()
                .ok_or_else(|| ComputeError::Spec("a risk job without its model".into()))?
                .compile(schema)?;
            let scored = expanded
                .par_iter()
                .map(|values| {
                    let s = score_record(key, &model, values);
                    progress.fetch_add(1, Ordering::Relaxed);
                    s
                })
                .collect::<Result<Vec<_>, _>>()?;
            let ids: Vec<String> = records
                .iter()
                .map(|r| r.metadata.record_id.clone())
                .collect();
            risk_output(&model, &ids, scored)?
        }
        JobRequest::Aggregate { query, .. } => {
            let compiled = query.compile(schema, expanded.len())?;
            let results = compiled.evaluate(key, &expanded)?;
            progress.fetch_add(expanded.len() as i64, Ordering::Relaxed);
            aggregate_output(&compiled, results)?
        }
    };
    Ok(output.encode(key_id)?)
}
