//! Bad input, on every backend: each gets its documented status and stable problem type, and
//! leaves the database exactly as it was.

use axum::http::{Method, StatusCode};
use blindsight_crypto::{PARAMETER_SET_ID, RecordEnvelope, encrypt_record, schemas};

use crate::common::{
    ADMIN, KEY_ID, TENANT_A, backends, config, keys, make_record, records_a, session_values,
};

fn patch_parameter_set(mut bytes: Vec<u8>) -> Vec<u8> {
    let id = PARAMETER_SET_ID.as_bytes();
    let at = bytes
        .windows(id.len())
        .position(|w| w == id)
        .expect("the envelope names its parameter set");
    bytes[at + id.len() - 1] ^= 0x01;
    bytes
}

#[tokio::test]
async fn bad_uploads_are_refused_and_change_nothing() {
    let (ka, _) = keys();
    let rec = &records_a()[0];
    let good = rec.encode().unwrap();
    for ctx in backends(config).await {
        let a = ctx.create_tenant(TENANT_A).await;
        ctx.register(a.tokens.keyholder.expose(), ka).await;
        let ingest = a.tokens.ingest.expose();
        assert_eq!(ctx.upload(ingest, rec).await.status, StatusCode::CREATED);
        let before = ctx.snapshot().await;

        // A proof bound to other metadata: the same list claimed for another record id, and
        // under another cohort.
        for meta in [
            blindsight_crypto::RecordMetadata {
                record_id: "rec-forged".into(),
                ..rec.metadata.clone()
            },
            blindsight_crypto::RecordMetadata {
                cohort: Some("elsewhere".into()),
                record_id: "rec-forged-2".into(),
                ..rec.metadata.clone()
            },
        ] {
            let forged = RecordEnvelope {
                metadata: meta,
                ..rec.clone()
            };
            ctx.upload(ingest, &forged)
                .await
                .expect(422, "proof-invalid");
        }
        // Another record's list under this one's metadata.
        let swapped = RecordEnvelope {
            proven_list: records_a()[1].proven_list.clone(),
            metadata: blindsight_crypto::RecordMetadata {
                record_id: "rec-swapped".into(),
                ..rec.metadata.clone()
            },
            ..rec.clone()
        };
        ctx.upload(ingest, &swapped)
            .await
            .expect(422, "proof-invalid");

        // Lane lists that are not what their proof says, each under a fresh record id whose
        // valid record is built first (so the cause is the list, not the metadata):
        let (_, kb) = keys();
        let session = schemas::session_v1();
        let meta = |n: &str| blindsight_crypto::RecordMetadata {
            record_id: format!("rec-lane-{n}"),
            ..rec.metadata.clone()
        };
        let fresh = |n: &str| make_record(ka, &meta(n), 7);
        let with_list = |n: &str, list: Vec<u8>| RecordEnvelope {
            proven_list: list,
            ..fresh(n)
        };
        const BODY: usize = 8 + 8 * 2048;
        // - proven under another key set's CRS and public key (same key-set id);
        let other_key = encrypt_record(
            &kb.app,
            &session,
            &meta("other-key"),
            &session_values(0),
            None,
        )
        .unwrap()
        .encode()
        .unwrap();
        ctx.upload(ingest, &with_list("other-key", other_key))
            .await
            .expect(422, "proof-invalid");
        // - a valid proof of a list with one slot too few;
        let slots = session.slot_map().unwrap().slots();
        let short = ka
            .app
            .lane_key()
            .encrypt_and_prove(
                &vec![0; slots - 1],
                ka.app.crs(),
                &meta("short").binding(None),
            )
            .unwrap()
            .encode()
            .unwrap();
        ctx.upload(ingest, &with_list("short", short))
            .await
            .expect(422, "shape-mismatch");
        // - a slot moved out of {0, 1} after proving (Δ = 2^47 added to its body);
        let mut two = fresh("two");
        let at = BODY + 8 * 5;
        let body = u64::from_be_bytes(two.proven_list[at..at + 8].try_into().unwrap());
        two.proven_list[at..at + 8].copy_from_slice(&body.wrapping_add(1 << 47).to_be_bytes());
        ctx.upload(ingest, &two).await.expect(422, "proof-invalid");
        // - an all-zero mask (every slot readable in clear), refused before the proof;
        let mut zero = fresh("zero");
        zero.proven_list[8..BODY].fill(0);
        ctx.upload(ingest, &zero)
            .await
            .expect(422, "trivial-ciphertext");
        // - bit flips in the ciphertext and in the proof, and a truncated list.
        let mut flipped = fresh("flip");
        flipped.proven_list[8 + 8 * 100] ^= 0x04;
        ctx.upload(ingest, &flipped)
            .await
            .expect(422, "proof-invalid");
        let mut flipped = fresh("flip-proof");
        let n = flipped.proven_list.len();
        flipped.proven_list[n - 40] ^= 0x01;
        let r = ctx.upload(ingest, &flipped).await;
        assert!(
            ["proof-invalid", "malformed", "non-conformant"].contains(&r.slug().as_str()),
            "a flipped proof gave {}",
            r.slug()
        );
        let mut cut = fresh("cut");
        cut.proven_list.truncate(cut.proven_list.len() - 7);
        ctx.upload(ingest, &cut).await.expect(400, "malformed");
        // The sealed transcript is bound into the proof: one byte of it flipped, or the
        // transcript removed, fails the proof and stores nothing (the record id stays free;
        // the original is uploaded after the snapshot below).
        let mut torn = fresh("torn");
        let last = torn.sealed_transcript.len() - 1;
        torn.sealed_transcript[last] ^= 1;
        ctx.upload(ingest, &torn).await.expect(422, "proof-invalid");
        let mut bare = fresh("torn");
        bare.sealed_transcript.clear();
        ctx.upload(ingest, &bare).await.expect(422, "proof-invalid");
        // A record proven under binding v2 (before transcripts were bound) is not taken.
        let legacy = ka
            .app
            .lane_key()
            .encrypt_and_prove(
                &session
                    .slot_map()
                    .unwrap()
                    .encode(&session.order_values(&session_values(7)).unwrap()),
                ka.app.crs(),
                &meta("legacy").legacy_binding(),
            )
            .unwrap()
            .encode()
            .unwrap();
        let legacy = RecordEnvelope {
            proven_list: legacy,
            sealed_transcript: Vec::new(),
            metadata: meta("legacy"),
        };
        let r = ctx.upload(ingest, &legacy).await;
        r.expect(422, "proof-invalid");
        assert!(
            r.json()["detail"]
                .as_str()
                .unwrap()
                .contains("update the SDK"),
            "{}",
            r.json()
        );

        let post = |body: Vec<u8>| ctx.request(Method::POST, "/v1/records", Some(ingest), body);
        // Garbage, truncation, a wrong parameter set.
        post(b"definitely not an envelope".to_vec())
            .await
            .expect(400, "malformed");
        post(good[..good.len() / 2].to_vec())
            .await
            .expect(400, "malformed");
        post(patch_parameter_set(good.clone()))
            .await
            .expect(422, "wrong-parameter-set");
        // A replayed record id: the same upload again (a client retry learns it is done), and
        // another record's content under the used id.
        let r = ctx.upload(ingest, rec).await;
        r.expect(409, "record-exists");
        assert_eq!(r.json()["same_content"], true);
        let other = RecordEnvelope {
            metadata: rec.metadata.clone(),
            ..make_record(ka, &rec.metadata, 99)
        };
        let r = ctx.upload(ingest, &other).await;
        r.expect(409, "record-exists");
        assert_eq!(r.json()["same_content"], false);
        // The same proven list with one byte of its sealed transcript flipped is not the
        // stored record (a client must not take it for a stored retry), nor is it with
        // another cohort.
        let mut flipped = rec.clone();
        assert!(!flipped.sealed_transcript.is_empty());
        let last = flipped.sealed_transcript.len() - 1;
        flipped.sealed_transcript[last] ^= 1;
        let r = ctx.upload(ingest, &flipped).await;
        r.expect(409, "record-exists");
        assert_eq!(r.json()["same_content"], false, "{}", ctx.name);
        let mut moved = rec.clone();
        moved.metadata.cohort = Some("elsewhere".into());
        let r = ctx.upload(ingest, &moved).await;
        r.expect(409, "record-exists");
        assert_eq!(r.json()["same_content"], false, "{}", ctx.name);
        // Oversized, declared or streamed.
        let limit = ctx.state.config().limits.record_body_bytes;
        post(vec![0u8; limit + 1]).await.expect(413, "too-large");
        let mut req = axum::http::Request::post("/v1/records")
            .header("authorization", format!("Bearer {ingest}"))
            .header("content-length", (limit + 1).to_string());
        req = req.header("content-type", "application/octet-stream");
        let response = tower::ServiceExt::oneshot(
            ctx.app.clone(),
            req.body(axum::body::Body::from(vec![0u8; 16])).unwrap(),
        )
        .await
        .unwrap();
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);

        // Missing token, wrong token, wrong role.
        ctx.request(Method::POST, "/v1/records", None, good.clone())
            .await
            .expect(401, "unauthorized");
        let r = ctx
            .request(Method::POST, "/v1/records", Some("bst_0000"), good.clone())
            .await;
        r.expect(401, "unauthorized");
        assert!(r.headers.contains_key("www-authenticate"));
        for tok in [&a.tokens.keyholder, &a.tokens.auditor] {
            ctx.request(
                Method::POST,
                "/v1/records",
                Some(tok.expose()),
                good.clone(),
            )
            .await
            .expect(403, "forbidden");
        }
        ctx.request(
            Method::PUT,
            &format!("/v1/keysets/{KEY_ID}"),
            Some(ingest),
            ka.bundle.clone(),
        )
        .await
        .expect(403, "forbidden");
        ctx.get("/v1/records", Some(ingest))
            .await
            .expect(403, "forbidden");
        ctx.get(
            "/v1/records/rec-0/transcript",
            Some(a.tokens.auditor.expose()),
        )
        .await
        .expect(403, "forbidden");
        ctx.get("/v1/records/rec-0/proof", Some(ingest))
            .await
            .expect(403, "forbidden");
        // Tenant tokens are not admin tokens.
        ctx.request(
            Method::POST,
            "/v1/tenants",
            Some(a.tokens.keyholder.expose()),
            br#"{"name": "x"}"#.to_vec(),
        )
        .await
        .expect(401, "unauthorized");

        assert_eq!(ctx.snapshot().await, before, "{}", ctx.name);
        // The refused transcript used up nothing.
        let original = fresh("torn");
        assert_eq!(
            ctx.upload(ingest, &original).await.status,
            StatusCode::CREATED
        );
        ctx.finish().await;
    }
}

#[tokio::test]
async fn bad_control_requests_are_refused_and_change_nothing() {
    let (ka, kb) = keys();
    for ctx in backends(config).await {
        let a = ctx.create_tenant(TENANT_A).await;
        let kh = a.tokens.keyholder.expose();
        let before = ctx.snapshot().await;
        let admin =
            |body: &[u8]| ctx.request(Method::POST, "/v1/tenants", Some(ADMIN), body.to_vec());
        admin(br#"{"name": "x", "colour": "red"}"#)
            .await
            .expect(400, "malformed-json");
        admin(br#"{"name": 5}"#).await.expect(400, "malformed-json");
        admin(br#"{"name": "x", "tenant_id": "no spaces"}"#)
            .await
            .expect(400, "invalid-id");
        admin(br#"{"name": "x", "min_cohort_size": 1}"#)
            .await
            .expect(422, "invalid-field");
        // Past the documented maximum (found by schemathesis: 2^31 was taken).
        admin(br#"{"name": "x", "min_cohort_size": 2147483648}"#)
            .await
            .expect(422, "invalid-field");
        admin(br#"{"name": "   "}"#)
            .await
            .expect(422, "invalid-field");
        admin(format!(r#"{{"name": "x", "tenant_id": "{TENANT_A}"}}"#).as_bytes())
            .await
            .expect(409, "tenant-exists");
        ctx.request(
            Method::POST,
            "/v1/tenants",
            Some("wrong-admin-token"),
            b"{}".to_vec(),
        )
        .await
        .expect(401, "unauthorized");

        // Key sets: garbage, the path naming another id, a bundle's bytes tampered.
        let c = &ctx;
        let put = |path: String, body: Vec<u8>| async move {
            c.request(Method::PUT, &path, Some(kh), body).await
        };
        put(format!("/v1/keysets/{KEY_ID}"), b"garbage".to_vec())
            .await
            .expect(400, "malformed");
        put("/v1/keysets/ks-other".into(), ka.bundle.clone())
            .await
            .expect(422, "wrong-key-id");
        put("/v1/keysets/bad%20id".into(), ka.bundle.clone())
            .await
            .expect(400, "malformed");
        let mut tampered = kb.bundle.clone();
        let n = tampered.len();
        tampered[n - 100] ^= 0x40;
        let r = put(format!("/v1/keysets/{KEY_ID}"), tampered).await;
        r.expect(422, "fingerprint-mismatch");

        // Records for a key set or schema the tenant has not registered.
        let rec = &records_a()[0];
        ctx.upload(a.tokens.ingest.expose(), rec)
            .await
            .expect(422, "unknown-key-set");
        ctx.register(kh, ka).await;
        let after_register = ctx.snapshot().await;
        let mut unknown_schema = rec.clone();
        unknown_schema.metadata.schema_id = "nope".into();
        let r = ctx.upload(a.tokens.ingest.expose(), &unknown_schema).await;
        r.expect(422, "unknown-schema");
        // Bad queries.
        ctx.get("/v1/records?colour=red", Some(kh))
            .await
            .expect(400, "malformed-query");
        ctx.get("/v1/records?limit=0", Some(kh))
            .await
            .expect(400, "malformed-query");
        ctx.get("/v1/records?limit=abc", Some(kh))
            .await
            .expect(400, "malformed-query");
        assert_eq!(ctx.snapshot().await, after_register, "{}", ctx.name);
        // Apart from the registered key set, nothing changed since the start.
        assert_eq!(after_register[..3][..2], before[..2]);
        ctx.finish().await;
    }
}

#[tokio::test]
async fn framework_errors_are_problem_json_too() {
    let ctx = crate::common::Ctx::new("sqlite", config()).await.unwrap();
    let a = ctx.create_tenant(TENANT_A).await;
    let kh = a.tokens.keyholder.expose();
    // A schema version that is not a number.
    let r = ctx
        .request(
            Method::PUT,
            "/v1/schemas/intake/abc",
            Some(kh),
            b"{}".to_vec(),
        )
        .await;
    r.expect(400, "invalid-path");
    assert_eq!(
        r.headers["content-type"].to_str().unwrap(),
        "application/problem+json"
    );
    assert!(
        r.json()["detail"].as_str().unwrap().contains("abc"),
        "{}",
        r.json()
    );
    // A method the route does not have.
    let r = ctx
        .request(Method::DELETE, "/v1/records", Some(kh), Vec::new())
        .await;
    r.expect(405, "method-not-allowed");
    assert!(r.headers.contains_key("allow"), "{:?}", r.headers);
    ctx.finish().await;
}
