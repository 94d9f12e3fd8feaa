//! `blindsight-cli`: what the `blindsight` command runs beyond the client SDK, behind the
//! `server` feature (on by default) because both need `blindsight-server`:
//!
//! - [`demo`]: the README's main job, every role in one process against an embedded server;
//! - [`offline`]: `audit verify --db`, evidence read from a server's database.
//!
//! The commands themselves are the binary's (`src/main.rs` and `src/commands/`).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "server")]
pub mod demo;
#[cfg(feature = "server")]
pub mod offline;
