//! The HTTP client for `blindsight-server`: one [`Client`] per server and token, blocking (apps
//! call it from a worker thread; the CLI directly).
//!
//! Requests that fail for reasons that pass (the server shedding load, a per-token rate limit,
//! a dropped connection) are retried with the server's `Retry-After` or an exponential backoff.
//! Every retry is safe: record ids are chosen by the client, so a record upload retried after
//! its first attempt was stored is recognised (409 with `same_content`) and reported as
//! [`Uploaded::AlreadyStored`], never stored twice.

use std::time::Duration;

use blindsight_crypto::{AppBundle, RecordEnvelope};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use ureq::http::{self, Method};
use zeroize::Zeroizing;

/// The header carrying a key set's manifest fingerprint.
pub const MANIFEST_FINGERPRINT_HEADER: &str = "x-blindsight-manifest-fingerprint";

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
        /// The problem type's slug (`proof-invalid`, `forbidden`, …).
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
}

impl ApiError {
    /// The problem slug, when the server refused.
    pub fn slug(&self) -> Option<&str> {
        match self {
            ApiError::Refused { slug, .. } => Some(slug),
            _ => None,
        }
    }
}

#[derive(Deserialize)]
struct Problem {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    detail: Option<String>,
    #[serde(default)]
    same_content: Option<bool>,
}

/// A registered key set.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct KeysetRegistered {
    /// The key-set id.
    pub key_id: String,
    /// SHA-256 of the canonical manifest: what apps pin.
    pub manifest_fingerprint: String,
    /// The parameter-set id.
    pub parameter_set: String,
    /// Whether this call stored it (false: the same bundle was already there).
    pub created: bool,
}

/// A stored record.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct RecordStored {
    /// The record id.
    pub record_id: String,
    /// Position in the server's ingest order.
    pub seq: i64,
    /// SHA-256 of the stored proven list.
    pub proven_list_digest: String,
}

/// The outcome of a record upload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Uploaded {
    /// Stored by this call.
    Created(RecordStored),
    /// This exact record was stored before (an earlier attempt succeeded).
    AlreadyStored,
}

/// A record's routing metadata as the server lists it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct RecordSummary {
    /// Ingest order.
    pub seq: i64,
    /// Record id.
    pub record_id: String,
    /// Key set.
    pub key_id: String,
    /// Schema id.
    pub schema_id: String,
    /// Schema version.
    pub schema_version: i64,
    /// Cohort label.
    pub cohort: Option<String>,
    /// Lexicon version.
    pub lexicon_version: Option<String>,
    /// Declared recording time.
    pub recorded_at: Option<i64>,
    /// Server receipt time.
    pub received_at: i64,
    /// SHA-256 of the stored proven list.
    pub proven_list_digest: String,
    /// Whether a sealed transcript is stored.
    pub has_transcript: bool,
}

#[derive(Deserialize)]
struct RecordPage {
    records: Vec<RecordSummary>,
    next_after: Option<i64>,
}

/// Which records to list.
#[derive(Clone, Debug, Default)]
pub struct RecordQuery {
    /// Only this cohort.
    pub cohort: Option<String>,
    /// Recorded at or after (seconds since the epoch).
    pub since: Option<i64>,
    /// Recorded before.
    pub until: Option<i64>,
}

/// A tenant as created by the admin.
#[derive(Clone, Debug, Deserialize)]
pub struct TenantCreated {
    /// The tenant id.
    pub tenant_id: String,
    /// The three tokens, shown once.
    pub tokens: TenantTokens,
}

/// A tenant's tokens.
#[derive(Clone, Deserialize)]
pub struct TenantTokens {
    /// Key holder.
    pub keyholder: String,
    /// Ingest (apps).
    pub ingest: String,
    /// Auditor.
    pub auditor: String,
}

impl std::fmt::Debug for TenantTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TenantTokens(redacted)")
    }
}

/// A connection to one server with one token.
pub struct Client {
    base: String,
    token: Zeroizing<String>,
    agent: ureq::Agent,
    max_attempts: u32,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

struct Reply {
    status: u16,
    headers: http::HeaderMap,
    body: Vec<u8>,
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
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
        }
    }

    /// Sets how many times a request is tried in all (at least 1).
    #[must_use]
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    fn once(
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
    fn send(
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
    fn send_with(
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
            let problem: Option<Problem> = serde_json::from_slice(&reply.body).ok();
            let slug = problem
                .as_ref()
                .map(|p| p.kind.rsplit('/').next().unwrap_or_default().to_owned())
                .unwrap_or_default();
            let retryable = match (reply.status, slug.as_str()) {
                (503, "timeout") => idempotent,
                (503, _) | (429, "rate-limited") => true,
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
                same_content: problem.and_then(|p| p.same_content),
                slug,
            });
        }
    }

    fn json<T: DeserializeOwned>(reply: &Reply) -> Result<T, ApiError> {
        serde_json::from_slice(&reply.body).map_err(|e| ApiError::BadResponse(e.to_string()))
    }

    /// Creates a tenant (admin token).
    pub fn create_tenant(
        &self,
        name: &str,
        tenant_id: Option<&str>,
    ) -> Result<TenantCreated, ApiError> {
        let body = serde_json::json!({"name": name, "tenant_id": tenant_id});
        let body = serde_json::to_vec(&body).map_err(|e| ApiError::BadResponse(e.to_string()))?;
        // Tokens are shown once: a retry after a lost response could only create a second
        // tenant, so a lost connection or timeout is reported, not retried.
        let reply = self.send_with(
            Method::POST,
            "/v1/tenants",
            Some((&body, "application/json")),
            false,
        )?;
        Self::json(&reply)
    }

    /// Registers a public bundle (keyholder token). Idempotent for the same bundle.
    pub fn register_keyset(
        &self,
        key_id: &str,
        bundle: &[u8],
    ) -> Result<KeysetRegistered, ApiError> {
        let path = format!("/v1/keysets/{}", percent_encode(key_id));
        let reply = self.send(
            Method::PUT,
            &path,
            Some((bundle, "application/octet-stream")),
        )?;
        Self::json(&reply)
    }

    /// Fetches a key set's app bundle and refuses it unless its manifest has the fingerprint
    /// the caller pinned (so a server cannot swap keys under an app).
    pub fn app_bundle(&self, key_id: &str, pinned_fingerprint: &str) -> crate::Result<AppBundle> {
        let path = format!("/v1/keysets/{}/public", percent_encode(key_id));
        let reply = self.send(Method::GET, &path, None)?;
        Ok(AppBundle::decode_pinned(&reply.body, pinned_fingerprint)?)
    }

    /// Uploads a record (ingest token). A retry of an upload that was stored reports
    /// [`Uploaded::AlreadyStored`]; a different record under a used id is refused.
    pub fn upload_record(&self, record: &RecordEnvelope) -> crate::Result<Uploaded> {
        let bytes = record.encode()?;
        match self.send(
            Method::POST,
            "/v1/records",
            Some((&bytes, "application/octet-stream")),
        ) {
            Ok(reply) => Ok(Uploaded::Created(Self::json(&reply)?)),
            Err(ApiError::Refused {
                same_content: Some(true),
                ..
            }) => Ok(Uploaded::AlreadyStored),
            Err(e) => Err(e.into()),
        }
    }

    /// Lists every record matching `query` (keyholder or auditor token), page by page.
    pub fn records(&self, query: &RecordQuery) -> Result<Vec<RecordSummary>, ApiError> {
        let mut out = Vec::new();
        let mut after: Option<i64> = None;
        loop {
            let mut params = vec!["limit=1000".to_owned()];
            if let Some(c) = &query.cohort {
                params.push(format!("cohort={}", percent_encode(c)));
            }
            if let Some(s) = query.since {
                params.push(format!("since={s}"));
            }
            if let Some(u) = query.until {
                params.push(format!("until={u}"));
            }
            if let Some(a) = after {
                params.push(format!("after={a}"));
            }
            let reply = self.send(
                Method::GET,
                &format!("/v1/records?{}", params.join("&")),
                None,
            )?;
            let page: RecordPage = Self::json(&reply)?;
            out.extend(page.records);
            match page.next_after {
                Some(a) => after = Some(a),
                None => return Ok(out),
            }
        }
    }

    /// A record's stored proven list (keyholder or auditor token).
    pub fn proof(&self, record_id: &str) -> Result<Vec<u8>, ApiError> {
        let path = format!("/v1/records/{}/proof", percent_encode(record_id));
        Ok(self.send(Method::GET, &path, None)?.body)
    }

    /// A record's sealed transcript (keyholder token).
    pub fn sealed_transcript(&self, record_id: &str) -> Result<Vec<u8>, ApiError> {
        let path = format!("/v1/records/{}/transcript", percent_encode(record_id));
        Ok(self.send(Method::GET, &path, None)?.body)
    }
}
