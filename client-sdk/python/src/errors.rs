//! The SDK's errors as the Python exceptions of `blindsight.errors`. Which class and which
//! details are `blindsight_client::bindings::Problem`'s, shared with the Node.js binding; this
//! module only raises them, each detail as an attribute (problem type, status, fields, job,
//! path: never key material or a token).

use std::path::Path;

use blindsight_client::bindings::{Input, Problem};
use blindsight_client::{ApiError, Error};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// `problem` as its exception of `blindsight.errors`.
pub(crate) fn raise(problem: Problem) -> PyErr {
    Python::attach(|py| match build(py, &problem) {
        Ok(err) => err,
        // The Python half of the package is missing or broken: still say what went wrong.
        Err(e) => pyo3::exceptions::PyRuntimeError::new_err(format!(
            "{} (and blindsight.errors.{} could not be raised: {e})",
            problem.message,
            problem.class.name()
        )),
    })
}

fn build(py: Python<'_>, problem: &Problem) -> PyResult<PyErr> {
    let cls = py
        .import("blindsight.errors")?
        .getattr(problem.class.name())?;
    let mut attrs = serde_json::Map::new();
    attrs.insert("problem_type".into(), problem.problem_type.clone().into());
    attrs.insert("fields".into(), problem.fields_json());
    if let Some(status) = problem.status {
        attrs.insert("status".into(), status.into());
    }
    for (name, value) in &problem.details {
        // A job's status is `status` on JobError and WaitTimeoutError (they have no HTTP one).
        let name = if *name == "job_status" {
            "status"
        } else {
            name
        };
        attrs.insert(name.into(), value.clone());
    }
    // The attributes are JSON scalars and the field list: `json.loads` makes them Python's.
    let text = serde_json::Value::Object(attrs).to_string();
    let kwargs = py.import("json")?.call_method1("loads", (text,))?;
    let value = cls.call((&problem.message,), Some(kwargs.cast::<PyDict>()?))?;
    Ok(PyErr::from_value(value))
}

/// An input that cannot be used.
pub(crate) fn invalid(input: Input, field: Option<&str>, reason: &str) -> PyErr {
    raise(Problem::invalid(input, field, reason))
}

/// A transport error; `what` says which request failed, when known.
pub(crate) fn api(e: &ApiError, what: Option<&str>) -> PyErr {
    raise(Problem::api(e, what))
}

/// Any SDK error as its Python exception; `input` says what the call was given.
pub(crate) fn sdk(e: &Error, input: Input) -> PyErr {
    raise(Problem::from_error(e, input))
}

/// A keystore that cannot be opened at `path`: every failure is a `KeystoreError` naming it.
pub(crate) fn keystore(e: &Error, path: &Path) -> PyErr {
    raise(Problem::keystore(e, path))
}

/// A plain `BlindsightError`.
pub(crate) fn other(message: String) -> PyErr {
    raise(Problem::other(message))
}
