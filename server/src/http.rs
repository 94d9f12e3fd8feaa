//! The HTTP application: one `app()` building the router, driven by tests with
//! `tower::ServiceExt::oneshot` and by `blindsight-server serve` over a real socket.
//!
//! Layers, outermost first: request metrics and a log line per request; then, for `/v1` API
//! routes only, load shedding (503 + `Retry-After` beyond `max_in_flight` requests) and the
//! request timeout. Health, readiness, metrics and the OpenAPI document stay outside the
//! limits so probes keep answering under load.

use std::sync::LazyLock;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::{BoxError, ServiceBuilder};
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use blindsight_proto::Problem;

use crate::api;
use crate::error::ApiError;
pub use crate::state::{AppState, KeyCacheKey, KeyMaterial};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Blindsight",
        description = "Privacy-preserving compute over encrypted mental-health session data. Errors are RFC 7807 problem JSON with a stable `type`.",
    ),
    modifiers(&Security),
    tags(
        (name = "tenants", description = "Tenants and their tokens (admin)"),
        (name = "keysets", description = "Public key material"),
        (name = "schemas", description = "Record schemas"),
        (name = "records", description = "Encrypted, proven records"),
        (name = "models", description = "Risk models (clear weights, thresholds, rules)"),
        (name = "jobs", description = "Risk scoring and cohort analytics on ciphertext"),
        (name = "audit", description = "The hash-chained audit log, its signed head and the signing key"),
        (name = "operations", description = "Health, readiness, metrics, this document"),
    )
)]
struct ApiDoc;

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        for (name, what) in [
            ("admin", "The admin token from the server's configuration"),
            ("token", "A tenant token (keyholder, ingest or auditor)"),
        ] {
            components.add_security_scheme(
                name,
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .description(Some(what))
                        .build(),
                ),
            );
        }
    }
}

/// Every route, registered from the same annotations that generate the OpenAPI document: the
/// `/v1` API (under the load limits) and the operational routes (outside them).
fn routes() -> (OpenApiRouter<AppState>, OpenApiRouter<AppState>) {
    let api = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(api::tenants::create))
        .routes(routes!(api::keysets::register))
        .routes(routes!(api::keysets::public))
        .routes(routes!(api::keysets::get_server_key))
        .routes(routes!(api::schemas::register))
        .routes(routes!(api::schemas::list))
        .routes(routes!(api::records::create, api::records::list))
        .routes(routes!(api::records::proof))
        .routes(routes!(api::records::transcript))
        .routes(routes!(api::models::register, api::models::list))
        .routes(routes!(api::jobs::create, api::jobs::list))
        .routes(routes!(api::jobs::get))
        .routes(routes!(api::jobs::result))
        .routes(routes!(api::jobs::receipt))
        .routes(routes!(api::jobs::events))
        .routes(routes!(api::audit::key))
        .routes(routes!(api::audit::head))
        .routes(routes!(api::audit::entries));
    let ops = OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
        .routes(routes!(openapi_json));
    (api, ops)
}

/// The OpenAPI document of every route `app()` serves.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (api, ops) = routes();
    let mut doc = api.into_openapi();
    doc.merge(ops.into_openapi());
    crate::openapi::complete(doc)
}

static OPENAPI_JSON: LazyLock<String> = LazyLock::new(|| {
    openapi()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
});

/// Builds the router.
pub fn app(state: AppState) -> Router {
    let (api, ops) = routes();
    let limits = &state.config().limits;
    // axum applies a layer to each route separately: the limit must share one semaphore
    // across all of them to bound the server as a whole.
    let api: Router<AppState> = Router::from(api).layer(
        ServiceBuilder::new()
            .layer(HandleErrorLayer::new(overloaded))
            .load_shed()
            .layer(GlobalConcurrencyLimitLayer::new(
                limits.max_in_flight.max(1),
            ))
            .timeout(limits.request_timeout),
    );
    Router::new()
        .merge(api)
        .merge(Router::from(ops))
        .fallback(not_found)
        .layer(middleware::from_fn(as_problem))
        .layer(middleware::from_fn_with_state(state.clone(), track))
        .with_state(state)
}

/// Turns load shedding and timeouts into problem JSON with `Retry-After`.
async fn overloaded(err: BoxError) -> ApiError {
    if err.is::<tower::load_shed::error::Overloaded>() {
        ApiError::new(
            Problem::Overloaded,
            "the server is at its concurrency limit; retry after the delay given",
        )
        .with_retry_after(Duration::from_secs(1))
    } else if err.is::<tower::timeout::error::Elapsed>() {
        ApiError::new(Problem::Timeout, "the request took longer than the server's time limit and was abandoned; an uncommitted write was rolled back (a record upload retried after this gets 409 if it had been stored)",
        )
        .with_retry_after(Duration::from_secs(5))
    } else {
        ApiError::Internal(format!("middleware: {err}"))
    }
}

struct InFlight(AppState);

impl InFlight {
    fn enter(state: &AppState) -> Self {
        state.in_flight().fetch_add(1, Ordering::SeqCst);
        Self(state.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight().fetch_sub(1, Ordering::SeqCst);
    }
}

/// Counts the request in the metrics and logs one line (route template, status, time: never
/// bodies, tokens or query values).
async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let start = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let method = request.method().as_str().to_owned();
    let response = {
        // A guard, so a request whose client went away (its future dropped) is not counted
        // as in flight for ever.
        let _in_flight = InFlight::enter(&state);
        next.run(request).await
    };
    let took = start.elapsed();
    let status = response.status().as_u16();
    state
        .metrics()
        .observe_request(&route, &method, status, took);
    tracing::debug!(%method, %route, status, ms = took.as_millis() as u64, "request");
    response
}

/// Liveness: the process serves requests.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "Alive", body = String)))]
async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: storage is migrated and the server is not shutting down.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "Ready", body = String),
        (status = 503, description = "Starting, shutting down, the database unreachable, or an audit chain halted (it no longer extends the last head this server signed)", body = blindsight_proto::ProblemDocument),
    )
)]
async fn readyz(State(state): State<AppState>) -> Result<&'static str, ApiError> {
    let not_ready = |why: &str| {
        ApiError::new(Problem::NotReady, format!("{why}; retry shortly"))
            .with_retry_after(Duration::from_secs(1))
    };
    if !state.is_ready() {
        return Err(not_ready("the server is starting or shutting down"));
    }
    if !state.db().is_reachable().await {
        return Err(not_ready("the database is unreachable"));
    }
    let mut audit = state.audit_key().witness().problems();
    if !audit.is_empty() {
        // An operator may have resolved it since: look again.
        let _ = crate::store::audit::check_kept_heads(state.audit_log()).await;
        audit = state.audit_key().witness().problems();
    }
    if let Some(first) = audit.first() {
        return Err(ApiError::new(
            Problem::AuditHalted,
            if audit.len() > 1 {
                format!("{first} (and {} more)", audit.len() - 1)
            } else {
                first.clone()
            },
        ));
    }
    Ok("ready")
}

/// Prometheus metrics (text exposition format). Holds no tenant data; keep it on an internal
/// network all the same.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "Prometheus text format", body = String)))]
async fn metrics(State(state): State<AppState>) -> Response {
    // The queue's depth is read at scrape time; a database that does not answer leaves it out
    // (the readiness probe reports that).
    let queue: Vec<crate::metrics::TenantQueue> = crate::store::jobs::queue_depth(state.db())
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|(tenant, waiting, running)| crate::metrics::TenantQueue {
            tenant,
            waiting,
            running,
        })
        .collect();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics().render(state.gauges(), &queue),
    )
        .into_response()
}

/// This OpenAPI document.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "operations", responses((status = 200, description = "OpenAPI 3.1 document", body = Object)))]
async fn openapi_json() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        OPENAPI_JSON.as_str(),
    )
        .into_response()
}

async fn not_found() -> ApiError {
    ApiError::NotFound
}

/// Every error is problem JSON: the few answers the framework gives itself (a path parameter
/// of the wrong type, a method the route does not have) are rewritten, keeping their status,
/// their `Allow` header and, for a bad path, the framework's message as the detail.
async fn as_problem(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    if !(status.is_client_error() || status.is_server_error()) || is_problem {
        return response;
    }
    let allow = response.headers().get(header::ALLOW).cloned();
    let (_, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let error = match status.as_u16() {
        400 => ApiError::new(
            Problem::InvalidPath,
            if text.is_empty() {
                "a path parameter is not of its type".to_owned()
            } else {
                text
            },
        ),
        404 => ApiError::NotFound,
        405 => ApiError::new(
            Problem::MethodNotAllowed,
            "this route does not take this method; `Allow` lists the ones it takes",
        ),
        413 => ApiError::new(
            Problem::TooLarge,
            "the request body is over this route's limit",
        ),
        _ => ApiError::Internal(format!("unmapped framework answer {status}: {text}")),
    };
    let mut out = error.into_response();
    if let Some(allow) = allow {
        out.headers_mut().insert(header::ALLOW, allow);
    }
    out
}
