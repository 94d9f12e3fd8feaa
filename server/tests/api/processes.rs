//! `blindsight-server worker` processes sharing one PostgreSQL database: the tasks of one job
//! spread over them, one killed with SIGKILL mid-task, another tenant's small job served
//! while a large one runs, each job completed exactly once.

use std::time::Duration;

use axum::http::StatusCode;
use blindsight_crypto::compute::{JobOutput, crisis_v1};
use blindsight_crypto::schemas::session_v1;

use crate::common::{Ctx, KEY_ID, TENANT_A, TENANT_B, config, keys, records_a};
use crate::tasks::{audit_kinds, small_cohort_tenant};
use crate::verify::{create_job, wait_succeeded};

/// Starts a `blindsight-server worker` process on `url` with one thread and a 3-second lease.
fn worker_process(url: &str, key: &std::path::Path, dir: &std::path::Path) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_blindsight-server"))
        .args([
            "worker",
            "--threads",
            "1",
            "--job-lease",
            "3",
            "--database-url",
            url,
        ])
        .arg("--audit-key-file")
        .arg(key)
        .arg("--data-dir")
        .arg(dir)
        .env("BLINDSIGHT_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start a worker process")
}

async fn job_state(ctx: &Ctx, kh: &str, id: &str) -> serde_json::Value {
    ctx.get(&format!("/v1/jobs/{id}"), Some(kh)).await.json()
}

/// Three `blindsight-server worker` processes on one PostgreSQL database take the tasks of
/// one job; one is killed with SIGKILL mid-task (its task is taken over when its lease
/// expires); another tenant's small job, queued behind the large one, finishes while the
/// large one is still running; each job completes exactly once (one result, one receipt, one
/// `job.succeeded`), and the auditor re-executes both in one process to the receipts' output
/// digests (what one worker computes) with the audit chains verifying.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn worker_processes_share_tasks_survive_sigkill_and_serve_tenants_fairly() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("audit.p8");
    let (audit_key, _) = blindsight_server::audit::SigningKey::load_or_create(&key_file).unwrap();
    let tasked = || {
        let mut c = config();
        c.task_records = 1;
        c.audit_key = Some(audit_key.clone());
        c
    };
    let Some(ctx) = Ctx::new("postgres", tasked()).await else {
        eprintln!("BLINDSIGHT_TEST_POSTGRES_URL is unset: worker processes not exercised");
        return;
    };
    let url = ctx.database_url().unwrap();
    let mut tokens = Vec::new();
    for (tenant, keys) in [(TENANT_A, &keys().0), (TENANT_B, &keys().1)] {
        let t = small_cohort_tenant(&ctx, tenant).await;
        let (ingest, kh) = (
            t.tokens.ingest.expose().to_owned(),
            t.tokens.keyholder.expose().to_owned(),
        );
        ctx.register(&kh, keys).await;
        tokens.push((ingest, kh));
    }
    let (ingest_a, kh_a) = &tokens[0];
    let (ingest_b, kh_b) = &tokens[1];
    for rec in &records_a()[..12] {
        ctx.upload(ingest_a, rec)
            .await
            .expect_status(StatusCode::CREATED);
    }
    for i in 0..2u32 {
        let meta = crate::common::metadata(TENANT_B, &format!("b-{i}"), "north");
        let rec = crate::common::make_record(&keys().1, &meta, i);
        ctx.upload(ingest_b, &rec)
            .await
            .expect_status(StatusCode::CREATED);
    }
    let risk = |ids: Vec<String>| {
        serde_json::json!({"kind": "risk_score", "key_id": KEY_ID,
            "model": {"id": "crisis", "version": 1}, "select": {"record_ids": ids}})
    };
    let large = create_job(
        &ctx,
        kh_a,
        risk((0..12).map(|i| format!("rec-{i}")).collect()),
    )
    .await;

    let mut workers: Vec<_> = (0..3)
        .map(|i| worker_process(&url, &key_file, &dir.path().join(format!("w{i}"))))
        .collect();
    // All three hold a task of the large job: kill one of them mid-task.
    let start = std::time::Instant::now();
    loop {
        let job = job_state(&ctx, kh_a, &large).await;
        if job["tasks"]["running"] == 3 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(300), "{job}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    workers[0].kill().unwrap();
    workers[0].wait().unwrap();
    // The other tenant's small job, queued behind the large one, is served next.
    let small = create_job(&ctx, kh_b, risk(vec!["b-0".to_owned(), "b-1".to_owned()])).await;
    loop {
        let job = job_state(&ctx, kh_b, &small).await;
        assert_ne!(job["status"], "failed", "{job}");
        if job["status"] == "succeeded" {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(900), "{job}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let large_then = job_state(&ctx, kh_a, &large).await;
    assert_eq!(
        large_then["status"], "running",
        "the small job waited for the large one: {large_then}"
    );
    assert!(
        large_then["tasks"]["succeeded"].as_i64().unwrap() < 12,
        "{large_then}"
    );
    wait_succeeded(&ctx, kh_a, &[&large]).await;
    for w in &mut workers[1..] {
        // SIGTERM: a worker gives back what it holds and exits cleanly.
        let _ = std::process::Command::new("kill")
            .arg(w.id().to_string())
            .status();
        assert!(w.wait().unwrap().success());
    }

    // The killed worker's task was taken over once its lease expired.
    let taken_over: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM job_tasks WHERE job_id = $1 AND kind = 'part' AND attempts = 2",
    )
    .bind(&large)
    .fetch_one(ctx.state.db().pool())
    .await
    .unwrap();
    assert_eq!(taken_over, 1);
    for (tenant, id) in [(TENANT_A, &large), (TENANT_B, &small)] {
        let results: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM job_results WHERE job_id = $1")
            .bind(id)
            .fetch_one(ctx.state.db().pool())
            .await
            .unwrap();
        assert_eq!(results, 1);
        let kinds = audit_kinds(&ctx, tenant, id).await;
        assert_eq!(
            kinds.iter().filter(|k| *k == "job.succeeded").count(),
            1,
            "{kinds:?}"
        );
    }
    // Every score decrypts to the clear reference.
    let r = ctx
        .get(&format!("/v1/jobs/{large}/result"), Some(kh_a))
        .await;
    r.expect_status(StatusCode::OK);
    let out = JobOutput::decode(&r.body, KEY_ID).unwrap();
    assert_eq!(out.lists.len(), 12);
    let values = out.decrypt(keys().0.secret.client_key()).unwrap();
    let schema = session_v1();
    let model = crisis_v1().compile(&schema).unwrap();
    for i in 0..12u32 {
        let clear = schema
            .order_values(&crate::common::session_values(i))
            .unwrap();
        let (score, tier) = model.evaluate_clear(&clear);
        let at = 2 * i as usize;
        assert_eq!(
            (values[at], values[at + 1]),
            (score, tier as u64),
            "rec-{i}"
        );
    }
    let report = crate::verify::run(&ctx, 2).await;
    assert!(report.passed, "{:?}", report.first_failure);
    ctx.finish().await;
}
