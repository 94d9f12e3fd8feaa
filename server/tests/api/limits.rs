//! Under load and abuse: concurrent uploads, load shedding, timeouts, rate limits, lockout,
//! the key cache, and the metrics that show it.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use blindsight_server::ServerConfig;

use crate::common::{Ctx, KEY_ID, TENANT_A, backends, config, keys, records_a};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_concurrent_uploads_lose_nothing() {
    let (ka, _) = keys();
    let records = &records_a()[4..36];
    // This test is about losing nothing under concurrency; on a loaded two-core machine 32
    // queued verifications (beside the suite's other tests) can outlast the default request
    // timeout, which has its own test.
    let generous = || {
        let mut c = config();
        c.limits.request_timeout = Duration::from_secs(900);
        c
    };
    for ctx in backends(generous).await {
        let a = ctx.create_tenant(TENANT_A).await;
        ctx.register(a.tokens.keyholder.expose(), ka).await;
        let ctx = Arc::new(ctx);
        let tasks: Vec<_> = records
            .iter()
            .map(|rec| {
                let ctx = Arc::clone(&ctx);
                let token = a.tokens.ingest.expose().to_owned();
                tokio::spawn(async move { ctx.upload(&token, rec).await })
            })
            .collect();
        for t in tasks {
            let r = t.await.unwrap();
            r.expect_status(StatusCode::CREATED);
        }
        let page = ctx
            .get("/v1/records?limit=1000", Some(a.tokens.auditor.expose()))
            .await
            .json();
        let mut ids: Vec<String> = page["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["record_id"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        let mut expected: Vec<String> = records
            .iter()
            .map(|r| r.metadata.record_id.clone())
            .collect();
        expected.sort();
        assert_eq!(ids, expected);

        // The metrics saw it all: 32 created, 32 valid proofs, one cached verifier.
        let text = String::from_utf8(ctx.get("/metrics", None).await.body.to_vec()).unwrap();
        assert!(
            text.contains(
                "blindsight_http_requests_total{route=\"/v1/records\",method=\"POST\",status=\"201\"} 32"
            ),
            "{text}"
        );
        assert!(text.contains("blindsight_proof_verification_seconds_count{outcome=\"valid\"} 32"));
        assert!(text.contains("blindsight_cached_keys 1"));
        assert!(text.contains("blindsight_fhe_queue_depth 0"));
        Arc::into_inner(ctx).unwrap().finish().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_the_concurrency_limit_requests_are_shed_with_retry_after() {
    let (ka, _) = keys();
    let ctx = Arc::new(
        Ctx::new("sqlite", {
            let mut c = config();
            c.limits.max_in_flight = 1;
            c
        })
        .await
        .unwrap(),
    );
    let a = ctx.create_tenant(TENANT_A).await;
    let kh = a.tokens.keyholder.expose().to_owned();
    // A key-set upload holds the only slot for the seconds its conformance check takes.
    let slow = {
        let ctx = Arc::clone(&ctx);
        let kh = kh.clone();
        tokio::spawn(async move {
            ctx.request(
                Method::PUT,
                &format!("/v1/keysets/{KEY_ID}"),
                Some(&kh),
                ka.bundle.clone(),
            )
            .await
        })
    };
    while ctx.state.fhe().running() == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let r = ctx.get("/v1/records", Some(&kh)).await;
    r.expect(503, "overloaded");
    assert!(r.headers.contains_key("retry-after"));
    // Probes are outside the limit.
    assert_eq!(ctx.get("/healthz", None).await.status, StatusCode::OK);
    assert_eq!(slow.await.unwrap().status, StatusCode::CREATED);
    assert_eq!(
        ctx.get("/v1/records", Some(&kh)).await.status,
        StatusCode::OK
    );
    Arc::into_inner(ctx).unwrap().finish().await;
}

#[tokio::test]
async fn a_request_past_the_timeout_is_abandoned_and_stores_nothing() {
    let (ka, _) = keys();
    let ctx = Ctx::new("sqlite", {
        let mut c = config();
        c.limits.request_timeout = Duration::from_millis(50);
        c
    })
    .await
    .unwrap();
    let a = ctx.create_tenant(TENANT_A).await;
    let before = ctx.snapshot().await;
    let r = ctx
        .request(
            Method::PUT,
            &format!("/v1/keysets/{KEY_ID}"),
            Some(a.tokens.keyholder.expose()),
            ka.bundle.clone(),
        )
        .await;
    r.expect(503, "timeout");
    assert!(r.headers.contains_key("retry-after"));
    // Give the abandoned check time to finish: it must not store anything afterwards either.
    while ctx.state.fhe().running() > 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(ctx.snapshot().await, before);
    ctx.finish().await;
}

#[tokio::test]
async fn tokens_are_rate_limited_and_addresses_locked_out() {
    let mut c: ServerConfig = config();
    c.guard.rate_per_sec = 0.5;
    c.guard.burst = 2.0;
    c.guard.max_failures = 3;
    let ctx = Ctx::new("sqlite", c).await.unwrap();
    let a = ctx.create_tenant(TENANT_A).await;
    let kh = a.tokens.keyholder.expose();
    assert_eq!(
        ctx.get("/v1/records", Some(kh)).await.status,
        StatusCode::OK
    );
    assert_eq!(
        ctx.get("/v1/records", Some(kh)).await.status,
        StatusCode::OK
    );
    let r = ctx.get("/v1/records", Some(kh)).await;
    r.expect(429, "rate-limited");
    let wait: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=3).contains(&wait), "{wait}");
    // Another token of the same tenant has its own budget.
    assert_eq!(
        ctx.get("/v1/records", Some(a.tokens.auditor.expose()))
            .await
            .status,
        StatusCode::OK
    );
    // Three failed authentications lock the address out, even for a valid token.
    for _ in 0..3 {
        ctx.get("/v1/records", Some("bst_wrong"))
            .await
            .expect(401, "unauthorized");
    }
    let r = ctx
        .get("/v1/records", Some(a.tokens.auditor.expose()))
        .await;
    r.expect(429, "locked-out");
    assert!(
        r.headers["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            > 60
    );
    ctx.finish().await;
}

#[tokio::test]
async fn decoded_keys_are_cached_once_and_within_the_bound() {
    use blindsight_server::registry::{server_key, verifier};
    let (ka, _) = keys();
    for bound in [u64::MAX, 1] {
        let ctx = Ctx::new("sqlite", {
            let mut c = config();
            c.limits.key_cache_bytes = bound;
            c
        })
        .await
        .unwrap();
        let a = ctx.create_tenant(TENANT_A).await;
        ctx.register(a.tokens.keyholder.expose(), ka).await;
        let v1 = verifier(&ctx.state, TENANT_A, KEY_ID)
            .await
            .unwrap()
            .unwrap();
        let v2 = verifier(&ctx.state, TENANT_A, KEY_ID)
            .await
            .unwrap()
            .unwrap();
        assert!(
            verifier(&ctx.state, "tenant-z", KEY_ID)
                .await
                .unwrap()
                .is_none()
        );
        if bound == u64::MAX {
            assert!(Arc::ptr_eq(&v1, &v2));
            let k1 = server_key(&ctx.state, TENANT_A, KEY_ID)
                .await
                .unwrap()
                .unwrap();
            let k2 = server_key(&ctx.state, TENANT_A, KEY_ID)
                .await
                .unwrap()
                .unwrap();
            assert!(Arc::ptr_eq(&k1, &k2));
            let (entries, bytes) = ctx.state.key_cache().stats();
            assert_eq!(entries, 2);
            // The decompressed server key is far larger than its compressed upload.
            assert!(bytes > ka.bundle.len() as u64, "{bytes}");
        } else {
            assert!(!Arc::ptr_eq(&v1, &v2));
            assert_eq!(ctx.state.key_cache().stats(), (0, 0));
        }
        ctx.finish().await;
    }
}

/// A GET with a bearer token and an `X-Forwarded-For` header.
async fn forwarded(ctx: &Ctx, token: &str, forwarded_for: &str) -> StatusCode {
    use tower::ServiceExt;
    let req = axum::http::Request::get("/v1/records")
        .header("authorization", format!("Bearer {token}"))
        .header("x-forwarded-for", forwarded_for)
        .body(axum::body::Body::empty())
        .unwrap();
    ctx.app.clone().oneshot(req).await.unwrap().status()
}

#[tokio::test]
async fn lockout_counts_the_client_behind_a_trusted_proxy_only() {
    let mut cfg = config();
    cfg.guard.max_failures = 3;
    // In-process requests come from the unspecified address: here, the proxy.
    cfg.guard.trusted_proxies =
        blindsight_server::proxy::TrustedProxies::parse(&["::".into()]).unwrap();
    let ctx = Ctx::new("sqlite", cfg).await.unwrap();
    let a = ctx.create_tenant(TENANT_A).await;
    let auditor = a.tokens.auditor.expose();
    for _ in 0..3 {
        assert_eq!(
            forwarded(&ctx, "bst_wrong", "203.0.113.7").await,
            StatusCode::UNAUTHORIZED
        );
    }
    // The guessing client is locked out; another client behind the same proxy is not.
    assert_eq!(
        forwarded(&ctx, auditor, "203.0.113.7").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        forwarded(&ctx, auditor, "198.51.100.2").await,
        StatusCode::OK
    );
    ctx.finish().await;

    // Without trusted proxies the header is ignored: the connection's address counts.
    let mut cfg = config();
    cfg.guard.max_failures = 3;
    let ctx = Ctx::new("sqlite", cfg).await.unwrap();
    let a = ctx.create_tenant(TENANT_A).await;
    for client in ["203.0.113.7", "203.0.113.8", "203.0.113.9"] {
        assert_eq!(
            forwarded(&ctx, "bst_wrong", client).await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        forwarded(&ctx, a.tokens.auditor.expose(), "198.51.100.2").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    ctx.finish().await;
}
