//! Computation on ciphertext: risk scoring with registered models, and cohort analytics.
//!
//! Everything here is deterministic (no randomness anywhere in evaluation), so an auditor
//! holding only the server key and the stored inputs can re-run a job and get the same output
//! bytes. Each computation exists three times: optimised on ciphertext (what jobs run), the
//! straightforward tfhe high-level version (tests check both agree; the comparison harness
//! measures the gap), and in clear (the reference the demo and the tests check decrypted
//! results against).
//!
//! - [`RiskModel`] / [`crisis_v1`] / [`bias_v1`]: weights, thresholds and rules; [`score_records`].
//! - [`AggregateQuery`]: count, sum, mean, min, max, histogram, count at least, conditional
//!   sum; [`CompiledQuery::evaluate`].
//! - [`JobOutput`]: what a job returns to the key holder.

mod aggregate;
mod eval;
mod features;
mod job;
mod lane;
mod model;
mod output;
mod privacy;
mod risk;
mod shards;
mod tasks;

pub use crate::dp::LaneNoise;
pub use aggregate::{
    Aggregate, AggregateQuery, AggregateValue, CompiledQuery, MAX_AGGREGATES, MAX_EDGES,
};
pub use features::{Derived, FeatureRef, MOOD_CHANGE_OFFSET, blocks_for, result_type_for};
pub use job::{JobFunction, JobInput, JobWork, stored_lane_body, stored_lane_list};
pub use lane::{
    ComputedBy, LaneAggregator, LaneManifest, LaneOutputSpec, LanePlan, LaneTermSpec,
    MAX_LANE_TERMS, lane_only,
};
pub use model::{
    BIAS_MODEL_ID, CRISIS_MODEL_ID, CompiledModel, CompiledRule, MAX_RULES, MAX_SCORE, MAX_WEIGHT,
    RiskModel, Rule, Thresholds, Tier, bias_v1, builtin_model, builtin_models, crisis_v1,
};
pub use output::{
    JobOutput, MAX_OUTPUT_LISTS, MAX_OUTPUTS, OutputManifest, OutputSpec, compress_outputs,
};
pub use risk::{ScoredRecord, score_record, score_record_reference, score_records};
pub use shards::{check_shards, equal_shards, pack_rollup_shards};
pub use tasks::{
    MAX_PARTIAL_BYTES, MAX_TASK_RECORDS, MergeWork, is_tasked, merge_tasks, run_task, task_ranges,
};

use tfhe::integer::RadixCiphertext;

use std::sync::atomic::AtomicI64;

use crate::{ComputeKey, RecordSchema, Result, Verifier};

/// What [`stop`] stores in a computation's progress counter.
const STOPPED: i64 = i64::MIN;

/// Stops a computation between records: every `run_job`, `run_task` and re-execution counts
/// the records it has done in its `progress`; once stopped, records not yet started are not
/// started and the call ends with [`crate::Error::Stopped`]. A worker does this at shutdown.
pub fn stop(progress: &AtomicI64) {
    progress.store(STOPPED, std::sync::atomic::Ordering::SeqCst);
}

/// Whether [`stop`] was called on `progress` (counts added after it keep it negative).
pub fn is_stopped(progress: &AtomicI64) -> bool {
    progress.load(std::sync::atomic::Ordering::Relaxed) < 0
}

/// Stack size of the FHE pool's threads (reserved, touched only as deep as it goes).
const FHE_STACK_BYTES: usize = 64 << 20;

/// A rayon pool of `threads` threads, each holding `key` as its thread-local tfhe server key
/// from the moment it starts: run a job's work inside [`rayon::ThreadPool::install`] and every
/// high-level tfhe call (expansion, compression) finds the tenant's key on whatever thread it
/// lands, while other tenants' jobs use their own pools.
///
/// Swapping the thread-local key per task instead (`with_server_key_as_context` inside a
/// parallel iterator) is unsound with work stealing: a thread inside tfhe's borrow of its key
/// can pick up another task that swaps the key, and tfhe's `RefCell` panics.
pub fn pool_with_key(key: &tfhe::ServerKey, threads: usize) -> Result<rayon::ThreadPool> {
    let key = key.clone();
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .thread_name(|i| format!("fhe-{i}"))
        // tfhe's nested parallelism can run queued work on a waiting thread's stack; records
        // go in bounded waves (`job::in_waves`), and the stacks leave room for a wave.
        .stack_size(FHE_STACK_BYTES)
        .start_handler(move |_| tfhe::set_server_key(key.clone()))
        .build()
        .map_err(|e| crate::Error::Fhe(format!("couldn't start the FHE thread pool: {e}")))
}

/// The function id of aggregate jobs (bumped when the evaluation changes its output; v2: the
/// additive lane computes what it can).
pub const AGGREGATE_FUNCTION: &str = "aggregate/v2";

/// Lays out scored records as a job output: `<record id>/score` and `<record id>/tier` per
/// record, in order, compressed into one list.
pub fn risk_output(
    model: &CompiledModel,
    record_ids: &[String],
    scored: Vec<ScoredRecord>,
) -> Result<JobOutput> {
    let mut specs = Vec::with_capacity(2 * scored.len());
    let mut values = Vec::with_capacity(2 * scored.len());
    for (id, s) in record_ids.iter().zip(scored) {
        specs.push(OutputSpec::new(format!("{id}/score"), model.score_type));
        specs.push(OutputSpec::new(format!("{id}/tier"), crate::FieldType::U2));
        values.push(s.score);
        values.push(RadixCiphertext::from(vec![s.tier]));
    }
    let list = compress_outputs(&specs, values)?;
    Ok(JobOutput {
        manifest: OutputManifest {
            function: model.function_id.clone(),
            outputs: specs,
            clear: [("records".to_owned(), record_ids.len() as u64)].into(),
            lane: None,
            lists: Vec::new(),
        },
        lists: vec![list],
        lane: Vec::new(),
    })
}

/// Lays out a query's results as a job output: the FHE results (in
/// [`CompiledQuery::fhe_outputs`] order) and the lane ciphertexts of `plan`.
pub fn aggregate_output(
    query: &CompiledQuery,
    plan: &LanePlan,
    results: Vec<RadixCiphertext>,
    lane: Vec<crate::lane::LaneCiphertext>,
) -> Result<JobOutput> {
    let specs = query.fhe_outputs(plan);
    let list = if specs.is_empty() && results.is_empty() {
        None
    } else {
        Some(compress_outputs(&specs, results)?)
    };
    Ok(JobOutput {
        manifest: OutputManifest {
            function: AGGREGATE_FUNCTION.into(),
            outputs: specs,
            clear: [("records".to_owned(), query.records() as u64)].into(),
            lane: (!plan.manifest.outputs.is_empty()).then(|| plan.manifest.clone()),
            lists: Vec::new(),
        },
        lists: list.into_iter().collect(),
        lane,
    })
}

/// Runs a job: verifies and expands every record, computes the function, and returns the
/// encoded output envelope; a job cut into tasks ([`JobWork::task_records`]) is computed task
/// by task and merged, exactly as workers compute it. Blocking and CPU-bound: call it from a
/// worker thread; it runs on a rayon pool of its own (`threads` threads, each holding `key`).
/// `progress` counts records read twice over (`2 × records` in all): a risk job counts each
/// record expanded, then scored; an aggregate job counts each record summed by the lane, then
/// each expanded for the FHE part (or all at once when the lane answered everything).
pub fn run_job(
    key: &ComputeKey,
    verifier: &Verifier,
    schema: &RecordSchema,
    work: JobWork<'_>,
    threads: usize,
    progress: &AtomicI64,
) -> Result<Vec<u8>> {
    let pool = pool_with_key(key.server_key(), threads)?;
    let key_id = work.key_id;
    if is_tasked(work.records.len() as u64, work.task_records) {
        return pool
            .install(|| tasks::in_tasks(key, verifier, schema, work, progress))?
            .encode(key_id);
    }
    pool.install(|| job::evaluate(key, verifier, schema, work, progress))?
        .encode(key_id)
}
