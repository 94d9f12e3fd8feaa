//! The HTTP application's basics: health, readiness, problem JSON, the OpenAPI document,
//! metrics, and serving over a real socket.

use axum::body::to_bytes;
use axum::http::{Method, StatusCode};
use blindsight_server::ApiError;
use blindsight_server::http::app;

use crate::common::{Ctx, config};

#[tokio::test]
async fn health_and_readiness() {
    let ctx = Ctx::new("sqlite", config()).await.unwrap();
    assert_eq!(ctx.get("/healthz", None).await.status, StatusCode::OK);
    assert_eq!(ctx.get("/readyz", None).await.status, StatusCode::OK);
    ctx.state.set_ready(false);
    let r = ctx.get("/readyz", None).await;
    r.expect(503, "not-ready");
    assert_eq!(r.headers["content-type"], "application/problem+json");
    assert_eq!(r.json()["status"], 503);
    assert!(r.headers.contains_key("retry-after"));
    ctx.finish().await;
}

#[tokio::test]
async fn unknown_routes_are_problem_json() {
    let ctx = Ctx::new("sqlite", config()).await.unwrap();
    let r = ctx.get("/v1/nope", None).await;
    r.expect(404, "not-found");
    assert_eq!(r.headers["content-type"], "application/problem+json");
    ctx.finish().await;
}

/// The document is generated from the handlers; check it names every route with its method and
/// that each documented route is served (an unauthenticated call gets 401 or 200, never the
/// fallback's 404 or a 405).
#[tokio::test]
async fn the_openapi_document_matches_the_routes() {
    // Every unauthenticated call below is a failed authentication: keep the address from
    // being locked out half-way.
    let mut c = config();
    c.guard.max_failures = 1000;
    let ctx = Ctx::new("sqlite", c).await.unwrap();
    let r = ctx.get("/v1/openapi.json", None).await;
    assert_eq!(r.status, StatusCode::OK);
    let doc = r.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    let mut documented = Vec::new();
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            documented.push(format!("{} {path}", method.to_uppercase()));
        }
    }
    documented.sort();
    let expected = [
        "GET /healthz",
        "GET /metrics",
        "GET /readyz",
        "GET /v1/audit",
        "GET /v1/audit/head",
        "GET /v1/audit/key",
        "GET /v1/jobs",
        "GET /v1/jobs/{job_id}",
        "GET /v1/jobs/{job_id}/events",
        "GET /v1/jobs/{job_id}/receipt",
        "GET /v1/jobs/{job_id}/result",
        "GET /v1/keysets/{key_id}/public",
        "GET /v1/keysets/{key_id}/server-key",
        "GET /v1/models",
        "GET /v1/openapi.json",
        "GET /v1/records",
        "GET /v1/records/{record_id}/proof",
        "GET /v1/records/{record_id}/transcript",
        "GET /v1/schemas",
        "POST /v1/jobs",
        "POST /v1/models",
        "POST /v1/records",
        "POST /v1/tenants",
        "PUT /v1/keysets/{key_id}",
        "PUT /v1/schemas/{schema_id}/{version}",
    ];
    assert_eq!(documented, expected);
    for route in expected {
        let (method, path) = route.split_once(' ').unwrap();
        let path = path
            .replace("{key_id}", "ks-x")
            .replace("{record_id}", "rec-x")
            .replace("{schema_id}", "s-x")
            .replace("{job_id}", "job-x")
            .replace("{version}", "1");
        let r = ctx
            .request(method.parse::<Method>().unwrap(), &path, None, Vec::new())
            .await;
        assert!(
            r.status == StatusCode::OK || r.status == StatusCode::UNAUTHORIZED,
            "{route}: {}",
            r.status
        );
        // What the server answered is documented, in the content type it came with.
        let (path, method) = route.split_once(' ').map(|(m, p)| (p, m)).unwrap();
        let op = &paths[path][method.to_lowercase()];
        let response = &op["responses"][r.status.as_str()];
        let content_type = r.headers["content-type"].to_str().unwrap();
        let media = content_type.split(';').next().unwrap().trim();
        assert!(
            response["content"].get(media).is_some(),
            "{route}: {} as {content_type} is not documented: {response}",
            r.status
        );
        // Every error is problem JSON; a route with a token documents the token's failures
        // and the limits, a route naming an object its absence, bounded path parameters.
        for (status, response) in op["responses"].as_object().unwrap() {
            if status.as_str() >= "400" {
                let types: Vec<&String> = response["content"].as_object().unwrap().keys().collect();
                assert_eq!(types, ["application/problem+json"], "{route} {status}");
            }
        }
        let has = |status: &str| op["responses"].get(status).is_some();
        if op["security"].as_array().is_some_and(|s| !s.is_empty()) {
            assert!(has("401") && has("429") && has("503"), "{route}");
        }
        for p in op["parameters"].as_array().into_iter().flatten() {
            if p["in"] == "path" && p["schema"]["type"] == "string" {
                assert!(p["schema"]["pattern"].is_string(), "{route}: {p}");
                assert!(has("404"), "{route}");
            }
        }
    }
    assert!(doc["components"]["securitySchemes"]["token"].is_object());
    assert!(doc["components"]["schemas"]["Problem"].is_object());
    assert!(doc["components"]["schemas"]["JobEvent"].is_object());
    let events = &paths["/v1/jobs/{job_id}/events"]["get"]["responses"]["200"]["content"];
    assert!(
        events["text/event-stream"]["schema"]["description"]
            .as_str()
            .unwrap()
            .contains("`Job`"),
        "{events}"
    );
    ctx.finish().await;
}

#[test]
fn crypto_failures_map_to_stable_problem_types() {
    use blindsight_crypto::Error as E;
    let cases = [
        (E::ProofInvalid, 422, "proof-invalid"),
        (E::MetadataMismatch("x".into()), 422, "metadata-mismatch"),
        (E::ShapeMismatch("x".into()), 422, "shape-mismatch"),
        (E::TrivialCiphertext { index: 0 }, 422, "trivial-ciphertext"),
        (
            E::TooLarge {
                what: "proven list",
                size: 2,
                limit: 1,
            },
            413,
            "too-large",
        ),
        (
            E::Malformed {
                what: "envelope",
                reason: "truncated".into(),
            },
            400,
            "malformed",
        ),
        (E::UnsupportedVersion(9), 400, "unsupported-format-version"),
    ];
    for (e, status, slug) in cases {
        let api = ApiError::from(e);
        assert_eq!(api.status().as_u16(), status);
        assert_eq!(api.slug(), slug);
    }
    // Server-side failures are internal and carry no detail to the caller.
    let api = ApiError::from(E::Rng);
    assert_eq!(api.status().as_u16(), 500);
}

#[tokio::test]
async fn internal_errors_do_not_leak() {
    use axum::response::IntoResponse;
    let response = ApiError::Internal("db password=hunter2 at /srv/x".into()).into_response();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body = to_bytes(response.into_body(), 1 << 20).await.unwrap();
    let text = String::from_utf8(body.to_vec()).unwrap();
    assert!(
        !text.contains("hunter2") && !text.contains("/srv"),
        "{text}"
    );
    assert!(text.contains("internal"));
}

#[tokio::test]
async fn serves_over_a_real_socket() {
    let ctx = Ctx::new("sqlite", config()).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(
        axum::serve(
            listener,
            app(ctx.state.clone()).into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .into_future(),
    );
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("ok"), "{response}");
    server.abort();
    ctx.finish().await;
}

/// SIGTERM's path: once shutdown is signalled the server stops accepting connections, but a
/// request in flight (here a key-set upload in its conformance check) finishes and commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_in_flight_requests_finish() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (ka, _) = crate::common::keys();
    let ctx = Ctx::new("sqlite", config()).await.unwrap();
    let a = ctx.create_tenant(crate::common::TENANT_A).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        axum::serve(
            listener,
            app(ctx.state.clone()).into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(async {
            let _ = stopped.await;
        })
        .into_future(),
    );
    let token = a.tokens.keyholder.expose().to_owned();
    let upload = tokio::spawn(async move {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "PUT /v1/keysets/{} HTTP/1.1\r\nhost: localhost\r\nauthorization: Bearer {token}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            crate::common::KEY_ID,
            ka.bundle.len()
        );
        s.write_all(head.as_bytes()).await.unwrap();
        s.write_all(&ka.bundle).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    });
    while ctx.state.fhe().running() == 0 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    stop.send(()).unwrap();
    let response = upload.await.unwrap();
    assert!(response.starts_with("HTTP/1.1 201"), "{response}");
    server.await.unwrap().unwrap();
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    let keysets = &ctx.snapshot().await[2];
    assert_eq!(keysets.1.len(), 1);
    ctx.finish().await;
}

/// A request whose client goes away (its future dropped mid-way) is not counted as in flight
/// for ever.
#[tokio::test]
async fn abandoned_requests_leave_the_in_flight_gauge() {
    use tower::ServiceExt;
    let (ka, _) = crate::common::keys();
    let ctx = Ctx::new("sqlite", config()).await.unwrap();
    let a = ctx.create_tenant(crate::common::TENANT_A).await;
    let request = axum::http::Request::put(format!("/v1/keysets/{}", crate::common::KEY_ID))
        .header(
            "authorization",
            format!("Bearer {}", a.tokens.keyholder.expose()),
        )
        .body(axum::body::Body::from(ka.bundle.clone()))
        .unwrap();
    let gone = tokio::time::timeout(
        std::time::Duration::from_millis(20),
        ctx.app.clone().oneshot(request),
    )
    .await;
    assert!(gone.is_err(), "the upload should still have been running");
    let text = String::from_utf8(ctx.get("/metrics", None).await.body.to_vec()).unwrap();
    // Only the metrics request itself.
    assert!(text.contains("blindsight_http_in_flight 1\n"), "{text}");
    ctx.finish().await;
}
