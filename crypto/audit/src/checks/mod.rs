//! One file per check, in the order a report lists them.

mod chain;
mod cohorts;
mod manifests;
mod proofs;
mod receipts;
mod reexecute;
mod rollups;
mod storage;

pub(crate) use chain::check_chains;
pub(crate) use cohorts::{check_cohorts, check_privacy};
pub(crate) use manifests::check_manifests;
pub(crate) use proofs::check_proofs;
pub(crate) use receipts::check_receipts;
pub(crate) use reexecute::check_reexecution;
pub(crate) use rollups::check_rollups;
pub(crate) use storage::check_storage;
