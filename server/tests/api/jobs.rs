//! The job queue on every backend: exclusive leases under concurrent workers, expiry and
//! re-lease, fencing (a lost lease cannot write), bounded attempts, results written once.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use blindsight_proto::JobStatus;
use blindsight_server::store::jobs::{self, NewJob};
use blindsight_server::store::{self, KeysetRow};

use crate::common::{Ctx, KEY_ID, TENANT_A, TENANT_B, backends, config};

const LONG: Duration = Duration::from_secs(60);

/// A tenant with a key-set row (the queue only needs the row to exist).
pub(crate) async fn tenant_with_keyset(ctx: &Ctx, tenant: &str) -> blindsight_proto::TenantCreated {
    let created = ctx.create_tenant(tenant).await;
    let row = KeysetRow {
        tenant_id: tenant,
        key_id: KEY_ID,
        parameter_set: blindsight_crypto::PARAMETER_SET_ID,
        manifest_fingerprint: "00",
        bundle_digest: "00",
        manifest: b"{}",
        app_bundle: b"",
        server_key: b"",
    };
    store::insert_keyset(ctx.state.audit_log(), &row)
        .await
        .unwrap();
    created
}

async fn new_job(ctx: &Ctx, id: &str, max_attempts: u32) {
    jobs::create(
        ctx.state.audit_log(),
        &NewJob {
            job_id: id,
            tenant_id: TENANT_A,
            key_id: KEY_ID,
            kind: "risk_score",
            spec: "{}",
            max_attempts,
        },
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_workers_lease_each_job_exactly_once() {
    for ctx in backends(config).await {
        tenant_with_keyset(&ctx, TENANT_A).await;
        for i in 0..12 {
            new_job(&ctx, &format!("job-{i:02}"), 3).await;
        }
        let db = Arc::new(ctx.state.audit_log().clone());
        let workers: Vec<_> = (0..6)
            .map(|_| {
                let db = Arc::clone(&db);
                tokio::spawn(async move {
                    let mut mine = Vec::new();
                    while let Some(lease) = jobs::claim(&db, LONG).await.unwrap() {
                        assert!(
                            jobs::complete(&db, &lease, lease.job.job_id.as_bytes(), None, None)
                                .await
                                .unwrap()
                        );
                        mine.push(lease.job.job_id);
                    }
                    mine
                })
            })
            .collect();
        let mut all = Vec::new();
        for w in workers {
            all.extend(w.await.unwrap());
        }
        let unique: BTreeSet<_> = all.iter().cloned().collect();
        assert_eq!(
            all.len(),
            12,
            "{}: a job was leased twice or lost",
            ctx.name
        );
        assert_eq!(unique.len(), 12);
        for id in &unique {
            let job = jobs::get(&db, TENANT_A, id).await.unwrap().unwrap();
            assert_eq!((job.status, job.attempts), (JobStatus::Succeeded, 1));
            let result = jobs::result(&db, TENANT_A, id).await.unwrap().unwrap();
            assert_eq!(result, id.as_bytes());
        }
        // Six workers completing at once left one unbroken audit chain, an entry per job
        // created and per result written.
        let entries = store::audit::entries(&db, Some(TENANT_A), 0, 1000)
            .await
            .unwrap();
        let key = ctx.state.audit_key();
        let head = store::audit::current_head(&db, key, Some(TENANT_A))
            .await
            .unwrap();
        blindsight_server::audit::verify_chain(Some(TENANT_A), &entries, &head, key.public_key())
            .unwrap_or_else(|e| panic!("{}: {e}", ctx.name));
        let count = |kind: &str| entries.iter().filter(|e| e.kind == kind).count();
        assert_eq!((count("job.created"), count("job.succeeded")), (12, 12));
        ctx.finish().await;
    }
}

#[tokio::test]
async fn an_expired_lease_is_taken_over_and_fenced_out() {
    for ctx in backends(config).await {
        tenant_with_keyset(&ctx, TENANT_A).await;
        tenant_with_keyset(&ctx, TENANT_B).await;
        new_job(&ctx, "job-1", 3).await;
        let db = ctx.state.audit_log();
        let stale = jobs::claim(db, Duration::from_millis(50))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stale.job.attempts, 1);
        // While the lease holds, nobody else gets the job.
        assert!(jobs::claim(db, LONG).await.unwrap().is_none());
        tokio::time::sleep(Duration::from_millis(1700)).await;
        // The first worker stalled: its lease expired and another worker takes the job.
        let fresh = jobs::claim(db, LONG).await.unwrap().unwrap();
        assert_eq!(
            (fresh.job.job_id.as_str(), fresh.job.attempts),
            ("job-1", 2)
        );
        assert_ne!(fresh.token, stale.token);
        // The stale worker can neither renew nor write.
        assert!(!jobs::heartbeat(db, &stale, LONG, 1, 2).await.unwrap());
        assert!(
            !jobs::complete(db, &stale, b"stale", None, None)
                .await
                .unwrap()
        );
        assert!(!jobs::fail(db, &stale, "stale", true).await.unwrap());
        assert!(jobs::heartbeat(db, &fresh, LONG, 1, 2).await.unwrap());
        let job = jobs::get(db, TENANT_A, "job-1").await.unwrap().unwrap();
        assert_eq!((job.progress_done, job.progress_total), (1, 2));
        assert!(
            jobs::complete(db, &fresh, b"fresh", None, None)
                .await
                .unwrap()
        );
        // Exactly once: a second completion is refused, the result is the fresh one.
        assert!(
            !jobs::complete(db, &fresh, b"again", None, None)
                .await
                .unwrap()
        );
        assert_eq!(
            jobs::result(db, TENANT_A, "job-1").await.unwrap().unwrap(),
            b"fresh"
        );
        // Another tenant sees neither the job nor its result.
        assert!(jobs::get(db, TENANT_B, "job-1").await.unwrap().is_none());
        assert!(jobs::result(db, TENANT_B, "job-1").await.unwrap().is_none());
        ctx.finish().await;
    }
}

#[tokio::test]
async fn failing_jobs_retry_then_stop_after_their_attempts() {
    for ctx in backends(config).await {
        tenant_with_keyset(&ctx, TENANT_A).await;
        let db = ctx.state.audit_log();
        // A retryable failure re-queues; the last attempt's failure is final.
        new_job(&ctx, "job-r", 2).await;
        let l1 = jobs::claim(db, LONG).await.unwrap().unwrap();
        assert!(
            jobs::fail(db, &l1, "worker out of memory", true)
                .await
                .unwrap()
        );
        let job = jobs::get(db, TENANT_A, "job-r").await.unwrap().unwrap();
        assert_eq!(job.status, JobStatus::Queued);
        let l2 = jobs::claim(db, LONG).await.unwrap().unwrap();
        assert!(
            jobs::fail(db, &l2, "worker out of memory", true)
                .await
                .unwrap()
        );
        let job = jobs::get(db, TENANT_A, "job-r").await.unwrap().unwrap();
        assert_eq!((job.status, job.attempts), (JobStatus::Failed, 2));
        assert!(job.finished_at.is_some());
        // A permanent failure is final at once.
        new_job(&ctx, "job-p", 5).await;
        let l = jobs::claim(db, LONG).await.unwrap().unwrap();
        assert!(
            jobs::fail(db, &l, "cohort below the minimum size", false)
                .await
                .unwrap()
        );
        let job = jobs::get(db, TENANT_A, "job-p").await.unwrap().unwrap();
        assert_eq!(job.status, JobStatus::Failed);
        assert_eq!(job.error.as_deref(), Some("cohort below the minimum size"));
        // Workers that die on every attempt: the job fails when its last lease expires.
        new_job(&ctx, "job-d", 2).await;
        for _ in 0..2 {
            jobs::claim(db, Duration::from_millis(30))
                .await
                .unwrap()
                .unwrap();
            tokio::time::sleep(Duration::from_millis(80)).await;
        }
        assert!(jobs::claim(db, LONG).await.unwrap().is_none());
        let job = jobs::get(db, TENANT_A, "job-d").await.unwrap().unwrap();
        assert_eq!(job.status, JobStatus::Failed);
        assert!(job.error.unwrap().contains("gave up after 2 attempts"));
        // Giving up is audited like any other failure.
        let entries = store::audit::entries(db, Some(TENANT_A), 0, 1000)
            .await
            .unwrap();
        assert!(
            entries
                .iter()
                .any(|e| e.kind == "job.failed" && e.body.contains("\"job-d\"")),
            "{}: no job.failed entry for job-d",
            ctx.name
        );
        ctx.finish().await;
    }
}
