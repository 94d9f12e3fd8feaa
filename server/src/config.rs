//! Server configuration: limits, the admin credential and the audit signing key. The binary
//! fills it from flags and environment variables (see docs/OPERATIONS.md); tests build it
//! directly.

use std::fmt;
use std::time::Duration;

use crate::audit::SigningKey;
use crate::auth::{GuardConfig, TokenHash};

/// The admin credential. Only its hash is kept; `Debug` never shows it.
#[derive(Clone)]
pub struct AdminToken(TokenHash);

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminToken(redacted)")
    }
}

/// The shortest admin token accepted.
pub const MIN_ADMIN_TOKEN_LEN: usize = 32;

impl AdminToken {
    /// Takes the admin token (from `BLINDSIGHT_ADMIN_TOKEN`); refuses one too short to resist
    /// guessing.
    pub fn new(token: &str) -> Result<Self, String> {
        if token.trim().len() < MIN_ADMIN_TOKEN_LEN {
            return Err(format!(
                "the admin token must be at least {MIN_ADMIN_TOKEN_LEN} characters (e.g. `openssl rand -hex 32`)"
            ));
        }
        Ok(Self(TokenHash::of(token.trim())))
    }

    /// Constant-time check of a presented token.
    pub fn matches(&self, presented: &str) -> bool {
        TokenHash::of(presented).matches(&self.0.0)
    }
}

/// Request-size, time and concurrency limits.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest record upload (`POST /v1/records`): a proven list and a sealed transcript at
    /// their own limits, plus framing.
    pub record_body_bytes: usize,
    /// Largest key-set upload (`PUT /v1/keysets/{key_id}`): the public bundle, whose server
    /// key alone is ~100 MB.
    pub keyset_body_bytes: usize,
    /// Largest JSON control request.
    pub json_body_bytes: usize,
    /// Time a request may take before it is abandoned (its transaction rolls back).
    pub request_timeout: Duration,
    /// Requests handled at once; beyond it requests are shed with 503 and `Retry-After`.
    pub max_in_flight: usize,
    /// FHE and proof work run at once, each on its own blocking thread.
    pub fhe_workers: usize,
    /// Memory bound of the cache of decoded key material (verifiers, server keys), in bytes.
    pub key_cache_bytes: u64,
    /// Job event streams (SSE or WebSocket) open at once; beyond it, 503 `overloaded`.
    pub max_event_streams: usize,
    /// Key-set uploads read and checked at once (each may hold a few hundred MB); beyond it,
    /// 503 `overloaded`.
    pub max_keyset_uploads: usize,
    /// Connections held at once (bounded further by the process's file-descriptor limit); at
    /// the cap a new connection takes the place of the oldest that never sent a complete
    /// request, or is closed when every connection is serving one.
    pub max_connections: usize,
    /// Time a client has to send a request's headers, and an idle connection waits for its
    /// next request, before the connection is closed.
    pub header_timeout: Duration,
    /// After a shutdown signal, how long requests in flight may take to finish before their
    /// connections are cut.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        use blindsight_crypto::limits;
        Self {
            record_body_bytes: (limits::LANE_LIST + limits::TRANSCRIPT + (64 << 10)) as usize,
            keyset_body_bytes: (limits::SERVER_KEY + limits::CRS + (4 << 20)) as usize,
            json_body_bytes: 1 << 20,
            request_timeout: Duration::from_secs(120),
            max_in_flight: 256,
            fhe_workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            key_cache_bytes: 4 << 30,
            max_event_streams: 1024,
            max_keyset_uploads: 2,
            max_connections: 10_000,
            header_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// Everything the HTTP application needs besides its database.
#[derive(Clone, Debug, Default)]
pub struct ServerConfig {
    /// The admin credential; without one, admin routes answer 503 saying how to set it.
    pub admin_token: Option<AdminToken>,
    /// Size, time and concurrency limits.
    pub limits: Limits,
    /// Rate limiting and lockout.
    pub guard: GuardConfig,
    /// The smallest cohort an aggregate may run over, for tenants created without their own
    /// setting (never below 2).
    pub default_min_cohort: u32,
    /// The key that signs audit heads (`serve` loads or creates it under the data directory).
    /// Without one the state makes an in-memory key, whose signatures cannot be checked once
    /// the process ends: fine for tests and worker-only processes, which sign nothing.
    pub audit_key: Option<SigningKey>,
    /// Records per task when a job's FHE work is cut into tasks that workers compute
    /// independently (0: every job runs in one piece). Fixed into each job at creation.
    pub task_records: u64,
}

/// The default records per task: a task of 64 records is ~8,000 PBS (about two minutes on
/// one core), so leasing, loading and the merge stay a small fraction of it (see
/// docs/BENCHMARKS.md, "Scale-out"), while a 1,000-record job still has 16 tasks to spread.
pub const DEFAULT_TASK_RECORDS: u64 = 64;

impl ServerConfig {
    /// The defaults, with a minimum cohort of 10.
    pub fn new() -> Self {
        Self {
            default_min_cohort: 10,
            task_records: DEFAULT_TASK_RECORDS,
            ..Self::default()
        }
    }
}
