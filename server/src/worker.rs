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
use blindsight_crypto::{ComputeKey, KeyManifest, RecordSchema, Verifier};
use blindsight_proto::{Job, JobSpec};

use crate::compute::{self, ComputeError};
use crate::registry;
use crate::state::AppState;
use crate::store;
use crate::store::jobs::{self, Lease, TaskKind};

/// How workers lease and poll.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// How long a lease lasts without a heartbeat (renewed every third of it).
    pub lease: Duration,
    /// How long an idle worker waits before looking for work again.
    pub poll: Duration,
    /// Threads each worker computes on (its own rayon pool per task).
    pub threads: usize,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(60),
            poll: Duration::from_millis(500),
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
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
                if lease.took_over {
                    state.metrics().lease_taken_over();
                }
                tracing::info!(worker = id, job = %lease.job.job_id, kind = %lease.job.kind, task = lease.task.index, task_kind = lease.task.kind.name(), attempt = lease.task.attempts, took_over = lease.took_over, "task leased");
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
    let task = lease.task.index;
    let started = std::time::Instant::now();
    let outcome = run_task(state, config, &lease, stop).await;
    let db = state.audit_log();
    let written = match outcome {
        Ok(Some(Outcome::Job(done))) => {
            let Done {
                output,
                receipt,
                noise_seed,
            } = *done;
            let signed = state.audit_key().sign_receipt(&receipt);
            jobs::complete(db, &lease, &output, Some(&signed), noise_seed.as_ref()).await
        }
        Ok(Some(Outcome::Part { partial, leaves })) => {
            jobs::complete_part(db, &lease, &partial, &leaves).await
        }
        Ok(None) => {
            tracing::info!(job = %job_id, task, "shutting down: task given back to the queue");
            jobs::release(db, &lease).await
        }
        Err(f) => {
            tracing::warn!(job = %job_id, task, error = %f.message, retryable = f.retryable, "task attempt failed");
            jobs::fail(db, &lease, &f.message, f.retryable).await
        }
    };
    state
        .metrics()
        .observe_task(lease.task.kind.name(), started.elapsed());
    match written {
        Ok(true) => {
            tracing::info!(job = %job_id, task, kind = lease.task.kind.name(), seconds = started.elapsed().as_secs_f64(), "task finished")
        }
        Ok(false) => {
            tracing::warn!(job = %job_id, task, "lease lost before the outcome was written; another worker owns the task")
        }
        Err(e) => {
            tracing::error!(job = %job_id, task, error = %e, "couldn't record the task's outcome; its lease will expire and it will be retried")
        }
    }
}

/// What a leased whole job runs: a lane-only aggregate (streamed; its plan, and the
/// server-key fingerprint its receipt names), or the FHE path over loaded records.
enum Work {
    Lane {
        plan: Box<(CompiledQuery, LanePlan)>,
        fingerprint: String,
    },
    Fhe(Fhe),
}

/// What the FHE path loads: the tenant's key, its verifier, and records.
struct Fhe {
    key: Arc<ComputeKey>,
    verifier: Arc<Verifier>,
    records: Vec<store::StoredRecord>,
}

/// A job's output and what its receipt states.
struct Done {
    output: Vec<u8>,
    receipt: Receipt,
    noise_seed: Option<[u8; 32]>,
}

/// What a task produced.
enum Outcome {
    /// The job's output (a whole job, or a merge).
    Job(Box<Done>),
    /// A part's partial result and input leaves.
    Part {
        partial: Vec<u8>,
        leaves: Vec<[u8; 32]>,
    },
}

/// Runs one leased task, renewing its lease from the moment it was taken, through loading the
/// key and the records as well as the computation (loading a key set the cache has not seen
/// can take a while on a busy machine). `Ok(None)`: stopped for shutdown.
async fn run_task(
    state: &AppState,
    config: &WorkerConfig,
    lease: &Lease,
    stop: &mut watch::Receiver<bool>,
) -> Result<Option<Outcome>, Failure> {
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
    let work = compute_task(state, config, lease, spec, Arc::clone(&progress));
    tokio::pin!(work);
    loop {
        tokio::select! {
            done = &mut work => return done.map(Some),
            // The first tick is immediate: the lease is confirmed (and the progress total
            // written) before any work.
            _ = beats.tick() => {
                let done = progress.load(Ordering::Relaxed);
                match jobs::heartbeat(state.audit_log(), lease, config.lease, done, total).await {
                    Ok(true) => {}
                    Ok(false) => return Err(Failure::transient("the lease was lost (the task was taken over, or its job ended)")),
                    Err(e) => tracing::warn!(job = %job.job_id, error = %e, "heartbeat failed; retrying"),
                }
            }
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    // The computation on its blocking thread stops between records (those in
                    // progress finish) and its result is dropped; the task goes back to the
                    // queue.
                    blindsight_crypto::compute::stop(&progress);
                    return Ok(None);
                }
            }
        }
    }
}

/// Loads what the task needs and runs it on a blocking thread.
async fn compute_task(
    state: &AppState,
    config: &WorkerConfig,
    lease: &Lease,
    spec: JobSpec,
    progress: Arc<AtomicI64>,
) -> Result<Outcome, Failure> {
    let job = &lease.job;
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
    let threads = config.threads.max(1);
    let task = lease.task.clone();
    let work: Box<dyn FnOnce() -> Result<Outcome, ComputeError> + Send> = match task.kind {
        TaskKind::Whole => return compute_whole(state, job, spec, schema, threads, progress).await,
        TaskKind::Part => {
            let (first, end) = (task.first as usize, (task.first + task.records) as usize);
            let ids = spec.records.get(first..end).ok_or_else(|| {
                Failure::permanent(format!(
                    "task {} reads records {first} to {end} of a job of {}",
                    task.index,
                    spec.records.len()
                ))
            })?;
            let fhe = load_fhe(state, job, ids).await?;
            Box::new(move || {
                let (partial, leaves) = compute::execute_part(
                    &fhe.key,
                    &fhe.verifier,
                    &schema,
                    &spec,
                    &fhe.records,
                    task.first,
                    threads,
                    &progress,
                )?;
                Ok(Outcome::Part { partial, leaves })
            })
        }
        TaskKind::Merge => {
            let key = registry::server_key(state, &job.tenant_id, &job.key_id)
                .await
                .map_err(|e| Failure::transient(format!("couldn't load the server key: {e}")))?
                .ok_or_else(|| unregistered(job))?;
            let fingerprint = server_key_fingerprint(state, job).await?;
            let parts = jobs::partials(state.db(), &job.job_id)
                .await
                .map_err(|e| Failure::transient(format!("couldn't read the tasks' results: {e}")))?
                .ok_or_else(|| {
                    Failure::permanent("a part's result is missing: the job cannot be merged")
                })?;
            let job = job.clone();
            Box::new(move || {
                let done = compute::execute_merge(
                    &key,
                    &schema,
                    &job,
                    &spec,
                    &parts,
                    &fingerprint,
                    threads,
                )?;
                Ok(Outcome::Job(Box::new(Done {
                    output: done.output,
                    receipt: done.receipt,
                    noise_seed: done.noise_seed,
                })))
            })
        }
    };
    finish(tokio::task::spawn_blocking(work).await)
}

/// A blocking computation's outcome, as a retryable or permanent failure.
fn finish<T>(
    joined: Result<Result<T, ComputeError>, tokio::task::JoinError>,
) -> Result<T, Failure> {
    match joined {
        Ok(Ok(done)) => Ok(done),
        Ok(Err(ComputeError::Refused(e @ blindsight_crypto::Error::Stopped))) => {
            Err(Failure::transient(e.to_string()))
        }
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

fn unregistered(job: &Job) -> Failure {
    Failure::permanent(format!("key set {} is not registered", job.key_id))
}

/// The server-key fingerprint the key set's manifest states (what receipts name).
async fn server_key_fingerprint(state: &AppState, job: &Job) -> Result<String, Failure> {
    let manifest = store::keyset_manifest(state.db(), &job.tenant_id, &job.key_id)
        .await
        .map_err(|e| Failure::transient(format!("couldn't load the key set: {e}")))?
        .ok_or_else(|| unregistered(job))?;
    let manifest = KeyManifest::decode(&manifest)
        .map_err(|e| Failure::permanent(format!("the key set's manifest does not decode: {e}")))?;
    Ok(manifest.fingerprints.server_key)
}

/// Loads the tenant's server key and verifier, and the records `ids` (all of them, or the
/// task fails for good).
async fn load_fhe(state: &AppState, job: &Job, ids: &[String]) -> Result<Fhe, Failure> {
    let key = registry::server_key(state, &job.tenant_id, &job.key_id)
        .await
        .map_err(|e| Failure::transient(format!("couldn't load the server key: {e}")))?
        .ok_or_else(|| unregistered(job))?;
    let verifier = registry::verifier(state, &job.tenant_id, &job.key_id)
        .await
        .map_err(|e| Failure::transient(format!("couldn't load the verifier: {e}")))?
        .ok_or_else(|| unregistered(job))?;
    let records = store::records_by_id(state.db(), &job.tenant_id, ids)
        .await
        .map_err(|e| Failure::transient(format!("couldn't load the records: {e}")))?;
    if records.len() != ids.len() {
        return Err(Failure::permanent(format!(
            "{} of the task's {} records are no longer stored",
            ids.len() - records.len(),
            ids.len()
        )));
    }
    Ok(Fhe {
        key,
        verifier,
        records,
    })
}

/// Runs a whole job: a lane-only aggregate streamed (or over rollups), or the FHE path over
/// its loaded records.
async fn compute_whole(
    state: &AppState,
    job: &Job,
    spec: JobSpec,
    schema: RecordSchema,
    threads: usize,
    progress: Arc<AtomicI64>,
) -> Result<Outcome, Failure> {
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
    let work = match lane_only {
        Some(plan) => Work::Lane {
            plan: Box::new(plan),
            fingerprint: server_key_fingerprint(state, job).await?,
        },
        None => Work::Fhe(load_fhe(state, job, &spec.records).await?),
    };
    let job = job.clone();
    let db = state.db().clone();
    let handle = tokio::runtime::Handle::current();
    let done = tokio::task::spawn_blocking(move || match work {
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
        Work::Fhe(fhe) => {
            let output = compute::execute(
                &fhe.key,
                &fhe.verifier,
                &schema,
                &spec,
                &fhe.records,
                threads,
                &progress,
            )?;
            let receipt = compute::receipt(
                &job,
                &spec,
                &fhe.records,
                &fhe.verifier.manifest().fingerprints.server_key,
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
    .await;
    finish(done).map(|d| Outcome::Job(Box::new(d)))
}
