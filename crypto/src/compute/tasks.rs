//! Jobs cut into tasks: a job over many records is computed as tasks of consecutive records,
//! each a share any worker can compute on its own ([`run_task`]), and one merge that combines
//! the tasks' partial results into the job's output ([`merge_tasks`]). Risk scores
//! concatenate (the output carries one compressed list per task, so merging decompresses
//! nothing); sums, counts and histograms add; `min`/`max` take one more comparison per task;
//! the lane's running sums add (wrapping, so they equal one pass's).
//!
//! The cut is part of the job ([`JobWork::task_records`]): a job's output bytes depend on it
//! (a sum of partial sums is not the same ciphertext as one sum), and [`super::run_job`] runs
//! the same tasks and the same merge in order, so an auditor re-executing a job reproduces the
//! output digest however many workers computed it.
//!
//! A partial result is stored by the server between the task and the merge; it is decoded
//! like any untrusted input (bounded, every ciphertext checked against the parameters, its
//! position and size against the job's).

use std::ops::Range;
use std::sync::atomic::AtomicI64;

use serde::{Deserialize, Serialize};
use tfhe::integer::RadixCiphertext;
use tfhe::integer::parameters::RadixCiphertextConformanceParams;

use super::job::{AggregatePlan, score_job};
use super::output::{JobOutput, OutputManifest, OutputSpec};
use super::{JobFunction, JobWork, LaneAggregator, aggregate_output, pool_with_key};
use crate::envelope::{decode_parts, encode_parts};
use crate::lane::LaneSum;
use crate::results::{decode_result_list, encode_result_list};
use crate::{ComputeKey, Error, FieldType, RecordSchema, Result, Verifier};

/// The most records one task may hold.
pub const MAX_TASK_RECORDS: u64 = 100_000;

/// The largest partial result the merge reads from one task.
pub const MAX_PARTIAL_BYTES: usize = 512 << 20;

/// The records of each task of a job over `records` records cut into tasks of `per_task`
/// (the last may be shorter): positions in the job's selection.
pub fn task_ranges(records: u64, per_task: u64) -> Vec<Range<u64>> {
    let per_task = per_task.max(1);
    (0..records.div_ceil(per_task))
        .map(|t| t * per_task..((t + 1) * per_task).min(records))
        .collect()
}

/// Whether a job over `records` records with `task_records` runs as tasks and a merge (more
/// than one task) rather than in one piece.
pub fn is_tasked(records: u64, task_records: Option<u64>) -> bool {
    task_records.is_some_and(|n| n > 0 && records > n)
}

/// What a partial result says about itself: checked against what the merge expects.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
struct PartialHeader {
    /// `risk` or `aggregate`.
    function: String,
    /// The task's first record's position in the job.
    first: u64,
    /// The task's records.
    records: u64,
    /// Records in each lane shard's running sum (empty when the lane computes nothing).
    #[serde(default)]
    lane_records: Vec<u64>,
    /// The FFT code path the task ran on (`crate::receipt::fft_path`): a job's output is
    /// reproducible only when every task and the merge ran on one path.
    fft: String,
}

fn function_name(function: &JobFunction<'_>) -> &'static str {
    match function {
        JobFunction::RiskScore(_) => "risk",
        JobFunction::Aggregate(_) => "aggregate",
    }
}

/// Computes one task of a job: `work.records` are the task's records, which start at
/// position `first` of a job over `total` records. Returns the encoded partial result for
/// [`merge_tasks`]. Blocking and CPU-bound, on a pool of `threads` threads holding `key`;
/// `progress` counts as [`super::run_job`] does (`2 × records`).
#[allow(clippy::too_many_arguments)]
pub fn run_task(
    key: &ComputeKey,
    verifier: &Verifier,
    schema: &RecordSchema,
    work: JobWork<'_>,
    first: u64,
    total: u64,
    threads: usize,
    progress: &AtomicI64,
) -> Result<Vec<u8>> {
    let pool = pool_with_key(key.server_key(), threads)?;
    pool.install(|| task(key, verifier, schema, &work, first, total, progress))
}

/// [`run_task`] on the caller's pool.
pub(super) fn task(
    key: &ComputeKey,
    verifier: &Verifier,
    schema: &RecordSchema,
    work: &JobWork<'_>,
    first: u64,
    total: u64,
    progress: &AtomicI64,
) -> Result<Vec<u8>> {
    let records = work.records;
    let end = first.checked_add(records.len() as u64);
    if records.is_empty() || end.is_none_or(|e| e > total) {
        return Err(Error::ShapeMismatch(format!(
            "a task of {} records from position {first} in a job of {total}",
            records.len()
        )));
    }
    let mut header = PartialHeader {
        function: function_name(&work.function).to_owned(),
        first,
        records: records.len() as u64,
        lane_records: Vec::new(),
        fft: crate::receipt::fft_path().to_owned(),
    };
    let (fhe, lane) = match work.function {
        JobFunction::RiskScore(model) => {
            let output = score_job(key, verifier, schema, model, records, progress)?;
            let [list] = output.lists.as_slice() else {
                return Err(Error::ShapeMismatch(
                    "a risk task's output is one list".into(),
                ));
            };
            (encode_result_list(list)?, Vec::new())
        }
        JobFunction::Aggregate(query) => {
            let plan = AggregatePlan::new(query, schema, total, work.shards.clone())?;
            let (results, lane) = plan.share(key, verifier, schema, records, first, progress)?;
            let results = results
                .iter()
                .map(encode_radix)
                .collect::<Result<Vec<_>>>()?;
            let lane = lane.map(LaneAggregator::into_sums).unwrap_or_default();
            header.lane_records = lane.iter().map(LaneSum::records).collect();
            let lane: Vec<u8> = lane.iter().flat_map(LaneSum::to_bytes).collect();
            let parts: Vec<&[u8]> = results.iter().map(Vec::as_slice).collect();
            (encode_parts(&parts), lane)
        }
    };
    let header = serde_json::to_vec(&header).map_err(|e| Error::Malformed {
        what: "task result",
        reason: e.to_string(),
    })?;
    Ok(encode_parts(&[&header, &fhe, &lane]))
}

/// What the merge of a job's tasks needs besides their partial results: what
/// [`super::run_job`] takes, without the records' ciphertexts (risk outputs are labelled with
/// the record ids).
#[derive(Clone, Debug)]
pub struct MergeWork<'a> {
    /// The key set (named in the output envelope).
    pub key_id: &'a str,
    /// What the job computes.
    pub function: JobFunction<'a>,
    /// The job's record ids, in the spec's order.
    pub record_ids: &'a [String],
    /// The lane's shard sizes, when not equal shards.
    pub shards: Option<Vec<u64>>,
    /// The privacy noise seed, for a query with privacy.
    pub noise_seed: Option<[u8; 32]>,
    /// Records per task.
    pub task_records: u64,
}

/// Combines the partial results of every task of a job (in task order) into the job's
/// encoded output envelope. Blocking; on a pool of `threads` threads holding `key`.
pub fn merge_tasks(
    key: &ComputeKey,
    schema: &RecordSchema,
    work: MergeWork<'_>,
    partials: &[Vec<u8>],
    threads: usize,
) -> Result<Vec<u8>> {
    let pool = pool_with_key(key.server_key(), threads)?;
    pool.install(|| merge(key, schema, &work, partials))?
        .encode(work.key_id)
}

/// [`merge_tasks`] on the caller's pool, before encoding.
pub(super) fn merge(
    key: &ComputeKey,
    schema: &RecordSchema,
    work: &MergeWork<'_>,
    partials: &[Vec<u8>],
) -> Result<JobOutput> {
    let total = work.record_ids.len() as u64;
    let ranges = task_ranges(total, work.task_records);
    if partials.len() != ranges.len() {
        return Err(Error::ShapeMismatch(format!(
            "{} task results for a job of {} tasks",
            partials.len(),
            ranges.len()
        )));
    }
    let mut decoded = Vec::with_capacity(partials.len());
    for (t, (bytes, range)) in partials.iter().zip(&ranges).enumerate() {
        decoded.push(open_partial(t, bytes, range, &work.function)?);
    }
    match work.function {
        JobFunction::RiskScore(model) => {
            let model = model.compile(schema)?;
            let mut outputs = Vec::with_capacity(2 * work.record_ids.len());
            let mut lists = Vec::with_capacity(decoded.len());
            let mut sizes = Vec::with_capacity(decoded.len());
            for ((_, fhe, _), range) in decoded.iter().zip(&ranges) {
                let mut specs = Vec::new();
                for id in &work.record_ids[range.start as usize..range.end as usize] {
                    specs.push(OutputSpec::new(format!("{id}/score"), model.score_type));
                    specs.push(OutputSpec::new(format!("{id}/tier"), FieldType::U2));
                }
                let types: Vec<FieldType> = specs.iter().map(|s| s.ty).collect();
                lists.push(decode_result_list(fhe, &types)?);
                sizes.push(specs.len() as u64);
                outputs.extend(specs);
            }
            Ok(JobOutput {
                manifest: OutputManifest {
                    function: model.function_id.clone(),
                    outputs,
                    clear: [("records".to_owned(), total)].into(),
                    lane: None,
                    lists: sizes,
                },
                lists,
                lane: Vec::new(),
            })
        }
        JobFunction::Aggregate(query) => {
            let plan = AggregatePlan::new(query, schema, total, work.shards.clone())?;
            let results = match &plan.fhe {
                None => Vec::new(),
                Some(sub) => {
                    let specs = sub.outputs();
                    let mut partial_results = Vec::with_capacity(decoded.len());
                    for (t, (_, fhe, _)) in decoded.iter().enumerate() {
                        let parts = decode_parts("task result", fhe, specs.len())?;
                        let values = parts
                            .iter()
                            .zip(&specs)
                            .map(|(bytes, spec)| radix(t, bytes, spec))
                            .collect::<Result<Vec<_>>>()?;
                        partial_results.push(values);
                    }
                    sub.merge_partials(key.server_key(), partial_results)?
                }
            };
            let lane = if plan.lane.manifest.outputs.is_empty() {
                Vec::new()
            } else {
                let mut sum = LaneAggregator::new(&plan.lane.manifest, plan.slots)?;
                let sum_bytes = 8 * (crate::params::LANE_LWE_DIMENSION + plan.slots);
                for (t, (header, _, lane)) in decoded.iter().enumerate() {
                    if header.lane_records.len() != plan.lane.manifest.shards.len().max(1)
                        || lane.len() != sum_bytes * header.lane_records.len()
                    {
                        return Err(malformed(t, "its lane sums do not fit the job's plan"));
                    }
                    for (s, (bytes, &records)) in lane
                        .chunks_exact(sum_bytes)
                        .zip(&header.lane_records)
                        .enumerate()
                    {
                        sum.add_sum(s, &LaneSum::from_bytes(bytes, plan.slots, records)?)?;
                    }
                }
                sum.finish_with_noise(work.noise_seed.as_ref())?
            };
            aggregate_output(&plan.compiled, &plan.lane, results, lane)
        }
    }
}

fn malformed(task: usize, reason: &str) -> Error {
    Error::Malformed {
        what: "task result",
        reason: format!("task {task}: {reason}"),
    }
}

/// Decodes task `t`'s partial result and checks it is the share the job expects of it.
fn open_partial<'a>(
    t: usize,
    bytes: &'a [u8],
    range: &Range<u64>,
    function: &JobFunction<'_>,
) -> Result<(PartialHeader, &'a [u8], &'a [u8])> {
    if bytes.len() > MAX_PARTIAL_BYTES {
        return Err(Error::TooLarge {
            what: "task result",
            size: bytes.len() as u64,
            limit: MAX_PARTIAL_BYTES as u64,
        });
    }
    let parts = decode_parts("task result", bytes, 3)?;
    let header: PartialHeader = serde_json::from_slice(parts[0])
        .map_err(|e| malformed(t, &format!("its header does not decode: {e}")))?;
    let expected = (
        function_name(function),
        range.start,
        range.end - range.start,
    );
    if (header.function.as_str(), header.first, header.records) != expected {
        return Err(malformed(
            t,
            &format!(
                "it holds {} records from {} for {:?}, the job expects {} from {} for {:?}",
                header.records, header.first, header.function, expected.2, expected.1, expected.0
            ),
        ));
    }
    let here = crate::receipt::fft_path();
    if header.fft != here {
        return Err(malformed(
            t,
            &format!(
                "it ran on FFT path {}, the merge runs on {here}: a job's tasks must all run on \
                 one path for its output to be reproducible (run the workers of one database on \
                 one class of CPU)",
                header.fft
            ),
        ));
    }
    Ok((header, parts[1], parts[2]))
}

/// The largest FHE result a partial holds (a 32-bit result is 16 blocks of about 16 KiB).
const MAX_RESULT_BYTES: u64 = 1 << 20;

fn bincode_options() -> impl bincode::Options {
    use bincode::Options;
    bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .with_limit(MAX_RESULT_BYTES)
}

/// One FHE result as a partial holds it: tfhe's integer ciphertext in plain bincode (partials
/// live between a task and its job's merge on one deployment, so they carry no version).
fn encode_radix(value: &RadixCiphertext) -> Result<Vec<u8>> {
    use bincode::Options;
    bincode_options()
        .serialize(value)
        .map_err(|e| Error::Fhe(format!("couldn't serialize a task result: {e}")))
}

/// One FHE result of task `t`, checked against the pinned parameters and its output's width:
/// every block an LWE ciphertext of the pinned dimension and modulus, with the pinned message
/// and carry moduli, no more than a clean block's degree and at most nominal noise (a block of
/// trivial zeros, which widening adds, has both at zero).
fn radix(t: usize, bytes: &[u8], spec: &OutputSpec) -> Result<RadixCiphertext> {
    use bincode::Options;
    use tfhe::conformance::ParameterSetConformant;
    use tfhe::integer::IntegerCiphertext;
    use tfhe::shortint::ciphertext::NoiseLevel;
    let params = RadixCiphertextConformanceParams::from_pbs_parameters(
        crate::params::COMPUTE_PARAMS,
        spec.ty.blocks() as usize,
    )
    .shortint_params;
    let value: RadixCiphertext = bincode_options()
        .allow_trailing_bytes()
        .deserialize(bytes)
        .map_err(|e| malformed(t, &format!("result {:?}: {e}", spec.label)))?;
    let used = bincode_options()
        .serialized_size(&value)
        .map_err(|e| malformed(t, &e.to_string()))?;
    let conformant = value.blocks().len() == spec.ty.blocks() as usize
        && value.blocks().iter().all(|b| {
            b.ct.is_conformant(&params.ct_params)
                && b.message_modulus == params.message_modulus
                && b.carry_modulus == params.carry_modulus
                && b.atomic_pattern == params.atomic_pattern
                && b.degree.get() <= params.degree.get()
                && b.noise_level() <= NoiseLevel::NOMINAL
        });
    if used != bytes.len() as u64 || !conformant {
        return Err(malformed(
            t,
            &format!(
                "result {:?} is not a clean {}-block ciphertext under the pinned parameters",
                spec.label,
                spec.ty.blocks()
            ),
        ));
    }
    Ok(value)
}

/// A job cut into tasks, computed as its workers compute it: every task in order, then the
/// merge.
pub(super) fn in_tasks(
    key: &ComputeKey,
    verifier: &Verifier,
    schema: &RecordSchema,
    work: JobWork<'_>,
    progress: &AtomicI64,
) -> Result<JobOutput> {
    let total = work.records.len() as u64;
    let per_task = work.task_records.unwrap_or(total);
    let partials = task_ranges(total, per_task)
        .into_iter()
        .map(|range| {
            let share = JobWork {
                records: &work.records[range.start as usize..range.end as usize],
                ..work.clone()
            };
            task(key, verifier, schema, &share, range.start, total, progress)
        })
        .collect::<Result<Vec<_>>>()?;
    let ids: Vec<String> = work
        .records
        .iter()
        .map(|r| r.metadata.record_id.clone())
        .collect();
    let merge_work = MergeWork {
        key_id: work.key_id,
        function: work.function,
        record_ids: &ids,
        shards: work.shards,
        noise_seed: work.noise_seed,
        task_records: per_task,
    };
    merge(key, schema, &merge_work, &partials)
}
