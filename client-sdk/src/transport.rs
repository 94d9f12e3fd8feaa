//! The transport every role shares: one [`Client`] per server and token, blocking (apps call
//! it from a worker thread; the CLI directly), and [`ApiError`].
//!
//! Requests that fail for reasons that pass (the server shedding load, a per-token rate limit,
//! a dropped connection) are retried with the server's `Retry-After` or an exponential backoff.
//! Every retry is safe: record ids are chosen by the client, so a record upload retried after
//! its first attempt was stored is recognised (409 with `same_content`) and reported as
//! [`crate::Uploaded::AlreadyStored`], never stored twice. Calls whose retry could do something
//! twice (creating a tenant, whose tokens are shown once; queueing a job) are retried only when
//! the server refused before starting on them, never after a lost connection.

use std::time::Duration;

use blindsight_proto::{JobStatus, Problem, ProblemDocument};
use serde::Serialize;
use serde::de::DeserializeOwned;
use ureq::http::{self, Method};
use zeroize::Zeroizing;

/// The largest response the client reads (a result list or a public bundle's app part).
const MAX_RESPONSE: u64 = 512 << 20;

/// What went wrong talking to the server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The server answered with a problem document.
    #[error("the server refused the request: {status} {slug}: {detail}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The problem type, when it is one this protocol defines.
        problem: Option<Problem>,
        /// The problem type's slug (`proof-invalid`, `forbidden`, …), as the server sent it.
        slug: String,
        /// The server's explanation.
        detail: String,
        /// For `record-exists`: whether the stored record is byte-identical to this upload.
        same_content: Option<bool>,
    },
    /// The server could not be reached.
    #[error("couldn't reach the server at {url}: {reason} (is it running, and is the URL right?)")]
    Unreachable {
        /// The base URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The server's answer was not what this client understands.
    #[error("the server's response was not understood: {0}")]
    BadResponse(String),
    /// A job did not finish within the time the caller was prepared to wait. It keeps running
    /// on the server; wait again or fetch it later.
    #[error(
        "job {job_id} did not finish within {} s (it is {status}, {done} of {total} steps); it keeps running on the server",
        waited.as_secs()
    )]
    WaitTimedOut {
        /// The job.
        job_id: String,
        /// How long the caller waited.
        waited: Duration,
        /// Its status when the wait ended.
        status: JobStatus,
        /// Steps done.
        done: i64,
        /// Steps in all (0 until known).
        total: i64,
    },
}

impl ApiError {
    /// The problem slug, when the server refused.
    pub fn slug(&self) -> Option<&str> {
        match self {
            ApiError::Refused { slug, .. } => Some(slug),
            _ => None,
        }
    }

    /// The problem type, when the server refused with one this protocol defines.
    pub fn problem(&self) -> Option<Problem> {
        match self {
            ApiError::Refused { problem, .. } => *problem,
            _ => None,
        }
    }
}

/// A connection to one server with one token: what every role's type is built on.
pub struct Client {
    base: String,
    token: Zeroizing<String>,
    agent: ureq::Agent,
    max_attempts: u32,
    pub(crate) poll_interval: Duration,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// A response: status, headers and the body (at most [`MAX_RESPONSE`] bytes).
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: http::HeaderMap,
    pub(crate) body: Vec<u8>,
}

impl Client {
    /// A client for the server at `base_url` (e.g. `http://127.0.0.1:8080`) using `token`.
    pub fn new(base_url: &str, token: &str) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(600)))
            .build()
            .into();
        Self {
            base: base_url.trim_end_matches('/').to_owned(),
            token: Zeroizing::new(token.to_owned()),
            agent,
            max_attempts: 5,
            poll_interval: Duration::from_millis(500),
        }
    }

    /// Sets how often [`Self::wait_for_job`] asks for a job's state (at least every 10 ms).
    #[must_use]
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval.max(Duration::from_millis(10));
        self
    }

    /// Sets how many times a request is tried in all (at least once).
    #[must_use]
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The server's base URL, as given to [`Self::new`] (without a trailing `/`).
    pub fn base_url(&self) -> &str {
        &self.base
    }

    pub(crate) fn once(
        &self,
        method: &Method,
        path: &str,
        body: Option<(&[u8], &str)>,
    ) -> Result<Reply, ApiError> {
        let url = format!("{}{path}", self.base);
        let mut builder = http::Request::builder()
            .method(method.clone())
            .uri(&url)
            .header("authorization", format!("Bearer {}", self.token.as_str()));
        if let Some((_, content_type)) = body {
            builder = builder.header("content-type", content_type);
        }
        let unreachable = |e: &dyn std::fmt::Display| ApiError::Unreachable {
            url: self.base.clone(),
            reason: e.to_string(),
        };
        let result = match body {
            Some((bytes, _)) => self
                .agent
                .run(builder.body(bytes).map_err(|e| unreachable(&e))?),
            None => self
                .agent
                .run(builder.body(()).map_err(|e| unreachable(&e))?),
        };
        let mut response = result.map_err(|e| unreachable(&e))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE)
            .read_to_vec()
            .map_err(|e| unreachable(&e))?;
        Ok(Reply {
            status,
            headers,
            body,
        })
    }

    /// Sends a request, retrying what may pass, and turns any non-2xx answer into
    /// [`ApiError::Refused`].
    pub(crate) fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<(&[u8], &str)>,
    ) -> Result<Reply, ApiError> {
        self.send_with(method, path, body, true)
    }

    /// [`Self::send`]; with `idempotent` false, only refusals that happen before the server
    /// starts on the request (load shedding, readiness, rate limits) are retried, never a lost
    /// connection or a timeout, which may have committed.
    pub(crate) fn send_with(
        &self,
        method: Method,
        path: &str,
        body: Option<(&[u8], &str)>,
        idempotent: bool,
    ) -> Result<Reply, ApiError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let last = attempt >= self.max_attempts;
            let backoff = Duration::from_millis(500 << (attempt - 1).min(6));
            let reply = match self.once(&method, path, body) {
                Ok(r) => r,
                Err(e) if last || !idempotent => return Err(e),
                Err(_) => {
                    std::thread::sleep(backoff);
                    continue;
                }
            };
            if (200..300).contains(&reply.status) {
                return Ok(reply);
            }
            let problem: Option<ProblemDocument> = serde_json::from_slice(&reply.body).ok();
            let slug = problem
                .as_ref()
                .map(|p| p.slug().to_owned())
                .unwrap_or_default();
            let known = problem.as_ref().and_then(ProblemDocument::problem);
            let retryable = match (reply.status, known) {
                (503, Some(Problem::Timeout)) => idempotent,
                (503, _) | (429, Some(Problem::RateLimited)) => true,
                _ => false,
            };
            if retryable && !last {
                let wait = reply
                    .headers
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                    .map_or(backoff, Duration::from_secs);
                std::thread::sleep(wait.min(Duration::from_secs(30)));
                continue;
            }
            return Err(ApiError::Refused {
                status: reply.status,
                detail: problem
                    .as_ref()
                    .and_then(|p| p.detail.clone())
                    .unwrap_or_else(|| {
                        String::from_utf8_lossy(&reply.body)
                            .chars()
                            .take(200)
                            .collect()
                    }),
                same_content: problem.as_ref().and_then(ProblemDocument::same_content),
                problem: known,
                slug,
            });
        }
    }

    pub(crate) fn json<T: DeserializeOwned>(reply: &Reply) -> Result<T, ApiError> {
        serde_json::from_slice(&reply.body).map_err(|e| ApiError::BadResponse(e.to_string()))
    }
}

/// A request body as JSON.
pub(crate) fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(value).map_err(|e| ApiError::BadResponse(format!("request body: {e}")))
}
