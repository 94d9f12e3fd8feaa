//! What jobs compute: the request a key holder sends, the spec it is frozen into when the job
//! is created (the selected record ids and, for risk jobs, the exact model), and the FHE work
//! a worker runs on a blocking thread.
//!
//! Every record a job reads is verified again (its proof, with its own metadata) and expanded
//! on the worker before any computation, on a rayon pool of the job's own whose threads each
//! hold the tenant's server key; evaluation is deterministic, so the same spec and key give the same output bytes.

use std::sync::atomic::AtomicI64;

use blindsight_crypto::ComputeKey;
use blindsight_crypto::compute::{JobInput, run_job};
use blindsight_crypto::receipt::{RECEIPT_VERSION, Receipt, fft_path, inputs_root_of_lists};
use blindsight_crypto::{RecordSchema, Verifier};
use blindsight_proto::{Job, JobSpec};

use crate::store::StoredRecord;

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
    job: &Job,
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

/// Runs a job's FHE work with [`run_job`], the function auditors re-execute: verifies and
/// expands every record, computes, and returns the encoded output envelope. Blocking and
/// CPU-bound: call it from a worker thread, with `threads` for its pool.
/// `progress` counts records expanded, then records computed (`2 × records` in all).
pub fn execute(
    key: &ComputeKey,
    verifier: &Verifier,
    schema: &RecordSchema,
    spec: &JobSpec,
    records: &[StoredRecord],
    threads: usize,
    progress: &AtomicI64,
) -> Result<Vec<u8>, ComputeError> {
    let inputs: Vec<JobInput<'_>> = records
        .iter()
        .map(|r| JobInput {
            metadata: &r.metadata,
            proven_list: &r.proven_list,
        })
        .collect();
    let work = spec.work(&inputs).map_err(ComputeError::Spec)?;
    Ok(run_job(key, verifier, schema, work, threads, progress)?)
}
