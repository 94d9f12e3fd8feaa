//! A whole job's FHE work, as one pure function: what a server's worker runs and what an
//! auditor re-executes to check a receipt's output digest. Verifies and expands every record
//! (its proof, with its own metadata), computes, and encodes the output envelope.
//! Evaluation is deterministic, so the same function, inputs and key give the same bytes.

use std::sync::atomic::{AtomicI64, Ordering};

use rayon::prelude::*;

use tfhe::integer::RadixCiphertext;

use super::lane::relabel;
use super::{
    AggregateQuery, CompiledModel, CompiledQuery, JobOutput, LaneAggregator, LanePlan, RiskModel,
    ScoredRecord, aggregate_output, risk_output, score_record,
};
use crate::lane::LaneBody;
use crate::{
    ComputeKey, EncryptedValue, Error, RecordMetadata, RecordSchema, Result, TranscriptDigest,
    Verifier, check_shape,
};

/// What a job computes.
#[derive(Clone, Copy, Debug)]
pub enum JobFunction<'a> {
    /// Score every record with a risk model.
    RiskScore(&'a RiskModel),
    /// Aggregates over the records as one cohort.
    Aggregate(&'a AggregateQuery),
}

/// One record a job reads: what its proof is bound to (its metadata and its sealed
/// transcript's digest), and its proven list.
#[derive(Clone, Copy, Debug)]
pub struct JobInput<'a> {
    /// The record's metadata.
    pub metadata: &'a RecordMetadata,
    /// The stored proven list.
    pub proven_list: &'a [u8],
    /// The digest of its sealed transcript, as stored beside it (`None` when it has none, or
    /// was stored before transcripts were bound into proofs).
    pub transcript: Option<TranscriptDigest>,
}

/// A job's work: its key set, its function and its records, in the spec's order.
#[derive(Clone, Debug)]
pub struct JobWork<'a> {
    /// The key set the records are encrypted under (named in the output envelope).
    pub key_id: &'a str,
    /// What it computes.
    pub function: JobFunction<'a>,
    /// What it reads.
    pub records: &'a [JobInput<'a>],
    /// How an aggregate's lane sums are cut into shards, when not in equal shards: the sizes
    /// a job over rollup parts packed them into ([`super::pack_rollup_shards`]).
    pub shards: Option<Vec<u64>>,
    /// The seed the privacy noise is drawn from, for a query that asks for privacy
    /// (`crate::dp`): the worker draws it, its receipt commits to it, auditors re-execute with
    /// it.
    pub noise_seed: Option<[u8; 32]>,
    /// Records per task, for a job cut into tasks ([`super::tasks`]): with more records than
    /// this, the job is computed task by task and merged, as workers compute it.
    pub task_records: Option<u64>,
}

/// Computes a job in one piece (not cut into tasks): verifies and expands every record,
/// computes the function. On the caller's pool.
pub(super) fn evaluate(
    key: &ComputeKey,
    verifier: &Verifier,
    schema: &RecordSchema,
    work: JobWork<'_>,
    progress: &AtomicI64,
) -> Result<JobOutput> {
    let JobWork {
        function,
        records,
        shards,
        noise_seed,
        ..
    } = work;
    match function {
        JobFunction::RiskScore(model) => score_job(key, verifier, schema, model, records, progress),
        JobFunction::Aggregate(query) => {
            let total = records.len() as u64;
            let plan = AggregatePlan::new(query, schema, total, shards)?;
            let (results, lane) = plan.share(key, verifier, schema, records, 0, progress)?;
            let lane = match lane {
                Some(sum) => sum.finish_with_noise(noise_seed.as_ref())?,
                None => Vec::new(),
            };
            aggregate_output(&plan.compiled, &plan.lane, results, lane)
        }
    }
}

/// An aggregate job's plan over its whole cohort: the compiled query, the lane's plan, and the
/// FHE part's own compiled query (`None` when the lane answers every aggregate).
pub(super) struct AggregatePlan {
    pub(super) compiled: CompiledQuery,
    pub(super) lane: LanePlan,
    pub(super) fhe: Option<CompiledQuery>,
    pub(super) slots: usize,
}

impl AggregatePlan {
    /// Plans `query` over `total` records (lane shards as given, or equal), checking its privacy
    /// and that the FHE part's results line up with the query's.
    pub(super) fn new(
        query: &AggregateQuery,
        schema: &RecordSchema,
        total: u64,
        shards: Option<Vec<u64>>,
    ) -> Result<Self> {
        let map = schema.slot_map()?;
        let compiled = query.compile(schema, total as usize)?;
        let lane = match shards {
            Some(shards) => {
                super::check_shards(total, &shards)?;
                compiled.lane_plan_for_shards(&map, shards)
            }
            None => compiled.lane_plan(&map),
        };
        compiled.check_privacy(query, &lane)?;
        let (fhe_query, indices) = compiled.fhe_part(query, &lane);
        let fhe = if fhe_query.aggregates.is_empty() {
            None
        } else {
            let sub = fhe_query.compile(schema, total as usize)?;
            let expected = compiled.fhe_outputs(&lane);
            let labels = sub
                .outputs()
                .iter()
                .map(|o| relabel(&o.label, &indices))
                .collect::<Result<Vec<_>>>()?;
            if labels != expected.iter().map(|o| o.label.clone()).collect::<Vec<_>>() {
                return Err(Error::ShapeMismatch(
                    "the FHE part's results do not line up with the query's".into(),
                ));
            }
            Some(sub)
        };
        Ok(Self {
            compiled,
            lane,
            fhe,
            slots: map.slots(),
        })
    }

    /// Computes over `records`, the job's records from position `first` on (all of them, or
    /// one task's share): the FHE part's results, each of its output type's width, and the
    /// lane's running sums (`None` when the lane computes nothing).
    pub(super) fn share(
        &self,
        key: &ComputeKey,
        verifier: &Verifier,
        schema: &RecordSchema,
        records: &[JobInput<'_>],
        first: u64,
        progress: &AtomicI64,
    ) -> Result<(Vec<RadixCiphertext>, Option<LaneAggregator<'_>>)> {
        let lane = if self.lane.manifest.outputs.is_empty() {
            None
        } else {
            let mut sum = LaneAggregator::new(&self.lane.manifest, self.slots)?;
            for (i, r) in records.iter().enumerate() {
                sum.add(first + i as u64, &stored_lane_list(r, schema)?)?;
            }
            Some(sum)
        };
        // The lane read each record once; the FHE part (if any) reads them again.
        progress.fetch_add(records.len() as i64, Ordering::Relaxed);
        let results = match &self.fhe {
            None => {
                progress.fetch_add(records.len() as i64, Ordering::Relaxed);
                Vec::new()
            }
            Some(sub) => {
                let expanded = expand(key, verifier, schema, records, progress)?;
                sub.evaluate_partial(key.server_key(), &expanded)?
            }
        };
        Ok((results, lane))
    }
}

/// A risk job over `records` (all of a job's, or one task's): verified, expanded, scored and
/// laid out as one compressed list.
pub(super) fn score_job(
    key: &ComputeKey,
    verifier: &Verifier,
    schema: &RecordSchema,
    model: &RiskModel,
    records: &[JobInput<'_>],
    progress: &AtomicI64,
) -> Result<JobOutput> {
    let model = model.compile(schema)?;
    let expanded = expand(key, verifier, schema, records, progress)?;
    let scored = score_all(key, &model, &expanded, progress)?;
    let ids: Vec<String> = records
        .iter()
        .map(|r| r.metadata.record_id.clone())
        .collect();
    risk_output(&model, &ids, scored)
}

/// Records in flight at once per pool thread, in [`in_waves`].
const WAVE_PER_THREAD: usize = 8;

/// Maps `f` over `items` in parallel on the current pool, a wave of a few records per thread
/// at a time. A pool thread that waits inside tfhe's nested parallelism runs other queued
/// work on the same stack; with every record of a large job queued at once that nesting had
/// no bound (a 1,000-record job on one thread overflowed its stack). Waves bound it, at the
/// cost of a short tail per wave.
///
/// A record not yet started when `progress` is stopped ([`super::stop`]) is not started: the
/// call ends with [`crate::Error::Stopped`] once the records in progress finish.
fn in_waves<T: Sync, R: Send>(
    items: &[T],
    progress: &AtomicI64,
    f: impl Fn(&T) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    let wave = WAVE_PER_THREAD * rayon::current_num_threads().max(1);
    let mut out = Vec::with_capacity(items.len());
    for chunk in items.chunks(wave) {
        let done: Vec<R> = chunk
            .par_iter()
            .map(|item| {
                if super::is_stopped(progress) {
                    return Err(Error::Stopped);
                }
                f(item)
            })
            .collect::<Result<_>>()?;
        out.extend(done);
    }
    Ok(out)
}

/// Scores every expanded record (in parallel, on the job's pool), counting each in `progress`.
fn score_all(
    key: &ComputeKey,
    model: &CompiledModel,
    expanded: &[Vec<EncryptedValue>],
    progress: &AtomicI64,
) -> Result<Vec<ScoredRecord>> {
    in_waves(expanded, progress, |values| {
        let s = score_record(key.server_key(), model, values);
        progress.fetch_add(1, Ordering::Relaxed);
        s
    })
}

/// Verifies and expands every record for the FHE path (in parallel, on the job's pool).
pub(super) fn expand(
    key: &ComputeKey,
    verifier: &Verifier,
    schema: &RecordSchema,
    records: &[JobInput<'_>],
    progress: &AtomicI64,
) -> Result<Vec<Vec<EncryptedValue>>> {
    in_waves(records, progress, |r| {
        let values = verifier
            .verify_and_expand(
                key,
                r.proven_list,
                schema,
                r.metadata,
                r.transcript.as_ref(),
            )
            .map_err(|e| stored_error(r, e))?;
        progress.fetch_add(1, Ordering::Relaxed);
        Ok(values)
    })
}

fn stored_error(r: &JobInput<'_>, e: Error) -> Error {
    Error::Malformed {
        what: "stored record",
        reason: format!("record {:?}: {e}", r.metadata.record_id),
    }
}

/// A stored record's lane list for summing: its ciphertext decoded (framing, lengths, the
/// proof's length), its slot count checked against the schema and its mask non-zero. Its
/// proof was verified at ingest, before it was stored; the lane neither parses nor verifies it
/// again (decoding the proof's curve points alone would be most of the job's time, verifying
/// it 75–180 ms per record), and auditors re-verify every stored proof (`audit verify`).
pub fn stored_lane_list(r: &JobInput<'_>, schema: &RecordSchema) -> Result<LaneBody> {
    stored_lane_body(&r.metadata.record_id, r.proven_list, schema)
}

/// [`stored_lane_list`] from the record's id and stored proven list alone.
pub fn stored_lane_body(
    record_id: &str,
    proven_list: &[u8],
    schema: &RecordSchema,
) -> Result<LaneBody> {
    let error = |e: Error| Error::Malformed {
        what: "stored record",
        reason: format!("record {record_id:?}: {e}"),
    };
    let list = LaneBody::decode(proven_list).map_err(error)?;
    check_shape(&list, schema).map_err(error)?;
    if list.has_zero_mask() {
        return Err(error(Error::TrivialCiphertext { index: 0 }));
    }
    Ok(list)
}
