//! The `/v1` API handlers, and what every one of them shares: authentication with roles,
//! bounded body reading and strict JSON parsing.

pub mod audit;
pub mod jobs;
pub mod keysets;
pub mod models;
pub mod records;
pub mod schemas;
pub mod tenants;

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use http_body_util::LengthLimitError;
use serde::de::DeserializeOwned;

use crate::audit::Event;
use crate::auth::{Attempt, Role, TokenHash};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store;
use blindsight_proto::Problem;

/// The address a request came from (unspecified when unknown, e.g. in-process tests), or,
/// from a trusted reverse proxy, the client it forwarded for.
fn client_ip(parts: &Parts, state: &AppState) -> IpAddr {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED), |c| c.0.ip());
    state
        .config()
        .guard
        .trusted_proxies
        .client(peer, &parts.headers)
}

fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
        .filter(|t| !t.is_empty())
}

fn locked_out(retry: std::time::Duration) -> ApiError {
    ApiError::new(
        Problem::LockedOut,
        "too many failed authentications from this address; wait and retry with a valid token",
    )
    .with_retry_after(retry)
}

fn unauthorized(presented: bool) -> ApiError {
    ApiError::new(
        Problem::Unauthorized,
        if presented {
            "the bearer token is not valid; use a token issued when the tenant was created"
        } else {
            "this route needs `Authorization: Bearer <token>`"
        },
    )
}

/// Counts a failed authentication against the address, and records it (with the lockout it
/// may cause) in the server-wide audit chain, in a transaction of its own: the route template,
/// method and reason only, never the token or the address. The refusal stands even if the
/// entry cannot be written (that is logged as an error).
async fn note_failure(
    state: &AppState,
    parts: &Parts,
    (ip, attempt): (IpAddr, Attempt<'_>),
    presented: bool,
) {
    let lockout = attempt.failed();
    if let Some(lockout) = lockout {
        tracing::warn!(%ip, lockout_s = lockout.as_secs(), "address locked out after repeated failed authentications");
    }
    let route = parts
        .extensions
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str);
    let mut events = vec![Event::AuthFailed {
        route,
        method: parts.method.as_str(),
        reason: if presented {
            "invalid-token"
        } else {
            "missing-token"
        },
    }];
    if let Some(lockout) = lockout {
        events.push(Event::LockedOut {
            lockout_s: lockout.as_secs(),
        });
    }
    if let Err(e) = store::audit::append_alone(state.audit_log(), None, &events).await {
        tracing::error!(error = %e, "couldn't write the audit entry of a failed authentication");
    }
}

/// An authenticated tenant token.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The tenant the token belongs to; every query is scoped to it.
    pub tenant_id: String,
    /// What the token may do.
    pub role: Role,
}

impl Caller {
    /// Refuses the request unless the token has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.role) {
            return Ok(());
        }
        let wanted: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        Err(ApiError::new(
            Problem::Forbidden,
            format!(
                "this route needs a {} token; this one is a {} token",
                wanted.join(" or "),
                self.role
            ),
        ))
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let ip = client_ip(parts, state);
        let attempt = state.guard().begin(ip).await.map_err(locked_out)?;
        let Some(token) = bearer(parts) else {
            note_failure(state, parts, (ip, attempt), false).await;
            return Err(unauthorized(false));
        };
        let hash = TokenHash::of(token);
        let Some((tenant_id, role)) = store::authenticate(state.db(), &hash).await? else {
            note_failure(state, parts, (ip, attempt), true).await;
            return Err(unauthorized(true));
        };
        drop(attempt);
        state.guard().take(hash).map_err(|retry| {
            ApiError::new(
                Problem::RateLimited,
                "this token is sending requests faster than its rate limit; slow down",
            )
            .with_retry_after(retry)
        })?;
        Ok(Caller { tenant_id, role })
    }
}

/// The operator, holding the admin token from the server's configuration.
#[derive(Debug, Clone, Copy)]
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let ip = client_ip(parts, state);
        let attempt = state.guard().begin(ip).await.map_err(locked_out)?;
        let Some(admin) = &state.config().admin_token else {
            return Err(ApiError::new(
                Problem::AdminDisabled,
                "no admin token is configured; set BLINDSIGHT_ADMIN_TOKEN and restart the server",
            ));
        };
        match bearer(parts) {
            Some(token) if admin.matches(token) => Ok(Admin),
            presented => {
                let presented = presented.is_some();
                note_failure(state, parts, (ip, attempt), presented).await;
                Err(unauthorized(presented))
            }
        }
    }
}

/// 413 for a body of `size` over `limit`.
fn too_large(what: &str, size: &str, limit: usize) -> ApiError {
    ApiError::new(
        Problem::TooLarge,
        format!("the {what} is {size}; this route's limit is {limit} bytes"),
    )
}

/// The body's declared `Content-Length`, refused (413) before reading when over `limit`.
fn declared_length(headers: &HeaderMap, what: &str, limit: usize) -> Result<Option<u64>, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(n) if n > limit as u64 => Err(too_large(what, &format!("{n} bytes"), limit)),
        d => Ok(d),
    }
}

/// Reads a request body of at most `limit` bytes. One whose declared length is over the limit
/// is refused with 413 before any of it is read; one that streams past it, as soon as it does.
pub async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    what: &str,
) -> Result<Bytes, ApiError> {
    let too_large = |size: String| too_large(what, &size, limit);
    declared_length(headers, what, limit)?;
    match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => Ok(bytes),
        Err(e) => {
            let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
            while let Some(s) = source {
                if s.is::<LengthLimitError>() {
                    return Err(too_large("larger than that".into()));
                }
                source = s.source();
            }
            Err(ApiError::new(
                Problem::BodyUnreadable,
                format!("couldn't read the request body: {e}"),
            ))
        }
    }
}

/// Reads an envelope body of `kind` as it arrives, without holding more than it declares:
/// the header is checked (magic, version, kind, parameter set, declared sizes against the
/// kind's and the route's limits) from its first bytes, so garbage is refused before the rest
/// is read; then exactly the declared size is reserved and filled, and a body that runs past
/// it, or disagrees with its `Content-Length`, is refused. With `permits`, a well-framed body
/// is read only with a permit (none free: 503 `overloaded`), returned to hold while the
/// body is checked.
pub async fn read_envelope<'p>(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    kind: blindsight_crypto::Kind,
    permits: Option<&'p tokio::sync::Semaphore>,
) -> Result<(Bytes, Option<tokio::sync::SemaphorePermit<'p>>), ApiError> {
    use futures_util::StreamExt;
    let what = kind.name();
    let too_large = |size: String| too_large(what, &size, limit);
    let declared = declared_length(headers, what, limit)?;
    let mut stream = body.into_data_stream();
    let mut buf: Vec<u8> = Vec::new();
    let mut total: Option<u64> = None;
    let mut permit = None;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::new(
                Problem::BodyUnreadable,
                format!("couldn't read the request body: {e}"),
            )
        })?;
        if let Some(n) = total
            && (buf.len() + chunk.len()) as u64 > n
        {
            return Err(ApiError::new(
                Problem::Malformed,
                format!("the {what} runs past the {n} bytes its header declares"),
            ));
        }
        if buf.len() + chunk.len() > limit {
            return Err(too_large("larger than that".into()));
        }
        buf.extend_from_slice(&chunk);
        if total.is_none()
            && let Some(n) = blindsight_crypto::Envelope::declared_size(&buf, kind)?
        {
            if n > limit as u64 {
                return Err(too_large(format!("{n} bytes (as its header declares)")));
            }
            if let Some(d) = declared
                && d != n
            {
                return Err(ApiError::new(
                    Problem::Malformed,
                    format!("Content-Length says {d} bytes but the {what}'s header declares {n}"),
                ));
            }
            if let Some(permits) = permits {
                permit = Some(permits.try_acquire().map_err(|_| {
                    ApiError::new(
                        Problem::Overloaded,
                        format!("other {what} uploads are being read and checked; retry after the delay given"),
                    )
                    .with_retry_after(std::time::Duration::from_secs(5))
                })?);
            }
            // Exactly what is declared: no doubling of a growing buffer.
            buf.reserve_exact(n as usize - buf.len());
            total = Some(n);
        }
    }
    Ok((Bytes::from(buf), permit))
}

/// Parses a JSON control body strictly: unknown fields, wrong types and trailing data are
/// refused with the parser's message, which names the field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::new(
            Problem::MalformedJson,
            format!("the JSON body was refused: {e}"),
        )
    })
}

/// An identifier in a path or body: 1–128 characters of `A–Z a–z 0–9 - _ . : @`, the same
/// rule record metadata follows.
pub fn check_id(what: &str, id: &str) -> Result<(), ApiError> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:@".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(
            Problem::InvalidId,
            format!("the {what} must be 1–128 characters of A–Z a–z 0–9 - _ . : @"),
        ))
    }
}

/// A binary response.
pub fn octets(bytes: Vec<u8>) -> axum::response::Response {
    use axum::response::IntoResponse;
    ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response()
}
