//! The job queue: jobs are database rows, and their work is task rows that workers lease. A
//! lease is a random token with an expiry; a worker renews it while it works (heartbeat) and
//! writes only while it still holds it (fencing), so a worker that stalls or dies loses its
//! task to another and can never overwrite what that one writes. Each lease counts an attempt;
//! a task that keeps failing stops after `max_attempts`, and its job fails with it.
//!
//! A job is one `whole` task, or (cut into tasks) one `part` task per run of consecutive
//! records plus a `merge` task that becomes claimable when the last part succeeds. Workers
//! take tasks fairly across tenants: the next task goes to the tenant with the fewest tasks
//! running, oldest first among equals, so one tenant's large job cannot starve another's
//! small one.
//!
//! PostgreSQL: every transaction that changes a job's tasks first locks the job's row, so
//! transitions of one job are serialized and locks are always taken job → task → audit head
//! (no deadlock between claims, heartbeats, completions and failures); any number of server
//! and worker processes share one queue. SQLite (single node) takes the write lock up front
//! (`BEGIN IMMEDIATE`).
//!
//! Size: the queue's state machine stays in one file, every transition's SQL beside the
//! others, so that their lock order and fencing can be read and checked together.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use blindsight_crypto::compute::{is_tasked, task_ranges};
use blindsight_proto::{Job, JobStatus, JobTasks};
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

/// What a task computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskKind {
    /// The whole job, in one piece.
    Whole,
    /// A run of the job's records, whose partial result the merge combines.
    Part,
    /// Combines the parts' partial results into the job's result.
    Merge,
}

impl TaskKind {
    /// The name in the database and in logs.
    pub fn name(self) -> &'static str {
        match self {
            TaskKind::Whole => "whole",
            TaskKind::Part => "part",
            TaskKind::Merge => "merge",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        [TaskKind::Whole, TaskKind::Part, TaskKind::Merge]
            .into_iter()
            .find(|k| k.name() == name)
    }
}

/// A leased task: which part of its job it is.
#[derive(Clone, Debug)]
pub struct Task {
    /// Its index in the job (parts from 0; the merge after them).
    pub index: i64,
    /// What it computes.
    pub kind: TaskKind,
    /// A part's first record (position in the job's selection).
    pub first: u64,
    /// A part's records.
    pub records: u64,
    /// Leases this task has taken, this one included.
    pub attempts: i64,
    /// The job's part tasks (0 for a whole job).
    pub parts: i64,
}

impl Task {
    /// What a failure of this task says about its job: the task named for a job cut into
    /// tasks.
    pub fn cause(&self, message: &str) -> String {
        match self.kind {
            TaskKind::Whole => message.to_owned(),
            TaskKind::Part => format!(
                "task {} of {} (records {} to {}): {message}",
                self.index + 1,
                self.parts,
                self.first + 1,
                self.first + self.records
            ),
            TaskKind::Merge => format!("merging the job's {} tasks: {message}", self.parts),
        }
    }
}

/// A worker's hold on one task of a job.
#[derive(Clone, Debug)]
pub struct Lease {
    /// The job, as it stood when the task was leased.
    pub job: Job,
    /// The task.
    pub task: Task,
    /// The fencing token: every write about the task must present it.
    pub token: String,
    /// Whether the task was taken over from a worker whose lease expired.
    pub took_over: bool,
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
    /// Leases each of its tasks may take.
    pub max_attempts: u32,
}

const JOB_SELECT: &str = "SELECT job_id, tenant_id, key_id, kind, spec, status, attempts, max_attempts, progress_done, progress_total, error, created_at, started_at, finished_at, \
    (SELECT COUNT(*) FROM job_tasks t WHERE t.job_id = jobs.job_id AND t.kind = 'part') AS tasks_total, \
    (SELECT COUNT(*) FROM job_tasks t WHERE t.job_id = jobs.job_id AND t.kind = 'part' AND t.status = 'succeeded') AS tasks_done, \
    (SELECT COUNT(*) FROM job_tasks t WHERE t.job_id = jobs.job_id AND t.kind = 'part' AND t.status = 'running') AS tasks_running \
    FROM jobs";

fn job_from_row(r: &sqlx::any::AnyRow) -> Result<Job, StoreError> {
    let status: String = r.try_get("status")?;
    let tasks_total: i64 = r.try_get("tasks_total")?;
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
        tasks: (tasks_total > 0)
            .then(|| -> Result<JobTasks, StoreError> {
                Ok(JobTasks {
                    total: tasks_total,
                    succeeded: r.try_get("tasks_done")?,
                    running: r.try_get("tasks_running")?,
                })
            })
            .transpose()?,
    })
}

/// Locks the job's row for the rest of the transaction (PostgreSQL; SQLite's write
/// transaction holds the whole database already): every transition of a job's tasks takes it
/// first, so they are serialized per job and locks are always taken in one order.
async fn lock_job(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    backend: Backend,
    job_id: &str,
) -> Result<(), StoreError> {
    if backend == Backend::Postgres {
        sqlx::query("SELECT job_id FROM jobs WHERE job_id = $1 FOR UPDATE")
            .bind(job_id)
            .fetch_optional(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Queues a job and its tasks, with its audit entry: the digest of the spec and, when the
/// spec is a [`JobSpec`](blindsight_proto::JobSpec), the function, record count and model
/// digest read from it. A spec with `task_records` and more records than that is cut into
/// part tasks and a merge; anything else is one whole task. A job whose query asks for
/// privacy spends its ρ of the tenant's budget in the same transaction; `false` (nothing
/// written) when the budget cannot cover it.
pub async fn create(db: &AuditLog, job: &NewJob<'_>) -> Result<bool, StoreError> {
    let spec = serde_json::from_str::<blindsight_proto::JobSpec>(job.spec).ok();
    let (function, model_digest) = match spec.as_ref().map(|s| s.function_and_model_digest()) {
        None => (None, None),
        Some((function, model_digest)) => (Some(function), model_digest),
    };
    let spec_digest = blindsight_crypto::sha256_hex(job.spec.as_bytes());
    let privacy = spec.as_ref().and_then(|s| s.privacy_rho_micro());
    let records = spec.as_ref().map_or(0, |s| s.record_count());
    let task_records = spec.as_ref().and_then(|s| s.task_records);
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
    let at = now();
    sqlx::query(
        "INSERT INTO jobs (job_id, tenant_id, key_id, kind, spec, status, attempts, max_attempts, progress_done, progress_total, created_at) \
         VALUES ($1, $2, $3, $4, $5, 'queued', 0, $6, 0, $7, $8)",
    )
    .bind(job.job_id)
    .bind(job.tenant_id)
    .bind(job.key_id)
    .bind(job.kind)
    .bind(job.spec)
    .bind(i64::from(job.max_attempts.max(1)))
    .bind(2 * records as i64)
    .bind(at)
    .execute(&mut *tx)
    .await?;
    let mut tasks: Vec<(TaskKind, u64, u64, &str)> = Vec::new();
    if is_tasked(records, task_records) {
        for range in task_ranges(records, task_records.unwrap_or(records)) {
            tasks.push((
                TaskKind::Part,
                range.start,
                range.end - range.start,
                "queued",
            ));
        }
        tasks.push((TaskKind::Merge, 0, records, "waiting"));
    } else {
        tasks.push((TaskKind::Whole, 0, records, "queued"));
    }
    // A few hundred rows per statement.
    for (c, chunk) in tasks.chunks(200).enumerate() {
        let values: Vec<String> = (0..chunk.len())
            .map(|i| {
                let p = 5 * i;
                format!(
                    "($1, ${}, $2, ${}, ${}, ${}, ${}, 0, $3, 0, $4)",
                    p + 5,
                    p + 6,
                    p + 7,
                    p + 8,
                    p + 9
                )
            })
            .collect();
        let sql = format!(
            "INSERT INTO job_tasks (job_id, task, tenant_id, kind, first_record, records, status, attempts, max_attempts, progress_done, created_at) VALUES {}",
            values.join(", ")
        );
        let mut q = sqlx::query(&sql)
            .bind(job.job_id)
            .bind(job.tenant_id)
            .bind(i64::from(job.max_attempts.max(1)))
            .bind(at);
        for (i, (kind, first, count, status)) in chunk.iter().enumerate() {
            q = q
                .bind((200 * c + i) as i64)
                .bind(kind.name())
                .bind(*first as i64)
                .bind(*count as i64)
                .bind(*status);
        }
        q.execute(&mut *tx).await?;
    }
    let entry = audit::append(
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
    audit::commit(tx, db, [&entry]).await?;
    Ok(true)
}

/// Fails a job for good with `cause` (a task failed, or ran out of attempts): cancels its
/// other tasks, drops their partial results, and audits the failure, once: `None` when the
/// job had finished already, else the audit entry to [`audit::commit`] with.
async fn fail_job(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    db: &AuditLog,
    (tenant_id, job_id): (&str, &str),
    cause: &str,
    attempt: i64,
) -> Result<Option<crate::audit::Entry>, StoreError> {
    let n = sqlx::query(
        "UPDATE jobs SET status = 'failed', error = $2, finished_at = $3, lease_token = NULL, lease_expires = NULL \
         WHERE job_id = $1 AND status IN ('queued', 'running')",
    )
    .bind(job_id)
    .bind(cause)
    .bind(now())
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if n != 1 {
        return Ok(None);
    }
    sqlx::query(
        "UPDATE job_tasks SET status = CASE WHEN status IN ('waiting', 'queued', 'running') THEN 'cancelled' ELSE status END, \
                lease_token = NULL, lease_expires = NULL, partial = NULL, input_leaves = NULL \
         WHERE job_id = $1",
    )
    .bind(job_id)
    .execute(&mut **tx)
    .await?;
    let entry = audit::append(
        tx,
        db,
        Some(tenant_id),
        &Event::JobFailed {
            job_id,
            error: cause,
            attempt,
            retry: false,
        },
    )
    .await?;
    Ok(Some(entry))
}

/// A job's status and attempts after one of its tasks went back to the queue: running while
/// any task runs or has succeeded, queued otherwise; attempts, the most any task has taken.
async fn settle_job(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    job_id: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE jobs SET \
            status = CASE WHEN EXISTS (SELECT 1 FROM job_tasks t WHERE t.job_id = $1 AND t.status IN ('running', 'succeeded')) \
                          THEN 'running' ELSE 'queued' END, \
            attempts = (SELECT COALESCE(MAX(t.attempts), 0) FROM job_tasks t WHERE t.job_id = $1) \
         WHERE job_id = $1 AND status IN ('queued', 'running')",
    )
    .bind(job_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Fails every task whose last lease expired with no attempts left, and its job with it
/// (audited once per job). Each in a transaction of its own.
async fn fail_exhausted(db: &AuditLog, at_ms: i64) -> Result<(), StoreError> {
    let expired: Vec<(String, i64)> = sqlx::query_as(
        "SELECT job_id, task FROM job_tasks \
         WHERE status = 'running' AND lease_expires < $1 AND attempts >= max_attempts \
         ORDER BY job_id, task",
    )
    .bind(at_ms)
    .fetch_all(db.pool())
    .await?;
    for (job_id, index) in expired {
        let mut tx = db.begin_write().await?;
        lock_job(&mut tx, db.backend(), &job_id).await?;
        let row = sqlx::query(
            "UPDATE job_tasks SET status = 'failed', lease_token = NULL, lease_expires = NULL, finished_at = $4, \
                    error = $5 || ' (gave up after ' || CAST(attempts AS TEXT) || ' attempts' \
                            || COALESCE('; the attempt before: ' || error, '') || ')' \
             WHERE job_id = $1 AND task = $2 AND status = 'running' AND lease_expires < $3 AND attempts >= max_attempts \
             RETURNING tenant_id, kind, first_record, records, attempts, error",
        )
        .bind(&job_id)
        .bind(index)
        .bind(at_ms)
        .bind(at_ms / 1000)
        .bind(LEASE_EXPIRED)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            continue;
        };
        let tenant: String = row.try_get("tenant_id")?;
        let task = task_from_row(&row, index, parts(&mut tx, &job_id).await?)?;
        let error: Option<String> = row.try_get("error")?;
        let cause = task.cause(&error.unwrap_or_default());
        let entry = fail_job(&mut tx, db, (&tenant, &job_id), &cause, task.attempts).await?;
        audit::commit(tx, db, entry.as_ref()).await?;
    }
    Ok(())
}

/// How many part tasks a job has.
async fn parts(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    job_id: &str,
) -> Result<i64, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM job_tasks WHERE job_id = $1 AND kind = 'part'")
            .bind(job_id)
            .fetch_one(&mut **tx)
            .await?,
    )
}

fn task_from_row(r: &sqlx::any::AnyRow, index: i64, parts: i64) -> Result<Task, StoreError> {
    let kind: String = r.try_get("kind")?;
    Ok(Task {
        index,
        kind: TaskKind::from_name(&kind).ok_or_else(|| sqlx::Error::ColumnDecode {
            index: "kind".into(),
            source: format!("unknown task kind {kind:?}").into(),
        })?,
        first: r.try_get::<i64, _>("first_record")?.max(0) as u64,
        records: r.try_get::<i64, _>("records")?.max(0) as u64,
        attempts: r.try_get("attempts")?,
        parts,
    })
}

/// Why an attempt whose lease ran out failed, as its task's error and audit entry say.
const LEASE_EXPIRED: &str = "the worker's lease expired (it stopped, stalled or lost the database)";

/// Leases the next claimable task (queued, or running under an expired lease with attempts
/// left), fairly: from the tenant with the fewest tasks running, the oldest job's first.
/// `None` when there is nothing to do. Tasks whose last lease expired with no attempts left
/// fail their jobs first.
pub async fn claim(db: &AuditLog, lease_for: Duration) -> Result<Option<Lease>, StoreError> {
    let token = hex::encode(
        blindsight_crypto::random_bytes::<16>()
            .map_err(|e| sqlx::Error::Protocol(format!("no randomness for a lease token: {e}")))?,
    );
    fail_exhausted(db, now_ms()).await?;
    // Another worker may take the candidate between the read and the lease: try again, a
    // place further down the order each time, so that workers racing for one job's tasks
    // spread over them instead of all queueing for the first.
    for skip in 0..8i64 {
        let at = now_ms();
        let expires = at + i64::try_from(lease_for.as_millis()).unwrap_or(i64::MAX / 2);
        let candidate: Option<(String, i64)> = sqlx::query_as(
            "SELECT t.job_id, t.task FROM job_tasks t \
             WHERE (t.status = 'queued' OR (t.status = 'running' AND t.lease_expires < $1)) AND t.attempts < t.max_attempts \
             ORDER BY (SELECT COUNT(*) FROM job_tasks r \
                       WHERE r.tenant_id = t.tenant_id AND r.status = 'running' AND r.lease_expires >= $1), \
                      t.created_at, t.job_id, t.task \
             LIMIT 1 OFFSET $2",
        )
        .bind(at)
        .bind(skip)
        .fetch_optional(db.pool())
        .await?;
        let Some((job_id, index)) = candidate else {
            break;
        };
        let mut tx = db.begin_write().await?;
        lock_job(&mut tx, db.backend(), &job_id).await?;
        // Read under the job's lock: whether this lease takes over from a worker whose lease
        // expired (audited below).
        let was: Option<String> =
            sqlx::query_scalar("SELECT status FROM job_tasks WHERE job_id = $1 AND task = $2")
                .bind(&job_id)
                .bind(index)
                .fetch_optional(&mut *tx)
                .await?;
        let took_over = was.as_deref() == Some("running");
        // A new attempt starts its progress from zero; a lease that expired is the reason the
        // attempt before failed.
        let row = sqlx::query(
            "UPDATE job_tasks SET status = 'running', attempts = attempts + 1, lease_token = $3, lease_expires = $4, \
                    started_at = COALESCE(started_at, $5), progress_done = 0, \
                    error = CASE WHEN status = 'running' THEN $7 ELSE error END \
             WHERE job_id = $1 AND task = $2 AND attempts < max_attempts \
               AND (status = 'queued' OR (status = 'running' AND lease_expires < $6)) \
             RETURNING kind, first_record, records, attempts",
        )
        .bind(&job_id)
        .bind(index)
        .bind(&token)
        .bind(expires)
        .bind(at / 1000)
        .bind(at)
        .bind(LEASE_EXPIRED)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            tx.rollback().await?;
            continue;
        };
        let task = task_from_row(&row, index, parts(&mut tx, &job_id).await?)?;
        let started = sqlx::query(
            "UPDATE jobs SET status = 'running', started_at = COALESCE(started_at, $2), \
                    attempts = (SELECT MAX(t.attempts) FROM job_tasks t WHERE t.job_id = $1) \
             WHERE job_id = $1 AND status IN ('queued', 'running')",
        )
        .bind(&job_id)
        .bind(at / 1000)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if started != 1 {
            // The job finished while its task was still claimable: nothing to do.
            sqlx::query(
                "UPDATE job_tasks SET status = 'cancelled', lease_token = NULL, lease_expires = NULL \
                 WHERE job_id = $1 AND task = $2",
            )
            .bind(&job_id)
            .bind(index)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            continue;
        }
        match task.kind {
            TaskKind::Whole => {
                sqlx::query("UPDATE jobs SET progress_done = 0 WHERE job_id = $1")
                    .bind(&job_id)
                    .execute(&mut *tx)
                    .await?;
            }
            TaskKind::Part => job_progress(&mut tx, &job_id).await?,
            TaskKind::Merge => {}
        }
        let job = sqlx::query(&format!("{JOB_SELECT} WHERE job_id = $1"))
            .bind(&job_id)
            .fetch_one(&mut *tx)
            .await?;
        let job = job_from_row(&job)?;
        let mut entry = None;
        if took_over {
            let cause = task.cause(LEASE_EXPIRED);
            entry = Some(
                audit::append(
                    &mut tx,
                    db,
                    Some(&job.tenant_id),
                    &Event::JobFailed {
                        job_id: &job_id,
                        error: &cause,
                        attempt: task.attempts - 1,
                        retry: true,
                    },
                )
                .await?,
            );
        }
        audit::commit(tx, db, entry.as_ref()).await?;
        return Ok(Some(Lease {
            job,
            task,
            token,
            took_over,
        }));
    }
    Ok(None)
}

/// Renews a lease and records the task's progress (`done` of `total` units for a whole job;
/// a part's progress adds into its job's); `false` when the lease was lost (expired and taken
/// by another worker, or the job finished or failed): the worker must stop.
pub async fn heartbeat(
    db: &AuditLog,
    lease: &Lease,
    lease_for: Duration,
    done: i64,
    total: i64,
) -> Result<bool, StoreError> {
    let expires = now_ms() + i64::try_from(lease_for.as_millis()).unwrap_or(i64::MAX / 2);
    let job_id = &lease.job.job_id;
    let mut tx = db.begin_write().await?;
    lock_job(&mut tx, db.backend(), job_id).await?;
    let n = sqlx::query(
        "UPDATE job_tasks SET lease_expires = $4, progress_done = $5 \
         WHERE job_id = $1 AND task = $2 AND lease_token = $3 AND status = 'running'",
    )
    .bind(job_id)
    .bind(lease.task.index)
    .bind(&lease.token)
    .bind(expires)
    .bind(done)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if n == 1 {
        match lease.task.kind {
            TaskKind::Whole => {
                sqlx::query(
                    "UPDATE jobs SET progress_done = $2, progress_total = $3 WHERE job_id = $1",
                )
                .bind(job_id)
                .bind(done)
                .bind(total)
                .execute(&mut *tx)
                .await?;
            }
            TaskKind::Part => job_progress(&mut tx, job_id).await?,
            TaskKind::Merge => {}
        }
    }
    tx.commit().await?;
    Ok(n == 1)
}

/// A job's progress: the sum of its parts'.
async fn job_progress(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    job_id: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE jobs SET progress_done = (SELECT COALESCE(SUM(t.progress_done), 0) FROM job_tasks t \
                                          WHERE t.job_id = $1 AND t.kind = 'part') \
         WHERE job_id = $1",
    )
    .bind(job_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Stores a part task's partial result and marks it succeeded, only while `lease` still
/// holds it; the last part to succeed queues the job's merge. `false` (nothing written) when
/// the lease was lost.
pub async fn complete_part(
    db: &AuditLog,
    lease: &Lease,
    partial: &[u8],
    input_leaves: &[[u8; 32]],
) -> Result<bool, StoreError> {
    let job_id = &lease.job.job_id;
    let mut tx = db.begin_write().await?;
    lock_job(&mut tx, db.backend(), job_id).await?;
    let n = sqlx::query(
        "UPDATE job_tasks SET status = 'succeeded', partial = $4, partial_digest = $5, finished_at = $6, \
                input_leaves = $7, progress_done = 2 * records, lease_token = NULL, lease_expires = NULL, error = NULL \
         WHERE job_id = $1 AND task = $2 AND lease_token = $3 AND status = 'running' AND kind = 'part'",
    )
    .bind(job_id)
    .bind(lease.task.index)
    .bind(&lease.token)
    .bind(partial.to_vec())
    .bind(blindsight_crypto::sha256_hex(partial))
    .bind(now())
    .bind(input_leaves.concat())
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if n != 1 {
        return Ok(false);
    }
    let left: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM job_tasks WHERE job_id = $1 AND kind = 'part' AND status <> 'succeeded'",
    )
    .bind(job_id)
    .fetch_one(&mut *tx)
    .await?;
    if left == 0 {
        sqlx::query(
            "UPDATE job_tasks SET status = 'queued' WHERE job_id = $1 AND kind = 'merge' AND status = 'waiting'",
        )
        .bind(job_id)
        .execute(&mut *tx)
        .await?;
    }
    job_progress(&mut tx, job_id).await?;
    tx.commit().await?;
    Ok(true)
}

/// What the merge of a job reads: every part's partial result, in task order, and the input
/// leaves of all of them (in the job's order).
#[derive(Debug)]
pub struct Partials {
    /// The parts' partial results.
    pub partials: Vec<Vec<u8>>,
    /// One leaf per record, as the parts read them (`receipt::input_leaf`).
    pub input_leaves: Vec<[u8; 32]>,
}

/// The partial results of a job's parts; `None` unless every part has succeeded and kept
/// its partial result and input leaves.
pub async fn partials(db: &Db, job_id: &str) -> Result<Option<Partials>, StoreError> {
    let rows = sqlx::query(
        "SELECT status, records, partial, input_leaves FROM job_tasks WHERE job_id = $1 AND kind = 'part' ORDER BY task",
    )
    .bind(job_id)
    .fetch_all(db.pool())
    .await?;
    let mut out = Partials {
        partials: Vec::with_capacity(rows.len()),
        input_leaves: Vec::new(),
    };
    for r in &rows {
        let status: String = r.try_get("status")?;
        let records: i64 = r.try_get("records")?;
        let partial: Option<Vec<u8>> = r.try_get("partial")?;
        let leaves: Option<Vec<u8>> = r.try_get("input_leaves")?;
        match (status.as_str(), partial, leaves) {
            ("succeeded", Some(p), Some(l)) if l.len() as i64 == 32 * records => {
                out.partials.push(p);
                out.input_leaves.extend(l.chunks_exact(32).map(|c| {
                    let mut leaf = [0u8; 32];
                    leaf.copy_from_slice(c);
                    leaf
                }));
            }
            _ => return Ok(None),
        }
    }
    Ok((!out.partials.is_empty()).then_some(out))
}

/// Stores the job's result and its signed receipt and marks the job succeeded, with its
/// audit entry (naming the result's and the receipt's digests), only while `lease` (the
/// job's whole task or its merge) still holds it; drops the parts' partial results. `false`
/// (and nothing written) when the lease was lost. Workers always pass a receipt; a result
/// stored without one is reported by `blindsight audit verify`.
pub async fn complete(
    db: &AuditLog,
    lease: &Lease,
    result: &[u8],
    receipt: Option<&SignedReceipt>,
    noise_seed: Option<&[u8; 32]>,
) -> Result<bool, StoreError> {
    let at = now();
    let job_id = &lease.job.job_id;
    let receipt = receipt
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| sqlx::Error::Protocol(format!("couldn't encode the receipt: {e}")))?;
    let receipt_digest = receipt.as_deref().map(SignedReceipt::digest_of);
    let mut tx = db.begin_write().await?;
    lock_job(&mut tx, db.backend(), job_id).await?;
    let n = sqlx::query(
        "UPDATE job_tasks SET status = 'succeeded', lease_token = NULL, lease_expires = NULL, finished_at = $4, error = NULL \
         WHERE job_id = $1 AND task = $2 AND lease_token = $3 AND status = 'running' AND kind IN ('whole', 'merge')",
    )
    .bind(job_id)
    .bind(lease.task.index)
    .bind(&lease.token)
    .bind(at)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if n != 1 {
        return Ok(false);
    }
    let n = sqlx::query(
        "UPDATE jobs SET status = 'succeeded', lease_token = NULL, lease_expires = NULL, finished_at = $2, \
                progress_done = progress_total, error = NULL \
         WHERE job_id = $1 AND status = 'running'",
    )
    .bind(job_id)
    .bind(at)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if n != 1 {
        tx.rollback().await?;
        return Ok(false);
    }
    sqlx::query("UPDATE job_tasks SET partial = NULL, input_leaves = NULL WHERE job_id = $1")
        .bind(job_id)
        .execute(&mut *tx)
        .await?;
    let digest = blindsight_crypto::sha256_hex(result);
    sqlx::query(
        "INSERT INTO job_results (job_id, result, result_digest, created_at, receipt, noise_seed) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(job_id)
    .bind(result.to_vec())
    .bind(&digest)
    .bind(at)
    .bind(receipt.as_deref())
    .bind(noise_seed.map(|s| s.to_vec()))
    .execute(&mut *tx)
    .await?;
    let entry = audit::append(
        &mut tx,
        db,
        Some(&lease.job.tenant_id),
        &Event::JobSucceeded {
            job_id,
            result_digest: &digest,
            receipt_digest: receipt_digest.as_deref(),
            attempt: lease.task.attempts,
        },
    )
    .await?;
    audit::commit(tx, db, [&entry]).await?;
    Ok(true)
}

/// Records a failed attempt at a task, with its audit entry. A `retryable` failure with
/// attempts left puts the task back in the queue; otherwise it fails for good, and its job
/// with it (audited once). `false` when the lease was lost.
pub async fn fail(
    db: &AuditLog,
    lease: &Lease,
    error: &str,
    retryable: bool,
) -> Result<bool, StoreError> {
    let error: String = error.chars().take(500).collect();
    let job_id = &lease.job.job_id;
    let mut tx = db.begin_write().await?;
    lock_job(&mut tx, db.backend(), job_id).await?;
    let status: Option<String> = sqlx::query_scalar(
        "UPDATE job_tasks SET \
            status = CASE WHEN $4 = 1 AND attempts < max_attempts THEN 'queued' ELSE 'failed' END, \
            finished_at = CASE WHEN $4 = 1 AND attempts < max_attempts THEN NULL ELSE $6 END, \
            lease_token = NULL, lease_expires = NULL, error = $5 \
         WHERE job_id = $1 AND task = $2 AND lease_token = $3 AND status = 'running' RETURNING status",
    )
    .bind(job_id)
    .bind(lease.task.index)
    .bind(&lease.token)
    .bind(i64::from(retryable))
    .bind(&error)
    .bind(now())
    .fetch_optional(&mut *tx)
    .await?;
    let Some(status) = status else {
        return Ok(false);
    };
    let cause = lease.task.cause(&error);
    let entry = if status == "queued" {
        sqlx::query("UPDATE jobs SET error = $2 WHERE job_id = $1")
            .bind(job_id)
            .bind(&cause)
            .execute(&mut *tx)
            .await?;
        settle_job(&mut tx, job_id).await?;
        Some(
            audit::append(
                &mut tx,
                db,
                Some(&lease.job.tenant_id),
                &Event::JobFailed {
                    job_id,
                    error: &cause,
                    attempt: lease.task.attempts,
                    retry: true,
                },
            )
            .await?,
        )
    } else {
        fail_job(
            &mut tx,
            db,
            (&lease.job.tenant_id, job_id),
            &cause,
            lease.task.attempts,
        )
        .await?
    };
    audit::commit(tx, db, entry.as_ref()).await?;
    Ok(true)
}

/// Gives a task back to the queue without counting the attempt (a worker shutting down).
/// `false` when the lease was lost already.
pub async fn release(db: &AuditLog, lease: &Lease) -> Result<bool, StoreError> {
    let job_id = &lease.job.job_id;
    let mut tx = db.begin_write().await?;
    lock_job(&mut tx, db.backend(), job_id).await?;
    let n = sqlx::query(
        "UPDATE job_tasks SET status = 'queued', attempts = attempts - 1, lease_token = NULL, lease_expires = NULL \
         WHERE job_id = $1 AND task = $2 AND lease_token = $3 AND status = 'running'",
    )
    .bind(job_id)
    .bind(lease.task.index)
    .bind(&lease.token)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if n == 1 {
        settle_job(&mut tx, job_id).await?;
    }
    tx.commit().await?;
    Ok(n == 1)
}

/// Tasks waiting and running per tenant (running: under a live lease): the queue's depth, as
/// `/metrics` shows it.
pub async fn queue_depth(db: &Db) -> Result<Vec<(String, i64, i64)>, StoreError> {
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT tenant_id, \
                SUM(CASE WHEN status = 'queued' OR (status = 'running' AND lease_expires < $1) THEN 1 ELSE 0 END), \
                SUM(CASE WHEN status = 'running' AND lease_expires >= $1 THEN 1 ELSE 0 END) \
         FROM job_tasks WHERE status IN ('queued', 'running') GROUP BY tenant_id ORDER BY tenant_id",
    )
    .bind(now_ms())
    .fetch_all(db.pool())
    .await?;
    Ok(rows)
}

/// A tenant's job.
pub async fn get(db: &Db, tenant_id: &str, job_id: &str) -> Result<Option<Job>, StoreError> {
    let row = sqlx::query(&format!(
        "{JOB_SELECT} WHERE tenant_id = $1 AND job_id = $2"
    ))
    .bind(tenant_id)
    .bind(job_id)
    .fetch_optional(db.pool())
    .await?;
    row.as_ref().map(job_from_row).transpose()
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

/// A tenant's jobs, newest first (at most `limit`).
pub async fn list(db: &Db, tenant_id: &str, limit: i64) -> Result<Vec<Job>, StoreError> {
    let rows = sqlx::query(&format!(
        "{JOB_SELECT} WHERE tenant_id = $1 ORDER BY created_at DESC, job_id DESC LIMIT $2"
    ))
    .bind(tenant_id)
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(job_from_row).collect()
}
