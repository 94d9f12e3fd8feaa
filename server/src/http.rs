//! The HTTP application: one `app()` building the router, driven by tests with
//! `tower::ServiceExt::oneshot` and by `blindsight-server serve` over a real socket.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;

use crate::error::ApiError;

/// Shared state of the HTTP application.
#[derive(Clone, Debug, Default)]
pub struct AppState {
    ready: Arc<AtomicBool>,
}

impl AppState {
    /// Marks the server ready (storage migrated, keys loaded) or not (shutting down).
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }
}

/// Builds the router.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .fallback(not_found)
        .with_state(state)
}

/// Liveness: the process serves requests.
async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: the process is ready for traffic (and not shutting down).
async fn readyz(State(state): State<AppState>) -> Result<&'static str, ApiError> {
    if state.ready.load(Ordering::SeqCst) {
        Ok("ready")
    } else {
        Err(ApiError::rejected(
            StatusCode::SERVICE_UNAVAILABLE,
            "not-ready",
            "the server is starting or shutting down; retry shortly",
        ))
    }
}

async fn not_found() -> ApiError {
    ApiError::NotFound
}
