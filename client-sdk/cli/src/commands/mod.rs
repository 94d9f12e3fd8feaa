//! One file per group of commands.

mod audit;
mod jobs;
mod keys;
mod models;
mod records;

pub(crate) use audit::*;
pub(crate) use jobs::*;
pub(crate) use keys::*;
pub(crate) use models::*;
pub(crate) use records::*;
