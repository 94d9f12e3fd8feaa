//! One file per group of commands.

mod audit;
mod jobs;
mod keys;
mod models;
mod records;

pub(crate) use audit::audit_verify;
pub(crate) use jobs::{query, score, show_jobs, show_results};
pub(crate) use keys::{keygen, register};
pub(crate) use models::{list_models, register_model};
pub(crate) use records::{open_transcript, record};
