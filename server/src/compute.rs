//! What jobs compute: the request a key holder sends, the spec it is frozen into when the job
//! is created (the selected record ids and, for risk jobs, the exact model), and the FHE work
//! a worker runs on a blocking thread.
//!
//! On the FHE path every record a job reads is verified again (its proof, with its own
//! metadata) and expanded on the worker before any computation, on a rayon pool of the job's
//! own whose threads each hold the tenant's server key. An aggregate job the additive lane
//! answers entirely is streamed instead ([`execute_lane`]): records are read a page at a time
//! and added into running sums, so its memory does not grow with the cohort. Evaluation is
//! deterministic either way, so the same spec and key give the same output bytes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};

use blindsight_crypto::compute::{
    CompiledQuery, JobInput, LaneAggregator, LanePlan, MergeWork, aggregate_output, merge_tasks,
    pack_rollup_shards, run_job, run_task, stored_lane_body, stored_lane_list,
};
use blindsight_crypto::dp::seed_commitment;
use blindsight_crypto::receipt::{
    RECEIPT_VERSION, Receipt, ReceiptPrivacy, ReceiptTasks, fft_path, input_leaf, inputs_root,
    inputs_root_of_leaves, inputs_root_of_lists, tasks_root,
};
use blindsight_crypto::{ComputeKey, RecordSchema, Verifier, sha256_hex};
use blindsight_proto::{Job, JobSpec};

use crate::db::Db;
use crate::store::jobs::Partials;
use crate::store::rollups::{self, PartRef};
use crate::store::{self, PAGE_RECORDS, StoredRecord};

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
    let root = inputs_root_of_lists(
        records
            .iter()
            .map(|r| (r.metadata.record_id.as_str(), r.proven_list.as_slice())),
    );
    receipt_with_root(
        job,
        spec,
        (records.len() as u64, root),
        server_key_fingerprint,
        output,
        None,
        at,
    )
}

/// [`receipt`] for a job whose inputs' count and Merkle root were computed as they were read.
fn receipt_with_root(
    job: &Job,
    spec: &JobSpec,
    (inputs, inputs_root): (u64, String),
    server_key_fingerprint: &str,
    output: &[u8],
    privacy: Option<ReceiptPrivacy>,
    at: i64,
) -> Receipt {
    let (function, model_digest) = spec.function_and_model_digest();
    Receipt {
        version: RECEIPT_VERSION,
        job_id: job.job_id.clone(),
        tenant_id: job.tenant_id.clone(),
        kind: job.kind.clone(),
        function,
        spec_digest: sha256_hex(job.spec.as_bytes()),
        model_digest,
        key_id: job.key_id.clone(),
        server_key_fingerprint: server_key_fingerprint.to_owned(),
        parameter_set: blindsight_crypto::PARAMETER_SET_ID.to_owned(),
        fft: fft_path().to_owned(),
        inputs,
        inputs_root,
        output_digest: sha256_hex(output),
        privacy,
        tasks: None,
        build: build_id(),
        at,
    }
}

/// A lane job's output, its receipt, and the seed of its privacy noise (kept with the result
/// for auditors; never served).
pub struct LaneDone {
    /// The encoded output envelope.
    pub output: Vec<u8>,
    /// What its receipt states.
    pub receipt: Receipt,
    /// The noise seed, for a query with privacy.
    pub noise_seed: Option<[u8; 32]>,
}

/// A fresh noise seed when the plan adds privacy noise.
fn noise_seed(plan: &LanePlan) -> Result<Option<[u8; 32]>, ComputeError> {
    plan.manifest
        .noise
        .as_ref()
        .map(|_| blindsight_crypto::random_bytes::<32>())
        .transpose()
        .map_err(ComputeError::Refused)
}

/// What a receipt states about the privacy of a lane job.
fn privacy(plan: &LanePlan, seed: Option<&[u8; 32]>) -> Option<ReceiptPrivacy> {
    match (&plan.manifest.noise, seed) {
        (Some(noise), Some(seed)) => Some(ReceiptPrivacy {
            rho_micro: noise.rho_micro,
            seed_commitment: seed_commitment(seed),
        }),
        _ => None,
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
    /// Records could not be read (worth retrying).
    #[error("couldn't read the job's records: {0}")]
    Store(String),
    /// Records the job selected are no longer stored.
    #[error("{0} of the job's records are no longer stored")]
    Missing(usize),
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
    let inputs = inputs(records);
    let work = spec.work(&inputs).map_err(ComputeError::Spec)?;
    Ok(run_job(key, verifier, schema, work, threads, progress)?)
}

fn inputs<'a>(records: &'a [StoredRecord]) -> Vec<JobInput<'a>> {
    records
        .iter()
        .map(|r| JobInput {
            metadata: &r.metadata,
            proven_list: &r.proven_list,
            transcript: r.transcript_digest,
        })
        .collect()
}

/// Runs one part of a job cut into tasks (`spec.task_records`): `records` are the part's,
/// from position `first` of the job's selection. Returns its partial result
/// (`blindsight_crypto::compute::run_task`) and one input leaf per record, over the bytes it
/// computed on, for the receipt's inputs root. Blocking and CPU-bound, like [`execute`].
#[allow(clippy::too_many_arguments)]
pub fn execute_part(
    key: &ComputeKey,
    verifier: &Verifier,
    schema: &RecordSchema,
    spec: &JobSpec,
    records: &[StoredRecord],
    first: u64,
    threads: usize,
    progress: &AtomicI64,
) -> Result<(Vec<u8>, Vec<[u8; 32]>), ComputeError> {
    let inputs = inputs(records);
    let work = spec.work(&inputs).map_err(ComputeError::Spec)?;
    let partial = run_task(
        key,
        verifier,
        schema,
        work,
        first,
        spec.record_count(),
        threads,
        progress,
    )?;
    let leaves = records
        .iter()
        .map(|r| input_leaf(&r.metadata.record_id, &sha256_hex(&r.proven_list)))
        .collect();
    Ok((partial, leaves))
}

/// Merges the partial results of every part of a job cut into tasks into its output, and
/// states its receipt: the inputs root over every record as the parts read them, and the
/// tasks' outputs root. Blocking and CPU-bound (the merge of an aggregate's sums and
/// extrema runs FHE operations).
pub fn execute_merge(
    key: &ComputeKey,
    schema: &RecordSchema,
    job: &Job,
    spec: &JobSpec,
    parts: &Partials,
    server_key_fingerprint: &str,
    threads: usize,
) -> Result<LaneDone, ComputeError> {
    let task_records = spec
        .task_records
        .ok_or_else(|| ComputeError::Spec("a merge for a job that is not cut into tasks".into()))?;
    if parts.input_leaves.len() != spec.records.len() {
        return Err(ComputeError::Spec(format!(
            "the parts read {} records, the job selected {}",
            parts.input_leaves.len(),
            spec.records.len()
        )));
    }
    let work = MergeWork {
        key_id: spec.request.key_id(),
        function: spec.function().map_err(ComputeError::Spec)?,
        record_ids: &spec.records,
        shards: spec.lane_shards().map_err(ComputeError::Spec)?,
        noise_seed: None,
        task_records,
    };
    let output = merge_tasks(key, schema, work, &parts.partials, threads)?;
    let root = inputs_root_of_leaves(&parts.input_leaves);
    let mut receipt = receipt_with_root(
        job,
        spec,
        (parts.input_leaves.len() as u64, root),
        server_key_fingerprint,
        &output,
        None,
        crate::db::now(),
    );
    let partials: Vec<&[u8]> = parts.partials.iter().map(Vec::as_slice).collect();
    receipt.tasks = Some(ReceiptTasks {
        task_records,
        tasks: partials.len() as u64,
        outputs_root: tasks_root(&partials),
    });
    Ok(LaneDone {
        output,
        receipt,
        noise_seed: None,
    })
}

/// Runs an aggregate job the lane answers entirely (see
/// `blindsight_crypto::compute::lane_only`), streaming: the selected records are read
/// [`PAGE_RECORDS`] at a time, each list decoded and added into its shard's running sum, its
/// digest kept for the receipt's inputs root. Memory holds one page and one list per shard
/// whatever the cohort size. The output bytes are those [`run_job`] gives for the same job (the
/// same plan and wrapping sums), so auditors re-execute it with `run_job`. Blocking: it reads
/// the database through `handle`, from a blocking thread. Returns the output and its receipt.
#[allow(clippy::too_many_arguments)]
pub fn execute_lane(
    handle: &tokio::runtime::Handle,
    db: &Db,
    job: &Job,
    spec: &JobSpec,
    schema: &RecordSchema,
    (compiled, plan): &(CompiledQuery, LanePlan),
    server_key_fingerprint: &str,
    progress: &AtomicI64,
) -> Result<LaneDone, ComputeError> {
    let slots = schema.slot_map()?.slots();
    let seed = noise_seed(plan)?;
    let mut sum = LaneAggregator::new(&plan.manifest, slots)?;
    let mut digests = vec![String::new(); spec.records.len()];
    for (page, ids) in spec.records.chunks(PAGE_RECORDS).enumerate() {
        let rows = handle
            .block_on(store::records_page(db, &job.tenant_id, ids))
            .map_err(|e| ComputeError::Store(e.to_string()))?;
        if rows.len() != ids.len() {
            return Err(ComputeError::Missing(ids.len() - rows.len()));
        }
        let base = page * PAGE_RECORDS;
        let position: HashMap<&str, usize> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| (id.as_str(), base + i))
            .collect();
        for r in &rows {
            let Some(&at) = position.get(r.metadata.record_id.as_str()) else {
                return Err(ComputeError::Store(format!(
                    "the database answered record {:?}, which the page did not ask for",
                    r.metadata.record_id
                )));
            };
            let input = JobInput {
                metadata: &r.metadata,
                proven_list: &r.proven_list,
                transcript: r.transcript_digest,
            };
            sum.add(at as u64, &stored_lane_list(&input, schema)?)?;
            digests[at] = sha256_hex(&r.proven_list);
        }
        // Two units per record, as `run_job` counts.
        progress.fetch_add(2 * rows.len() as i64, Ordering::Relaxed);
    }
    let root = inputs_root(
        spec.records
            .iter()
            .map(String::as_str)
            .zip(digests.iter().map(String::as_str)),
    );
    finish_lane(
        job,
        spec,
        (compiled, plan),
        sum,
        seed,
        (spec.records.len() as u64, root),
        server_key_fingerprint,
    )
}

/// A lane job's last step, streamed or over rollups: forms the terms (with the plan's noise),
/// encodes the output and states its receipt.
fn finish_lane(
    job: &Job,
    spec: &JobSpec,
    (compiled, plan): (&CompiledQuery, &LanePlan),
    sum: LaneAggregator<'_>,
    seed: Option<[u8; 32]>,
    inputs: (u64, String),
    server_key_fingerprint: &str,
) -> Result<LaneDone, ComputeError> {
    let terms = sum.finish_with_noise(seed.as_ref())?;
    let output = aggregate_output(compiled, plan, Vec::new(), terms)?.encode(&job.key_id)?;
    let receipt = receipt_with_root(
        job,
        spec,
        inputs,
        server_key_fingerprint,
        &output,
        privacy(plan, seed.as_ref()),
        crate::db::now(),
    );
    Ok(LaneDone {
        output,
        receipt,
        noise_seed: seed,
    })
}

/// Runs a lane-only aggregate over rollup parts (the spec's `rollup`): each part's stored sum
/// is read as it stands, the lists of records that joined it after the job was created are
/// subtracted (so the job reads exactly the records it counted), and whole parts are added
/// into the shards `pack_rollup_shards` gives. Only the parts' record ids and digests are read
/// besides, for the receipt's inputs root (in the job's order: part by part, each in ingest
/// order). The output bytes are those [`run_job`] gives over the same records in that order
/// with the same shards, so auditors re-execute it with `run_job`. Blocking: it reads the
/// database through `handle`, from a blocking thread. Returns the output and its receipt.
#[allow(clippy::too_many_arguments)]
pub fn execute_rollup(
    handle: &tokio::runtime::Handle,
    db: &Db,
    job: &Job,
    spec: &JobSpec,
    schema: &RecordSchema,
    (compiled, plan): &(CompiledQuery, LanePlan),
    server_key_fingerprint: &str,
    progress: &AtomicI64,
) -> Result<LaneDone, ComputeError> {
    let select = spec.request.select();
    let slots = schema.slot_map()?.slots();
    let parts: Vec<u64> = spec.rollup.iter().map(|p| p.records).collect();
    let shards = pack_rollup_shards(&parts)?;
    let seed = noise_seed(plan)?;
    let mut sum = LaneAggregator::new(&plan.manifest, slots)?;
    // 32 bytes per record for the receipt's inputs root, hashed as the ids are read.
    let mut leaves: Vec<[u8; 32]> = Vec::new();
    for (s, range) in shards.into_iter().enumerate() {
        for part in &spec.rollup[range] {
            let count = part.records;
            let at = PartRef {
                tenant_id: &job.tenant_id,
                key_id: &job.key_id,
                schema_id: &select.schema_id,
                schema_version: select.schema_version,
                part,
            };
            let store_error = |e: store::StoreError| ComputeError::Store(e.to_string());
            let (held, mut part_sum) = handle
                .block_on(rollups::part_sum(db, &at))
                .map_err(store_error)?
                .ok_or(ComputeError::Missing(count as usize))?;
            if held < count {
                return Err(ComputeError::Missing((count - held) as usize));
            }
            if held > count {
                // Records that joined the part after the job was created.
                let late = handle
                    .block_on(rollups::part_records(db, &at, count, held - count, true))
                    .map_err(store_error)?;
                if late.len() as u64 != held - count {
                    return Err(ComputeError::Store(format!(
                        "rollup part {} of {:?} day {} holds {held} records, {} of them stored",
                        part.part,
                        part.cohort,
                        part.day,
                        count + late.len() as u64
                    )));
                }
                for r in &late {
                    let list = stored_lane_body(
                        &r.record_id,
                        r.proven_list.as_deref().unwrap_or_default(),
                        schema,
                    )?;
                    part_sum.subtract(&list)?;
                }
            }
            let members = handle
                .block_on(rollups::part_records(db, &at, 0, count, false))
                .map_err(store_error)?;
            if members.len() as u64 != count {
                return Err(ComputeError::Missing(count as usize - members.len()));
            }
            leaves.extend(
                members
                    .iter()
                    .map(|r| input_leaf(&r.record_id, &r.proven_list_digest)),
            );
            sum.add_sum(s, &part_sum)?;
            progress.fetch_add(2 * count as i64, Ordering::Relaxed);
        }
    }
    let root = inputs_root_of_leaves(&leaves);
    finish_lane(
        job,
        spec,
        (compiled, plan),
        sum,
        seed,
        (leaves.len() as u64, root),
        server_key_fingerprint,
    )
}
