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

pub(crate) fn published(ctx: &Ctx) -> Vec<Vec<u8>> {
    vec![ctx.state.audit_key().public_key().to_vec()]
}

pub(crate) async fn run(ctx: &Ctx, reexecute: usize) -> Report {
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
pub(crate) async fn expect_failure(ctx: &Ctx, check: &str, expected: &str) {
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

pub(crate) async fn exec(db: &Db, sql: &str) {
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

pub(crate) async fn blob(db: &Db, sql: &str) -> Vec<u8> {
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

pub(crate) async fn set_blob(db: &Db, sql: &str, value: &[u8]) {
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

pub(crate) async fn create_job(ctx: &Ctx, kh: &str, body: serde_json::Value) -> String {
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

pub(crate) async fn wait_succeeded(ctx: &Ctx, kh: &str, ids: &[&str]) {
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
                ..WorkerConfig::default()
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
            records_a()[0].transcript_digest().as_ref(),
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

        // A sealed transcript changed by one byte: it no longer matches the digest stored
        // beside it; with that digest rewritten to match, the proof (bound at ingest to the
        // transcript's digest) fails.
        let sealed = blob(&db, &format!("SELECT sealed_transcript {}", rec("rec-1"))).await;
        let set_transcript = "UPDATE records SET sealed_transcript = $1 WHERE tenant_id = 'tenant-a' AND record_id = 'rec-1'";
        let set_digest = "UPDATE records SET sealed_transcript_digest = $1 WHERE tenant_id = 'tenant-a' AND record_id = 'rec-1'";
        let mut torn = sealed.clone();
        *torn.last_mut().unwrap() ^= 1;
        set_blob(&db, set_transcript, &torn).await;
        expect_failure(
            &ctx,
            "proofs",
            "record \"rec-1\": stored sealed transcript does not match its stored digest",
        )
        .await;
        set_text(&db, set_digest, &sha256_hex(&torn)).await;
        expect_failure(
            &ctx,
            "proofs",
            "record \"rec-1\": proof does not verify with its metadata and transcript",
        )
        .await;
        set_text(&db, set_digest, &sha256_hex(&sealed)).await;

        // A transcript stored in the clear (its digest rewritten to match, so the storage
        // check is not the only one to name it: the proof fails too).
        let mut clear = vec![1u8];
        clear.extend_from_slice(&[b'a'; 32]);
        clear.extend_from_slice(b"I have felt hopeless and alone for weeks now, every single day.");
        set_blob(&db, set_transcript, &clear).await;
        set_text(&db, set_digest, &sha256_hex(&clear)).await;
        let report = run(&ctx, 0).await;
        let failures = |name: &str| {
            report
                .checks
                .iter()
                .find(|c| c.name == name)
                .map(|c| c.failures.join("\n"))
                .unwrap_or_default()
        };
        assert!(
            failures("storage")
                .contains("record \"rec-1\": sealed transcript: looks like plaintext"),
            "{}",
            report.render()
        );
        assert!(
            failures("proofs").contains("record \"rec-1\": proof does not verify"),
            "{}",
            report.render()
        );
        set_blob(&db, set_transcript, &sealed).await;
        set_text(&db, set_digest, &sha256_hex(&sealed)).await;

        // Every tampering undone: clean again.
        let report = run(&ctx, 0).await;
        assert!(report.passed, "{}: {}", ctx.name, report.render());
        ctx.finish().await;
    }
}
