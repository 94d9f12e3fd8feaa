//! What a tenant does, on every backend: create, register keys and schemas, ingest, list,
//! read back proofs and transcripts; and what one tenant can never do to another.

use axum::http::{Method, StatusCode};
use blindsight_crypto::{AppBundle, LaneList, RecordSchema, Verifier, open, schemas};
use blindsight_proto::{KeysetRegistered, MANIFEST_FINGERPRINT_HEADER};

use crate::common::{ADMIN, KEY_ID, TENANT_A, TENANT_B, backends, config, keys, records_a};

#[tokio::test]
async fn tenants_get_three_tokens_stored_only_as_hashes() {
    for ctx in backends(config).await {
        let t = ctx.create_tenant(TENANT_A).await;
        assert_eq!(t.tenant_id, TENANT_A);
        assert_eq!(t.min_cohort_size, 10);
        let tokens = [&t.tokens.keyholder, &t.tokens.ingest, &t.tokens.auditor];
        for tok in tokens {
            assert!(tok.expose().starts_with("bst_") && tok.expose().len() == 68);
        }
        // The database holds no token text, only hashes.
        let snapshot = format!("{:?}", ctx.snapshot().await);
        let raw: Vec<Vec<u8>> = sqlx::query_scalar("SELECT token_hash FROM tokens")
            .fetch_all(ctx.state.db().pool())
            .await
            .unwrap();
        assert_eq!(raw.len(), 3);
        for tok in tokens {
            assert!(!snapshot.contains(&tok.expose()[4..]), "{}", ctx.name);
            assert!(
                raw.contains(
                    &blindsight_server::auth::TokenHash::of(tok.expose())
                        .0
                        .to_vec()
                )
            );
        }
        // A generated id, and a tenant's own minimum cohort.
        let r = ctx
            .request(
                Method::POST,
                "/v1/tenants",
                Some(ADMIN),
                br#"{"name": "Clinic", "min_cohort_size": 25}"#.to_vec(),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
        assert!(r.json()["tenant_id"].as_str().unwrap().starts_with("t-"));
        assert_eq!(r.json()["min_cohort_size"], 25);
        ctx.finish().await;
    }
}

#[tokio::test]
async fn key_sets_register_idempotently_and_serve_pinnable_public_material() {
    let (ka, kb) = keys();
    for ctx in backends(config).await {
        let a = ctx.create_tenant(TENANT_A).await;
        let b = ctx.create_tenant(TENANT_B).await;
        let kh = a.tokens.keyholder.expose();
        let path = format!("/v1/keysets/{KEY_ID}");
        let r = ctx
            .request(Method::PUT, &path, Some(kh), ka.bundle.clone())
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", ctx.name);
        let reg: KeysetRegistered = serde_json::from_slice(&r.body).unwrap();
        assert!(reg.created);
        assert_eq!(
            reg.manifest_fingerprint,
            ka.app.manifest().fingerprint().unwrap()
        );
        // The same bundle again: accepted, nothing new.
        let before = ctx.snapshot().await;
        let r = ctx
            .request(Method::PUT, &path, Some(kh), ka.bundle.clone())
            .await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(
            !serde_json::from_slice::<KeysetRegistered>(&r.body)
                .unwrap()
                .created
        );
        // A different, valid bundle under the same id: 409, nothing changed.
        ctx.request(Method::PUT, &path, Some(kh), kb.bundle.clone())
            .await
            .expect(409, "key-set-conflict");
        assert_eq!(ctx.snapshot().await, before);
        // Tenant B registers its own key set under the same id: tenants are separate.
        ctx.register(b.tokens.keyholder.expose(), kb).await;
        // Every role of a tenant fetches the public part, and an app can pin it.
        for tok in [&a.tokens.keyholder, &a.tokens.ingest, &a.tokens.auditor] {
            let r = ctx
                .get(&format!("/v1/keysets/{KEY_ID}/public"), Some(tok.expose()))
                .await;
            assert_eq!(r.status, StatusCode::OK);
            let fp = r.headers[MANIFEST_FINGERPRINT_HEADER].to_str().unwrap();
            assert_eq!(fp, reg.manifest_fingerprint);
            let app = AppBundle::decode_pinned(&r.body, fp).unwrap();
            assert_eq!(app.manifest(), ka.app.manifest());
            // No server key in it: it is a fraction of the bundle's size.
            assert!(r.body.len() * 10 < ka.bundle.len());
        }
        // Tenant B sees its own key set under that id, not A's.
        let r = ctx
            .get(
                &format!("/v1/keysets/{KEY_ID}/public"),
                Some(b.tokens.ingest.expose()),
            )
            .await;
        let fp = r.headers[MANIFEST_FINGERPRINT_HEADER].to_str().unwrap();
        assert_eq!(fp, kb.app.manifest().fingerprint().unwrap());
        ctx.finish().await;
    }
}

#[tokio::test]
async fn records_are_verified_stored_listed_and_read_back() {
    let (ka, _) = keys();
    let records = &records_a()[..4];
    for ctx in backends(config).await {
        let a = ctx.create_tenant(TENANT_A).await;
        ctx.register(a.tokens.keyholder.expose(), ka).await;
        let ingest = a.tokens.ingest.expose();
        for (i, rec) in records.iter().enumerate() {
            let r = ctx.upload(ingest, rec).await;
            r.expect_status(StatusCode::CREATED);
            assert_eq!(r.json()["record_id"], format!("rec-{i}"));
            assert_eq!(
                r.headers["location"],
                format!("/v1/records/rec-{i}/proof").as_str()
            );
        }
        // Listing: keyholder and auditor; pages; cohort filter.
        for tok in [&a.tokens.keyholder, &a.tokens.auditor] {
            let page = ctx.get("/v1/records", Some(tok.expose())).await.json();
            assert_eq!(page["records"].as_array().unwrap().len(), 4);
            assert!(page["next_after"].is_null());
        }
        let kh = a.tokens.keyholder.expose();
        let p1 = ctx.get("/v1/records?limit=3", Some(kh)).await.json();
        assert_eq!(p1["records"].as_array().unwrap().len(), 3);
        let after = p1["next_after"].as_i64().unwrap();
        let p2 = ctx
            .get(&format!("/v1/records?limit=3&after={after}"), Some(kh))
            .await
            .json();
        assert_eq!(p2["records"][0]["record_id"], "rec-3");
        assert!(p2["next_after"].is_null());
        let north = ctx.get("/v1/records?cohort=north", Some(kh)).await.json();
        let ids: Vec<_> = north["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["record_id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(ids, ["rec-0", "rec-2"]);
        let rec0 = &north["records"][0];
        assert_eq!(rec0["schema_id"], "session");
        assert_eq!(rec0["lexicon_version"], "lex-1");
        assert_eq!(rec0["has_transcript"], true);
        let window = ctx
            .get("/v1/records?since=1790000000&until=1790000001", Some(kh))
            .await
            .json();
        assert_eq!(window["records"].as_array().unwrap().len(), 4);
        let empty = ctx
            .get("/v1/records?since=1790000001", Some(kh))
            .await
            .json();
        assert_eq!(empty["records"].as_array().unwrap().len(), 0);

        // The stored proof re-verifies with the listed metadata (what an auditor does).
        let r = ctx
            .get("/v1/records/rec-1/proof", Some(a.tokens.auditor.expose()))
            .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(&r.body[..], &records[1].proven_list[..]);
        LaneList::decode(&r.body).unwrap();
        Verifier::new(ka.app.clone())
            .verify_record(
                &r.body,
                &schemas::session_v1(),
                &records[1].metadata,
                records[1].transcript_digest().as_ref(),
            )
            .unwrap();
        // The key holder opens the transcript; nobody else can fetch it.
        let r = ctx.get("/v1/records/rec-1/transcript", Some(kh)).await;
        assert_eq!(r.status, StatusCode::OK);
        let text = open(
            ka.secret.transcript_secret(),
            &records[1].metadata.transcript_aad(),
            &r.body,
        )
        .unwrap();
        assert_eq!(&text[..], b"transcript 1");
        ctx.finish().await;
    }
}

#[tokio::test]
async fn custom_schemas_register_once_and_records_use_them() {
    for ctx in backends(config).await {
        let a = ctx.create_tenant(TENANT_A).await;
        let kh = a.tokens.keyholder.expose();
        let schema = RecordSchema {
            id: "intake".into(),
            version: 2,
            fields: vec![
                blindsight_crypto::FieldSpec::uint("score", 0, 27),
                blindsight_crypto::FieldSpec::boolean("flag"),
            ],
            lane: Default::default(),
        };
        let body = serde_json::to_vec(&schema).unwrap();
        let r = ctx
            .request(Method::PUT, "/v1/schemas/intake/2", Some(kh), body.clone())
            .await;
        r.expect_status(StatusCode::CREATED);
        let r = ctx
            .request(Method::PUT, "/v1/schemas/intake/2", Some(kh), body)
            .await;
        assert_eq!(r.status, StatusCode::OK);
        let mut other = schema.clone();
        other.fields.pop();
        ctx.request(
            Method::PUT,
            "/v1/schemas/intake/2",
            Some(kh),
            serde_json::to_vec(&other).unwrap(),
        )
        .await
        .expect(409, "schema-exists");
        ctx.request(
            Method::PUT,
            "/v1/schemas/session/1",
            Some(kh),
            serde_json::to_vec(&schemas::session_v1()).unwrap(),
        )
        .await
        .expect(409, "schema-exists");
        ctx.request(
            Method::PUT,
            "/v1/schemas/intake/3",
            Some(kh),
            serde_json::to_vec(&schema).unwrap(),
        )
        .await
        .expect(422, "invalid-schema");

        // A record under the custom schema verifies and is stored.
        let (ka, _) = keys();
        ctx.register(kh, ka).await;
        let meta = blindsight_crypto::RecordMetadata {
            schema_id: "intake".into(),
            schema_version: 2,
            ..crate::common::metadata(TENANT_A, "intake-1", "north")
        };
        let values = [
            ("score".to_owned(), blindsight_crypto::Value::Uint(14)),
            ("flag".to_owned(), blindsight_crypto::Value::Bool(true)),
        ]
        .into_iter()
        .collect();
        let list =
            blindsight_crypto::encrypt_record(&ka.app, &schema, &meta, &values, None).unwrap();
        let rec = blindsight_crypto::RecordEnvelope {
            metadata: meta,
            proven_list: list.encode().unwrap(),
            sealed_transcript: Vec::new(),
        };
        let r = ctx.upload(a.tokens.ingest.expose(), &rec).await;
        r.expect_status(StatusCode::CREATED);
        ctx.get("/v1/records/intake-1/transcript", Some(kh))
            .await
            .expect(404, "no-transcript");
        ctx.finish().await;
    }
}

/// Route by route, one tenant's tokens cannot read or change another's data.
#[tokio::test]
async fn tenants_are_isolated_route_by_route() {
    let (ka, kb) = keys();
    for ctx in backends(config).await {
        let a = ctx.create_tenant(TENANT_A).await;
        let b = ctx.create_tenant(TENANT_B).await;
        ctx.register(a.tokens.keyholder.expose(), ka).await;
        let rec = &records_a()[0];
        assert_eq!(
            ctx.upload(a.tokens.ingest.expose(), rec).await.status,
            StatusCode::CREATED
        );
        let before = ctx.snapshot().await;
        // B has no key set yet: A's is invisible to it.
        ctx.get(
            &format!("/v1/keysets/{KEY_ID}/public"),
            Some(b.tokens.keyholder.expose()),
        )
        .await
        .expect(404, "unknown-key-set");
        // B's ingest token cannot upload A's record (its proof names tenant A).
        ctx.upload(b.tokens.ingest.expose(), rec)
            .await
            .expect(422, "metadata-mismatch");
        for tok in [&b.tokens.keyholder, &b.tokens.auditor] {
            let list = ctx.get("/v1/records", Some(tok.expose())).await.json();
            assert_eq!(list["records"].as_array().unwrap().len(), 0);
            ctx.get("/v1/records/rec-0/proof", Some(tok.expose()))
                .await
                .expect(404, "unknown-record");
        }
        ctx.get(
            "/v1/records/rec-0/transcript",
            Some(b.tokens.keyholder.expose()),
        )
        .await
        .expect(404, "unknown-record");
        // B registering its own key set under the same id does not touch A's.
        ctx.register(b.tokens.keyholder.expose(), kb).await;
        let r = ctx
            .get(
                &format!("/v1/keysets/{KEY_ID}/public"),
                Some(a.tokens.ingest.expose()),
            )
            .await;
        assert_eq!(
            r.headers[MANIFEST_FINGERPRINT_HEADER].to_str().unwrap(),
            ka.app.manifest().fingerprint().unwrap()
        );
        // And B's record id space is its own: nothing of A's changed.
        let after = ctx.snapshot().await;
        assert_eq!(before[4], after[4], "records changed");
        ctx.finish().await;
    }
}
