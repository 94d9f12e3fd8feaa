//! `audit verify`'s checks over a real database on every backend: a clean run passes (with a
//! risk job and an aggregate job re-executed to the same output digest), and each way of
//! tampering with the database is caught and named: an edited, deleted or reordered audit
//! entry, a swapped ciphertext, a swapped proof, a forged receipt, a plaintext transcript, an
//! untrusted key.

use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use blindsight_audit::Evidence;
use blindsight_audit::{Options, Report, verify};
use blindsight_crypto::receipt::SignedReceipt;
use blindsight_crypto::{encrypt_record, schemas, sha256_hex};
use blindsight_server::Db;
use blindsight_server::worker::{self, WorkerConfig};
use blindsight_server::{Backend, store};
use ring::signature::{Ed25519KeyPair, KeyPair};
use sqlx::Row;
use tokio::sync::watch;

use crate::common::{ADMIN, Ctx, KEY_ID, backends, config, keys, records_a, session_values};

async fn load(ctx: &Ctx, trusted: Vec<Vec<u8>>) -> Evidence {
    let mut evidence = store::evidence::load(ctx.state.db(), ctx.name)
        .await
        .unwrap();
    evidence.trusted_keys = trusted;
    evidence
}

fn published(ctx: &Ctx) -> Vec<Vec<u8>> {
    vec![ctx.state.audit_key().public_key().to_vec()]
}

async fn run(ctx: &Ctx, reexecute: usize) -> Report {
    let start = Instant::now();
    let evidence = load(ctx, published(ctx)).await;
    let loaded = start.elapsed();
    let report =
        tokio::task::spawn_blocking(move || verify(&evidence, &Options { reexecute }, &|_| {}))
            .await
            .unwrap();
    eprintln!(
        "{}: evidence loaded in {loaded:?}, verified in {:?}",
        ctx.name,
        start.elapsed() - loaded
    );
    report
}

/// Runs verify and checks it fails with `expected` in its first failure, in `check`.
async fn expect_failure(ctx: &Ctx, check: &str, expected: &str) {
    let report = run(ctx, 0).await;
    assert!(
        !report.passed,
        "{}: tampering not caught ({expected})",
        ctx.name
    );
    let first = report.first_failure.clone().unwrap_or_default();
    assert!(
        first.contains(expected),
        "{}: expected {expected:?}, first failure {first:?}\n{}",
        ctx.name,
        report.render()
    );
    let failing: Vec<&str> = report
        .checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| c.name)
        .collect();
    assert_eq!(failing.first(), Some(&check), "{}", report.render());
}

async fn exec(db: &Db, sql: &str) {
    sqlx::query(sql).execute(db.pool()).await.unwrap();
}

/// Lets the test edit the append-only log, as someone with raw database access could.
async fn drop_append_only_triggers(db: &Db) {
    match db.backend() {
        Backend::Sqlite => {
            exec(db, "DROP TRIGGER audit_log_no_update").await;
            exec(db, "DROP TRIGGER audit_log_no_delete").await;
        }
        Backend::Postgres => exec(db, "DROP TRIGGER audit_log_no_change ON audit_log").await,
    }
}

async fn blob(db: &Db, sql: &str) -> Vec<u8> {
    sqlx::query(sql)
        .fetch_one(db.pool())
        .await
        .unwrap()
        .try_get(0)
        .unwrap()
}

async fn text(db: &Db, sql: &str) -> String {
    sqlx::query(sql)
        .fetch_one(db.pool())
        .await
        .unwrap()
        .try_get(0)
        .unwrap()
}

async fn set_blob(db: &Db, sql: &str, value: &[u8]) {
    sqlx::query(sql)
        .bind(value.to_vec())
        .execute(db.pool())
        .await
        .unwrap();
}

async fn set_text(db: &Db, sql: &str, value: &str) {
    sqlx::query(sql)
        .bind(value)
        .execute(db.pool())
        .await
        .unwrap();
}

async fn create_job(ctx: &Ctx, kh: &str, body: serde_json::Value) -> String {
    let r = ctx
        .request(
            Method::POST,
            "/v1/jobs",
            Some(kh),
            serde_json::to_vec(&body).unwrap(),
        )
        .await;
    r.expect_status(StatusCode::ACCEPTED);
    r.json()["job_id"].as_str().unwrap().to_owned()
}

async fn wait_succeeded(ctx: &Ctx, kh: &str, ids: &[&str]) {
    let start = Instant::now();
    for id in ids {
        loop {
            let job = ctx.get(&format!("/v1/jobs/{id}"), Some(kh)).await.json();
            if job["status"] == "succeeded" {
                break;
            }
            assert_ne!(job["status"], "failed", "{job}");
            assert!(start.elapsed() < Duration::from_secs(900), "{job}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn audit_verify_passes_clean_data_reexecutes_jobs_and_names_each_tampering() {
    for ctx in backends(config).await {
        let db = ctx.state.db().clone();
        let r = ctx
            .request(
                Method::POST,
                "/v1/tenants",
                Some(ADMIN),
                serde_json::to_vec(&serde_json::json!({
                    "name": "Clinic", "tenant_id": "tenant-a", "min_cohort_size": 2
                }))
                .unwrap(),
            )
            .await;
        r.expect_status(StatusCode::CREATED);
        let tokens = &r.json()["tokens"];
        let kh = tokens["keyholder"].as_str().unwrap().to_owned();
        let ingest = tokens["ingest"].as_str().unwrap().to_owned();
        ctx.register(&kh, &keys().0).await;
        // rec-0 … rec-3: north, south, north, south.
        for r in &records_a()[..4] {
            ctx.upload(&ingest, r)
                .await
                .expect_status(StatusCode::CREATED);
        }
        let risk = create_job(
            &ctx,
            &kh,
            serde_json::json!({"kind": "risk_score", "key_id": KEY_ID,
                "model": {"id": "crisis", "version": 1}, "select": {"record_ids": ["rec-0", "rec-1"]}}),
        )
        .await;
        let aggregate = create_job(
            &ctx,
            &kh,
            serde_json::json!({"kind": "aggregate", "key_id": KEY_ID,
                "query": {"aggregates": [{"op": "count"}, {"op": "max", "field": "mood_after"}]},
                "select": {"cohort": "north"}}),
        )
        .await;
        let (stop, stopped) = watch::channel(false);
        let workers = tokio::spawn(worker::run(
            ctx.state.clone(),
            1,
            WorkerConfig {
                lease: Duration::from_secs(60),
                poll: Duration::from_millis(100),
            },
            stopped,
        ));
        wait_succeeded(&ctx, &kh, &[&risk, &aggregate]).await;
        stop.send(true).unwrap();
        workers.await.unwrap();

        // The receipt is served, and names the job, its function and its output.
        let r = ctx
            .get(&format!("/v1/jobs/{risk}/receipt"), Some(&kh))
            .await;
        r.expect_status(StatusCode::OK);
        let signed: SignedReceipt = serde_json::from_slice(&r.body).unwrap();
        let receipt = signed.verify(&published(&ctx)).unwrap();
        assert_eq!(receipt.job_id, risk);
        assert_eq!(receipt.function, "risk_score/crisis-v1");
        assert_eq!(receipt.inputs, 2);
        let output = ctx.get(&format!("/v1/jobs/{risk}/result"), Some(&kh)).await;
        assert_eq!(receipt.output_digest, sha256_hex(&output.body));

        // A clean run passes every check; both jobs re-execute to their receipts' digests.
        let report = run(&ctx, 2).await;
        assert!(report.passed, "{}: {}", ctx.name, report.render());
        let reexecuted = report
            .checks
            .iter()
            .find(|c| c.name == "reexecute")
            .unwrap();
        assert_eq!(reexecuted.checked, 2, "{}", report.render());
        let by_name = |n: &str| report.checks.iter().find(|c| c.name == n).unwrap().checked;
        assert_eq!(by_name("proofs"), 4);
        assert_eq!(by_name("receipts"), 2);
        assert_eq!(by_name("manifests"), 1);
        // Manifest, app bundle, server key, 4 proven lists, 4 transcripts, 2 outputs.
        assert_eq!(by_name("storage"), 13);
        assert!(report.render().contains("result: every check passed"));

        // An untrusted key: the heads are not signed by it.
        let stranger = Ed25519KeyPair::from_seed_unchecked(&[9u8; 32]).unwrap();
        let evidence = load(&ctx, vec![stranger.public_key().as_ref().to_vec()]).await;
        let report = verify(&evidence, &Options::default(), &|_| {});
        assert!(
            report
                .first_failure
                .as_deref()
                .unwrap_or_default()
                .contains("head: signed by key"),
            "{}",
            report.render()
        );

        drop_append_only_triggers(&db).await;
        let chain = "chain = 'tenant-a'";

        // An edited entry.
        let body = text(
            &db,
            &format!("SELECT body FROM audit_log WHERE {chain} AND seq = 3"),
        )
        .await;
        set_text(
            &db,
            &format!("UPDATE audit_log SET body = $1 WHERE {chain} AND seq = 3"),
            &body.replace("verified", "skipped"),
        )
        .await;
        expect_failure(&ctx, "chain", "entry 3: hash does not match its contents").await;
        set_text(
            &db,
            &format!("UPDATE audit_log SET body = $1 WHERE {chain} AND seq = 3"),
            &body,
        )
        .await;

        // Two entries reordered (their contents swap places).
        exec(
            &db,
            &format!("UPDATE audit_log SET seq = 1000 WHERE {chain} AND seq = 4"),
        )
        .await;
        exec(
            &db,
            &format!("UPDATE audit_log SET seq = 4 WHERE {chain} AND seq = 5"),
        )
        .await;
        exec(
            &db,
            &format!("UPDATE audit_log SET seq = 5 WHERE {chain} AND seq = 1000"),
        )
        .await;
        expect_failure(&ctx, "chain", "entry 4: hash does not chain").await;
        exec(
            &db,
            &format!("UPDATE audit_log SET seq = 1000 WHERE {chain} AND seq = 5"),
        )
        .await;
        exec(
            &db,
            &format!("UPDATE audit_log SET seq = 5 WHERE {chain} AND seq = 4"),
        )
        .await;
        exec(
            &db,
            &format!("UPDATE audit_log SET seq = 4 WHERE {chain} AND seq = 1000"),
        )
        .await;

        // A deleted entry (restored from a copy afterwards).
        exec(&db, "CREATE TABLE audit_copy AS SELECT * FROM audit_log").await;
        exec(
            &db,
            &format!("DELETE FROM audit_log WHERE {chain} AND seq = 3"),
        )
        .await;
        expect_failure(&ctx, "chain", "entry 3: missing").await;
        exec(
            &db,
            &format!("INSERT INTO audit_log SELECT * FROM audit_copy WHERE {chain} AND seq = 3"),
        )
        .await;
        exec(&db, "DROP TABLE audit_copy").await;

        // A swapped ciphertext: rec-0's row holds rec-2's proven list.
        let rec =
            |id: &str| format!("FROM records WHERE tenant_id = 'tenant-a' AND record_id = '{id}'");
        let original = blob(&db, &format!("SELECT proven_list {}", rec("rec-0"))).await;
        let other = blob(&db, &format!("SELECT proven_list {}", rec("rec-2"))).await;
        let set_list = "UPDATE records SET proven_list = $1 WHERE tenant_id = 'tenant-a' AND record_id = 'rec-0'";
        set_blob(&db, set_list, &other).await;
        expect_failure(
            &ctx,
            "proofs",
            "record \"rec-0\": proof does not verify with its metadata",
        )
        .await;

        // A swapped proof: a fresh, valid proven list for rec-0's own metadata and values, with
        // its digest column updated to match. Only the log and the receipt can tell.
        let meta = records_a()[0].metadata.clone();
        let forged = encrypt_record(
            &keys().0.app,
            &schemas::session_v1(),
            &meta,
            &session_values(0),
        )
        .unwrap()
        .encode()
        .unwrap();
        set_blob(&db, set_list, &forged).await;
        set_text(
            &db,
            "UPDATE records SET proven_list_digest = $1 WHERE tenant_id = 'tenant-a' AND record_id = 'rec-0'",
            &sha256_hex(&forged),
        )
        .await;
        expect_failure(
            &ctx,
            "proofs",
            "record \"rec-0\": stored ciphertext differs from the one logged at ingest",
        )
        .await;
        let report = run(&ctx, 0).await;
        let receipts = report.checks.iter().find(|c| c.name == "receipts").unwrap();
        assert!(
            receipts.failures.iter().any(|f| f.contains(&risk)
                && f.contains("input digests do not match the stored ciphertext")),
            "{}",
            report.render()
        );
        set_blob(&db, set_list, &original).await;
        set_text(
            &db,
            "UPDATE records SET proven_list_digest = $1 WHERE tenant_id = 'tenant-a' AND record_id = 'rec-0'",
            &sha256_hex(&original),
        )
        .await;

        // A forged receipt: another output digest under the server's signature, then the
        // same re-signed by a key that is not the server's.
        let stored = text(
            &db,
            &format!("SELECT receipt FROM job_results WHERE job_id = '{risk}'"),
        )
        .await;
        let mut forged: SignedReceipt = serde_json::from_str(&stored).unwrap();
        forged.receipt = forged
            .receipt
            .replace(&receipt.output_digest, &"0".repeat(64));
        let set_receipt = format!("UPDATE job_results SET receipt = $1 WHERE job_id = '{risk}'");
        set_text(&db, &set_receipt, &serde_json::to_string(&forged).unwrap()).await;
        expect_failure(
            &ctx,
            "receipts",
            &format!("job {risk}: receipt signature does not verify"),
        )
        .await;
        forged.key_id = sha256_hex(stranger.public_key().as_ref());
        forged.signature = hex::encode(
            stranger
                .sign(&blindsight_crypto::receipt::receipt_message(
                    &forged.receipt,
                ))
                .as_ref(),
        );
        set_text(&db, &set_receipt, &serde_json::to_string(&forged).unwrap()).await;
        expect_failure(
            &ctx,
            "receipts",
            &format!("job {risk}: receipt is signed by key {}", forged.key_id),
        )
        .await;
        set_text(&db, &set_receipt, &stored).await;
        // A receipt removed.
        exec(
            &db,
            &format!("UPDATE job_results SET receipt = NULL WHERE job_id = '{risk}'"),
        )
        .await;
        expect_failure(&ctx, "receipts", "succeeded without a receipt").await;
        set_text(&db, &set_receipt, &stored).await;

        // A transcript stored in the clear.
        let sealed = blob(&db, &format!("SELECT sealed_transcript {}", rec("rec-1"))).await;
        let set_transcript = "UPDATE records SET sealed_transcript = $1 WHERE tenant_id = 'tenant-a' AND record_id = 'rec-1'";
        let mut clear = vec![1u8];
        clear.extend_from_slice(&[b'a'; 32]);
        clear.extend_from_slice(b"I have felt hopeless and alone for weeks now, every single day.");
        set_blob(&db, set_transcript, &clear).await;
        expect_failure(
            &ctx,
            "storage",
            "record \"rec-1\": sealed transcript: looks like plaintext",
        )
        .await;
        set_blob(&db, set_transcript, &sealed).await;

        // Every tampering undone: clean again.
        let report = run(&ctx, 0).await;
        assert!(report.passed, "{}: {}", ctx.name, report.render());
        ctx.finish().await;
    }
}

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
        layout
            .par_iter()
            .enumerate()
            .map(|(i, (cohort, offset))| {
                let mut meta = crate::common::metadata("tenant-r", &format!("r-{i}"), cohort);
                meta.recorded_at = Some(((ROLLUP_DAY + offset) * 86_400 + 60 * i as i64) as u64);
                crate::common::make_record(&keys().0, &meta, i as u32)
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
