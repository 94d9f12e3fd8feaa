//! Logs name tenants, records, routes and outcomes; never tokens, ciphertext or transcripts.

use std::io::Write;
use std::sync::{Mutex, OnceLock};

use axum::http::{Method, StatusCode};

use crate::common::{Ctx, KEY_ID, TENANT_A, config, keys, records_a};

static CAPTURED: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct Capture;

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        CAPTURED.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Sends every log line of this test process, at debug level, to `CAPTURED`.
fn capture_logs() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        tracing_subscriber::fmt()
            .with_env_filter("blindsight_server=debug")
            .with_writer(|| Capture)
            .with_ansi(false)
            .init();
    });
}

#[tokio::test]
async fn logs_never_hold_tokens_ciphertext_or_transcripts() {
    capture_logs();
    let (ka, _) = keys();
    let ctx = Ctx::new("sqlite", config()).await.unwrap();
    let a = ctx.create_tenant(TENANT_A).await;
    ctx.register(a.tokens.keyholder.expose(), ka).await;
    let rec = &records_a()[0];
    assert_eq!(
        ctx.upload(a.tokens.ingest.expose(), rec).await.status,
        StatusCode::CREATED
    );
    ctx.upload(a.tokens.ingest.expose(), rec)
        .await
        .expect(409, "record-exists");
    let forged = blindsight_crypto::RecordEnvelope {
        metadata: blindsight_crypto::RecordMetadata {
            record_id: "rec-forged".into(),
            ..rec.metadata.clone()
        },
        ..rec.clone()
    };
    ctx.upload(a.tokens.ingest.expose(), &forged)
        .await
        .expect(422, "proof-invalid");
    let transcript = ctx
        .get(
            "/v1/records/rec-0/transcript",
            Some(a.tokens.keyholder.expose()),
        )
        .await;
    assert_eq!(transcript.status, StatusCode::OK);
    ctx.request(
        Method::GET,
        "/v1/records",
        Some("bst_not_a_real_token"),
        Vec::new(),
    )
    .await
    .expect(401, "unauthorized");
    ctx.finish().await;

    let log = String::from_utf8_lossy(&CAPTURED.lock().unwrap()).into_owned();
    // The capture works: the events are there.
    assert!(
        log.contains("record stored") && log.contains("rec-0"),
        "{log}"
    );
    assert!(log.contains("record refused"), "{log}");
    assert!(
        log.contains("key set registered") && log.contains(KEY_ID),
        "{log}"
    );
    // Nothing secret or encrypted is.
    for token in [&a.tokens.keyholder, &a.tokens.ingest, &a.tokens.auditor] {
        assert!(!log.contains(&token.expose()[4..]), "a token was logged");
    }
    assert!(!log.contains("bst_not_a_real_token"));
    assert!(!log.contains("transcript 0"));
    for blob in [
        &rec.proven_list,
        &rec.sealed_transcript,
        &transcript.body.to_vec(),
    ] {
        let window = &blob[blob.len() / 2..blob.len() / 2 + 16];
        assert!(
            !log.contains(&hex::encode(window)),
            "ciphertext bytes were logged (hex)"
        );
        let decimal = format!("{:?}", &window[..8]);
        assert!(
            !log.contains(&decimal[1..decimal.len() - 1]),
            "ciphertext bytes were logged"
        );
    }
}
