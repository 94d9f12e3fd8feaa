//! `blindsight-python`: the Blindsight client SDK for Python, the extension module
//! `blindsight._native` of the `blindsight` package (`python/blindsight/`, which re-exports
//! it with the exceptions of `blindsight.errors`).
//!
//! - `Recorder`: an app records sessions (encrypted, proven and sealed in Rust, with the
//!   interpreter released), or builds their envelopes without HTTP.
//! - `KeyHolder`: opens a keystore (the secret keys stay in this module: no call returns key
//!   bytes), queues risk and aggregate jobs, waits with a progress callback, decrypts results
//!   as dicts or a pandas DataFrame, opens transcripts.
//! - `Auditor`: gathers the evidence and runs every check; `Admin`: creates tenants.
//! - `keygen`: a new key set written to a keystore, `describe_bundle`: what a file holds.
//!
//! Sessions, selections and queries cross as dicts (through Python's `json` module into the
//! SDK's serde types, a field that does not parse named); results come back as dicts and
//! lists. Every network call, proof, key generation and decryption runs with the
//! interpreter released. Errors are the classes of `blindsight.errors` ([`errors`]).

mod convert;
mod errors;
mod keyholder;
mod keys;
mod recorder;
mod roles;

use pyo3::prelude::*;

/// The native half of the `blindsight` package; import `blindsight` instead.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<recorder::PyRecorder>()?;
    m.add_class::<keyholder::PyKeyHolder>()?;
    m.add_class::<roles::PyAuditor>()?;
    m.add_class::<roles::PyAdmin>()?;
    m.add_function(wrap_pyfunction!(keys::keygen, m)?)?;
    m.add_function(wrap_pyfunction!(keys::describe_bundle, m)?)?;
    Ok(())
}
