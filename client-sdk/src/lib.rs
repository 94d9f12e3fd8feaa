//! `blindsight-client`: the SDK apps and key holders embed, and the `blindsight` CLI.
//!
//! This is the only crate in which a client key exists outside a keystore file.
//!
//! - [`keystore`]: saving and loading secret keys in a passphrase-encrypted file, written
//!   atomically with mode 0600.
//! - [`api`]: the HTTP client for `blindsight-server` (retries that cannot duplicate a record,
//!   pinned key bundles, problem JSON as typed errors; models and jobs).
//! - [`results`]: a job's encrypted output, checked against its request, decrypted with the
//!   key holder's keys, and rendered as a table, CSV or JSON.
//! - [`audit`]: what `blindsight audit verify` checks, fetched with an auditor token or read
//!   (read-only) from the server's database.
//! - [`demo`]: what `blindsight demo` runs: an embedded server, a synthetic cohort recorded,
//!   scored and aggregated on ciphertext, decrypted and checked against the plaintext
//!   computation.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod api;
pub mod audit;
pub mod demo;
mod error;
pub mod keystore;
pub mod lexicon;
pub mod results;
pub mod session;

pub use error::{Error, Result};
