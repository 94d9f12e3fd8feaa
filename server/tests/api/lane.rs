//! The additive lane's rollups and differential privacy, on every backend: aggregates over
//! whole days read the rollup parts (frozen at creation, a late record excluded) and decrypt
//! exactly; a selection that cuts a day lists its records; queries with privacy spend the
//! tenant's budget, carry fresh noise per job, and re-execute with their stored seed; the
//! auditor recomputes every part and names each tampering.

use std::time::Duration;

use axum::http::{Method, StatusCode};
use blindsight_crypto::receipt::SignedReceipt;
use blindsight_crypto::schemas;
use blindsight_server::store;
use blindsight_server::worker::{self, WorkerConfig};
use tokio::sync::watch;

use crate::common::{ADMIN, KEY_ID, backends, config, keys, session_values};
use crate::verify::{
    blob, create_job, exec, expect_failure, published, run, set_blob, wait_succeeded,
};

/// Records for the rollup test: `(id, cohort, day offset)`, made once.
fn rollup_records() -> &'static [blindsight_crypto::RecordEnvelope] {
    static RECORDS: std::sync::OnceLock<Vec<blindsight_crypto::RecordEnvelope>> =
        std::sync::OnceLock::new();
    RECORDS.get_or_init(|| {
        use rayon::prelude::*;
        // r-0 … r-3 north on day D, r-4 and r-5 north on D + 1, r-6 south on D, and r-7 north
        // on D, stored after the job was created.
        let layout = [
            ("north", 0),
            ("north", 0),
            ("north", 0),
            ("north", 0),
            ("north", 1),
            ("north", 1),
            ("south", 0),
            ("north", 0),
        ];
        // The key set first, outside rayon (see `common::records_a`).
        let keys = &keys().0;
        layout
            .par_iter()
            .enumerate()
            .map(|(i, (cohort, offset))| {
                let mut meta = crate::common::metadata("tenant-r", &format!("r-{i}"), cohort);
                meta.recorded_at = Some(((ROLLUP_DAY + offset) * 86_400 + 60 * i as i64) as u64);
                crate::common::make_record(keys, &meta, i as u32)
            })
            .collect()
    })
}

const ROLLUP_DAY: i64 = 20_717;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn whole_day_aggregates_read_rollups_exactly_and_auditors_recompute_them() {
    use blindsight_crypto::compute::{AggregateQuery, JobOutput};
    use blindsight_proto::{JobSpec, RollupPart};

    let query: AggregateQuery = serde_json::from_value(serde_json::json!({"aggregates": [
        {"op": "count"},
        {"op": "mean", "field": "mood_change"},
        {"op": "histogram", "field": "phq9_total", "edges": [5, 10, 15, 20]},
        {"op": "max", "field": "phq9_9"},
        {"op": "sum_where", "field": "mood_after", "where_field": "phq9_total", "at_least": 10},
    ]}))
    .unwrap();
    let day = |d: i64| (ROLLUP_DAY + d) * 86_400;
    for ctx in backends(config).await {
        let db = ctx.state.db().clone();
        let r = ctx
            .request(
                Method::POST,
                "/v1/tenants",
                Some(ADMIN),
                serde_json::to_vec(&serde_json::json!({
                    "name": "Clinic", "tenant_id": "tenant-r", "min_cohort_size": 2
                }))
                .unwrap(),
            )
            .await;
        r.expect_status(StatusCode::CREATED);
        let tokens = &r.json()["tokens"];
        let kh = tokens["keyholder"].as_str().unwrap().to_owned();
        let ingest = tokens["ingest"].as_str().unwrap().to_owned();
        ctx.register(&kh, &keys().0).await;
        for r in &rollup_records()[..7] {
            ctx.upload(&ingest, r)
                .await
                .expect_status(StatusCode::CREATED);
        }
        let spec_of = |id: String| {
            let db = db.clone();
            async move {
                let job = store::jobs::get(&db, "tenant-r", &id)
                    .await
                    .unwrap()
                    .unwrap();
                serde_json::from_str::<JobSpec>(&job.spec).unwrap()
            }
        };
        // Whole days, every aggregate on the lane: the job reads the rollup parts.
        let whole = create_job(
            &ctx,
            &kh,
            serde_json::json!({"kind": "aggregate", "key_id": KEY_ID, "query": query,
                "select": {"cohort": "north", "since": day(0), "until": day(2)}}),
        )
        .await;
        let spec = spec_of(whole.clone()).await;
        assert!(spec.records.is_empty());
        assert_eq!(
            spec.rollup,
            [
                RollupPart {
                    cohort: Some("north".into()),
                    day: ROLLUP_DAY,
                    part: 0,
                    records: 4
                },
                RollupPart {
                    cohort: Some("north".into()),
                    day: ROLLUP_DAY + 1,
                    part: 0,
                    records: 2
                },
            ],
            "{}",
            ctx.name
        );
        // A selection that cuts a day lists its records.
        let cut = create_job(
            &ctx,
            &kh,
            serde_json::json!({"kind": "aggregate", "key_id": KEY_ID, "query": query,
                "select": {"cohort": "north", "since": day(0) + 1, "until": day(2)}}),
        )
        .await;
        let cut_spec = spec_of(cut.clone()).await;
        assert!(cut_spec.rollup.is_empty());
        assert_eq!(cut_spec.records, ["r-1", "r-2", "r-3", "r-4", "r-5"]);
        // A record stored after the job was created joins the part; the job still reads the
        // six it counted.
        ctx.upload(&ingest, &rollup_records()[7])
            .await
            .expect_status(StatusCode::CREATED);

        let (stop, stopped) = watch::channel(false);
        let workers = tokio::spawn(worker::run(
            ctx.state.clone(),
            1,
            WorkerConfig {
                lease: Duration::from_secs(60),
                poll: Duration::from_millis(100),
                ..WorkerConfig::default()
            },
            stopped,
        ));
        wait_succeeded(&ctx, &kh, &[&whole, &cut]).await;
        stop.send(true).unwrap();
        workers.await.unwrap();

        let schema = schemas::session_v1();
        let lane_secret = keys().0.secret.lane_secret().unwrap();
        for (id, spec, records) in [(&whole, &spec, 0..6u32), (&cut, &cut_spec, 1..6)] {
            let r = ctx.get(&format!("/v1/jobs/{id}/result"), Some(&kh)).await;
            r.expect_status(StatusCode::OK);
            let out = JobOutput::decode(&r.body, KEY_ID).unwrap();
            let n = records.len();
            let compiled = query.compile(&schema, n).unwrap();
            let map = schema.slot_map().unwrap();
            let plan = match spec.lane_shards().unwrap() {
                Some(shards) => compiled.lane_plan_for_shards(&map, shards),
                None => compiled.lane_plan(&map),
            };
            assert_eq!(out.manifest.lane.as_ref(), Some(&plan.manifest));
            let lane = plan.manifest.decrypt(&lane_secret, &out.lane).unwrap();
            let clear: Vec<_> = records
                .map(|i| schema.order_values(&session_values(i)).unwrap())
                .collect();
            assert_eq!(
                compiled.interpret_split(&plan, &[], &lane).unwrap(),
                query.evaluate_clear(&schema, &clear).unwrap(),
                "{}: {id}",
                ctx.name
            );
            let r = ctx.get(&format!("/v1/jobs/{id}/receipt"), Some(&kh)).await;
            let signed: SignedReceipt = serde_json::from_slice(&r.body).unwrap();
            assert_eq!(signed.verify(&published(&ctx)).unwrap().inputs, n as u64);
        }

        // The auditor recomputes every part from the stored lists and re-executes both jobs
        // (the rollup job over its parts' records, in its order) to their receipts' digests.
        let report = run(&ctx, 2).await;
        assert!(report.passed, "{}: {}", ctx.name, report.render());
        let by_name = |n: &str| report.checks.iter().find(|c| c.name == n).unwrap().checked;
        assert_eq!(by_name("rollups"), 3, "{}", report.render());
        assert_eq!(by_name("reexecute"), 2, "{}", report.render());

        // A part's count lowered, then its sum swapped for another part's: both named.
        let south = "cohort = 'south'";
        exec(
            &db,
            &format!("UPDATE lane_rollups SET records = 0 WHERE {south}"),
        )
        .await;
        expect_failure(&ctx, "rollups", "says it holds 0 records").await;
        exec(
            &db,
            &format!("UPDATE lane_rollups SET records = 1 WHERE {south}"),
        )
        .await;
        let other = blob(
            &db,
            &format!(
                "SELECT lane_sum FROM lane_rollups WHERE day = {} AND cohort = 'north'",
                ROLLUP_DAY + 1
            ),
        )
        .await;
        let own = blob(
            &db,
            &format!("SELECT lane_sum FROM lane_rollups WHERE {south}"),
        )
        .await;
        set_blob(
            &db,
            &format!("UPDATE lane_rollups SET lane_sum = $1 WHERE {south}"),
            &other,
        )
        .await;
        expect_failure(&ctx, "rollups", "is not the sum of its records' lane lists").await;
        set_blob(
            &db,
            &format!("UPDATE lane_rollups SET lane_sum = $1 WHERE {south}"),
            &own,
        )
        .await;
        // A part deleted: its records are rolled up in no part.
        exec(&db, &format!("DELETE FROM lane_rollups WHERE {south}")).await;
        expect_failure(&ctx, "rollups", "are rolled up but its stored parts hold 0").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn private_aggregates_spend_the_budget_add_noise_and_reexecute_with_their_seed() {
    use blindsight_crypto::compute::{AggregateQuery, JobOutput};
    use blindsight_crypto::dp::{Privacy, seed_commitment};
    use blindsight_proto::JobSpec;

    let private = |epsilon: f64| -> AggregateQuery {
        serde_json::from_value(serde_json::json!({"aggregates": [
            {"op": "count"},
            {"op": "mean", "field": "mood_change"},
            {"op": "histogram", "field": "phq9_total", "edges": [5, 10, 15, 20]},
            {"op": "sum_where", "field": "mood_after", "where_field": "phq9_total", "at_least": 10},
        ], "privacy": {"epsilon": epsilon, "delta": 1e-6}}))
        .unwrap()
    };
    for ctx in backends(config).await {
        let db = ctx.state.db().clone();
        let create_tenant = |id: &'static str, budget: Option<serde_json::Value>| {
            let mut body =
                serde_json::json!({"name": "Clinic", "tenant_id": id, "min_cohort_size": 2});
            if let Some(b) = budget {
                body["privacy_budget"] = b;
            }
            ctx.request(
                Method::POST,
                "/v1/tenants",
                Some(ADMIN),
                serde_json::to_vec(&body).unwrap(),
            )
        };
        let r = create_tenant(
            "tenant-r",
            Some(serde_json::json!({"epsilon": 2.0, "delta": 1e-6})),
        )
        .await;
        r.expect_status(StatusCode::CREATED);
        assert_eq!(r.json()["privacy_budget"]["epsilon"], 2.0);
        let tokens = &r.json()["tokens"];
        let kh = tokens["keyholder"].as_str().unwrap().to_owned();
        let ingest = tokens["ingest"].as_str().unwrap().to_owned();
        ctx.register(&kh, &keys().0).await;
        for r in &rollup_records()[..7] {
            ctx.upload(&ingest, r)
                .await
                .expect_status(StatusCode::CREATED);
        }
        let job = |q: &AggregateQuery| {
            serde_json::json!({"kind": "aggregate", "key_id": KEY_ID, "query": q,
                "select": {"cohort": "north"}})
        };
        let post = |body: serde_json::Value| {
            ctx.request(
                Method::POST,
                "/v1/jobs",
                Some(&kh),
                serde_json::to_vec(&body).unwrap(),
            )
        };
        // Refused before anything is spent: a maximum, and an epsilon out of range.
        let mut with_max = private(1.0);
        with_max.aggregates.push(
            serde_json::from_value(serde_json::json!({"op": "max", "field": "phq9_9"})).unwrap(),
        );
        post(job(&with_max)).await.expect(422, "invalid-query");
        let mut zero = serde_json::to_value(private(1.0)).unwrap();
        zero["privacy"]["epsilon"] = 0.0.into();
        post(
            serde_json::json!({"kind": "aggregate", "key_id": KEY_ID, "query": zero,
            "select": {"cohort": "north"}}),
        )
        .await
        .expect(422, "invalid-query");
        assert_eq!(
            store::tenant_privacy(&db, "tenant-r")
                .await
                .unwrap()
                .unwrap()
                .1,
            0
        );

        // ε = 1 three times fits a budget of ε = 2 (zCDP composes), a fourth does not.
        let rho = Privacy {
            epsilon: 1.0,
            delta: 1e-6,
        }
        .rho_micro()
        .unwrap();
        let mut ids = Vec::new();
        for _ in 0..3 {
            let r = post(job(&private(1.0))).await;
            r.expect_status(StatusCode::ACCEPTED);
            ids.push(r.json()["job_id"].as_str().unwrap().to_owned());
        }
        let r = post(job(&private(1.0))).await;
        r.expect(422, "privacy-budget-exhausted");
        assert_eq!(r.json()["rho_micro"], rho);
        assert_eq!(r.json()["spent_rho_micro"], 3 * rho);
        let (budget, spent) = store::tenant_privacy(&db, "tenant-r")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(spent, 3 * rho, "{}", ctx.name);
        assert!(budget.unwrap() < 4 * rho);
        // A tenant without a budget runs no job with privacy.
        let r = create_tenant("tenant-q", None).await;
        r.expect_status(StatusCode::CREATED);
        let kh_q = r.json()["tokens"]["keyholder"].as_str().unwrap().to_owned();
        ctx.register(&kh_q, &keys().0).await;
        let r = ctx
            .request(
                Method::POST,
                "/v1/jobs",
                Some(&kh_q),
                serde_json::to_vec(&job(&private(1.0))).unwrap(),
            )
            .await;
        assert!(r.status == StatusCode::UNPROCESSABLE_ENTITY, "{}", r.status);

        let (stop, stopped) = watch::channel(false);
        let workers = tokio::spawn(worker::run(
            ctx.state.clone(),
            1,
            WorkerConfig {
                lease: Duration::from_secs(60),
                poll: Duration::from_millis(100),
                ..WorkerConfig::default()
            },
            stopped,
        ));
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        wait_succeeded(&ctx, &kh, &refs).await;
        stop.send(true).unwrap();
        workers.await.unwrap();

        // Each output carries its own noise: the same query over the same records decrypts to
        // noisy values that differ between jobs, with the count exact, within each term's
        // bound of the clear values.
        let schema = schemas::session_v1();
        let lane_secret = keys().0.secret.lane_secret().unwrap();
        let clear: Vec<_> = (0..6u32)
            .map(|i| schema.order_values(&session_values(i)).unwrap())
            .collect();
        let mut outputs = Vec::new();
        for id in &ids {
            let spec: JobSpec = serde_json::from_str(
                &store::jobs::get(&db, "tenant-r", id)
                    .await
                    .unwrap()
                    .unwrap()
                    .spec,
            )
            .unwrap();
            let q = private(1.0);
            let compiled = q.compile(&schema, 6).unwrap();
            let map = schema.slot_map().unwrap();
            let plan = match spec.lane_shards().unwrap() {
                Some(shards) => compiled.lane_plan_for_shards(&map, shards),
                None => compiled.lane_plan(&map),
            };
            let r = ctx.get(&format!("/v1/jobs/{id}/result"), Some(&kh)).await;
            let out = JobOutput::decode(&r.body, KEY_ID).unwrap();
            assert_eq!(out.manifest.lane.as_ref(), Some(&plan.manifest));
            let noise = plan.manifest.noise.as_ref().expect("a plan with noise");
            assert_eq!(noise.rho_micro, rho);
            let values = compiled
                .interpret_split(
                    &plan,
                    &[],
                    &plan.manifest.decrypt(&lane_secret, &out.lane).unwrap(),
                )
                .unwrap();
            let exact = q.evaluate_clear(&schema, &clear).unwrap();
            assert_eq!(values[0], exact[0], "the count is the public cohort size");
            outputs.push(r.body.clone());
            // The receipt commits to the seed kept with the result.
            let r = ctx.get(&format!("/v1/jobs/{id}/receipt"), Some(&kh)).await;
            let signed: SignedReceipt = serde_json::from_slice(&r.body).unwrap();
            let receipt = signed.verify(&published(&ctx)).unwrap();
            let seed = blob(
                &db,
                &format!("SELECT noise_seed FROM job_results WHERE job_id = '{id}'"),
            )
            .await;
            let privacy = receipt.privacy.expect("the receipt states its privacy");
            assert_eq!(privacy.rho_micro, rho);
            assert_eq!(
                privacy.seed_commitment,
                seed_commitment(&seed.try_into().unwrap())
            );
        }
        assert!(
            outputs[0] != outputs[1] && outputs[1] != outputs[2],
            "fresh noise per job"
        );

        // The auditor re-executes them with their seeds, and checks the spends.
        let report = run(&ctx, 3).await;
        assert!(report.passed, "{}: {}", ctx.name, report.render());
        let by_name = |n: &str| report.checks.iter().find(|c| c.name == n).unwrap().checked;
        assert_eq!(by_name("privacy"), 3, "{}", report.render());
        assert_eq!(by_name("reexecute"), 3, "{}", report.render());
        // A seed swapped for another job's: named.
        let other = blob(
            &db,
            &format!(
                "SELECT noise_seed FROM job_results WHERE job_id = '{}'",
                ids[1]
            ),
        )
        .await;
        set_blob(
            &db,
            &format!(
                "UPDATE job_results SET noise_seed = $1 WHERE job_id = '{}'",
                ids[0]
            ),
            &other,
        )
        .await;
        expect_failure(&ctx, "receipts", "not the one the receipt commits to").await;
    }
}
