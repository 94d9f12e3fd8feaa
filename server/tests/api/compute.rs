//! Jobs end to end on every backend: models, job creation and its refusals, workers that
//! verify, expand and compute on ciphertext, results that decrypt to exactly the clear
//! reference, a worker that dies mid-job (its lease expires and the job completes once), and
//! two workers sharing one queue.

use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use blindsight_crypto::compute::{AggregateQuery, JobOutput, crisis_v1};
use blindsight_crypto::schemas::session_v1;
use blindsight_crypto::{RecordValues, Value};
use blindsight_proto::TenantCreated;
use blindsight_server::store::{self, jobs};
use blindsight_server::worker::{self, WorkerConfig};
use tokio::sync::watch;

use crate::common::{ADMIN, Ctx, KEY_ID, backends, config, keys, records_a, session_values};

async fn tenant(ctx: &Ctx, id: &str, min_cohort: u32) -> TenantCreated {
    let r = ctx
        .request(
            Method::POST,
            "/v1/tenants",
            Some(ADMIN),
            serde_json::to_vec(&serde_json::json!({
                "name": "Clinic", "tenant_id": id, "min_cohort_size": min_cohort
            }))
            .unwrap(),
        )
        .await;
    r.expect_status(StatusCode::CREATED);
    serde_json::from_slice(&r.body).unwrap()
}

async fn post_json(
    ctx: &Ctx,
    path: &str,
    token: &str,
    body: serde_json::Value,
) -> crate::common::Resp {
    ctx.request(
        Method::POST,
        path,
        Some(token),
        serde_json::to_vec(&body).unwrap(),
    )
    .await
}

fn clear_values(i: u32) -> Vec<Value> {
    session_v1()
        .order_values(&session_values(i))
        .expect("test values fit the schema")
}

async fn wait_done(ctx: &Ctx, token: &str, job_id: &str) -> serde_json::Value {
    let start = Instant::now();
    loop {
        let r = ctx.get(&format!("/v1/jobs/{job_id}"), Some(token)).await;
        r.expect_status(StatusCode::OK);
        let job = r.json();
        match job["status"].as_str() {
            Some("succeeded") | Some("failed") => return job,
            _ => {}
        }
        assert!(
            start.elapsed() < Duration::from_secs(900),
            "job {job_id} did not finish: {job}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The audit entries that name a job (what each attempt did), for failure messages.
async fn job_trail(ctx: &Ctx, job_id: &str) -> Vec<String> {
    store::audit::entries(ctx.state.db(), Some("tenant-a"), 0, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.body.contains(job_id))
        .map(|e| format!("{} {}", e.kind, e.body))
        .collect()
}

async fn output(ctx: &Ctx, token: &str, job_id: &str) -> (JobOutput, Vec<u64>) {
    let r = ctx
        .get(&format!("/v1/jobs/{job_id}/result"), Some(token))
        .await;
    r.expect_status(StatusCode::OK);
    let out = JobOutput::decode(&r.body, KEY_ID).unwrap();
    let values = out.decrypt(keys().0.secret.client_key()).unwrap();
    (out, values)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn jobs_compute_on_ciphertext_and_decrypt_to_the_clear_reference() {
    for ctx in backends(config).await {
        let t = tenant(&ctx, "tenant-a", 2).await;
        let (kh, ingest) = (t.tokens.keyholder.expose(), t.tokens.ingest.expose());
        ctx.register(kh, &keys().0).await;
        // rec-0 … rec-5; cohorts alternate north/south.
        for r in &records_a()[..6] {
            ctx.upload(ingest, r)
                .await
                .expect_status(StatusCode::CREATED);
        }

        // Models: checked against the schema, immutable per version.
        let mut bad = crisis_v1();
        bad.id = "mine".into();
        bad.weights.insert("no_such_field".into(), 1);
        post_json(&ctx, "/v1/models", kh, serde_json::to_value(&bad).unwrap())
            .await
            .expect(422, "invalid-model");
        let mut mine = crisis_v1();
        mine.id = "mine".into();
        mine.thresholds.low = 5;
        let body = serde_json::to_value(&mine).unwrap();
        post_json(&ctx, "/v1/models", kh, body.clone())
            .await
            .expect_status(StatusCode::CREATED);
        post_json(&ctx, "/v1/models", kh, body)
            .await
            .expect_status(StatusCode::OK);
        mine.thresholds.low = 6;
        post_json(&ctx, "/v1/models", kh, serde_json::to_value(&mine).unwrap())
            .await
            .expect(409, "model-exists");
        post_json(
            &ctx,
            "/v1/models",
            kh,
            serde_json::to_value(crisis_v1()).unwrap(),
        )
        .await
        .expect(409, "model-exists");
        let listed = ctx.get("/v1/models", Some(kh)).await.json();
        // The two built-in models (crisis v1, bias v1) and the tenant's.
        let ids: Vec<&str> = listed["models"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["model_id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["crisis", "bias", "mine"], "{listed}");

        // Refusals before anything is queued.
        let risk = |ids: &[&str], model: &str| {
            serde_json::json!({"kind": "risk_score", "key_id": KEY_ID,
                "model": {"id": model, "version": 1}, "select": {"record_ids": ids}})
        };
        post_json(&ctx, "/v1/jobs", kh, risk(&["rec-0"], "nope"))
            .await
            .expect(422, "unknown-model");
        post_json(&ctx, "/v1/jobs", kh, risk(&["rec-99"], "crisis"))
            .await
            .expect(422, "unknown-record");
        post_json(&ctx, "/v1/jobs", ingest, risk(&["rec-0"], "crisis"))
            .await
            .expect(403, "forbidden");
        let mut unknown = risk(&["rec-0"], "crisis");
        unknown["extra"] = 1.into();
        post_json(&ctx, "/v1/jobs", kh, unknown)
            .await
            .expect(400, "malformed-json");
        let query: AggregateQuery = serde_json::from_value(serde_json::json!({"aggregates": [
            {"op": "count"},
            {"op": "mean", "field": "mood_change"},
            {"op": "histogram", "field": "phq9_total", "edges": [5, 10, 15, 20]},
            {"op": "max", "field": "lex_hopelessness"},
            {"op": "sum_where", "field": "mood_after", "where_field": "phq9_total", "at_least": 10},
        ]}))
        .unwrap();
        let aggregate = |cohort: &str| serde_json::json!({"kind": "aggregate", "key_id": KEY_ID, "query": query, "select": {"cohort": cohort}});
        post_json(&ctx, "/v1/jobs", kh, aggregate("nobody"))
            .await
            .expect(422, "no-records");
        let jobs_before = jobs::list(ctx.state.db(), "tenant-a", 100)
            .await
            .unwrap()
            .len();
        assert_eq!(jobs_before, 0);

        // A risk job, an aggregate job, and one a dead worker holds.
        let created = post_json(&ctx, "/v1/jobs", kh, risk(&["rec-0", "rec-1"], "crisis")).await;
        created.expect_status(StatusCode::ACCEPTED);
        let risk_id = created.json()["job_id"].as_str().unwrap().to_owned();
        assert_eq!(created.json()["records"], 2);
        let created = post_json(&ctx, "/v1/jobs", kh, aggregate("north")).await;
        created.expect_status(StatusCode::ACCEPTED);
        let agg_id = created.json()["job_id"].as_str().unwrap().to_owned();
        // The same without the lexicon maximum: the lane answers all of it, and the worker
        // streams it from the database.
        let mut lane_query = query.clone();
        lane_query.aggregates.remove(3);
        let lane_job = serde_json::json!({"kind": "aggregate", "key_id": KEY_ID,
            "query": lane_query, "select": {"cohort": "north"}});
        let created = post_json(&ctx, "/v1/jobs", kh, lane_job).await;
        created.expect_status(StatusCode::ACCEPTED);
        let lane_id = created.json()["job_id"].as_str().unwrap().to_owned();
        let created = post_json(&ctx, "/v1/jobs", kh, risk(&["rec-2"], "mine")).await;
        created.expect_status(StatusCode::ACCEPTED);
        let orphan_id = created.json()["job_id"].as_str().unwrap().to_owned();
        // Not finished yet: the result is refused with a hint.
        ctx.get(&format!("/v1/jobs/{risk_id}/result"), Some(kh))
            .await
            .expect(409, "job-not-finished");

        // A worker leases the oldest job and dies: its lease expires after a second.
        let dead = jobs::claim(ctx.state.audit_log(), Duration::from_secs(1))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            dead.job.job_id, risk_id,
            "workers take jobs in creation order"
        );

        // Two workers share the queue.
        let (stop, stopped) = watch::channel(false);
        let workers = tokio::spawn(worker::run(
            ctx.state.clone(),
            2,
            WorkerConfig {
                lease: Duration::from_secs(30),
                poll: Duration::from_millis(100),
                ..WorkerConfig::default()
            },
            stopped,
        ));
        for id in [&risk_id, &agg_id, &lane_id, &orphan_id] {
            let job = wait_done(&ctx, kh, id).await;
            assert_eq!(job["status"], "succeeded", "{}: {job}", ctx.name);
        }
        stop.send(true).unwrap();
        workers.await.unwrap();
        // The dead worker's lease was taken over; it cannot write a result now.
        assert!(
            !jobs::complete(ctx.state.audit_log(), &dead, b"stale", None, None)
                .await
                .unwrap()
        );
        let job = jobs::get(ctx.state.db(), "tenant-a", &risk_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(job.attempts, 2, "taken over once");
        let job = jobs::get(ctx.state.db(), "tenant-a", &agg_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            job.attempts,
            1,
            "{}: processed once; the job's audit trail: {:#?}",
            ctx.name,
            job_trail(&ctx, &agg_id).await
        );

        // Risk scores decrypt to the clear reference.
        let schema = session_v1();
        let model = crisis_v1().compile(&schema).unwrap();
        let (out, values) = output(&ctx, kh, &risk_id).await;
        assert_eq!(out.manifest.function, "risk_score/crisis-v1");
        assert_eq!(out.manifest.outputs[0].label, "rec-0/score");
        for (i, record) in [0u32, 1].into_iter().enumerate() {
            let (score, tier) = model.evaluate_clear(&clear_values(record));
            assert_eq!(
                (values[2 * i], values[2 * i + 1]),
                (score, tier as u64),
                "rec-{record}"
            );
        }
        let mine_model = {
            let mut m = crisis_v1();
            m.id = "mine".into();
            m.thresholds.low = 5;
            m.compile(&schema).unwrap()
        };
        let (out, values) = output(&ctx, kh, &orphan_id).await;
        assert_eq!(out.manifest.function, "risk_score/mine-v1");
        let (score, tier) = mine_model.evaluate_clear(&clear_values(2));
        assert_eq!(values, vec![score, tier as u64]);

        // Aggregates over the north cohort (rec-0, rec-2, rec-4) decrypt to the reference: the
        // FHE path's maximum and the lane's sums, counts and histogram alike.
        let cohort: Vec<Vec<Value>> = [0, 2, 4].into_iter().map(clear_values).collect();
        let lane_secret = keys().0.secret.lane_secret().unwrap();
        for (id, q, fhe_outputs) in [(&agg_id, &query, 1), (&lane_id, &lane_query, 0)] {
            let (out, values) = output(&ctx, kh, id).await;
            assert_eq!(out.manifest.clear["records"], 3);
            assert_eq!(out.manifest.outputs.len(), fhe_outputs, "{id}");
            let compiled = q.compile(&schema, 3).unwrap();
            let plan = compiled.lane_plan(&schema.slot_map().unwrap());
            assert_eq!(out.manifest.lane.as_ref(), Some(&plan.manifest));
            let lane = plan.manifest.decrypt(&lane_secret, &out.lane).unwrap();
            assert_eq!(
                compiled.interpret_split(&plan, &values, &lane).unwrap(),
                q.evaluate_clear(&schema, &cohort).unwrap(),
                "{id}"
            );
        }

        // The event stream of a finished job ends with `done`.
        let events = ctx
            .get(&format!("/v1/jobs/{agg_id}/events"), Some(kh))
            .await;
        events.expect_status(StatusCode::OK);
        let text = String::from_utf8_lossy(&events.body);
        assert!(
            text.contains("event: done") && text.contains(&agg_id),
            "{text}"
        );

        // Another tenant with the default minimum cohort (10) is refused before any work.
        let small = tenant(&ctx, "tenant-b", 10).await;
        ctx.register(small.tokens.keyholder.expose(), &keys().1)
            .await;
        let keys_b = &keys().1;
        for i in 0..3u32 {
            let meta = crate::common::metadata("tenant-b", &format!("b-{i}"), "north");
            let record = crate::common::make_record(keys_b, &meta, i);
            ctx.upload(small.tokens.ingest.expose(), &record)
                .await
                .expect_status(StatusCode::CREATED);
        }
        let r = post_json(
            &ctx,
            "/v1/jobs",
            small.tokens.keyholder.expose(),
            aggregate("north"),
        )
        .await;
        r.expect(422, "cohort-too-small");
        assert_eq!(
            (r.json()["records"].as_u64(), r.json()["minimum"].as_u64()),
            (Some(3), Some(10))
        );
        assert!(
            jobs::list(ctx.state.db(), "tenant-b", 10)
                .await
                .unwrap()
                .is_empty()
        );
        // Tenant B sees none of tenant A's jobs.
        ctx.get(
            &format!("/v1/jobs/{agg_id}"),
            Some(small.tokens.keyholder.expose()),
        )
        .await
        .expect(404, "unknown-job");
        let _unused: RecordValues = session_values(0);
        ctx.finish().await;
    }
}
