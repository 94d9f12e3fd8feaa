//! The audit log on every backend: an entry per event in the tenant's chain, written with the
//! event; chains that verify with the published key; tampering named; concurrent writers that
//! never fork a chain; refused requests that leave nothing but the documented
//! failed-authentication entries; and a signing key that is owner-only and survives restarts.
//!
//! Size: one test per way the audit log can be tampered with or raced, sharing one fixture;
//! split across files they would each rebuild it.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use blindsight_crypto::compute::crisis_v1;
use blindsight_crypto::{FieldSpec, RecordSchema, sha256_hex};
use blindsight_server::Backend;
use blindsight_server::audit::{self, AUDIT_KEY_FILE, Entry, KeyError, SignedHead, SigningKey};
use blindsight_server::store;
use blindsight_server::store::jobs;
use tower::ServiceExt;

use crate::common::{ADMIN, Ctx, KEY_ID, TENANT_A, TENANT_B, backends, config, keys, records_a};

/// The published key, the signed head and every entry of the chain a token reads, fetched
/// page by page as an auditor would.
async fn fetch(ctx: &Ctx, token: &str) -> (Vec<u8>, SignedHead, Vec<Entry>) {
    let key = ctx.get("/v1/audit/key", None).await;
    key.expect_status(StatusCode::OK);
    assert_eq!(key.json()["algorithm"], "ed25519");
    let public_key = hex::decode(key.json()["public_key"].as_str().unwrap()).unwrap();
    let r = ctx.get("/v1/audit/head", Some(token)).await;
    r.expect_status(StatusCode::OK);
    let head: SignedHead = serde_json::from_slice(&r.body).unwrap();
    let mut entries = Vec::new();
    let mut after = 0;
    loop {
        let r = ctx
            .get(&format!("/v1/audit?after={after}&limit=3"), Some(token))
            .await;
        r.expect_status(StatusCode::OK);
        let page = r.json();
        let batch: Vec<Entry> = serde_json::from_value(page["entries"].clone()).unwrap();
        entries.extend(batch);
        match page["next_after"].as_i64() {
            Some(n) => after = n,
            None => break,
        }
    }
    (public_key, head, entries)
}

/// Fetches and verifies a chain; the error message when it does not verify.
pub(crate) async fn verify(
    ctx: &Ctx,
    chain: Option<&str>,
    token: &str,
) -> Result<Vec<Entry>, String> {
    let (key, head, entries) = fetch(ctx, token).await;
    audit::verify_chain(chain, &entries, &head, &key).map_err(|e| e.to_string())?;
    Ok(entries)
}

fn kinds(entries: &[Entry]) -> Vec<&str> {
    entries.iter().map(|e| e.kind.as_str()).collect()
}

fn body(e: &Entry) -> serde_json::Value {
    serde_json::from_str(&e.body).unwrap()
}

pub(crate) fn schema(version: u32) -> RecordSchema {
    RecordSchema {
        id: "intake".into(),
        version,
        fields: vec![FieldSpec::uint("score", 0, 27)],
        lane: Default::default(),
    }
}

pub(crate) async fn put_schema(ctx: &Ctx, token: &str, version: u32) {
    ctx.request(
        Method::PUT,
        &format!("/v1/schemas/intake/{version}"),
        Some(token),
        serde_json::to_vec(&schema(version)).unwrap(),
    )
    .await
    .expect_status(StatusCode::CREATED);
}

async fn post_json(ctx: &Ctx, path: &str, token: &str, body: serde_json::Value) -> String {
    let r = ctx
        .request(
            Method::POST,
            path,
            Some(token),
            serde_json::to_vec(&body).unwrap(),
        )
        .await;
    assert!(
        r.status.is_success(),
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    r.json()["job_id"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn every_event_is_in_its_tenants_chain_and_the_chain_verifies() {
    let (ka, kb) = keys();
    for ctx in backends(config).await {
        let db = ctx.state.audit_log();
        let a = ctx.create_tenant(TENANT_A).await;
        let b = ctx.create_tenant(TENANT_B).await;
        let (kh, ingest, auditor) = (
            a.tokens.keyholder.expose(),
            a.tokens.ingest.expose(),
            a.tokens.auditor.expose(),
        );
        ctx.register(kh, ka).await;
        // The same bundle again stores nothing, and records nothing.
        ctx.register(kh, ka).await;
        put_schema(&ctx, kh, 1).await;
        for rec in &records_a()[..2] {
            ctx.upload(ingest, rec)
                .await
                .expect_status(StatusCode::CREATED);
        }
        let mut model = crisis_v1();
        model.id = "mine".into();
        post_json(
            &ctx,
            "/v1/models",
            kh,
            serde_json::to_value(&model).unwrap(),
        )
        .await;
        let risk = |ids: &[&str]| {
            serde_json::json!({"kind": "risk_score", "key_id": KEY_ID,
                "model": {"id": "mine", "version": 1}, "select": {"record_ids": ids}})
        };
        // One job succeeds (a worker's write, here without the FHE work); one fails twice.
        let done = post_json(&ctx, "/v1/jobs", kh, risk(&["rec-0", "rec-1"])).await;
        let lease = jobs::claim(db, Duration::from_secs(60))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(lease.job.job_id, done);
        assert!(
            jobs::complete(db, &lease, b"an output", None, None)
                .await
                .unwrap()
        );
        let r = ctx.get(&format!("/v1/jobs/{done}/result"), Some(kh)).await;
        r.expect_status(StatusCode::OK);
        let failing = post_json(&ctx, "/v1/jobs", kh, risk(&["rec-1"])).await;
        let lease = jobs::claim(db, Duration::from_secs(60))
            .await
            .unwrap()
            .unwrap();
        assert!(
            jobs::fail(db, &lease, "the key went away", true)
                .await
                .unwrap()
        );
        let lease = jobs::claim(db, Duration::from_secs(60))
            .await
            .unwrap()
            .unwrap();
        assert!(jobs::fail(db, &lease, "still gone", false).await.unwrap());
        // A transcript download is recorded; a proof download is not.
        ctx.get("/v1/records/rec-1/transcript", Some(kh))
            .await
            .expect_status(StatusCode::OK);
        ctx.get("/v1/records/rec-1/proof", Some(auditor))
            .await
            .expect_status(StatusCode::OK);
        // A failed authentication goes to the server-wide chain.
        ctx.get("/v1/audit", Some("bst_not-a-token"))
            .await
            .expect(401, "unauthorized");
        // Tenant B's own events stay in B's chain.
        ctx.register(b.tokens.keyholder.expose(), kb).await;

        let entries = verify(&ctx, Some(TENANT_A), auditor).await.unwrap();
        assert_eq!(
            kinds(&entries),
            [
                "tenant.created",
                "keyset.registered",
                "schema.registered",
                "record.ingested",
                "record.ingested",
                "model.registered",
                "job.created",
                "job.succeeded",
                "job.result_downloaded",
                "job.created",
                "job.attempt_failed",
                "job.failed",
                "record.transcript_downloaded",
            ],
            "{}",
            ctx.name
        );
        // The keyholder reads the same chain.
        assert_eq!(verify(&ctx, Some(TENANT_A), kh).await.unwrap(), entries);
        assert_eq!(body(&entries[0])["min_cohort_size"], 10);
        assert_eq!(
            body(&entries[1])["manifest_fingerprint"],
            ka.app.manifest().fingerprint().unwrap()
        );
        assert_eq!(body(&entries[1])["bundle_digest"], sha256_hex(&ka.bundle));
        assert_eq!(body(&entries[2])["schema_id"], "intake");
        let ingested = body(&entries[3]);
        assert_eq!(ingested["record_id"], "rec-0");
        assert_eq!(ingested["key_id"], KEY_ID);
        assert_eq!(ingested["schema_id"], "session");
        assert_eq!(ingested["proof"], "verified");
        assert_eq!(
            ingested["proven_list_digest"],
            sha256_hex(&records_a()[0].proven_list)
        );
        assert_eq!(body(&entries[5])["model_id"], "mine");
        let created = body(&entries[6]);
        assert_eq!(created["job_id"], done.as_str());
        assert_eq!(created["function"], "risk_score/mine-v1");
        assert_eq!(created["records"], 2);
        assert_eq!(created["model_digest"], body(&entries[5])["digest"]);
        let (_, spec) = sqlx::query_as::<_, (String, String)>(
            "SELECT job_id, spec FROM jobs WHERE job_id = $1",
        )
        .bind(&done)
        .fetch_one(db.pool())
        .await
        .unwrap();
        assert_eq!(created["spec_digest"], sha256_hex(spec.as_bytes()));
        let output_digest = sha256_hex(b"an output");
        assert_eq!(body(&entries[7])["result_digest"], output_digest.as_str());
        assert_eq!(body(&entries[8])["result_digest"], output_digest.as_str());
        assert_eq!(body(&entries[9])["job_id"], failing.as_str());
        assert_eq!(body(&entries[10])["error"], "the key went away");
        assert_eq!(body(&entries[10])["retry"], true);
        assert_eq!(body(&entries[11])["attempt"], 2);
        assert_eq!(
            body(&entries[12])["sealed_transcript_digest"],
            sha256_hex(&records_a()[1].sealed_transcript)
        );
        // Ids, digests and outcomes only: no token, no ciphertext, no transcript.
        let everything = serde_json::to_string(&entries).unwrap();
        for tok in [&a.tokens.keyholder, &a.tokens.ingest, &a.tokens.auditor] {
            assert!(!everything.contains(&tok.expose()[4..]));
        }
        assert!(entries.iter().all(|e| e.body.len() < 600), "{everything}");

        // B sees only its own chain; the operator the server-wide one; an app token none.
        let b_entries = verify(&ctx, Some(TENANT_B), b.tokens.auditor.expose())
            .await
            .unwrap();
        assert_eq!(kinds(&b_entries), ["tenant.created", "keyset.registered"]);
        let server = verify(&ctx, None, ADMIN).await.unwrap();
        assert_eq!(kinds(&server), ["auth.failed"]);
        assert_eq!(
            body(&server[0]),
            serde_json::json!({"method": "GET", "reason": "invalid-token", "route": "/v1/audit"})
        );
        for path in ["/v1/audit", "/v1/audit/head"] {
            ctx.get(path, Some(ingest)).await.expect(403, "forbidden");
        }
        // A tenant's auditor cannot pass another chain off as its own.
        let (key, head_b, _) = fetch(&ctx, b.tokens.auditor.expose()).await;
        let err = audit::verify_chain(Some(TENANT_A), &entries, &head_b, &key).unwrap_err();
        assert!(err.to_string().starts_with("head: signed for"), "{err}");
        ctx.finish().await;
    }
}

#[tokio::test]
async fn the_signed_head_verifies_with_the_published_key_only() {
    let ctx = Ctx::new("sqlite", config()).await.unwrap();
    let a = ctx.create_tenant(TENANT_A).await;
    let (key, head, entries) = fetch(&ctx, a.tokens.auditor.expose()).await;
    assert_eq!(head.seq, 1);
    assert_eq!(head.hash, entries[0].hash);
    assert_eq!(head.key_id, ctx.state.audit_key().key_id());
    assert_eq!(key, ctx.state.audit_key().public_key());
    head.verify_signature(&key).unwrap();
    // The signature covers the chain, seq, hash and time: change any and it fails.
    for tampered in [
        SignedHead {
            at: head.at - 1,
            ..head.clone()
        },
        SignedHead {
            seq: 2,
            ..head.clone()
        },
        SignedHead {
            tenant_id: Some(TENANT_B.into()),
            ..head.clone()
        },
        SignedHead {
            hash: hex::encode([1u8; 32]),
            ..head.clone()
        },
    ] {
        assert!(matches!(
            tampered.verify_signature(&key),
            Err(audit::AuditError::BadSignature { .. })
        ));
    }
    // Another server's key is not this one.
    let other = SigningKey::ephemeral().unwrap();
    assert!(matches!(
        head.verify_signature(other.public_key()),
        Err(audit::AuditError::WrongKey { .. })
    ));
    // An empty chain has a head too: the server-wide one of a fresh server.
    let (_, server_head, server_entries) = fetch(&ctx, ADMIN).await;
    assert_eq!((server_head.seq, server_entries.len()), (0, 0));
    audit::verify_chain(None, &server_entries, &server_head, &key).unwrap();
    ctx.finish().await;
}

/// Runs SQL that the append-only triggers would refuse, with them out of the way (what an
/// attacker with database access can do).
pub(crate) async fn disable_triggers(ctx: &Ctx) {
    let pool = ctx.state.db().pool();
    match ctx.state.db().backend() {
        Backend::Sqlite => {
            for t in ["audit_log_no_update", "audit_log_no_delete"] {
                sqlx::query(&format!("DROP TRIGGER {t}"))
                    .execute(pool)
                    .await
                    .unwrap();
            }
        }
        Backend::Postgres => {
            sqlx::query("ALTER TABLE audit_log DISABLE TRIGGER USER")
                .execute(pool)
                .await
                .unwrap();
        }
    }
}

pub(crate) async fn exec(ctx: &Ctx, sql: &str) {
    sqlx::query(sql)
        .execute(ctx.state.db().pool())
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

#[tokio::test]
async fn tampering_with_the_stored_log_is_caught_and_named() {
    for ctx in backends(config).await {
        let a = ctx.create_tenant(TENANT_A).await;
        let (kh, auditor) = (a.tokens.keyholder.expose(), a.tokens.auditor.expose());
        for v in 1..=6 {
            put_schema(&ctx, kh, v).await;
        }
        let clean = verify(&ctx, Some(TENANT_A), auditor).await.unwrap();
        assert_eq!(clean.len(), 7);
        // An auditor keeps the heads it has verified.
        let (_, kept, _) = fetch(&ctx, auditor).await;

        // The log refuses changes outright.
        for sql in [
            "UPDATE audit_log SET body = '{}' WHERE chain = 'tenant-a' AND seq = 3",
            "DELETE FROM audit_log WHERE chain = 'tenant-a' AND seq = 3",
        ] {
            let err = sqlx::query(sql)
                .execute(ctx.state.db().pool())
                .await
                .unwrap_err();
            assert!(err.to_string().contains("append-only"), "{err}");
        }
        if ctx.state.db().backend() == Backend::Postgres {
            let err = sqlx::query("TRUNCATE audit_log")
                .execute(ctx.state.db().pool())
                .await
                .unwrap_err();
            assert!(err.to_string().contains("append-only"), "{err}");
        }
        disable_triggers(&ctx).await;
        let check = || verify(&ctx, Some(TENANT_A), auditor);

        // Edit an entry.
        exec(&ctx, "UPDATE audit_log SET body = REPLACE(body, 'intake', 'outtake') WHERE chain = 'tenant-a' AND seq = 3").await;
        assert_eq!(
            check().await.unwrap_err(),
            "entry 3: hash does not match its contents",
            "{}",
            ctx.name
        );
        exec(&ctx, "UPDATE audit_log SET body = REPLACE(body, 'outtake', 'intake') WHERE chain = 'tenant-a' AND seq = 3").await;
        assert_eq!(check().await.unwrap(), clean);

        // Delete one.
        exec(
            &ctx,
            "CREATE TABLE saved AS SELECT * FROM audit_log WHERE chain = 'tenant-a' AND seq = 4",
        )
        .await;
        exec(
            &ctx,
            "DELETE FROM audit_log WHERE chain = 'tenant-a' AND seq = 4",
        )
        .await;
        assert_eq!(
            check().await.unwrap_err(),
            "entry 4: missing (the log skips from entry 3 to entry 5)"
        );
        exec(&ctx, "INSERT INTO audit_log SELECT * FROM saved").await;
        assert_eq!(check().await.unwrap(), clean);

        // Reorder two.
        for sql in [
            "UPDATE audit_log SET seq = 1000 WHERE chain = 'tenant-a' AND seq = 2",
            "UPDATE audit_log SET seq = 2 WHERE chain = 'tenant-a' AND seq = 3",
            "UPDATE audit_log SET seq = 3 WHERE chain = 'tenant-a' AND seq = 1000",
        ] {
            exec(&ctx, sql).await;
        }
        assert_eq!(check().await.unwrap_err(), "entry 2: hash does not chain");
        for sql in [
            "UPDATE audit_log SET seq = 1000 WHERE chain = 'tenant-a' AND seq = 3",
            "UPDATE audit_log SET seq = 3 WHERE chain = 'tenant-a' AND seq = 2",
            "UPDATE audit_log SET seq = 2 WHERE chain = 'tenant-a' AND seq = 1000",
        ] {
            exec(&ctx, sql).await;
        }
        assert_eq!(check().await.unwrap(), clean);

        // Cut the end off: the signed head still names it.
        exec(&ctx, "DELETE FROM saved").await;
        exec(
            &ctx,
            "INSERT INTO saved SELECT * FROM audit_log WHERE chain = 'tenant-a' AND seq = 7",
        )
        .await;
        exec(
            &ctx,
            "DELETE FROM audit_log WHERE chain = 'tenant-a' AND seq = 7",
        )
        .await;
        assert_eq!(
            check().await.unwrap_err(),
            "head: names entry 7 but the log ends at entry 6"
        );
        exec(&ctx, "INSERT INTO audit_log SELECT * FROM saved").await;
        assert_eq!(check().await.unwrap(), clean);

        // Rewrite the chain from entry 2 on, the head row included: without the signing key
        // the stored head's signature no longer matches. With the key (the server itself),
        // only a head the auditor kept shows the rewrite.
        let mut forged = clean.clone();
        forged[1].body = forged[1].body.replace("intake", "outtake");
        let mut prev = forged[0].hash.clone();
        for e in forged.iter_mut().skip(1) {
            e.prev_hash = prev.clone();
            e.hash = hex::encode(e.computed_hash().unwrap());
            prev = e.hash.clone();
        }
        exec(
            &ctx,
            "DELETE FROM audit_log WHERE chain = 'tenant-a' AND seq >= 2",
        )
        .await;
        for e in &forged[1..] {
            sqlx::query(
                "INSERT INTO audit_log (chain, seq, at, kind, body, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(TENANT_A)
            .bind(e.seq)
            .bind(e.at)
            .bind(&e.kind)
            .bind(&e.body)
            .bind(&e.prev_hash)
            .bind(&e.hash)
            .execute(ctx.state.db().pool())
            .await
            .unwrap();
        }
        sqlx::query("UPDATE audit_heads SET hash = $1 WHERE chain = 'tenant-a'")
            .bind(&prev)
            .execute(ctx.state.db().pool())
            .await
            .unwrap();
        // The server kept the head it signed: it neither serves nor signs the rewritten one,
        // and writes nothing more to the chain.
        ctx.get("/v1/audit/head", Some(auditor))
            .await
            .expect(503, "audit-halted");
        ctx.request(
            Method::PUT,
            "/v1/schemas/intake/9",
            Some(kh),
            serde_json::to_vec(&schema(9)).unwrap(),
        )
        .await
        .expect(503, "audit-halted");
        // The head as stored no longer verifies without the signing key; signed with it
        // anyway (someone holding the key), only a head the auditor kept shows the rewrite.
        let rewritten = store::audit::entries(ctx.state.db(), Some(TENANT_A), 0, 100)
            .await
            .unwrap();
        let stored = store::audit::signed_head(ctx.state.db(), Some(TENANT_A))
            .await
            .unwrap()
            .unwrap();
        let key = ctx.state.audit_key();
        assert!(
            audit::verify_chain(Some(TENANT_A), &rewritten, &stored, key.public_key())
                .unwrap_err()
                .to_string()
                .starts_with("head: signature does not verify")
        );
        let digests = audit::chain::head_digests(Some(TENANT_A), &rewritten);
        let last = rewritten.last().unwrap();
        let resigned = key.sign_head(
            Some(TENANT_A),
            last.seq,
            &audit::chain::parse_hash(&last.hash).unwrap(),
            last.at,
            &digests[digests.len() - 2],
        );
        audit::verify_chain(Some(TENANT_A), &rewritten, &resigned, key.public_key()).unwrap();
        assert_eq!(
            audit::contains_head(&rewritten, &kept)
                .unwrap_err()
                .to_string(),
            "head: hash does not match entry 7"
        );
        ctx.finish().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_leave_one_unbroken_chain() {
    let (ka, _) = keys();
    for ctx in backends(config).await {
        let a = ctx.create_tenant(TENANT_A).await;
        ctx.register(a.tokens.keyholder.expose(), ka).await;
        // 16 ingests in parallel.
        let uploads: Vec<_> = records_a()[..16]
            .iter()
            .map(|rec| {
                let app = ctx.app.clone();
                let req = Request::post("/v1/records")
                    .header(
                        "authorization",
                        format!("Bearer {}", a.tokens.ingest.expose()),
                    )
                    .body(Body::from(rec.encode().unwrap()))
                    .unwrap();
                tokio::spawn(async move {
                    let r = app.oneshot(req).await.unwrap();
                    let status = r.status();
                    let body = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
                    (status, String::from_utf8_lossy(&body).into_owned())
                })
            })
            .collect();
        for u in uploads {
            let (status, body) = u.await.unwrap();
            assert_eq!(status, StatusCode::CREATED, "{body}");
        }
        // And 64 bare appends at once, to this chain, another and the server-wide one.
        let db = Arc::new(ctx.state.audit_log().clone());
        let appends: Vec<_> = (0..64)
            .map(|i| {
                let db = Arc::clone(&db);
                tokio::spawn(async move {
                    let chain = match i % 3 {
                        0 => Some(TENANT_A),
                        1 => Some("tenant-c"),
                        _ => None,
                    };
                    store::audit::append_alone(
                        &db,
                        chain,
                        &[audit::Event::LockedOut { lockout_s: i }],
                    )
                    .await
                    .unwrap()
                })
            })
            .collect();
        for t in appends {
            t.await.unwrap();
        }
        let entries = verify(&ctx, Some(TENANT_A), a.tokens.auditor.expose())
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", ctx.name));
        let ingested = kinds(&entries)
            .iter()
            .filter(|k| **k == "record.ingested")
            .count();
        assert_eq!(ingested, 16);
        assert_eq!(entries.len(), 2 + 16 + 22);
        let server = verify(&ctx, None, ADMIN).await.unwrap();
        assert_eq!(server.len(), 21);
        let (seq, _) = store::audit::head(ctx.state.db(), Some("tenant-c"))
            .await
            .unwrap();
        assert_eq!(seq, 21);
        ctx.finish().await;
    }
}

#[tokio::test]
async fn refused_requests_leave_no_entry_but_failed_authentications_do() {
    let mut c = config();
    c.guard.max_failures = 3;
    for ctx in backends(|| c.clone()).await {
        let a = ctx.create_tenant(TENANT_A).await;
        let kh = a.tokens.keyholder.expose();
        put_schema(&ctx, kh, 1).await;
        let before = ctx.snapshot().await;
        // Refusals of every kind, by valid tokens.
        ctx.request(
            Method::PUT,
            "/v1/schemas/intake/1",
            Some(kh),
            serde_json::to_vec(&schema(1)).unwrap(),
        )
        .await
        .expect_status(StatusCode::OK);
        ctx.request(Method::PUT, "/v1/schemas/intake/2", Some(kh), b"{".to_vec())
            .await
            .expect(400, "malformed-json");
        ctx.upload(a.tokens.ingest.expose(), &records_a()[0])
            .await
            .expect(422, "unknown-key-set");
        ctx.get("/v1/records/rec-0/transcript", Some(kh))
            .await
            .expect(404, "unknown-record");
        ctx.get("/v1/jobs/job-x/result", Some(kh))
            .await
            .expect(404, "unknown-job");
        ctx.get(
            "/v1/records/rec-0/transcript",
            Some(a.tokens.auditor.expose()),
        )
        .await
        .expect(403, "forbidden");
        ctx.get("/v1/audit?limit=0", Some(kh))
            .await
            .expect(400, "malformed-query");
        assert_eq!(ctx.snapshot().await, before, "{}", ctx.name);
        assert_eq!(verify(&ctx, None, ADMIN).await.unwrap().len(), 0);

        // Failed authentications are recorded, in the server-wide chain, with the lockout
        // they cause; requests refused while locked out are not.
        ctx.get("/v1/records", None)
            .await
            .expect(401, "unauthorized");
        ctx.request(
            Method::POST,
            "/v1/tenants",
            Some("not-the-admin"),
            Vec::new(),
        )
        .await
        .expect(401, "unauthorized");
        ctx.get("/v1/records/rec-0/proof", Some("bst_guess"))
            .await
            .expect(401, "unauthorized");
        ctx.get("/v1/records", Some(kh))
            .await
            .expect(429, "locked-out");
        assert_eq!(ctx.snapshot().await, before, "{}", ctx.name);
        // (The lockout is per address, the operator's reads too: read the chain directly.)
        let server = store::audit::entries(ctx.state.db(), None, 0, 100)
            .await
            .unwrap();
        assert_eq!(
            kinds(&server),
            [
                "auth.failed",
                "auth.failed",
                "auth.failed",
                "auth.locked_out"
            ]
        );
        let bodies: Vec<_> = server.iter().map(body).collect();
        assert_eq!(
            bodies[..3],
            [
                serde_json::json!({"method": "GET", "reason": "missing-token", "route": "/v1/records"}),
                serde_json::json!({"method": "POST", "reason": "invalid-token", "route": "/v1/tenants"}),
                serde_json::json!({"method": "GET", "reason": "invalid-token", "route": "/v1/records/{record_id}/proof"}),
            ]
        );
        assert_eq!(bodies[3], serde_json::json!({"lockout_s": 900}));
        let text = serde_json::to_string(&server).unwrap();
        assert!(!text.contains("not-the-admin") && !text.contains("guess"));
        ctx.finish().await;
    }
}

/// 200 bad tokens at once from one address: exactly the lockout threshold of them is checked
/// (and audited as failed), one lockout is recorded, and every other is refused as locked out.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn simultaneous_bad_tokens_are_counted_atomically() {
    for ctx in backends(config).await {
        let ctx = Arc::new(ctx);
        let requests: Vec<_> = (0..200)
            .map(|i| {
                let ctx = Arc::clone(&ctx);
                tokio::spawn(async move {
                    let token = format!("bst_guess-{i}");
                    let path = if i % 2 == 0 {
                        "/v1/records"
                    } else {
                        "/v1/jobs"
                    };
                    ctx.get(path, Some(&token)).await.slug()
                })
            })
            .collect();
        let mut slugs = Vec::new();
        for r in requests {
            slugs.push(r.await.unwrap());
        }
        let count = |s: &str| slugs.iter().filter(|x| *x == s).count();
        assert_eq!(count("unauthorized"), 10, "{}: {slugs:?}", ctx.name);
        assert_eq!(count("locked-out"), 190, "{}", ctx.name);
        let server = store::audit::entries(ctx.state.db(), None, 0, 1000)
            .await
            .unwrap();
        let kinds = kinds(&server);
        assert_eq!(
            kinds.iter().filter(|k| **k == "auth.failed").count(),
            10,
            "{kinds:?}"
        );
        assert_eq!(
            kinds.iter().filter(|k| **k == "auth.locked_out").count(),
            1,
            "{kinds:?}"
        );
        Arc::into_inner(ctx).unwrap().finish().await;
    }
}

#[test]
fn the_signing_key_file_is_owner_only_atomic_and_reused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data").join(AUDIT_KEY_FILE);
    let (key, created) = SigningKey::load_or_create(&path).unwrap();
    assert!(created);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
        let dir_mode = std::fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(dir_mode & 0o077, 0, "{dir_mode:o}");
    }
    // No temporary file is left behind.
    assert_eq!(
        std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
        1
    );
    let (again, created) = SigningKey::load_or_create(&path).unwrap();
    assert!(!created);
    assert_eq!(again.key_id(), key.key_id());
    assert_eq!(SigningKey::load(&path).unwrap().key_id(), key.key_id());
    assert!(!format!("{key:?}").contains(&hex::encode(&std::fs::read(&path).unwrap()[16..])));

    // Processes starting at once agree on one key.
    let racing = dir.path().join("race").join(AUDIT_KEY_FILE);
    let ids: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| s.spawn(|| SigningKey::load_or_create(&racing).unwrap().0))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap().key_id().to_owned())
            .collect()
    });
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");

    // Refused: a key others can read, a missing supplied key, something that is not a key.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = SigningKey::load(&path).unwrap_err();
        assert!(matches!(err, KeyError::Permissions { .. }), "{err}");
        assert!(err.to_string().contains("chmod 600"), "{err}");
        assert!(SigningKey::load_or_create(&path).is_err());
    }
    let err = SigningKey::load(&dir.path().join("absent")).unwrap_err();
    assert!(matches!(err, KeyError::Io { .. }), "{err}");
    let garbage = dir.path().join("garbage");
    {
        use std::io::Write;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        options
            .open(&garbage)
            .unwrap()
            .write_all(b"not a key")
            .unwrap();
    }
    let err = SigningKey::load(&garbage).unwrap_err();
    assert!(err.to_string().contains("PKCS#8"), "{err}");
}

#[tokio::test]
async fn each_signing_key_is_recorded_once_in_the_server_chain() {
    for ctx in backends(config).await {
        let log = ctx.state.audit_log();
        let key = ctx.state.audit_key();
        assert!(store::audit::record_signing_key(log).await.unwrap());
        assert!(!store::audit::record_signing_key(log).await.unwrap());
        // A server started with a rotated key records it, signing with it.
        let rotated = SigningKey::ephemeral().unwrap();
        let rotated_log = store::AuditLog::new(log.db().clone(), rotated.clone());
        assert!(
            store::audit::record_signing_key(&rotated_log)
                .await
                .unwrap()
        );
        let server = verify(&ctx, None, ADMIN).await.unwrap();
        assert_eq!(kinds(&server), ["audit.signing_key", "audit.signing_key"]);
        assert_eq!(body(&server[0])["key_id"], key.key_id());
        assert_eq!(
            body(&server[1])["public_key"],
            hex::encode(rotated.public_key())
        );
        ctx.finish().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configuration_changes_are_recorded_in_the_server_chain() {
    for ctx in backends(config).await {
        let db = ctx.state.audit_log();
        let settings = |min_cohort: u32| audit::Event::ServerConfig {
            min_cohort,
            lockout_after: 10,
            rate_per_token_milli: 50_000,
            max_in_flight: 256,
            request_timeout_s: 120,
            admin_enabled: true,
            trusted_proxies: "",
            max_connections: 10_000,
            header_timeout_s: 30,
            build: "blindsight-server/test",
        };
        assert!(
            store::audit::record_config(db, &settings(10))
                .await
                .unwrap()
        );
        // A restart with the same settings records nothing; a change is recorded, and so is
        // going back.
        assert!(
            !store::audit::record_config(db, &settings(10))
                .await
                .unwrap()
        );
        assert!(
            store::audit::record_config(db, &settings(25))
                .await
                .unwrap()
        );
        assert!(
            store::audit::record_config(db, &settings(10))
                .await
                .unwrap()
        );
        let server = verify(&ctx, None, ADMIN).await.unwrap();
        assert_eq!(
            kinds(&server),
            ["server.config", "server.config", "server.config"]
        );
        assert_eq!(body(&server[1])["min_cohort"], 25);
        assert_eq!(body(&server[2])["min_cohort"], 10);
        ctx.finish().await;
    }
}

/// The binary creates its key under the data directory on first start, owner-only, logs only
/// its id, and uses the same key after a restart.
#[test]
fn serve_creates_the_key_once_and_reuses_it() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let start = || {
        let mut child = Command::new(env!("CARGO_BIN_EXE_blindsight-server"))
            .args(["serve", "--listen", "127.0.0.1:0", "--workers", "0"])
            .env("BLINDSIGHT_DATA_DIR", dir.path())
            .env("BLINDSIGHT_ADMIN_TOKEN", ADMIN)
            .env("BLINDSIGHT_LOG", "info")
            .env_remove("BLINDSIGHT_DATABASE_URL")
            .env_remove("BLINDSIGHT_AUDIT_KEY_FILE")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let mut log = String::new();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        for line in lines.by_ref() {
            let line = line.unwrap();
            log.push_str(&line);
            log.push('\n');
            if line.contains("serving") || line.contains("error") {
                break;
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(log.contains("serving"), "{log}");
        let key_id = log
            .split("key_id=")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .unwrap_or_else(|| panic!("{log}"))
            .trim_matches('"')
            .to_owned();
        (key_id, log)
    };
    let (first, log) = start();
    assert!(log.contains("created=true"), "{log}");
    assert!(log.contains("configuration change recorded"), "{log}");
    let path = dir.path().join(AUDIT_KEY_FILE);
    let secret = std::fs::read(&path).unwrap();
    // The PKCS#8 document carries the 32-byte seed; it never reaches the log.
    assert!(!log.contains(&hex::encode(&secret[16..48])), "{log}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }
    let (second, log) = start();
    assert!(log.contains("created=false"), "{log}");
    assert!(!log.contains("configuration change recorded"), "{log}");
    assert_eq!(first, second);
    assert_eq!(SigningKey::load(&path).unwrap().key_id(), first);
}
