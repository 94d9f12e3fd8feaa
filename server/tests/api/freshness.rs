//! Audit freshness: the server keeps the heads it signed beside its signing key and never
//! appends to or signs a chain that no longer extends them (entries removed, an older backup
//! restored), until an operator resolves it; the resolution is recorded in the chain.

use std::path::Path;
use std::process::Command;

use axum::http::Method;
use blindsight_server::audit::{self, AUDIT_KEY_FILE, SigningKey, witness::HEADS_SUFFIX};
use blindsight_server::db::SQLITE_FILE;
use blindsight_server::worker::WorkerConfig;
use blindsight_server::{Launch, Server, store};

use crate::audit::{disable_triggers, exec, put_schema, schema, verify};
use crate::common::{Ctx, TENANT_A, backends, config};

/// Removes a chain's last entries and moves its head back to entry `to`, as someone with
/// write access to the database but not the signing key could; `blank` also drops the
/// stored signature.
async fn cut_chain(ctx: &Ctx, tenant: &str, to: i64, blank: bool) {
    disable_triggers(ctx).await;
    exec(
        ctx,
        &format!("DELETE FROM audit_log WHERE chain = '{tenant}' AND seq > {to}"),
    )
    .await;
    let set_signature = if blank {
        ", key_id = NULL, signature = NULL"
    } else {
        ""
    };
    exec(
        ctx,
        &format!(
            "UPDATE audit_heads SET seq = l.seq, hash = l.hash, at = l.at{set_signature} \
             FROM (SELECT seq, hash, at FROM audit_log WHERE chain = '{tenant}' AND seq = {to}) AS l \
             WHERE audit_heads.chain = '{tenant}'"
        ),
    )
    .await;
}

#[tokio::test]
async fn a_shortened_chain_is_never_signed_and_halts_until_resolved() {
    for ctx in backends(config).await {
        let a = ctx.create_tenant(TENANT_A).await;
        let (kh, auditor) = (a.tokens.keyholder.expose(), a.tokens.auditor.expose());
        for v in 1..=4 {
            put_schema(&ctx, kh, v).await;
        }
        assert_eq!(
            verify(&ctx, Some(TENANT_A), auditor).await.unwrap().len(),
            5
        );
        ctx.get("/readyz", None)
            .await
            .expect_status(axum::http::StatusCode::OK);

        // The last two entries go, the head moves back and loses its signature.
        cut_chain(&ctx, TENANT_A, 3, true).await;
        let r = ctx.get("/v1/audit/head", Some(auditor)).await;
        r.expect(503, "audit-halted");
        let detail = r.json()["detail"].as_str().unwrap().to_owned();
        assert!(
            detail.contains("(entry 5,") && detail.contains("ends at entry 3"),
            "{}: {detail}",
            ctx.name
        );
        // Nothing is written to the chain, nor is the event it would record.
        ctx.request(
            Method::PUT,
            "/v1/schemas/intake/5",
            Some(kh),
            serde_json::to_vec(&schema(5)).unwrap(),
        )
        .await
        .expect(503, "audit-halted");
        let stored: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM schemas WHERE schema_version = 5")
                .fetch_one(ctx.state.db().pool())
                .await
                .unwrap();
        assert_eq!(stored, 0, "{}", ctx.name);
        let ready = ctx.get("/readyz", None).await;
        ready.expect(503, "audit-halted");
        // Other tenants' chains are not halted.
        let b = ctx.create_tenant("tenant-b").await;
        put_schema(&ctx, b.tokens.keyholder.expose(), 1).await;

        // The operator resolves it: the incident is the chain's next entry.
        let resolved = store::audit::resolve(ctx.state.audit_log(), "test: entries removed")
            .await
            .unwrap();
        assert_eq!(resolved.len(), 1, "{}", ctx.name);
        let (divergence, entry) = &resolved[0];
        assert_eq!(divergence.cause(), "shortened");
        assert_eq!((entry.seq, entry.kind.as_str()), (4, "audit.head_rewound"));
        let body: serde_json::Value = serde_json::from_str(&entry.body).unwrap();
        assert_eq!(body["kept_seq"], 5);
        assert_eq!(body["found_seq"], 3);
        assert_eq!(body["reason"], "test: entries removed");
        ctx.get("/readyz", None)
            .await
            .expect_status(axum::http::StatusCode::OK);
        put_schema(&ctx, kh, 5).await;
        let entries = verify(&ctx, Some(TENANT_A), auditor).await.unwrap();
        assert_eq!(entries.len(), 5);
        // Nothing left to resolve.
        assert!(
            store::audit::resolve(ctx.state.audit_log(), "again")
                .await
                .unwrap()
                .is_empty()
        );
        ctx.finish().await;
    }
}

fn launch(dir: &Path, key: SigningKey) -> Launch {
    let mut config = config();
    config.audit_key = Some(key.clone());
    Launch {
        database_url: None,
        data_dir: dir.to_owned(),
        audit_key: key,
        config,
        workers: 0,
        worker: WorkerConfig::default(),
    }
}

async fn open(dir: &Path) -> Ctx {
    let (key, _) = SigningKey::load_or_create(&dir.join(AUDIT_KEY_FILE)).unwrap();
    let server = Server::open(launch(dir, key)).await.unwrap();
    Ctx::over("sqlite", server.state().clone())
}

/// Copies the SQLite database's files (the database, its WAL and shared memory) from one
/// directory to another, replacing what was there.
fn copy_db(from: &Path, to: &Path) {
    let files = |dir: &Path| -> Vec<std::ffi::OsString> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n.to_string_lossy().starts_with(SQLITE_FILE))
            .collect()
    };
    for name in files(to) {
        std::fs::remove_file(to.join(name)).unwrap();
    }
    for name in files(from) {
        std::fs::copy(from.join(&name), to.join(&name)).unwrap();
    }
}

fn admin(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_blindsight-server"))
        .args(["audit"])
        .args(args)
        .env("BLINDSIGHT_DATA_DIR", dir)
        .env("BLINDSIGHT_LOG", "warn")
        .env_remove("BLINDSIGHT_DATABASE_URL")
        .env_remove("BLINDSIGHT_AUDIT_KEY_FILE")
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test]
async fn a_restored_backup_is_caught_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let backup = tempfile::tempdir().unwrap();
    let ctx = open(dir.path()).await;
    let a = ctx.create_tenant(TENANT_A).await;
    let kh = a.tokens.keyholder.expose().to_owned();
    put_schema(&ctx, &kh, 1).await;
    ctx.state.db().close().await;
    copy_db(dir.path(), backup.path());

    // More happens after the backup, then the old copy is put back.
    let ctx = open(dir.path()).await;
    put_schema(&ctx, &kh, 2).await;
    put_schema(&ctx, &kh, 3).await;
    ctx.state.db().close().await;
    copy_db(backup.path(), dir.path());
    let heads = dir.path().join(format!("{AUDIT_KEY_FILE}{HEADS_SUFFIX}"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&heads).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let kept = std::fs::read_to_string(&heads).unwrap();
    assert!(kept.contains("\"tenant-a\""), "{kept}");

    // The server starts, but says why it is not ready and writes nothing to the chain.
    let ctx = open(dir.path()).await;
    let ready = ctx.get("/readyz", None).await;
    ready.expect(503, "audit-halted");
    assert!(
        ready.json()["detail"]
            .as_str()
            .unwrap()
            .contains("tenant \"tenant-a\"'s audit chain"),
        "{:?}",
        ready.json()
    );
    ctx.request(
        Method::PUT,
        "/v1/schemas/intake/2",
        Some(&kh),
        serde_json::to_vec(&schema(2)).unwrap(),
    )
    .await
    .expect(503, "audit-halted");
    ctx.state.db().close().await;

    // The operator's commands: check names it, resolve records it, check passes.
    let (ok, out) = admin(dir.path(), &["check"]);
    assert!(
        !ok && out.contains("halted: tenant \"tenant-a\"'s audit chain"),
        "{out}"
    );
    let (ok, out) = admin(dir.path(), &["resolve"]);
    assert!(!ok && out.contains("--reason"), "{out}");
    let (ok, out) = admin(
        dir.path(),
        &["resolve", "--reason", "restored the nightly backup"],
    );
    assert!(ok && out.contains("resolved (shortened)"), "{out}");
    let (ok, out) = admin(dir.path(), &["check"]);
    assert!(ok && out.contains("every chain extends"), "{out}");

    let ctx = open(dir.path()).await;
    ctx.get("/readyz", None)
        .await
        .expect_status(axum::http::StatusCode::OK);
    put_schema(&ctx, &kh, 2).await;
    let entries = verify(&ctx, Some(TENANT_A), a.tokens.auditor.expose())
        .await
        .unwrap();
    let kinds: Vec<&str> = entries.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "tenant.created",
            "schema.registered",
            "audit.head_rewound",
            "schema.registered"
        ]
    );
    let rewound: serde_json::Value = serde_json::from_str(&entries[2].body).unwrap();
    assert_eq!(rewound["reason"], "restored the nightly backup");
    assert_eq!(
        (rewound["kept_seq"].as_i64(), rewound["found_seq"].as_i64()),
        (Some(4), Some(2))
    );
    ctx.state.db().close().await;
}

/// The audit run's report over the database, with heads kept from an earlier run.
async fn audit(
    ctx: &Ctx,
    kept: &[audit::SignedHead],
) -> (blindsight_audit::Report, blindsight_audit::Evidence) {
    let mut evidence = store::evidence::load(ctx.state.db(), ctx.name)
        .await
        .unwrap();
    evidence.trusted_keys = vec![ctx.state.audit_key().public_key().to_vec()];
    evidence.kept_heads = kept.to_vec();
    let report =
        blindsight_audit::verify(&evidence, &blindsight_audit::Options::default(), &|_| {});
    (report, evidence)
}

fn chain_failures(report: &blindsight_audit::Report) -> Vec<String> {
    report
        .checks
        .iter()
        .find(|c| c.name == "chain")
        .unwrap()
        .failures
        .clone()
}

#[tokio::test]
async fn kept_heads_catch_a_rollback_and_a_fork() {
    for ctx in backends(config).await {
        let a = ctx.create_tenant(TENANT_A).await;
        let kh = a.tokens.keyholder.expose();
        for v in 1..=3 {
            put_schema(&ctx, kh, v).await;
        }
        // What a backup taken now holds of the chain's head.
        let backup = store::audit::signed_head(ctx.state.db(), Some(TENANT_A))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(backup.seq, 4);
        put_schema(&ctx, kh, 4).await;

        // An auditor verifies and keeps the heads; the file round-trips.
        let (report, evidence) = audit(&ctx, &[]).await;
        assert!(report.passed, "{}", report.render());
        let kept = blindsight_audit::KeptHeads::of(&evidence, 1_800_000_000);
        let kept = blindsight_audit::KeptHeads::parse(kept.to_json().as_bytes()).unwrap();
        assert!(
            kept.heads
                .iter()
                .any(|h| h.tenant_id.as_deref() == Some(TENANT_A) && h.seq == 5)
        );
        // The chain grows: it still contains them.
        put_schema(&ctx, kh, 5).await;
        let (report, _) = audit(&ctx, &kept.heads).await;
        assert!(report.passed, "{}", report.render());
        assert!(
            report.render().contains("from an earlier run checked"),
            "{}",
            report.render()
        );

        // The backup is restored for this chain: entries after it gone, its signed head back.
        // The chain verifies on its own; only the kept head shows the rollback.
        disable_triggers(&ctx).await;
        exec(
            &ctx,
            "DELETE FROM audit_log WHERE chain = 'tenant-a' AND seq > 4",
        )
        .await;
        sqlx::query(
            "UPDATE audit_heads SET seq = $1, hash = $2, at = $3, prev_head = $4, key_id = $5, signature = $6 WHERE chain = 'tenant-a'",
        )
        .bind(backup.seq)
        .bind(&backup.hash)
        .bind(backup.at)
        .bind(&backup.prev_head)
        .bind(&backup.key_id)
        .bind(&backup.signature)
        .execute(ctx.state.db().pool())
        .await
        .unwrap();
        let (report, _) = audit(&ctx, &[]).await;
        assert!(report.passed, "{}: {}", ctx.name, report.render());
        let (report, _) = audit(&ctx, &kept.heads).await;
        assert!(!report.passed);
        let failures = chain_failures(&report);
        assert_eq!(
            failures,
            [
                "tenant \"tenant-a\": rolled back: the signed head names entry 4, but entry 5 was verified in an earlier run"
            ],
            "{}",
            ctx.name
        );

        // The operator resolves it: entry 5 is now another entry, a fork from the kept head.
        store::audit::resolve(ctx.state.audit_log(), "restored a backup")
            .await
            .unwrap();
        let (report, _) = audit(&ctx, &[]).await;
        assert!(report.passed, "{}", report.render());
        let (report, _) = audit(&ctx, &kept.heads).await;
        assert_eq!(
            chain_failures(&report),
            [
                "tenant \"tenant-a\": forked: entry 5 is not the one verified in an earlier run (the chain was rewritten from there or before)"
            ],
            "{}",
            ctx.name
        );
        // A kept head for a chain the source does not show, or signed by another key.
        let mut other = kept.heads[0].clone();
        other.tenant_id = Some("tenant-z".into());
        let (report, _) = audit(&ctx, &[other]).await;
        assert!(
            chain_failures(&report)[0].contains("which this source does not show"),
            "{}",
            report.render()
        );
        ctx.finish().await;
    }
}
