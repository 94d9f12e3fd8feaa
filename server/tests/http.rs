//! The HTTP application, in-process (`oneshot`) and over a real socket.

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode};
use blindsight_server::http::{AppState, app};
use blindsight_server::{ApiError, PROBLEM_BASE};
use tower::ServiceExt;

async fn get(state: &AppState, path: &str) -> (StatusCode, String, serde_json::Value) {
    let response = app(state.clone())
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let ctype = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = to_bytes(response.into_body(), 1 << 20).await.unwrap();
    let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    (status, ctype, json)
}

#[tokio::test]
async fn health_and_readiness() {
    let state = AppState::default();
    assert_eq!(get(&state, "/healthz").await.0, StatusCode::OK);
    let (status, ctype, problem) = get(&state, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ctype, "application/problem+json");
    assert_eq!(problem["type"], format!("{PROBLEM_BASE}not-ready"));
    assert_eq!(problem["status"], 503);
    state.set_ready(true);
    assert_eq!(get(&state, "/readyz").await.0, StatusCode::OK);
}

#[tokio::test]
async fn unknown_routes_are_problem_json() {
    let (status, ctype, problem) = get(&AppState::default(), "/v1/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(ctype, "application/problem+json");
    assert_eq!(problem["type"], format!("{PROBLEM_BASE}not-found"));
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
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = AppState::default();
    state.set_ready(true);
    let server = tokio::spawn(axum::serve(listener, app(state)).into_future());
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
}
