//! The SDK's errors on their way to JavaScript. Which class and which details are
//! `blindsight_client::bindings::Problem`'s, shared with the Python binding. A native error's
//! message is [`MARKER`] followed by one JSON object: `class` (the `Error` subclass `index.js`
//! throws: `ApiError`, `InvalidSessionError`, `PinMismatchError`, …), `message`,
//! `problemType`, `status`, `fields` and the class's own details in camelCase (never key
//! material, plaintext or a token). `index.js` turns it into that subclass; the plain message
//! stays readable for anyone who loads the addon without it.

use blindsight_client::bindings::{self, Input, Problem};
use blindsight_client::{ApiError, Error};
use serde_json::{Map, Value};

/// What starts the message of every error this addon raises.
pub(crate) const MARKER: &str = "BLINDSIGHT_ERROR ";

/// An error for JavaScript.
#[derive(Debug)]
pub(crate) struct Failure(Problem);

impl From<Problem> for Failure {
    fn from(problem: Problem) -> Self {
        Self(problem)
    }
}

impl Failure {
    /// A plain `BlindsightError`.
    pub(crate) fn other(message: impl Into<String>) -> Self {
        Self(Problem::other(message))
    }

    /// An input that cannot be used, `field` named when known.
    pub(crate) fn invalid(input: Input, field: Option<&str>, reason: &str) -> Self {
        Self(Problem::invalid(input, field, reason))
    }

    /// A transport error.
    pub(crate) fn api(e: &ApiError) -> Self {
        Self(Problem::api(e, None))
    }

    /// Any SDK error; `input` says what the call was given.
    pub(crate) fn sdk(e: &Error, input: Input) -> Self {
        Self(Problem::from_error(e, input))
    }
}

/// `job_status` → `jobStatus`.
fn camel(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        match c {
            '_' => upper = true,
            c if upper => {
                out.extend(c.to_uppercase());
                upper = false;
            }
            c => out.push(c),
        }
    }
    out
}

impl From<Failure> for napi::Error {
    fn from(Failure(p): Failure) -> Self {
        let mut doc = Map::new();
        doc.insert("class".into(), p.class.name().into());
        doc.insert("message".into(), p.message.clone().into());
        doc.insert("problemType".into(), p.problem_type.clone().into());
        doc.insert("status".into(), p.status.into());
        doc.insert("fields".into(), p.fields_json());
        for (name, value) in p.details {
            doc.insert(camel(name), value);
        }
        napi::Error::from_reason(format!("{MARKER}{}", Value::Object(doc)))
    }
}

/// Parses JSON text from JavaScript as a `T`; a value that does not fit is an
/// `InvalidSessionError` (a session) or an `InvalidInputError` naming the field, e.g.
/// `mood_before`, `cssrs.plan` or `phq9[2]`.
pub(crate) fn parse<T: serde::de::DeserializeOwned>(
    text: &str,
    input: Input,
) -> Result<T, Failure> {
    bindings::parse_json(text, input).map_err(Failure)
}

#[cfg(test)]
mod tests {
    use super::camel;

    #[test]
    fn details_are_named_in_camel_case() {
        assert_eq!(camel("job_status"), "jobStatus");
        assert_eq!(camel("same_content"), "sameContent");
        assert_eq!(camel("path"), "path");
    }
}
