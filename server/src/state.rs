//! The state every handler and worker shares: the database, the configuration, the guard,
//! the FHE pool, metrics, the key cache and the audit signing key. Its own module, so the
//! router, the handlers and the workers all import it and none of them imports another.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use blindsight_crypto::ComputeKey;
use blindsight_crypto::Verifier;

use crate::audit::SigningKey;
use crate::auth::Guard;
use crate::config::ServerConfig;
use crate::db::Db;
use crate::fhe::{FhePool, WeightedCache};
use crate::metrics::{Gauges, Metrics};
use crate::store::AuditLog;

/// Decoded key material kept in the key cache.
pub enum KeyMaterial {
    /// A key set's proof verifier (compact public key and CRS).
    Verifier(Arc<Verifier>),
    /// A key set's decompressed server key.
    ServerKey(Arc<ComputeKey>),
}

impl std::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            KeyMaterial::Verifier(_) => "KeyMaterial::Verifier",
            KeyMaterial::ServerKey(_) => "KeyMaterial::ServerKey",
        })
    }
}

/// Cache key: tenant, key-set id, and which material.
pub type KeyCacheKey = (String, String, &'static str);

struct Inner {
    audit_log: AuditLog,
    config: ServerConfig,
    guard: Guard,
    fhe: FhePool,
    metrics: Metrics,
    key_cache: WeightedCache<KeyCacheKey, KeyMaterial>,
    ready: AtomicBool,
    in_flight: AtomicUsize,
    event_streams: AtomicUsize,
    large_uploads: tokio::sync::Semaphore,
}

/// Shared state of the HTTP application.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("backend", &self.0.audit_log.backend())
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// State over a connected, migrated database.
    pub fn new(db: Db, config: ServerConfig) -> Self {
        let audit_key = match &config.audit_key {
            Some(k) => k.clone(),
            None => {
                // ring's key generation fails only if the system RNG does, and then nothing
                // else (tokens, ids, leases) could work either.
                let key = SigningKey::ephemeral().expect("the system RNG works");
                tracing::debug!(
                    key_id = key.key_id(),
                    "no audit signing key configured: using an in-memory one"
                );
                key
            }
        };
        // Every audited write goes through the audit log, which signs each head it moves.
        Self(Arc::new(Inner {
            audit_log: AuditLog::new(db, audit_key),
            guard: Guard::new(config.guard.clone()),
            fhe: FhePool::new(config.limits.fhe_workers),
            key_cache: WeightedCache::new(config.limits.key_cache_bytes),
            metrics: Metrics::default(),
            ready: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            event_streams: AtomicUsize::new(0),
            large_uploads: tokio::sync::Semaphore::new(config.limits.max_keyset_uploads.max(1)),
            config,
        }))
    }

    /// Marks the server ready (storage migrated) or not (shutting down).
    pub fn set_ready(&self, ready: bool) {
        self.0.ready.store(ready, Ordering::SeqCst);
    }

    /// Whether the server is ready (migrated, not shutting down).
    pub fn is_ready(&self) -> bool {
        self.0.ready.load(Ordering::SeqCst)
    }

    /// Permits for key-set uploads read and checked at once (`limits.max_keyset_uploads`).
    pub fn large_uploads(&self) -> &tokio::sync::Semaphore {
        &self.0.large_uploads
    }

    /// Job event streams (SSE or WebSocket) open now (the `event_streams` gauge and cap).
    pub fn event_streams(&self) -> &AtomicUsize {
        &self.0.event_streams
    }

    /// Requests being served now (load shedding and the `in_flight` gauge).
    pub(crate) fn in_flight(&self) -> &AtomicUsize {
        &self.0.in_flight
    }

    /// The database (reads; audited writes take [`Self::audit_log`]).
    pub fn db(&self) -> &Db {
        self.0.audit_log.db()
    }

    /// The audit log every audited write goes through, with the key that signs its heads.
    pub fn audit_log(&self) -> &AuditLog {
        &self.0.audit_log
    }

    /// The configuration.
    pub fn config(&self) -> &ServerConfig {
        &self.0.config
    }

    /// Rate limiting and lockout.
    pub fn guard(&self) -> &Guard {
        &self.0.guard
    }

    /// Where FHE and proof work runs.
    pub fn fhe(&self) -> &FhePool {
        &self.0.fhe
    }

    /// The metrics registry.
    pub fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }

    /// The key that signs audit heads.
    pub fn audit_key(&self) -> &SigningKey {
        self.0.audit_log.key()
    }

    /// Decoded key material, bounded by `limits.key_cache_bytes`.
    pub fn key_cache(&self) -> &WeightedCache<KeyCacheKey, KeyMaterial> {
        &self.0.key_cache
    }

    /// The gauges `/metrics` reports.
    pub(crate) fn gauges(&self) -> Gauges {
        let (cached_keys, cached_key_bytes) = self.0.key_cache.stats();
        Gauges {
            fhe_queued: self.0.fhe.queued(),
            fhe_running: self.0.fhe.running(),
            cached_keys,
            cached_key_bytes,
            in_flight: self.0.in_flight.load(Ordering::SeqCst),
            event_streams: self.0.event_streams.load(Ordering::SeqCst),
        }
    }
}
