//! The SDK's errors as the Python exceptions of `blindsight.errors`, each with its details as
//! attributes (problem type, status, field, job, path: never key material or a token).

use std::path::Path;

use blindsight_client::{ApiError, Error};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

/// An exception of `blindsight.errors` named `class`, with `message` and attributes.
pub(crate) fn raise(class: &str, message: String, attrs: &[(&str, Attr)]) -> PyErr {
    Python::attach(|py| match build(py, class, &message, attrs) {
        Ok(err) => err,
        // The Python half of the package is missing or broken: still say what went wrong.
        Err(e) => pyo3::exceptions::PyRuntimeError::new_err(format!(
            "{message} (and blindsight.errors.{class} could not be raised: {e})"
        )),
    })
}

fn build(py: Python<'_>, class: &str, message: &str, attrs: &[(&str, Attr)]) -> PyResult<PyErr> {
    let cls = py.import("blindsight.errors")?.getattr(class)?;
    let kwargs = PyDict::new(py);
    for (name, value) in attrs {
        kwargs.set_item(name, value.to_py(py)?)?;
    }
    let value = cls.call((message,), Some(&kwargs))?;
    Ok(PyErr::from_value(value))
}

/// An attribute's value.
pub(crate) enum Attr {
    None,
    Str(String),
    Int(i64),
    Bool(bool),
    /// Field errors: `[{"field": …, "reason": …}]`.
    Fields(Vec<(String, String)>),
}

impl Attr {
    fn to_py<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(match self {
            Attr::None => py.None().into_bound(py),
            Attr::Str(s) => s.into_pyobject(py)?.into_any(),
            Attr::Int(i) => i.into_pyobject(py)?.into_any(),
            Attr::Bool(b) => b.into_pyobject(py)?.to_owned().into_any(),
            Attr::Fields(fields) => {
                let list = PyList::empty(py);
                for (field, reason) in fields {
                    let d = PyDict::new(py);
                    d.set_item("field", field)?;
                    d.set_item("reason", reason)?;
                    list.append(d)?;
                }
                list.into_any()
            }
        })
    }
}

fn opt(s: Option<&str>) -> Attr {
    s.map_or(Attr::None, |s| Attr::Str(s.to_owned()))
}

/// An input that cannot be used: `class` is `InvalidSessionError` or `InvalidInputError`.
pub(crate) fn invalid(class: &str, field: Option<&str>, reason: &str) -> PyErr {
    let message = match field {
        Some(f) => format!("field {f:?}: {reason}"),
        None => reason.to_owned(),
    };
    raise(
        class,
        message,
        &[
            ("field", opt(field)),
            ("reason", Attr::Str(reason.to_owned())),
            (
                "fields",
                Attr::Fields(
                    field
                        .map(|f| vec![(f.to_owned(), reason.to_owned())])
                        .unwrap_or_default(),
                ),
            ),
        ],
    )
}

/// A transport error as `ApiError`, `UnreachableError` or `WaitTimeoutError`; `what` says
/// which request failed, when known.
pub(crate) fn api(e: &ApiError, what: Option<&str>) -> PyErr {
    let message = match what {
        Some(w) => format!("{w}: {e}"),
        None => e.to_string(),
    };
    match e {
        ApiError::Refused {
            status,
            slug,
            detail,
            same_content,
            ..
        } => raise(
            "ApiError",
            message,
            &[
                ("problem_type", opt((!slug.is_empty()).then_some(slug))),
                ("status", Attr::Int(i64::from(*status))),
                ("detail", Attr::Str(detail.clone())),
                ("fields", Attr::Fields(Vec::new())),
                ("same_content", same_content.map_or(Attr::None, Attr::Bool)),
            ],
        ),
        ApiError::Unreachable { url, reason } => raise(
            "UnreachableError",
            message,
            &[
                ("url", Attr::Str(url.clone())),
                ("detail", Attr::Str(reason.clone())),
                ("fields", Attr::Fields(Vec::new())),
            ],
        ),
        ApiError::WaitTimedOut {
            job_id,
            status,
            done,
            total,
            ..
        } => raise(
            "WaitTimeoutError",
            message,
            &[
                ("job_id", Attr::Str(job_id.clone())),
                ("status", Attr::Str(status.name().to_owned())),
                ("done", Attr::Int(*done)),
                ("total", Attr::Int(*total)),
            ],
        ),
        // `BadResponse` and anything a later SDK adds: no status, no problem type.
        _ => raise(
            "ApiError",
            message,
            &[
                ("detail", Attr::Str(e.to_string())),
                ("fields", Attr::Fields(Vec::new())),
            ],
        ),
    }
}

/// A cryptographic error; `session` says the values were a session's.
fn crypto(e: &blindsight_crypto::Error, session: bool) -> PyErr {
    use blindsight_crypto::Error as C;
    match e {
        C::InvalidField { field, reason } => invalid(
            if session {
                "InvalidSessionError"
            } else {
                "InvalidInputError"
            },
            Some(field),
            reason,
        ),
        C::WrongPassphrase => raise("KeystoreError", e.to_string(), &[("path", Attr::None)]),
        C::FingerprintMismatch {
            component,
            expected,
            found,
        } => raise(
            "PinMismatchError",
            format!("the app bundle is refused: {e}"),
            &[
                ("component", Attr::Str((*component).to_owned())),
                ("expected", Attr::Str(expected.clone())),
                ("found", Attr::Str(found.clone())),
            ],
        ),
        _ => raise("CryptoError", e.to_string(), &[]),
    }
}

/// Any SDK error as its Python exception; `session` says the input was a session.
pub(crate) fn sdk(e: &Error, session: bool) -> PyErr {
    match e {
        Error::Crypto(c) => crypto(c, session),
        Error::Api(a) => api(a, None),
        Error::Fetch { what, source } => api(source, Some(what)),
        Error::Io { path, .. } => raise("BlindsightError", e.to_string(), &[path_attr(path)]),
        Error::KeystoreExists(path) => raise("KeystoreError", e.to_string(), &[path_attr(path)]),
        Error::WrongKeystore { job_id, .. } => raise(
            "KeystoreError",
            e.to_string(),
            &[("path", Attr::None), ("job_id", Attr::Str(job_id.clone()))],
        ),
        Error::JobNotFinished { job_id, status } => job(e, job_id, Some(status.name()), None),
        Error::JobFailed { job_id, reason } => job(e, job_id, Some("failed"), Some(reason)),
        Error::UnexpectedOutput { job_id, reason } => job(e, job_id, None, Some(reason)),
        Error::UnknownSchema { job_id, .. } => job(e, job_id, None, None),
        Error::Audit(_) => raise("AuditError", e.to_string(), &[]),
        _ => raise("BlindsightError", e.to_string(), &[]),
    }
}

fn job(e: &Error, job_id: &str, status: Option<&str>, reason: Option<&str>) -> PyErr {
    raise(
        "JobError",
        e.to_string(),
        &[
            ("job_id", Attr::Str(job_id.to_owned())),
            ("status", opt(status)),
            ("reason", opt(reason)),
        ],
    )
}

fn path_attr(path: &Path) -> (&'static str, Attr) {
    ("path", Attr::Str(path.display().to_string()))
}

/// A keystore that cannot be opened at `path`: every failure is a `KeystoreError` naming it.
pub(crate) fn keystore(e: &Error, path: &Path) -> PyErr {
    raise("KeystoreError", e.to_string(), &[path_attr(path)])
}

/// A plain `BlindsightError`.
pub(crate) fn other(message: String) -> PyErr {
    raise("BlindsightError", message, &[])
}
