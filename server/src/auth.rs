//! Tokens, roles, and the guards in front of them: per-token rate limiting and lockout of an
//! address after repeated failed authentications.
//!
//! A token is `bst_` followed by 64 hex digits (256 random bits). The server stores only its
//! SHA-256: the first 8 bytes (hex) as an index to find the row, the whole hash to compare in
//! constant time. Tokens are shown once, when a tenant is created.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// What a token may do within its tenant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The clinic: registers keys, schemas and models, requests jobs, reads results and
    /// transcripts.
    Keyholder,
    /// An app: uploads records.
    Ingest,
    /// Compliance: reads proofs, audit entries and receipts.
    Auditor,
}

impl Role {
    /// Every role, in the order tokens are issued.
    pub const ALL: [Role; 3] = [Role::Keyholder, Role::Ingest, Role::Auditor];

    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Keyholder => "keyholder",
            Role::Ingest => "ingest",
            Role::Auditor => "auditor",
        }
    }

    /// Parses a stored role name.
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The prefix of every token, so a leaked one is recognisable by secret scanners.
pub const TOKEN_PREFIX: &str = "bst_";

/// The SHA-256 of a token: all the server ever stores.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash(pub [u8; 32]);

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenHash(..)")
    }
}

impl TokenHash {
    /// Hashes a presented token.
    pub fn of(token: &str) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(digest.as_ref());
        Self(out)
    }

    /// The index column value: the first 8 bytes, hex.
    pub fn lookup(&self) -> String {
        hex::encode(&self.0[..8])
    }

    /// Constant-time comparison with a stored hash.
    pub fn matches(&self, stored: &[u8]) -> bool {
        blindsight_crypto::ct_eq(&self.0, stored)
    }
}

pub use blindsight_proto::Token;

/// A new random token: [`TOKEN_PREFIX`] and 256 random bits in hex.
pub fn issue_token() -> blindsight_crypto::Result<Token> {
    let bytes = blindsight_crypto::random_bytes::<32>()?;
    Ok(Token::new(format!("{TOKEN_PREFIX}{}", hex::encode(bytes))))
}

/// Limits on how fast a token may call and how many failed authentications an address gets.
#[derive(Clone, Debug)]
pub struct GuardConfig {
    /// Sustained requests per second per token.
    pub rate_per_sec: f64,
    /// Requests a token may burst above the sustained rate.
    pub burst: f64,
    /// Failed authentications from one address, within `failure_window`, that lock it out.
    pub max_failures: u32,
    /// The window failures are counted in.
    pub failure_window: Duration,
    /// How long a locked-out address is refused.
    pub lockout: Duration,
    /// Reverse proxies whose `X-Forwarded-For` names the client's address.
    pub trusted_proxies: crate::proxy::TrustedProxies,
}

impl Default for GuardConfig {
    fn default() -> Self {
        Self {
            rate_per_sec: 50.0,
            burst: 200.0,
            max_failures: 10,
            failure_window: Duration::from_secs(300),
            lockout: Duration::from_secs(900),
            trusted_proxies: Default::default(),
        }
    }
}

/// Entries kept per table before the oldest are dropped (bounds memory under a flood of
/// addresses or tokens).
const MAX_TRACKED: usize = 100_000;

#[derive(Debug)]
struct Failures {
    count: u32,
    /// Credential checks in progress.
    pending: u32,
    window_start: Instant,
    locked_until: Option<Instant>,
}

impl Failures {
    /// `Err(retry_after)` while locked out; a lockout that has passed starts a new window.
    fn unlocked(&mut self, now: Instant) -> Result<(), Duration> {
        if let Some(until) = self.locked_until {
            if until > now {
                return Err(until - now);
            }
            self.locked_until = None;
            self.count = 0;
            self.window_start = now;
        }
        Ok(())
    }
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// A credential check in progress from one address ([`Guard::begin`]).
#[derive(Debug)]
pub struct Attempt<'a> {
    guard: &'a Guard,
    addr: IpAddr,
    ended: bool,
}

impl Attempt<'_> {
    /// The credential was wrong: counts the failure; `Some(lockout)` when it locks the
    /// address out.
    pub fn failed(mut self) -> Option<Duration> {
        self.ended = true;
        self.guard.end(self.addr, true)
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if !self.ended {
            self.guard.end(self.addr, false);
        }
    }
}

/// Rate limiting per token and lockout per address, in memory (per process).
#[derive(Debug, Default)]
pub struct Guard {
    config: GuardConfig,
    failures: Mutex<HashMap<IpAddr, Failures>>,
    buckets: Mutex<HashMap<TokenHash, Bucket>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock leaves counters, not invariants: keep going.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Guard {
    /// A guard with these limits.
    pub fn new(config: GuardConfig) -> Self {
        Self {
            config,
            ..Self::default()
        }
    }

    /// `Err(retry_after)` while `addr` is locked out.
    pub fn check_address(&self, addr: IpAddr) -> Result<(), Duration> {
        let now = Instant::now();
        let mut failures = lock(&self.failures);
        match failures.get_mut(&addr) {
            Some(f) => f.unlocked(now),
            None => Ok(()),
        }
    }

    /// Starts checking a credential presented from `addr`: `Err(retry_after)` while the
    /// address is locked out. At most `max_failures` minus the failures already counted in the
    /// window may be checked at once from one address; more wait their turn (a check is one
    /// lookup), so that concurrent guesses cannot run past the lockout threshold. End the
    /// attempt with [`Attempt::failed`]; dropping it (success) frees its place.
    pub async fn begin(&self, addr: IpAddr) -> Result<Attempt<'_>, Duration> {
        loop {
            {
                let now = Instant::now();
                let mut failures = lock(&self.failures);
                if let Some(f) = failures.get_mut(&addr) {
                    f.unlocked(now)?;
                }
                let f = self.entry(&mut failures, addr, now);
                if f.count + f.pending < self.config.max_failures.max(1) {
                    f.pending += 1;
                    return Ok(Attempt {
                        guard: self,
                        addr,
                        ended: false,
                    });
                }
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// `addr`'s entry, made room for when the table is full (entries whose window has passed
    /// are dropped; if that frees nothing, the oldest without a check in progress), its
    /// window restarted when it has passed.
    fn entry<'m>(
        &self,
        failures: &'m mut HashMap<IpAddr, Failures>,
        addr: IpAddr,
        now: Instant,
    ) -> &'m mut Failures {
        if failures.len() >= MAX_TRACKED && !failures.contains_key(&addr) {
            let window = self.config.failure_window;
            failures.retain(|_, f| {
                f.pending > 0
                    || f.locked_until.is_some_and(|u| u > now)
                    || now - f.window_start < window
            });
            if failures.len() >= MAX_TRACKED
                && let Some(oldest) = failures
                    .iter()
                    .filter(|(_, f)| f.pending == 0)
                    .min_by_key(|(_, f)| f.window_start)
                    .map(|(a, _)| *a)
            {
                failures.remove(&oldest);
            }
        }
        let f = failures.entry(addr).or_insert(Failures {
            count: 0,
            pending: 0,
            window_start: now,
            locked_until: None,
        });
        if f.locked_until.is_none() && now - f.window_start > self.config.failure_window {
            f.count = 0;
            f.window_start = now;
        }
        f
    }

    /// Ends an attempt; a failure is counted, and `Some(lockout)` returned when it is the one
    /// that locks the address out (exactly once per lockout).
    fn end(&self, addr: IpAddr, failed: bool) -> Option<Duration> {
        let now = Instant::now();
        let mut failures = lock(&self.failures);
        let f = failures.get_mut(&addr)?;
        f.pending = f.pending.saturating_sub(1);
        if !failed {
            return None;
        }
        f.count += 1;
        if f.locked_until.is_none() && f.count >= self.config.max_failures {
            f.locked_until = Some(now + self.config.lockout);
            return Some(self.config.lockout);
        }
        None
    }

    /// Counts a failed authentication from `addr` outside an attempt; `Some(lockout)` when
    /// this one locks the address out.
    pub fn record_failure(&self, addr: IpAddr) -> Option<Duration> {
        {
            let mut failures = lock(&self.failures);
            self.entry(&mut failures, addr, Instant::now()).pending += 1;
        }
        self.end(addr, true)
    }

    /// Takes one request from the token's bucket; `Err(retry_after)` when it is empty.
    pub fn take(&self, token: TokenHash) -> Result<(), Duration> {
        let now = Instant::now();
        let (rate, burst) = (self.config.rate_per_sec, self.config.burst.max(1.0));
        let mut buckets = lock(&self.buckets);
        if buckets.len() >= MAX_TRACKED && !buckets.contains_key(&token) {
            // Full buckets carry no state worth keeping.
            buckets
                .retain(|_, b| b.tokens + now.duration_since(b.last).as_secs_f64() * rate < burst);
        }
        let b = buckets.entry(token).or_insert(Bucket {
            tokens: burst,
            last: now,
        });
        b.tokens = (b.tokens + now.duration_since(b.last).as_secs_f64() * rate).min(burst);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            let wait = if rate > 0.0 {
                (1.0 - b.tokens) / rate
            } else {
                60.0
            };
            Err(Duration::from_secs_f64(wait.clamp(0.001, 3600.0)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_256_bit_hex_and_hash_stably() {
        let t = issue_token().unwrap();
        assert!(t.expose().starts_with(TOKEN_PREFIX));
        assert_eq!(t.expose().len(), TOKEN_PREFIX.len() + 64);
        assert_eq!(TokenHash::of(t.expose()), TokenHash::of(t.expose()));
        assert!(TokenHash::of(t.expose()).matches(&TokenHash::of(t.expose()).0));
        assert!(!TokenHash::of(t.expose()).matches(&TokenHash::of("bst_other").0));
        assert_eq!(TokenHash::of(t.expose()).lookup().len(), 16);
        assert_eq!(format!("{t:?}"), "Token(redacted)");
        assert_ne!(issue_token().unwrap(), t);
    }

    #[test]
    fn an_address_is_locked_out_after_repeated_failures() {
        let guard = Guard::new(GuardConfig {
            max_failures: 3,
            ..GuardConfig::default()
        });
        let addr: IpAddr = "192.0.2.7".parse().unwrap();
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        assert!(guard.record_failure(addr).is_none());
        assert!(guard.record_failure(addr).is_none());
        assert!(guard.check_address(addr).is_ok());
        assert!(guard.record_failure(addr).is_some());
        let retry = guard.check_address(addr).unwrap_err();
        assert!(retry > Duration::from_secs(800));
        assert!(guard.check_address(other).is_ok());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_checks_stop_at_the_threshold_and_lock_out_once() {
        let guard = std::sync::Arc::new(Guard::new(GuardConfig {
            max_failures: 10,
            ..GuardConfig::default()
        }));
        let addr: IpAddr = "192.0.2.9".parse().unwrap();
        let tasks: Vec<_> = (0..200)
            .map(|_| {
                let guard = std::sync::Arc::clone(&guard);
                tokio::spawn(async move {
                    let Ok(attempt) = guard.begin(addr).await else {
                        return (false, false);
                    };
                    // The credential lookup takes a moment.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    (true, attempt.failed().is_some())
                })
            })
            .collect();
        let (mut checked, mut lockouts) = (0, 0);
        for t in tasks {
            let (c, l) = t.await.unwrap();
            checked += usize::from(c);
            lockouts += usize::from(l);
        }
        assert_eq!((checked, lockouts), (10, 1));
        assert!(guard.check_address(addr).is_err());
        // A good credential frees its place without counting.
        let other: IpAddr = "192.0.2.10".parse().unwrap();
        for _ in 0..50 {
            drop(guard.begin(other).await.unwrap());
        }
        assert!(guard.check_address(other).is_ok());
    }

    #[test]
    fn lockout_expires() {
        let guard = Guard::new(GuardConfig {
            max_failures: 1,
            lockout: Duration::from_millis(20),
            ..GuardConfig::default()
        });
        let addr: IpAddr = "::1".parse().unwrap();
        assert!(guard.record_failure(addr).is_some());
        assert!(guard.check_address(addr).is_err());
        std::thread::sleep(Duration::from_millis(40));
        assert!(guard.check_address(addr).is_ok());
    }

    #[test]
    fn a_token_bucket_refuses_past_its_burst_and_names_a_wait() {
        let guard = Guard::new(GuardConfig {
            rate_per_sec: 1.0,
            burst: 3.0,
            ..GuardConfig::default()
        });
        let a = TokenHash::of("bst_a");
        let b = TokenHash::of("bst_b");
        for _ in 0..3 {
            guard.take(a).unwrap();
        }
        let wait = guard.take(a).unwrap_err();
        assert!(wait <= Duration::from_secs(1) && wait > Duration::ZERO);
        // Another token has its own bucket.
        guard.take(b).unwrap();
    }
}
