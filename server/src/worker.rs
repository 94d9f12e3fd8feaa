//! Workers: claim a job, run its FHE work on a blocking thread while renewing the lease, and
//! write the result only while still holding it. `serve` runs workers beside the API;
//! `blindsight-server worker` runs them alone, so any number of processes can share one
//! PostgreSQL queue.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use blindsight_crypto::receipt::Receipt;
use tokio::sync::watch;

use blindsight_crypto::compute::{CompiledQuery, JobFunction, LanePlan, lane_only};
use blindsight_crypto::{ComputeKey, KeyManifest, Verifier};
use blindsight_proto::{Job, JobSpec};

use crate::compute::{self, ComputeError};
use crate::registry;
use crate::state::AppState;
use crate::store;
use crate::store::jobs::{self, Lease};

/// How workers lease and poll.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// How long a lease lasts without a heartbeat (renewed every third of it).
    pub lease: Duration,
    /// How long an idle worker waits before looking for work again.
    pub poll: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(60),
            poll: Duration::from_millis(500),
        }
    }
}

/// Runs `count` workers until `stop` turns true; a job in progress at that moment is given
/// back to the queue (its attempt not counted).
pub async fn run(state: AppState, count: usize, config: WorkerConfig, stop: watch::Receiver<bool>) {
    let workers: Vec<_> = (0..count)
        .map(|i| {
            let (state, config, stop) = (state.clone(), config.clone(), stop.clone());
            tokio::spawn(async move { worker(i, state, config, stop).await })
        })
        .collect();
    for w in workers {
        let _ = w.await;
    }
}

async fn worker(id: usize, state: AppState, config: WorkerConfig, mut stop: watch::Receiver<bool>) {
    tracing::info!(worker = id, "worker started");
    while !*stop.borrow() {
        match jobs::claim(state.audit_log(), config.lease).await {
            Ok(Some(lease)) => {
                tracing::info!(worker = id, job = %lease.job.job_id, kind = %lease.job.kind, attempt = lease.job.attempts, "job leased");
                process(&state, &config, lease, &mut stop).await;
            }
            Ok(None) => {
                tokio::select! {
                    () = tokio::time::sleep(config.poll) => {}
                    changed = stop.changed() => {
                        // A dropped sender can never say "stop": treat it as one.
                        if changed.is_err() {
                            break;
                        }
                    }
                }
            }
            Err(e) => {
                tracing::warn!(worker = id, error = %e, "couldn't claim a job; retrying");
                tokio::time::sleep(config.poll * 4).await;
            }
        }
    }
    tracing::info!(worker = id, "worker stopped");
}

/// What went wrong before or during the computation, and whether another attempt may help.
struct Failure {
    message: String,
    retryable: bool,
}

impl Failure {
    fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: false,
        }
    }

    fn transient(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: true,
        }
    }
}

async fn process(
    state: &AppState,
    config: &WorkerConfig,
    lease: Lease,
    stop: &mut watch::Receiver<bool>,
) {
    let job_id = lease.job.job_id.clone();
    let outcome = run_job(state, config, &lease, stop).await;
    let db = state.audit_log();
    let written = match outcome {
        Ok(Some(Done {
            output,
            receipt,
            noise_seed,
        })) => {
            let signed = state.audit_key().sign_receipt(&receipt);
            jobs::complete(db, &lease, &output, Some(&signed), noise_seed.as_ref()).await
        }
        Ok(None) => {
            tracing::info!(job = %job_id, "shutting down: job given back to the queue");
            jobs::release(db, &lease).await
        }
        Err(f) => {
            tracing::warn!(job = %job_id, error = %f.message, retryable = f.retryable, "job attempt failed");
            jobs::fail(db, &lease, &f.message, f.retryable).await
        }
    };
    match written {
        Ok(true) => tracing::info!(job = %job_id, "job finished"),
        Ok(false) => {
            tracing::warn!(job = %job_id, "lease lost before the result was written; another worker owns the job")
        }
        Err(e) => {
            tracing::error!(job = %job_id, error = %e, "couldn't record the job's outcome; its lease will expire and it will be retried")
        }
    }
}

/// What a leased job runs: a lane-only aggregate (streamed; its plan, and the server-key
/// fingerprint its receipt names), or the FHE path over loaded records.
enum Work {
    Lane {
        plan: Box<(CompiledQuery, LanePlan)>,
        fingerprint: String,
    },
    Fhe {
        key: Arc<ComputeKey>,
        verifier: Arc<Verifier>,
        records: Vec<store::StoredRecord>,
    },
}

/// A job's output and what its receipt states.
struct Done {
    output: Vec<u8>,
    receipt: Receipt,
    noise_seed: Option<[u8; 32]>,
}

/// Runs one leased job, renewing its lease from the moment it was taken, through loading the
/// key and the records as well as the computation (loading a key set the cache has not seen
/// can take a while on a busy machine). `Ok(None)`: stopped for shutdown.
async fn run_job(
    state: &AppState,
    config: &WorkerConfig,
    lease: &Lease,
    stop: &mut watch::Receiver<bool>,
) -> Result<Option<Done>, Failure> {
    let job = &lease.job;
    let spec: JobSpec = serde_json::from_str(&job.spec).map_err(|e| {
        Failure::permanent(format!("the job spec is not one this server reads: {e}"))
    })?;
    let total = 2 * spec.record_count() as i64;
    let progress = Arc::new(AtomicI64::new(0));
    // Progress is written at every heartbeat: often enough for a progress bar.
    let beat = (config.lease / 3).min(Duration::from_secs(2));
    let mut beats = tokio::time::interval(beat);
    beats.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let work = prepare_and_compute(state, job, spec, Arc::clone(&progress));
    tokio::pin!(work);
    loop {
        tokio::select! {
            done = &mut work => return done.map(Some),
            // The first tick is immediate: the lease is confirmed (and the progress total
            // written) before any work.
            _ = beats.tick() => {
                let done = progress.load(Ordering::Relaxed);
                match jobs::heartbeat(state.db(), lease, config.lease, done, total).await {
                    Ok(true) => {}
                    Ok(false) => return Err(Failure::transient("the lease was lost (the job was taken over)")),
                    Err(e) => tracing::warn!(job = %job.job_id, error = %e, "heartbeat failed; retrying"),
                }
            }
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    // A computation already on its blocking thread cannot be interrupted; it
                    // finishes in the background and its result is dropped.
                    return Ok(None);
                }
            }
        }
    }
}

/// Loads what the job needs and runs it on a blocking thread.
async fn prepare_and_compute(
    state: &AppState,
    job: &Job,
    spec: JobSpec,
    progress: Arc<AtomicI64>,
) -> Result<Done, Failure> {
    let select = spec.request.select();
    let schema = registry::schema(
        state,
        &job.tenant_id,
        &select.schema_id,
        select.schema_version,
    )
    .await
    .map_err(|e| Failure::transient(format!("couldn't load the schema: {e}")))?
    .ok_or_else(|| {
        Failure::permanent(format!(
            "schema {}@{} is not registered",
            select.schema_id, select.schema_version
        ))
    })?;
    // An aggregate the lane answers entirely is streamed from the database (memory flat in the
    // cohort size) and needs neither the server key nor the verifier: only the manifest's
    // server-key fingerprint, for the receipt. Everything else loads its records, the key and
    // the verifier, and runs the FHE path.
    let shards = spec.lane_shards().map_err(Failure::permanent)?;
    let lane_only = match spec.function() {
        Ok(JobFunction::Aggregate(query)) => {
            lane_only(query, &schema, spec.record_count() as usize, shards)
                .map_err(|e| Failure::permanent(e.to_string()))?
        }
        _ => None,
    };
    if lane_only.is_none() && !spec.rollup.is_empty() {
        return Err(Failure::permanent(
            "the job reads rollup parts but the lane does not answer all of its aggregates",
        ));
    }
    let unregistered = || Failure::permanent(format!("key set {} is not registered", job.key_id));
    let work = match lane_only {
        Some(plan) => {
            let manifest = store::keyset_manifest(state.db(), &job.tenant_id, &job.key_id)
                .await
                .map_err(|e| Failure::transient(format!("couldn't load the key set: {e}")))?
                .ok_or_else(unregistered)?;
            let manifest = KeyManifest::decode(&manifest).map_err(|e| {
                Failure::permanent(format!("the key set's manifest does not decode: {e}"))
            })?;
            Work::Lane {
                plan: Box::new(plan),
                fingerprint: manifest.fingerprints.server_key,
            }
        }
        None => {
            let key = registry::server_key(state, &job.tenant_id, &job.key_id)
                .await
                .map_err(|e| Failure::transient(format!("couldn't load the server key: {e}")))?
                .ok_or_else(unregistered)?;
            let verifier = registry::verifier(state, &job.tenant_id, &job.key_id)
                .await
                .map_err(|e| Failure::transient(format!("couldn't load the verifier: {e}")))?
                .ok_or_else(unregistered)?;
            let records = store::records_by_id(state.db(), &job.tenant_id, &spec.records)
                .await
                .map_err(|e| Failure::transient(format!("couldn't load the records: {e}")))?;
            if records.len() != spec.records.len() {
                return Err(Failure::permanent(format!(
                    "{} of the job's {} records are no longer stored",
                    spec.records.len() - records.len(),
                    spec.records.len()
                )));
            }
            Work::Fhe {
                key,
                verifier,
                records,
            }
        }
    };
    let work = {
        let job = job.clone();
        let db = state.db().clone();
        let handle = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || match work {
            Work::Lane { plan, fingerprint } => {
                let run = if spec.rollup.is_empty() {
                    compute::execute_lane
                } else {
                    compute::execute_rollup
                };
                let done = run(
                    &handle,
                    &db,
                    &job,
                    &spec,
                    &schema,
                    &plan,
                    &fingerprint,
                    &progress,
                )?;
                Ok(Done {
                    output: done.output,
                    receipt: done.receipt,
                    noise_seed: done.noise_seed,
                })
            }
            Work::Fhe {
                key,
                verifier,
                records,
            } => {
                let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
                let output = compute::execute(
                    &key, &verifier, &schema, &spec, &records, threads, &progress,
                )?;
                let receipt = compute::receipt(
                    &job,
                    &spec,
                    &records,
                    &verifier.manifest().fingerprints.server_key,
                    &output,
                    crate::db::now(),
                );
                Ok::<_, ComputeError>(Done {
                    output,
                    receipt,
                    noise_seed: None,
                })
            }
        })
    };
    match work.await {
        Ok(Ok(done)) => Ok(done),
        Ok(Err(ComputeError::Refused(e))) => Err(Failure::permanent(e.to_string())),
        Ok(Err(e @ (ComputeError::Spec(_) | ComputeError::Missing(_)))) => {
            Err(Failure::permanent(e.to_string()))
        }
        Ok(Err(e @ ComputeError::Store(_))) => Err(Failure::transient(e.to_string())),
        Err(e) => Err(Failure::transient(format!(
            "the computation stopped unexpectedly: {e}"
        ))),
    }
}
