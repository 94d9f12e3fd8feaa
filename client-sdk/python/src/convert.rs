//! Python values ⇄ the SDK's serde types. Inputs (sessions, selections, queries) go through
//! Python's `json` module into serde, with the field that does not parse named; outputs are
//! built as Python objects from `serde_json::Value`s directly.

use blindsight_client::bindings::{self, Input};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::errors;

/// The JSON text of `obj`: a `str` or `bytes` is taken as JSON text already, anything else
/// (a dict, usually) is serialized with `json.dumps`.
pub(crate) fn json_text(obj: &Bound<'_, PyAny>) -> PyResult<String> {
    if let Ok(s) = obj.cast::<PyString>() {
        return s.extract::<String>();
    }
    if let Ok(b) = obj.cast::<PyBytes>() {
        return String::from_utf8(b.as_bytes().to_vec())
            .map_err(|e| errors::invalid(Input::Other, None, &format!("not UTF-8: {e}")));
    }
    let dumps = obj.py().import("json")?.getattr("dumps")?;
    match dumps.call1((obj,)) {
        Ok(text) => Ok(text.extract()?),
        Err(e) => Err(errors::invalid(
            Input::Other,
            None,
            &format!("not JSON-serializable: {e}"),
        )),
    }
}

/// Parses `obj` as a `T`; a value that does not fit raises `InvalidSessionError` (a session)
/// or `InvalidInputError` naming the field, e.g. `mood_before` or `cssrs.plan`.
pub(crate) fn parse<T: DeserializeOwned>(obj: &Bound<'_, PyAny>, input: Input) -> PyResult<T> {
    let text = json_text(obj)?;
    bindings::parse_json(&text, input).map_err(errors::raise)
}

/// A JSON value as the Python object `json.loads` would give.
pub(crate) fn to_py<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => b.into_pyobject(py)?.to_owned().into_any(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any()
            } else {
                n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any()
            }
        }
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(to_py(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(map) => {
            let dict = PyDict::new(py);
            for (k, v) in map {
                dict.set_item(k, to_py(py, v)?)?;
            }
            dict.into_any()
        }
    })
}

/// A serializable SDK value as a Python object.
pub(crate) fn to_py_ser<'py, T: serde::Serialize>(
    py: Python<'py>,
    value: &T,
) -> PyResult<Bound<'py, PyAny>> {
    to_py(py, &bindings::to_json(value).map_err(errors::raise)?)
}
