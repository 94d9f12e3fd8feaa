//! The job queue: jobs are database rows that workers lease. A lease is a random token with an
//! expiry; a worker renews it while it works (heartbeat) and writes the result only while it
//! still holds it (fencing), so a worker that stalls or dies loses the job to another and can
//! never overwrite its result. Each lease counts an attempt; a job that keeps failing stops
//! after `max_attempts`.
//!
//! PostgreSQL claims with `FOR UPDATE SKIP LOCKED`, so any number of server and worker
//! processes share one queue; SQLite (single node) claims inside a `BEGIN IMMEDIATE`
//! transaction.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use blindsight_proto::{Job, JobStatus};
use sqlx::Row;

use blindsight_crypto::receipt::SignedReceipt;

use crate::audit::Event;
use crate::db::{Backend, Db, now};
use crate::store::StoreError;
use crate::store::audit::{self, AuditLog};

/// Milliseconds since the Unix epoch (lease expiries).
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A worker's hold on a job.
#[derive(Clone, Debug)]
pub struct Lease {
    /// The job.
    pub job: Job,
    /// The fencing token: every write about the job must present it.
    pub token: String,
}

/// A new job's definition.
#[derive(Clone, Debug)]
pub struct NewJob<'a> {
    /// The job id.
    pub job_id: &'a str,
    /// Owner.
    pub tenant_id: &'a str,
    /// Key set.
    pub key_id: &'a str,
    /// Kind.
    pub kind: &'a str,
    /// Parameters (JSON).
    pub spec: &'a str,
    /// Leases allowed.
    pub max_attempts: u32,
}

const JOB_COLUMNS: &str = "job_id, tenant_id, key_id, kind, spec, status, attempts, max_attempts, progress_done, progress_total, error, created_at, started_at, finished_at";

fn job_from_row(r: &sqlx::any::AnyRow) -> Result<Job, StoreError> {
    let status: String = r.try_get("status")?;
    Ok(Job {
        job_id: r.try_get("job_id")?,
        tenant_id: r.try_get("tenant_id")?,
        key_id: r.try_get("key_id")?,
        kind: r.try_get("kind")?,
        spec: r.try_get("spec")?,
        status: JobStatus::from_name(&status).ok_or_else(|| sqlx::Error::ColumnDecode {
            index: "status".into(),
            source: format!("unknown job status {status:?}").into(),
        })?,
        attempts: r.try_get("attempts")?,
        max_attempts: r.try_get("max_attempts")?,
        progress_done: r.try_get("progress_done")?,
        progress_total: r.try_get("progress_total")?,
        error: r.try_get("error")?,
        created_at: r.try_get("created_at")?,
        started_at: r.try_get("started_at")?,
        finished_at: r.try_get("finished_at")?,
    })
}

/// Queues a job, with its audit entry: the digest of the spec and, when the spec is a
/// [`JobSpec`](blindsight_proto::JobSpec), the function, record count and model digest read
/// from it. A job whose query asks for privacy spends its ρ of the tenant's budget in the same
/// transaction; `false` (nothing written) when the budget cannot cover it.
pub async fn create(db: &AuditLog, job: &NewJob<'_>) -> Result<bool, StoreError> {
    let spec = serde_json::from_str::<blindsight_proto::JobSpec>(job.spec).ok();
    let (function, model_digest) = match spec.as_ref().map(|s| s.function_and_model_digest()) {
        None => (None, None),
        Some((function, model_digest)) => (Some(function), model_digest),
    };
    let spec_digest = blindsight_crypto::sha256_hex(job.spec.as_bytes());
    let privacy = spec.as_ref().and_then(|s| s.privacy_rho_micro());
    let mut tx = db.begin_write().await?;
    if let Some(rho) = privacy {
        let spent = sqlx::query(
            "UPDATE tenants SET privacy_spent_micro = privacy_spent_micro + $2 \
             WHERE tenant_id = $1 AND privacy_budget_micro IS NOT NULL \
               AND privacy_spent_micro + $2 <= privacy_budget_micro",
        )
        .bind(job.tenant_id)
        .bind(i64::try_from(rho).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if spent != 1 {
            return Ok(false);
        }
    }
    sqlx::query(
        "INSERT INTO jobs (job_id, tenant_id, key_id, kind, spec, status, attempts, max_attempts, progress_done, progress_total, created_at) \
         VALUES ($1, $2, $3, $4, $5, 'queued', 0, $6, 0, 0, $7)",
    )
    .bind(job.job_id)
    .bind(job.tenant_id)
    .bind(job.key_id)
    .bind(job.kind)
    .bind(job.spec)
    .bind(i64::from(job.max_attempts.max(1)))
    .bind(now())
    .execute(&mut *tx)
    .await?;
    audit::append(
        &mut tx,
        db,
        Some(job.tenant_id),
        &Event::JobCreated {
            job_id: job.job_id,
            kind: job.kind,
            function: function.as_deref(),
            key_id: job.key_id,
            records: spec.as_ref().map(|s| s.record_count() as usize),
            privacy_rho_micro: privacy,
            spec_digest: &spec_digest,
            model_digest: model_digest.as_deref(),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// A tenant's job.
pub async fn get(db: &Db, tenant_id: &str, job_id: &str) -> Result<Option<Job>, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {JOB_COLUMNS} FROM jobs WHERE tenant_id = $1 AND job_id = $2"
    ))
    .bind(tenant_id)
    .bind(job_id)
    .fetch_optional(db.pool())
    .await?;
    row.as_ref().map(job_from_row).transpose()
}

/// Marks as failed every job whose last lease expired with no attempts left.
async fn fail_exhausted(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    db: &AuditLog,
    at_ms: i64,
) -> Result<(), StoreError> {
    let rows = sqlx::query(
        "UPDATE jobs SET status = 'failed', lease_token = NULL, lease_expires = NULL, finished_at = $2, \
                error = COALESCE(error, 'the worker stopped') || ' (gave up after ' || CAST(attempts AS TEXT) || ' attempts)' \
         WHERE status = 'running' AND lease_expires < $1 AND attempts >= max_attempts \
         RETURNING job_id, tenant_id, error, attempts",
    )
    .bind(at_ms)
    .bind(at_ms / 1000)
    .fetch_all(&mut **tx)
    .await?;
    let mut failed = rows
        .iter()
        .map(|r| {
            Ok((
                r.try_get::<String, _>("tenant_id")?,
                r.try_get::<String, _>("job_id")?,
                r.try_get::<Option<String>, _>("error")?.unwrap_or_default(),
                r.try_get::<i64, _>("attempts")?,
            ))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    // Chain heads are locked in one order (tenant, job), so two claims cannot deadlock.
    failed.sort();
    for (tenant, job_id, error, attempt) in &failed {
        audit::append(
            tx,
            db,
            Some(tenant),
            &Event::JobFailed {
                job_id,
                error,
                attempt: *attempt,
                retry: false,
            },
        )
        .await?;
    }
    Ok(())
}

/// Leases the oldest claimable job: queued, or running under an expired lease with attempts
/// left. `None` when there is nothing to do.
pub async fn claim(db: &AuditLog, lease_for: Duration) -> Result<Option<Lease>, StoreError> {
    let token = hex::encode(
        blindsight_crypto::random_bytes::<16>()
            .map_err(|e| sqlx::Error::Protocol(format!("no randomness for a lease token: {e}")))?,
    );
    let at = now_ms();
    let expires = at + i64::try_from(lease_for.as_millis()).unwrap_or(i64::MAX / 2);
    let mut tx = db.begin_write().await?;
    fail_exhausted(&mut tx, db, at).await?;
    let pick = match db.backend() {
        Backend::Postgres => {
            "SELECT job_id FROM jobs \
             WHERE (status = 'queued' OR (status = 'running' AND lease_expires < $1)) AND attempts < max_attempts \
             ORDER BY created_at, job_id LIMIT 1 FOR UPDATE SKIP LOCKED"
        }
        Backend::Sqlite => {
            "SELECT job_id FROM jobs \
             WHERE (status = 'queued' OR (status = 'running' AND lease_expires < $1)) AND attempts < max_attempts \
             ORDER BY created_at, job_id LIMIT 1"
        }
    };
    let Some(job_id): Option<String> = sqlx::query_scalar(pick)
        .bind(at)
        .fetch_optional(&mut *tx)
        .await?
    else {
        tx.commit().await?;
        return Ok(None);
    };
    let row = sqlx::query(&format!(
        "UPDATE jobs SET status = 'running', attempts = attempts + 1, lease_token = $2, lease_expires = $3, \
                started_at = COALESCE(started_at, $4) \
         WHERE job_id = $1 RETURNING {JOB_COLUMNS}"
    ))
    .bind(&job_id)
    .bind(&token)
    .bind(expires)
    .bind(at / 1000)
    .fetch_one(&mut *tx)
    .await?;
    let job = job_from_row(&row)?;
    tx.commit().await?;
    Ok(Some(Lease { job, token }))
}

/// Renews a lease and records progress; `false` when the lease was lost (expired and taken by
/// another worker, or the job finished): the worker must stop.
pub async fn heartbeat(
    db: &Db,
    lease: &Lease,
    lease_for: Duration,
    done: i64,
    total: i64,
) -> Result<bool, StoreError> {
    let expires = now_ms() + i64::try_from(lease_for.as_millis()).unwrap_or(i64::MAX / 2);
    let mut tx = db.begin_write().await?;
    let n = sqlx::query(
        "UPDATE jobs SET lease_expires = $3, progress_done = $4, progress_total = $5 \
         WHERE job_id = $1 AND lease_token = $2 AND status = 'running'",
    )
    .bind(&lease.job.job_id)
    .bind(&lease.token)
    .bind(expires)
    .bind(done)
    .bind(total)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(n == 1)
}

/// Stores the result and its signed receipt and marks the job succeeded, with its audit
/// entry (naming the result's and the receipt's digests), only while `lease` still holds it.
/// `false` (and nothing written) when the lease was lost. Workers always pass a receipt; a
/// result stored without one is reported by `blindsight audit verify`.
pub async fn complete(
    db: &AuditLog,
    lease: &Lease,
    result: &[u8],
    receipt: Option<&SignedReceipt>,
    noise_seed: Option<&[u8; 32]>,
) -> Result<bool, StoreError> {
    let at = now();
    let receipt = receipt
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| sqlx::Error::Protocol(format!("couldn't encode the receipt: {e}")))?;
    let receipt_digest = receipt.as_deref().map(SignedReceipt::digest_of);
    let mut tx = db.begin_write().await?;
    let n = sqlx::query(
        "UPDATE jobs SET status = 'succeeded', lease_token = NULL, lease_expires = NULL, finished_at = $3, \
                progress_done = progress_total, error = NULL \
         WHERE job_id = $1 AND lease_token = $2 AND status = 'running'",
    )
    .bind(&lease.job.job_id)
    .bind(&lease.token)
    .bind(at)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if n != 1 {
        return Ok(false);
    }
    let digest = blindsight_crypto::sha256_hex(result);
    sqlx::query(
        "INSERT INTO job_results (job_id, result, result_digest, created_at, receipt, noise_seed) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&lease.job.job_id)
    .bind(result.to_vec())
    .bind(&digest)
    .bind(at)
    .bind(receipt.as_deref())
    .bind(noise_seed.map(|s| s.to_vec()))
    .execute(&mut *tx)
    .await?;
    audit::append(
        &mut tx,
        db,
        Some(&lease.job.tenant_id),
        &Event::JobSucceeded {
            job_id: &lease.job.job_id,
            result_digest: &digest,
            receipt_digest: receipt_digest.as_deref(),
            attempt: lease.job.attempts,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// A tenant's job's signed receipt (the stored JSON). `None` when the job has no stored
/// result, or its result has no receipt.
pub async fn receipt(db: &Db, tenant_id: &str, job_id: &str) -> Result<Option<String>, StoreError> {
    let found: Option<Option<String>> = sqlx::query_scalar(
        "SELECT r.receipt FROM job_results r JOIN jobs j ON j.job_id = r.job_id \
         WHERE j.tenant_id = $1 AND r.job_id = $2",
    )
    .bind(tenant_id)
    .bind(job_id)
    .fetch_optional(db.pool())
    .await?;
    Ok(found.flatten())
}

/// Records a failed attempt, with its audit entry. A `retryable` failure with attempts left
/// puts the job back in the queue; otherwise it fails for good. `false` when the lease was
/// lost.
pub async fn fail(
    db: &AuditLog,
    lease: &Lease,
    error: &str,
    retryable: bool,
) -> Result<bool, StoreError> {
    let error: String = error.chars().take(500).collect();
    let mut tx = db.begin_write().await?;
    let status: Option<String> = sqlx::query_scalar(
        "UPDATE jobs SET \
            status = CASE WHEN $3 = 1 AND attempts < max_attempts THEN 'queued' ELSE 'failed' END, \
            finished_at = CASE WHEN $3 = 1 AND attempts < max_attempts THEN NULL ELSE $5 END, \
            lease_token = NULL, lease_expires = NULL, error = $4 \
         WHERE job_id = $1 AND lease_token = $2 AND status = 'running' RETURNING status",
    )
    .bind(&lease.job.job_id)
    .bind(&lease.token)
    .bind(i64::from(retryable))
    .bind(&error)
    .bind(now())
    .fetch_optional(&mut *tx)
    .await?;
    let Some(status) = status else {
        return Ok(false);
    };
    audit::append(
        &mut tx,
        db,
        Some(&lease.job.tenant_id),
        &Event::JobFailed {
            job_id: &lease.job.job_id,
            error: &error,
            attempt: lease.job.attempts,
            retry: status == "queued",
        },
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// A succeeded job's result.
pub async fn result(db: &Db, tenant_id: &str, job_id: &str) -> Result<Option<Vec<u8>>, StoreError> {
    sqlx::query_scalar(
        "SELECT r.result FROM job_results r JOIN jobs j ON j.job_id = r.job_id \
         WHERE j.tenant_id = $1 AND r.job_id = $2",
    )
    .bind(tenant_id)
    .bind(job_id)
    .fetch_optional(db.pool())
    .await
    .map_err(StoreError::from)
}

/// Gives a job back to the queue without counting the attempt (a worker shutting down).
/// `false` when the lease was lost already.
pub async fn release(db: &Db, lease: &Lease) -> Result<bool, StoreError> {
    let mut tx = db.begin_write().await?;
    let n = sqlx::query(
        "UPDATE jobs SET status = 'queued', attempts = attempts - 1, lease_token = NULL, lease_expires = NULL \
         WHERE job_id = $1 AND lease_token = $2 AND status = 'running'",
    )
    .bind(&lease.job.job_id)
    .bind(&lease.token)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(n == 1)
}

/// A tenant's jobs, newest first (at most `limit`).
pub async fn list(db: &Db, tenant_id: &str, limit: i64) -> Result<Vec<Job>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {JOB_COLUMNS} FROM jobs WHERE tenant_id = $1 ORDER BY created_at DESC, job_id DESC LIMIT $2"
    ))
    .bind(tenant_id)
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(job_from_row).collect()
}
