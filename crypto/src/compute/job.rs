//! A whole job's FHE work, as one pure function: what a server's worker runs and what an
//! auditor re-executes to check a receipt's output digest. Verifies and expands every record
//! (its proof, with its own metadata), computes, and encodes the output envelope.
//! Evaluation is deterministic, so the same function, inputs and key give the same bytes.

use std::sync::atomic::{AtomicI64, Ordering};

use rayon::prelude::*;

use super::{
    AggregateQuery, JobOutput, RiskModel, aggregate_output, pool_with_key, risk_output,
    score_record,
};
use crate::{ComputeKey, Error, RecordMetadata, RecordSchema, Result, Verifier};

/// What a job computes.
#[derive(Clone, Copy, Debug)]
pub enum JobFunction<'a> {
    /// Score every record with a risk model.
    RiskScore(&'a RiskModel),
    /// Aggregates over the records as one cohort.
    Aggregate(&'a AggregateQuery),
}

/// One record a job reads: the metadata its proof is bound to, and its proven list.
#[derive(Clone, Copy, Debug)]
pub struct JobInput<'a> {
    /// The record's metadata.
    pub metadata: &'a RecordMetadata,
    /// The stored proven list.
    pub proven_list: &'a [u8],
}

/// A job's work: its key set, its function and its records, in the spec's order.
#[derive(Clone, Copy, Debug)]
pub struct JobWork<'a> {
    /// The key set the records are encrypted under (named in the output envelope).
    pub key_id: &'a str,
    /// What it computes.
    pub function: JobFunction<'a>,
    /// What it reads.
    pub records: &'a [JobInput<'a>],
}

/// Runs a job: verifies and expands every record, computes the function, and returns the
/// encoded output envelope. Blocking and CPU-bound: call it from a
/// worker thread; it runs on a rayon pool of its own (`threads` threads, each holding `key`).
/// `progress` counts records expanded, then records computed (`2 × records` in all).
pub fn run_job(
    key: &ComputeKey,
    verifier: &Verifier,
    schema: &RecordSchema,
    work: JobWork<'_>,
    threads: usize,
    progress: &AtomicI64,
) -> Result<Vec<u8>> {
    let pool = pool_with_key(key.server_key(), threads)?;
    pool.install(|| evaluate(key, verifier, schema, work.function, work.records, progress))?
        .encode(work.key_id)
}

fn evaluate(
    key: &ComputeKey,
    verifier: &Verifier,
    schema: &RecordSchema,
    function: JobFunction<'_>,
    records: &[JobInput<'_>],
    progress: &AtomicI64,
) -> Result<JobOutput> {
    // Runs on a pool whose every thread holds `key` (see `pool_with_key`).
    let expanded = records
        .par_iter()
        .map(|r| {
            let values = verifier
                .verify_and_expand(key, r.proven_list, schema, r.metadata)
                .map_err(|e| Error::Malformed {
                    what: "stored record",
                    reason: format!("record {:?}: {e}", r.metadata.record_id),
                })?;
            progress.fetch_add(1, Ordering::Relaxed);
            Ok(values)
        })
        .collect::<Result<Vec<_>>>()?;
    match function {
        JobFunction::RiskScore(model) => {
            let model = model.compile(schema)?;
            let scored = expanded
                .par_iter()
                .map(|values| {
                    let s = score_record(key.server_key(), &model, values);
                    progress.fetch_add(1, Ordering::Relaxed);
                    s
                })
                .collect::<Result<Vec<_>>>()?;
            let ids: Vec<String> = records
                .iter()
                .map(|r| r.metadata.record_id.clone())
                .collect();
            risk_output(&model, &ids, scored)
        }
        JobFunction::Aggregate(query) => {
            let compiled = query.compile(schema, expanded.len())?;
            let results = compiled.evaluate(key.server_key(), &expanded)?;
            progress.fetch_add(expanded.len() as i64, Ordering::Relaxed);
            aggregate_output(&compiled, results)
        }
    }
}
