//! `blindsight-audit`: the checks of `blindsight audit verify`, over [`Evidence`] gathered over
//! the API with an auditor token (the client's `Auditor`) or read-only from a database (the
//! server's store). Pure: no I/O, no async, no dependency on the server or the client; job
//! re-execution calls the same `blindsight_crypto::compute::run_job` the server's workers call.
//!
//! 1. `chain`: every chain from genesis, and its head's signature by a trusted key; with
//!    heads kept from an earlier run ([`KeptHeads`]), that every chain still contains them;
//! 2. `proofs`: every stored record's proof re-verifies with its own metadata, and its
//!    digest matches the one stored and logged at ingest;
//! 3. `receipts`: every succeeded job has a receipt signed by a trusted key whose statements
//!    match the stored spec, inputs, key set, output and audit entry;
//! 4. `reexecute`: N sampled jobs are run again and must give the receipt's output digest;
//! 5. `storage`: every payload decodes as what it claims to be, nothing decodes as a client
//!    key, and no transcript is stored in the clear;
//! 6. `manifests`: every key set's manifest fingerprint matches its stored public bundle;
//! 7. `cohorts`: every aggregate job read at least its tenant's minimum cohort (as logged when
//!    the tenant was created).
//!
//! Each failure names the object, e.g. `tenant "t": entry 1834: hash does not chain`.
//!
//! - [`evidence`]: what is checked, wherever it came from; nothing in it is trusted because of
//!   its source.
//! - `checks/`: one file per check; [`verify()`] runs them all into a [`Report`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod checks;
mod context;
pub mod evidence;
mod kept;
mod report;
mod verify;

pub use evidence::Evidence;
pub use kept::KeptHeads;
pub use report::{Check, MAX_LISTED, Options, Progress, Report};
pub use verify::verify;
