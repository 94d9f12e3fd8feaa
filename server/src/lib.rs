//! `blindsight-server`: verifies proofs, stores only ciphertext, computes on ciphertext and
//! signs what it did.
//!
//! This crate depends on `blindsight-crypto`, `blindsight-proto` (every body it answers with)
//! and `blindsight-audit` (the evidence model its store fills), never on a client crate: no
//! code path in the server can hold a client key.
//!
//! - [`Server`] ([`Launch`]): the one way to assemble a server, for `serve`, `worker`, the
//!   CLI's demo and the tests.
//! - [`http`]: the router (`app()`), driven by tests in-process and by `serve` over a socket
//!   ([`listen`]: timeouts, the connection cap, the shutdown grace period);
//!   [`api`]: the `/v1` handlers; [`state`]: what handlers and workers share.
//! - [`jobs`]: creating a job (every check, the minimum cohort, the frozen spec);
//!   [`compute`]: receipts and a job's inputs for `blindsight_crypto::compute::run_job`;
//!   [`worker`]: the workers that lease and run jobs; [`registry`]: schema, model and key-set
//!   look-ups with their caches, for handlers and workers alike.
//! - [`store`] ([`db`]): SQLite or PostgreSQL through one sqlx pool, migrations compiled in,
//!   every query (the job queue's included), answering [`store::StoreError`].
//! - [`auth`]: tokens (hashes only), roles, rate limiting and lockout; [`proxy`]: the client's
//!   address behind trusted reverse proxies.
//! - [`audit`]: the audit log's events, signing key and the heads it kept (entries, heads and
//!   `verify_chain` are `blindsight-proto`'s).
//! - [`fhe`]: the bounded pool FHE and proof work runs on, and the key cache.
//! - [`ApiError`]: the one error type, a [`Problem`] rendered as RFC 7807 problem JSON.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod api;
pub mod audit;
pub mod auth;
pub mod compute;
pub mod config;
mod error;
pub mod fhe;
pub mod http;
pub mod jobs;
mod launch;
pub mod listen;
pub mod metrics;
mod openapi;
pub mod proxy;
pub mod registry;
pub mod state;
pub mod store;
pub mod worker;

pub use blindsight_proto::{PROBLEM_BASE, Problem};
pub use config::{AdminToken, Limits, ServerConfig};
pub use db::{Backend, Db, DbError};
pub use error::ApiError;
pub use launch::{Launch, LaunchError, Server};
pub use store::db;

use blindsight_crypto::{KeyManifest, PublicBundle};

/// Decodes a public bundle as the server admits it: every component within its size limit,
/// conformant to the pinned parameters, and matching the fingerprints in its manifest.
///
/// ```
/// let err = blindsight_server::admit_public_bundle(b"not a bundle").unwrap_err();
/// assert!(err.to_string().contains("envelope magic"));
/// ```
pub fn admit_public_bundle(bytes: &[u8]) -> blindsight_crypto::Result<KeyManifest> {
    let bundle = PublicBundle::decode(bytes)?;
    Ok(bundle.manifest().clone())
}

/// Connects to the database and applies any migration it lacks (what `serve` does on start).
pub async fn open_and_migrate(
    database_url: Option<&str>,
    data_dir: &std::path::Path,
) -> Result<Db, DbError> {
    let db = Db::connect(database_url, data_dir).await?;
    db.migrate().await?;
    db.check_version().await?;
    Ok(db)
}
