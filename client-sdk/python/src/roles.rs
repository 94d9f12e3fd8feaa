//! `blindsight.Auditor` (gathers the evidence and runs every check, holding nothing secret)
//! and `blindsight.Admin` (creates tenants).

use blindsight_audit::Options;
use blindsight_client::api::NewTenant;
use blindsight_client::bindings::Input;
use blindsight_client::progress::Quiet;
use blindsight_client::{Admin, Auditor, audit};
use pyo3::prelude::*;

use crate::convert::to_py_ser;
use crate::errors;

/// An auditor of one tenant, with its auditor (or keyholder) token.
#[pyclass(frozen, module = "blindsight", name = "Auditor")]
pub(crate) struct PyAuditor {
    inner: Auditor,
    url: String,
}

#[pymethods]
impl PyAuditor {
    /// Connects to the server at `url` with an auditor token (nothing is sent yet).
    #[staticmethod]
    fn connect(url: &str, token: &str) -> Self {
        Self {
            inner: Auditor::connect(url, token),
            url: url.to_owned(),
        }
    }

    /// The server's published audit signing key (`algorithm`, `public_key` hex, `key_id`).
    fn audit_key<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let key = py
            .detach(|| self.inner.client().audit_key())
            .map_err(|e| errors::api(&e, Some("couldn't read the audit key")))?;
        to_py_ser(py, &key)
    }

    /// Gathers the tenant's evidence over the API and runs every check (chain, proofs,
    /// receipts, storage, manifests, cohorts; `reexecute` succeeded jobs re-run on the
    /// server key), trusting only `audit_keys` (hex Ed25519 public keys, or paths of files
    /// holding one, pinned out of band) for signed heads and receipts. Without `audit_keys`
    /// the key the server publishes is trusted, which proves less. Returns the report:
    /// `passed`, `first_failure` and `checks` (`name`, `passed`, `checked`, `failed`,
    /// `summary`, `failures`, …).
    #[pyo3(signature = (audit_keys=None, reexecute=0))]
    fn verify<'py>(
        &self,
        py: Python<'py>,
        audit_keys: Option<Vec<String>>,
        reexecute: usize,
    ) -> PyResult<Bound<'py, PyAny>> {
        let report = py
            .detach(|| -> blindsight_client::Result<_> {
                let keys = match audit_keys {
                    Some(keys) => keys
                        .iter()
                        .map(|k| audit::parse_audit_key(k))
                        .collect::<Result<Vec<_>, _>>()?,
                    None => {
                        let key = self.inner.client().audit_key()?;
                        vec![
                            key.checked_public_key()
                                .map_err(blindsight_client::Error::Audit)?,
                        ]
                    }
                };
                self.inner.verify(keys, &Options { reexecute }, &mut Quiet)
            })
            .map_err(|e| errors::sdk(&e, Input::Other))?;
        to_py_ser(py, &report)
    }

    fn __repr__(&self) -> String {
        format!("Auditor(url={:?})", self.url)
    }
}

/// The operator, with the server's admin token.
#[pyclass(frozen, module = "blindsight", name = "Admin")]
pub(crate) struct PyAdmin {
    inner: Admin,
    url: String,
}

#[pymethods]
impl PyAdmin {
    /// Connects to the server at `url` with its admin token (nothing is sent yet).
    #[staticmethod]
    fn connect(url: &str, admin_token: &str) -> Self {
        Self {
            inner: Admin::connect(url, admin_token),
            url: url.to_owned(),
        }
    }

    /// Creates a tenant; returns `tenant_id`, `name`, `min_cohort_size` and its `tokens`
    /// (`keyholder`, `ingest`, `auditor`), shown only this once. Never retried after a lost
    /// connection (it could create a second tenant).
    #[pyo3(signature = (name, tenant_id=None, min_cohort_size=None))]
    fn create_tenant<'py>(
        &self,
        py: Python<'py>,
        name: &str,
        tenant_id: Option<String>,
        min_cohort_size: Option<u32>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let tenant = NewTenant {
            name: name.to_owned(),
            tenant_id,
            min_cohort_size,
            privacy_budget: None,
        };
        let created = py
            .detach(|| self.inner.create_tenant(&tenant))
            .map_err(|e| errors::api(&e, Some("couldn't create the tenant")))?;
        to_py_ser(py, &created)
    }

    fn __repr__(&self) -> String {
        format!("Admin(url={:?})", self.url)
    }
}
