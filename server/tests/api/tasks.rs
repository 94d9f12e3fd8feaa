//! Jobs cut into tasks, on every backend: the queue's task machinery (fair leasing across
//! tenants, the merge queued only once every part succeeded, one merge when two workers race
//! for it, a task out of attempts failing its job once), and jobs computed by several workers
//! task by task that decrypt to the clear reference, state their tasks in the receipt and
//! re-execute to the same output digest. Worker processes: `processes.rs`.

use std::time::Duration;

use axum::http::{Method, StatusCode};
use blindsight_crypto::compute::{AggregateQuery, JobOutput, crisis_v1};
use blindsight_crypto::schemas::session_v1;
use blindsight_proto::{JobRequest, JobSpec, JobStatus, ModelRef, Selection};
use blindsight_server::store::jobs::{self, NewJob, TaskKind};
use blindsight_server::worker::{self, WorkerConfig};
use tokio::sync::watch;

use crate::common::{ADMIN, Ctx, KEY_ID, TENANT_A, TENANT_B, backends, config, keys, records_a};
use crate::jobs::tenant_with_keyset;
use crate::verify::{create_job, wait_succeeded};

const LONG: Duration = Duration::from_secs(60);

/// Queues a risk job over `records` made-up record ids, cut into tasks of `per_task` (the
/// queue reads only the spec's shape).
async fn tasked_job(ctx: &Ctx, tenant: &str, id: &str, records: usize, per_task: u64) {
    let spec = JobSpec {
        request: JobRequest::risk_score(KEY_ID, ModelRef::crisis_v1(), Selection::default()),
        model: None,
        records: (0..records).map(|i| format!("r-{i}")).collect(),
        rollup: Vec::new(),
        task_records: Some(per_task),
    };
    let queued = jobs::create(
        ctx.state.audit_log(),
        &NewJob {
            job_id: id,
            tenant_id: tenant,
            key_id: KEY_ID,
            kind: "risk_score",
            spec: &serde_json::to_string(&spec).unwrap(),
            max_attempts: 2,
        },
    )
    .await
    .unwrap();
    assert!(queued);
}

/// A tenant whose aggregates may run over cohorts of 2.
pub(crate) async fn small_cohort_tenant(
    ctx: &Ctx,
    tenant: &str,
) -> blindsight_proto::TenantCreated {
    let r = ctx
        .request(
            Method::POST,
            "/v1/tenants",
            Some(ADMIN),
            serde_json::to_vec(&serde_json::json!({
                "name": "Clinic", "tenant_id": tenant, "min_cohort_size": 2
            }))
            .unwrap(),
        )
        .await;
    r.expect_status(StatusCode::CREATED);
    serde_json::from_slice(&r.body).unwrap()
}

pub(crate) async fn audit_kinds(ctx: &Ctx, tenant: &str, job_id: &str) -> Vec<String> {
    blindsight_server::store::audit::entries(ctx.state.db(), Some(tenant), 0, 10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.body.contains(job_id))
        .map(|e| e.kind)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tasks_are_leased_fairly_merged_once_and_fail_their_job_once() {
    for ctx in backends(config).await {
        let db = ctx.state.audit_log();
        tenant_with_keyset(&ctx, TENANT_A).await;
        tenant_with_keyset(&ctx, TENANT_B).await;
        // Tenant A's large job first, then tenant B's one-task job.
        tasked_job(&ctx, TENANT_A, "job-a", 40, 2).await;
        tasked_job(&ctx, TENANT_B, "job-b", 1, 2).await;
        let a = jobs::get(ctx.state.db(), TENANT_A, "job-a")
            .await
            .unwrap()
            .unwrap();
        let tasks = a.tasks.expect("a job cut into tasks");
        assert_eq!((tasks.total, tasks.succeeded, tasks.running), (20, 0, 0));
        assert_eq!(a.progress_total, 80);
        let b = jobs::get(ctx.state.db(), TENANT_B, "job-b")
            .await
            .unwrap()
            .unwrap();
        assert!(b.tasks.is_none(), "one record: one whole task");

        // Fair: A's oldest task first, then B's (A has one running, B none), though A has
        // 19 more queued and older.
        let first = jobs::claim(db, LONG).await.unwrap().unwrap();
        assert_eq!((first.job.job_id.as_str(), first.task.index), ("job-a", 0));
        assert_eq!(first.task.kind, TaskKind::Part);
        let second = jobs::claim(db, LONG).await.unwrap().unwrap();
        assert_eq!(second.job.job_id, "job-b", "{}: B waits behind A", ctx.name);
        assert_eq!(second.task.kind, TaskKind::Whole);
        assert!(jobs::complete(db, &second, b"b", None, None).await.unwrap());

        // Every part of A; the merge is not claimable until the last one succeeded.
        assert!(
            jobs::complete_part(db, &first, b"p0", &[[0u8; 32]; 2])
                .await
                .unwrap()
        );
        let mut parts = Vec::new();
        for _ in 1..20 {
            let l = jobs::claim(db, LONG).await.unwrap().unwrap();
            assert_eq!(l.task.kind, TaskKind::Part, "{}: the merge waits", ctx.name);
            parts.push(l);
        }
        assert!(jobs::claim(db, LONG).await.unwrap().is_none());
        // A stale copy of a part cannot write.
        let mut stale = parts[0].clone();
        stale.token = "00".repeat(16);
        assert!(
            !jobs::complete_part(db, &stale, b"x", &[[0u8; 32]; 2])
                .await
                .unwrap()
        );
        for l in &parts {
            let p = format!("p{}", l.task.index);
            assert!(
                jobs::heartbeat(db, l, LONG, 4, 0).await.unwrap(),
                "renewed while held"
            );
            assert!(
                jobs::complete_part(db, l, p.as_bytes(), &[[l.task.index as u8; 32]; 2])
                    .await
                    .unwrap()
            );
        }
        let a = jobs::get(ctx.state.db(), TENANT_A, "job-a")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(a.progress_done, 80);
        assert_eq!(a.tasks.unwrap().succeeded, 20);
        let partials = jobs::partials(ctx.state.db(), "job-a")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(partials.partials[3], b"p3");
        assert_eq!(partials.input_leaves.len(), 40);
        assert_eq!(partials.input_leaves[7], [3u8; 32]);

        // Two workers race for the merge: the first's lease expires, the second takes over,
        // and only the second writes.
        let slow = jobs::claim(db, Duration::from_millis(50))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(slow.task.kind, TaskKind::Merge);
        tokio::time::sleep(Duration::from_millis(120)).await;
        let fast = jobs::claim(db, LONG).await.unwrap().unwrap();
        assert_eq!(fast.task.kind, TaskKind::Merge);
        assert!(fast.took_over);
        assert!(
            jobs::complete(db, &fast, b"merged", None, None)
                .await
                .unwrap()
        );
        assert!(
            !jobs::complete(db, &slow, b"late", None, None)
                .await
                .unwrap()
        );
        assert_eq!(
            jobs::result(ctx.state.db(), TENANT_A, "job-a")
                .await
                .unwrap()
                .unwrap(),
            b"merged"
        );
        assert_eq!(
            audit_kinds(&ctx, TENANT_A, "job-a")
                .await
                .iter()
                .filter(|k| *k == "job.succeeded")
                .count(),
            1
        );
        // The merge that was taken over is audited as a failed attempt, naming the expiry.
        let kinds = audit_kinds(&ctx, TENANT_A, "job-a").await;
        assert_eq!(
            kinds,
            ["job.created", "job.attempt_failed", "job.succeeded"],
            "{}",
            ctx.name
        );
        // Partial results are dropped once the job's result is written.
        assert!(
            jobs::partials(ctx.state.db(), "job-a")
                .await
                .unwrap()
                .is_none()
        );

        // A part that runs out of attempts fails its job, once, naming the task; the job's
        // other tasks are cancelled.
        tasked_job(&ctx, TENANT_A, "job-c", 6, 2).await;
        let l1 = jobs::claim(db, LONG).await.unwrap().unwrap();
        assert_eq!((l1.job.job_id.as_str(), l1.task.index), ("job-c", 0));
        let other = jobs::claim(db, LONG).await.unwrap().unwrap();
        assert!(jobs::fail(db, &l1, "out of memory", true).await.unwrap());
        let c = jobs::get(ctx.state.db(), TENANT_A, "job-c")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(c.status, JobStatus::Running, "one part retries, one runs");
        // The retried part (worker dies: its lease expires) has no attempt left.
        let mut retried = jobs::claim(db, Duration::from_millis(30))
            .await
            .unwrap()
            .unwrap();
        while retried.task.index != 0 {
            retried = jobs::claim(db, Duration::from_millis(30))
                .await
                .unwrap()
                .unwrap();
        }
        assert_eq!(retried.task.attempts, 2);
        tokio::time::sleep(Duration::from_millis(80)).await;
        while jobs::claim(db, Duration::from_millis(30))
            .await
            .unwrap()
            .is_some()
        {}
        let c = jobs::get(ctx.state.db(), TENANT_A, "job-c")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(c.status, JobStatus::Failed, "{}: {c:?}", ctx.name);
        let error = c.error.unwrap_or_default();
        assert_eq!(
            error,
            "task 1 of 3 (records 1 to 2): the worker's lease expired (it stopped, stalled or \
             lost the database) (gave up after 2 attempts; the attempt before: out of memory)"
        );
        let kinds = audit_kinds(&ctx, TENANT_A, "job-c").await;
        assert_eq!(
            kinds.iter().filter(|k| *k == "job.failed").count(),
            1,
            "{kinds:?}"
        );
        // Every failed attempt is audited: the one that ran out of memory, and each whose
        // lease expired and was taken over (the other parts, leased for 30 ms above).
        let trail =
            blindsight_server::store::audit::entries(ctx.state.db(), Some(TENANT_A), 0, 10_000)
                .await
                .unwrap();
        let attempts: Vec<&str> = trail
            .iter()
            .filter(|e| e.kind == "job.attempt_failed" && e.body.contains("job-c"))
            .map(|e| e.body.as_str())
            .collect();
        assert_eq!(
            attempts
                .iter()
                .filter(|b| b.contains("out of memory"))
                .count(),
            1,
            "{attempts:?}"
        );
        assert!(
            attempts.iter().skip(1).all(|b| b.contains("lease expired")),
            "{attempts:?}"
        );
        // The part that was running when its job failed lost its lease.
        assert!(!jobs::heartbeat(db, &other, LONG, 1, 0).await.unwrap());
        assert!(
            !jobs::complete_part(db, &other, b"x", &[[0u8; 32]; 2])
                .await
                .unwrap()
        );
        assert!(jobs::claim(db, LONG).await.unwrap().is_none());

        // A task taken over starts its progress again: the job does not show the dead
        // attempt's.
        tasked_job(&ctx, TENANT_B, "job-e", 1, 2).await;
        let dying = jobs::claim(db, Duration::from_millis(30))
            .await
            .unwrap()
            .unwrap();
        assert!(
            jobs::heartbeat(db, &dying, Duration::from_millis(30), 1, 2)
                .await
                .unwrap()
        );
        let e = jobs::get(ctx.state.db(), TENANT_B, "job-e")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(e.progress_done, 1);
        tokio::time::sleep(Duration::from_millis(80)).await;
        let again = jobs::claim(db, LONG).await.unwrap().unwrap();
        assert!(again.took_over);
        assert_eq!(again.job.progress_done, 0, "{}", ctx.name);
        ctx.finish().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn workers_compute_jobs_task_by_task_and_receipts_reexecute() {
    let tasked = || {
        let mut c = config();
        c.task_records = 2;
        c
    };
    for ctx in backends(tasked).await {
        let t = small_cohort_tenant(&ctx, TENANT_A).await;
        let (ingest, kh) = (t.tokens.ingest.expose(), t.tokens.keyholder.expose());
        ctx.register(kh, &keys().0).await;
        for rec in &records_a()[..5] {
            ctx.upload(ingest, rec)
                .await
                .expect_status(StatusCode::CREATED);
        }
        let ids: Vec<String> = (0..5).map(|i| format!("rec-{i}")).collect();
        let risk = create_job(
            &ctx,
            kh,
            serde_json::json!({"kind": "risk_score", "key_id": KEY_ID,
                "model": {"id": "crisis", "version": 1}, "select": {"record_ids": ids}}),
        )
        .await;
        let query: AggregateQuery = serde_json::from_value(serde_json::json!({"aggregates": [
            {"op": "count"}, {"op": "mean", "field": "phq9_total"},
            {"op": "max", "field": "lex_hopelessness"}, {"op": "min", "field": "lex_absolutist"}
        ]}))
        .unwrap();
        let aggregate = create_job(
            &ctx,
            kh,
            serde_json::json!({"kind": "aggregate", "key_id": KEY_ID, "query": query,
                "select": {"record_ids": ids}}),
        )
        .await;

        // Three workers, one thread each, share the tasks.
        let (stop, stopped) = watch::channel(false);
        let workers = tokio::spawn(worker::run(
            ctx.state.clone(),
            3,
            WorkerConfig {
                lease: Duration::from_secs(30),
                poll: Duration::from_millis(50),
                threads: 1,
            },
            stopped,
        ));
        wait_succeeded(&ctx, kh, &[&risk, &aggregate]).await;
        stop.send(true).unwrap();
        workers.await.unwrap();

        let schema = session_v1();
        let clear: Vec<_> = (0..5u32)
            .map(|i| {
                schema
                    .order_values(&crate::common::session_values(i))
                    .unwrap()
            })
            .collect();
        for id in [&risk, &aggregate] {
            let job = ctx.get(&format!("/v1/jobs/{id}"), Some(kh)).await.json();
            assert_eq!(
                job["tasks"],
                serde_json::json!({"total": 3, "succeeded": 3, "running": 0}),
                "{job}"
            );
            assert_eq!(job["progress_done"], 10);
            assert_eq!(job["progress_total"], 10);
            let r = ctx.get(&format!("/v1/jobs/{id}/receipt"), Some(kh)).await;
            r.expect_status(StatusCode::OK);
            let receipt: serde_json::Value =
                serde_json::from_str(r.json()["receipt"].as_str().unwrap()).unwrap();
            assert_eq!(receipt["tasks"]["task_records"], 2, "{receipt}");
            assert_eq!(receipt["tasks"]["tasks"], 3, "{receipt}");
            assert_eq!(receipt["inputs"], 5);
        }
        let result = |id: String| {
            let ctx = &ctx;
            async move {
                let r = ctx.get(&format!("/v1/jobs/{id}/result"), Some(kh)).await;
                r.expect_status(StatusCode::OK);
                let out = JobOutput::decode(&r.body, KEY_ID).unwrap();
                let values = out.decrypt(keys().0.secret.client_key()).unwrap();
                (out, values)
            }
        };
        let (out, values) = result(risk.clone()).await;
        assert_eq!(out.manifest.lists, [4, 4, 2]);
        let model = crisis_v1().compile(&schema).unwrap();
        for (i, v) in clear.iter().enumerate() {
            let (score, tier) = model.evaluate_clear(v);
            assert_eq!((values[2 * i], values[2 * i + 1]), (score, tier as u64));
        }
        let (out, values) = result(aggregate.clone()).await;
        let compiled = query.compile(&schema, 5).unwrap();
        let plan = compiled.lane_plan(&schema.slot_map().unwrap());
        let lane = plan
            .manifest
            .decrypt(&keys().0.secret.lane_secret().unwrap(), &out.lane)
            .unwrap();
        assert_eq!(
            compiled.interpret_split(&plan, &values, &lane).unwrap(),
            query.evaluate_clear(&schema, &clear).unwrap()
        );
        // Partial results are gone; the auditor re-executes both jobs task by task to the
        // receipts' output digests.
        let kept: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM job_tasks WHERE partial IS NOT NULL")
                .fetch_one(ctx.state.db().pool())
                .await
                .unwrap();
        assert_eq!(kept, 0);
        let report = crate::verify::run(&ctx, 2).await;
        assert!(report.passed, "{}: {:?}", ctx.name, report.first_failure);
        ctx.finish().await;
    }
}
