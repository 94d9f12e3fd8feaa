//! `blindsight-client`: the SDK apps, key holders and auditors embed.
//!
//! One transport [`Client`] (blocking HTTP, retries that cannot duplicate a record, pinned key
//! bundles, problem JSON as typed errors) and one small type per role:
//!
//! - [`Recorder`]: an app records a session (or any registered schema's values), encrypted,
//!   proven and sealed on the device; [`record::build_envelope`] does the same without HTTP,
//!   for apps with their own HTTP stack.
//! - [`KeyHolder`]: registers keys and models, queues risk and aggregate jobs, waits, decrypts
//!   results ([`results`]) and opens transcripts ([`transcript`]); the only place a client key
//!   is used.
//! - [`Auditor`]: gathers the evidence over the API ([`audit`]) and runs every check of
//!   `blindsight-audit`.
//! - [`Admin`]: creates tenants.
//!
//! ```no_run
//! use blindsight_client::session::Session;
//! use blindsight_client::{Recorder, Uploaded};
//!
//! # fn main() -> blindsight_client::Result<()> {
//! // An app: an ingest token, the tenant, the key set and its pinned manifest fingerprint.
//! let recorder = Recorder::connect(
//!     "https://blindsight.example",
//!     "bst_…",
//!     "northside",
//!     "north-1",
//!     "3f1c…",
//! )?;
//! let session: Session = serde_json::from_str(include_str!("../../docs/session-example.json"))
//!     .expect("a session");
//! match recorder.record(&session)? {
//!     Uploaded::Created(stored) => println!("stored {} at {}", stored.record_id, stored.seq),
//!     Uploaded::AlreadyStored => println!("already stored by an earlier attempt"),
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Request and response bodies are `blindsight-proto`'s, the same types the server answers
//! with. This crate's normal dependency tree holds no server, HTTP server, database driver,
//! async runtime or CLI crate (CI checks it); the `blindsight` CLI is `blindsight-cli`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod api;
pub mod audit;
pub mod bindings;
mod error;
pub mod keystore;
pub mod lexicon;
pub mod progress;
pub mod record;
pub mod results;
mod roles;
pub mod session;
pub mod supervisor;
pub mod training;
pub mod training_lexicon;
pub mod transcript;
mod transport;

pub use api::{ApiError, Client, Uploaded};
pub use blindsight_proto as proto;
pub use error::{Error, Result};
pub use roles::{Admin, Auditor, KeyHolder, Recorder};
