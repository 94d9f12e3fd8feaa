//! What the language bindings (`client-sdk/python`, `client-sdk/node`) share, so that each
//! presents the SDK the same way and only the last step (a Python exception, a JavaScript
//! `Error` subclass, a dict or an object) is theirs:
//!
//! - [`Problem`]: an SDK error as the class a binding raises (`ApiError`,
//!   `InvalidSessionError`, `PinMismatchError`, …) with its problem type, HTTP status, field
//!   errors and the class's own details, never key material, plaintext or a token;
//! - [`parse_json`]: JSON text from another language parsed as an SDK type, a value that does
//!   not fit named by its field path (`mood_before`, `cssrs.plan`, `phq9[2]`).
//!
//! Results reach both as [`crate::results::JobResults::flat_rows`].

use std::path::Path;

use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::{ApiError, Error};

/// The kind of error a binding raises: each is a class of the same name in both packages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// Anything without a more specific class.
    Blindsight,
    /// The server refused the request, or its answer was not understood.
    Api,
    /// The server could not be reached.
    Unreachable,
    /// An argument that cannot be used.
    InvalidInput,
    /// A session value that cannot be recorded.
    InvalidSession,
    /// The key set's manifest is not the pinned one.
    PinMismatch,
    /// A wrong passphrase, a file that is not a keystore, another key set's keystore.
    Keystore,
    /// A job that is not finished, failed, or whose output is wrong.
    Job,
    /// A job did not finish in time.
    WaitTimeout,
    /// Any other cryptographic failure.
    Crypto,
    /// Evidence or an audit key that cannot be used.
    Audit,
}

impl ErrorClass {
    /// The class's name in both packages.
    pub fn name(self) -> &'static str {
        match self {
            ErrorClass::Blindsight => "BlindsightError",
            ErrorClass::Api => "ApiError",
            ErrorClass::Unreachable => "UnreachableError",
            ErrorClass::InvalidInput => "InvalidInputError",
            ErrorClass::InvalidSession => "InvalidSessionError",
            ErrorClass::PinMismatch => "PinMismatchError",
            ErrorClass::Keystore => "KeystoreError",
            ErrorClass::Job => "JobError",
            ErrorClass::WaitTimeout => "WaitTimeoutError",
            ErrorClass::Crypto => "CryptoError",
            ErrorClass::Audit => "AuditError",
        }
    }
}

/// What the input was: field errors in a session are `InvalidSessionError`s, in anything else
/// (a selection, a query, an option) `InvalidInputError`s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input {
    /// A session (or a training session) to record.
    Session,
    /// Any other argument.
    Other,
}

/// An error as a binding raises it.
#[derive(Clone, Debug, PartialEq)]
pub struct Problem {
    /// The class.
    pub class: ErrorClass,
    /// The SDK's explanation.
    pub message: String,
    /// The server's problem type (`forbidden`, `proof-invalid`, …), when it answered with one.
    pub problem_type: Option<String>,
    /// The HTTP status, when there was an answer.
    pub status: Option<u16>,
    /// Field errors: `[{"field": …, "reason": …}]`.
    pub fields: Vec<(String, String)>,
    /// The class's own details, by snake_case name: `detail`, `same_content`, `url` (API
    /// errors); `field`, `reason` (invalid input); `component`, `expected`, `found` (pin);
    /// `path` (keystore, files); `job_id`, `job_status`, `reason`, `done`, `total` (jobs).
    pub details: Vec<(&'static str, Value)>,
}

impl Problem {
    fn new(class: ErrorClass, message: impl Into<String>) -> Self {
        Self {
            class,
            message: message.into(),
            problem_type: None,
            status: None,
            fields: Vec::new(),
            details: Vec::new(),
        }
    }

    fn with(mut self, name: &'static str, value: impl Into<Value>) -> Self {
        self.details.push((name, value.into()));
        self
    }

    /// A plain `BlindsightError`.
    pub fn other(message: impl Into<String>) -> Self {
        Self::new(ErrorClass::Blindsight, message)
    }

    /// An input that cannot be used, `field` named when known.
    pub fn invalid(input: Input, field: Option<&str>, reason: &str) -> Self {
        let message = match field {
            Some(f) => format!("field {f:?}: {reason}"),
            None => reason.to_owned(),
        };
        let class = match input {
            Input::Session => ErrorClass::InvalidSession,
            Input::Other => ErrorClass::InvalidInput,
        };
        let mut problem = Self::new(class, message)
            .with("field", field.map(str::to_owned))
            .with("reason", reason);
        problem.fields = field
            .map(|f| vec![(f.to_owned(), reason.to_owned())])
            .unwrap_or_default();
        problem
    }

    /// A transport error; `what` says which request failed, when known.
    pub fn api(e: &ApiError, what: Option<&str>) -> Self {
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
            } => {
                let mut problem = Self::new(ErrorClass::Api, message)
                    .with("detail", detail.clone())
                    .with("same_content", *same_content);
                problem.problem_type = (!slug.is_empty()).then(|| slug.clone());
                problem.status = Some(*status);
                problem
            }
            ApiError::Unreachable { url, reason } => Self::new(ErrorClass::Unreachable, message)
                .with("url", url.clone())
                .with("detail", reason.clone()),
            ApiError::WaitTimedOut {
                job_id,
                status,
                done,
                total,
                ..
            } => Self::new(ErrorClass::WaitTimeout, message)
                .with("job_id", job_id.clone())
                .with("job_status", status.name())
                .with("done", *done)
                .with("total", *total),
            // `BadResponse` and anything a later SDK adds: no status, no problem type.
            _ => Self::new(ErrorClass::Api, message).with("detail", e.to_string()),
        }
    }

    fn crypto(e: &blindsight_crypto::Error, input: Input) -> Self {
        use blindsight_crypto::Error as C;
        match e {
            C::InvalidField { field, reason } => Self::invalid(input, Some(field), reason),
            C::WrongPassphrase => {
                Self::new(ErrorClass::Keystore, e.to_string()).with("path", Value::Null)
            }
            C::FingerprintMismatch {
                component,
                expected,
                found,
            } => Self::new(
                ErrorClass::PinMismatch,
                format!("the app bundle is refused: {e}"),
            )
            .with("component", *component)
            .with("expected", expected.clone())
            .with("found", found.clone()),
            _ => Self::new(ErrorClass::Crypto, e.to_string()),
        }
    }

    /// Any SDK error; `input` says what the call was given.
    pub fn from_error(e: &Error, input: Input) -> Self {
        match e {
            Error::Crypto(c) => Self::crypto(c, input),
            Error::Api(a) => Self::api(a, None),
            Error::Fetch { what, source } => Self::api(source, Some(what)),
            Error::Io { path, .. } => Self::other(e.to_string()).with("path", display(path)),
            Error::KeystoreExists(path) => Self::keystore(e, path),
            Error::WrongKeystore { job_id, .. } => Self::new(ErrorClass::Keystore, e.to_string())
                .with("path", Value::Null)
                .with("job_id", job_id.clone()),
            Error::JobNotFinished { job_id, status } => {
                Self::job(e, job_id, Some(status.name()), None)
            }
            Error::JobFailed { job_id, reason } => {
                Self::job(e, job_id, Some("failed"), Some(reason))
            }
            Error::UnexpectedOutput { job_id, reason } => Self::job(e, job_id, None, Some(reason)),
            Error::UnknownSchema { job_id, .. } => Self::job(e, job_id, None, None),
            Error::Record(reason) if input == Input::Session => {
                Self::invalid(Input::Session, None, reason)
            }
            Error::Audit(_) => Self::new(ErrorClass::Audit, e.to_string()),
            _ => Self::other(e.to_string()),
        }
    }

    fn job(e: &Error, job_id: &str, status: Option<&str>, reason: Option<&str>) -> Self {
        Self::new(ErrorClass::Job, e.to_string())
            .with("job_id", job_id)
            .with("job_status", status.map(str::to_owned))
            .with("reason", reason.map(str::to_owned))
    }

    /// A keystore that cannot be opened (or written) at `path`: every failure is a
    /// `KeystoreError` naming it.
    pub fn keystore(e: &Error, path: &Path) -> Self {
        Self::new(ErrorClass::Keystore, e.to_string()).with("path", display(path))
    }

    /// The field errors as JSON: `[{"field": …, "reason": …}]`.
    pub fn fields_json(&self) -> Value {
        self.fields
            .iter()
            .map(|(field, reason)| json!({ "field": field, "reason": reason }))
            .collect()
    }
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

/// Parses JSON text from another language as a `T`; a value that does not fit is a
/// [`Problem::invalid`] naming the field by its path (`mood_before`, `cssrs.plan`, `phq9[2]`),
/// a missing or unknown one included.
pub fn parse_json<T: DeserializeOwned>(text: &str, input: Input) -> Result<T, Problem> {
    let mut de = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        // serde says "missing field `x`" at the enclosing object's path, "unknown field `x`"
        // at the field's own: either way the field is named in full.
        let named = message.split('`').nth(1).filter(|_| {
            message.starts_with("missing field") || message.starts_with("unknown field")
        });
        let last = path.rsplit('.').next().unwrap_or_default();
        let field = match (path.as_str(), named) {
            (".", Some(name)) => Some(name.to_owned()),
            (p, Some(name)) if last == name => Some(p.to_owned()),
            (p, Some(name)) => Some(format!("{p}.{name}")),
            (".", None) => None,
            (p, None) => Some(p.to_owned()),
        };
        // "at line 1 column 40" says nothing about a dict or an object built in code.
        let reason = match message.find(" at line ") {
            Some(i) => &message[..i],
            None => &message,
        };
        Problem::invalid(input, field.as_deref(), reason)
    })
}

/// A serializable SDK value as JSON.
pub fn to_json<T: serde::Serialize>(value: &T) -> Result<Value, Problem> {
    serde_json::to_value(value)
        .map_err(|e| Problem::other(format!("couldn't convert a result: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::Session;

    #[test]
    fn a_session_field_that_does_not_fit_is_named_by_its_path() {
        let mut session: Value =
            serde_json::from_str(include_str!("../../docs/session-example.json")).unwrap();
        session["cssrs"]["plan"] = json!("yes");
        let p = parse_json::<Session>(&session.to_string(), Input::Session).unwrap_err();
        assert_eq!(p.class, ErrorClass::InvalidSession);
        assert_eq!(p.fields[0].0, "cssrs.plan");
        assert!(!p.message.contains("at line"), "{}", p.message);

        session["cssrs"]["plan"] = json!(false);
        session["cssrs"]["extra"] = json!(1);
        let p = parse_json::<Session>(&session.to_string(), Input::Session).unwrap_err();
        assert_eq!(p.fields[0].0, "cssrs.extra", "{p:?}");

        let object = session.as_object_mut().unwrap();
        object["cssrs"].as_object_mut().unwrap().remove("extra");
        object.remove("mood_before");
        let p = parse_json::<Session>(&session.to_string(), Input::Other).unwrap_err();
        assert_eq!(p.class, ErrorClass::InvalidInput);
        assert_eq!(
            p.fields,
            vec![(
                "mood_before".into(),
                p.details[1].1.as_str().unwrap().into()
            )]
        );
        assert_eq!(p.fields_json()[0]["field"], "mood_before");

        let p = parse_json::<Session>("not json", Input::Session).unwrap_err();
        assert!(p.fields.is_empty());
        assert_eq!(p.details[0], ("field", Value::Null));
    }

    #[test]
    fn a_refusal_carries_its_problem_type_and_status() {
        let e = Error::Api(ApiError::Refused {
            status: 403,
            problem: None,
            slug: "forbidden".into(),
            detail: "this token may not".into(),
            same_content: None,
        });
        let p = Problem::from_error(&e, Input::Other);
        assert_eq!(p.class.name(), "ApiError");
        assert_eq!(
            (p.problem_type.as_deref(), p.status),
            (Some("forbidden"), Some(403))
        );
        let p = Problem::from_error(&Error::Record("too long".into()), Input::Session);
        assert_eq!(p.class, ErrorClass::InvalidSession);
        let p = Problem::from_error(&Error::Record("too long".into()), Input::Other);
        assert_eq!(p.class, ErrorClass::Blindsight);
    }
}
