//! The SDK's errors on their way to JavaScript. A native error's message is [`MARKER`]
//! followed by one JSON object: `class` (the `Error` subclass `index.js` throws:
//! `ApiError`, `InvalidSessionError`, `PinMismatchError`, …), `message`, `problemType`,
//! `status`, `fields` and the class's own details (never key material, plaintext or a token).
//! `index.js` turns it into that subclass; the plain message stays readable for anyone who
//! loads the addon without it.

use std::path::Path;

use blindsight_client::{ApiError, Error};
use serde_json::{Map, Value, json};

/// What starts the message of every error this addon raises.
pub(crate) const MARKER: &str = "BLINDSIGHT_ERROR ";

/// An error for JavaScript: its class, message and details.
#[derive(Debug)]
pub(crate) struct Failure {
    class: &'static str,
    message: String,
    details: Map<String, Value>,
}

impl Failure {
    fn new(class: &'static str, message: String) -> Self {
        let mut details = Map::new();
        details.insert("problemType".into(), Value::Null);
        details.insert("status".into(), Value::Null);
        details.insert("fields".into(), json!([]));
        Self {
            class,
            message,
            details,
        }
    }

    fn with(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.details.insert(name.into(), value.into());
        self
    }

    /// A plain `BlindsightError`.
    pub(crate) fn other(message: impl Into<String>) -> Self {
        Self::new("BlindsightError", message.into())
    }

    /// An input that cannot be used, `field` named when known: an `InvalidSessionError`
    /// when `session`, else an `InvalidInputError`.
    pub(crate) fn invalid(session: bool, field: Option<&str>, reason: &str) -> Self {
        let message = match field {
            Some(f) => format!("field {f:?}: {reason}"),
            None => reason.to_owned(),
        };
        let class = if session {
            "InvalidSessionError"
        } else {
            "InvalidInputError"
        };
        let fields = match field {
            Some(f) => json!([{ "field": f, "reason": reason }]),
            None => json!([]),
        };
        Self::new(class, message)
            .with("field", field.map(str::to_owned))
            .with("reason", reason)
            .with("fields", fields)
    }

    /// A transport error: `ApiError`, `UnreachableError` or `WaitTimeoutError`; `what` says
    /// which request failed, when known.
    pub(crate) fn api(e: &ApiError, what: Option<&str>) -> Self {
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
            } => Self::new("ApiError", message)
                .with("problemType", (!slug.is_empty()).then(|| slug.clone()))
                .with("status", *status)
                .with("detail", detail.clone())
                .with("sameContent", *same_content),
            ApiError::Unreachable { url, reason } => Self::new("UnreachableError", message)
                .with("url", url.clone())
                .with("detail", reason.clone()),
            ApiError::WaitTimedOut {
                job_id,
                status,
                done,
                total,
                ..
            } => Self::new("WaitTimeoutError", message)
                .with("jobId", job_id.clone())
                .with("jobStatus", status.name())
                .with("done", *done)
                .with("total", *total),
            // `BadResponse` and anything a later SDK adds: no status, no problem type.
            _ => Self::new("ApiError", message).with("detail", e.to_string()),
        }
    }

    fn crypto(e: &blindsight_crypto::Error, session: bool) -> Self {
        use blindsight_crypto::Error as C;
        match e {
            C::InvalidField { field, reason } => Self::invalid(session, Some(field), reason),
            C::WrongPassphrase => {
                Self::new("KeystoreError", e.to_string()).with("path", None::<String>)
            }
            C::FingerprintMismatch {
                component,
                expected,
                found,
            } => Self::new(
                "PinMismatchError",
                format!("the app bundle is refused: {e}"),
            )
            .with("component", *component)
            .with("expected", expected.clone())
            .with("found", found.clone()),
            _ => Self::new("CryptoError", e.to_string()),
        }
    }

    /// Any SDK error; `session` says the input was a session (field errors are then
    /// `InvalidSessionError`s).
    pub(crate) fn sdk(e: &Error, session: bool) -> Self {
        match e {
            Error::Crypto(c) => Self::crypto(c, session),
            Error::Api(a) => Self::api(a, None),
            Error::Fetch { what, source } => Self::api(source, Some(what)),
            Error::Io { path, .. } => Self::other(e.to_string()).with("path", display(path)),
            Error::KeystoreExists(path) => {
                Self::new("KeystoreError", e.to_string()).with("path", display(path))
            }
            Error::WrongKeystore { job_id, .. } => Self::new("KeystoreError", e.to_string())
                .with("path", None::<String>)
                .with("jobId", job_id.clone()),
            Error::JobNotFinished { job_id, status } => {
                Self::job(e, job_id, Some(status.name()), None)
            }
            Error::JobFailed { job_id, reason } => {
                Self::job(e, job_id, Some("failed"), Some(reason))
            }
            Error::UnexpectedOutput { job_id, reason } => Self::job(e, job_id, None, Some(reason)),
            Error::UnknownSchema { job_id, .. } => Self::job(e, job_id, None, None),
            Error::Record(reason) if session => Self::invalid(true, None, reason),
            _ => Self::other(e.to_string()),
        }
    }

    fn job(e: &Error, job_id: &str, status: Option<&str>, reason: Option<&str>) -> Self {
        Self::new("JobError", e.to_string())
            .with("jobId", job_id)
            .with("jobStatus", status.map(str::to_owned))
            .with("reason", reason.map(str::to_owned))
    }

    /// A keystore that cannot be opened at `path`: every failure is a `KeystoreError` naming
    /// it.
    pub(crate) fn keystore(e: &Error, path: &Path) -> Self {
        Self::new("KeystoreError", e.to_string()).with("path", display(path))
    }
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

impl From<Failure> for napi::Error {
    fn from(f: Failure) -> Self {
        let mut doc = f.details;
        doc.insert("class".into(), f.class.into());
        doc.insert("message".into(), f.message.into());
        napi::Error::from_reason(format!("{MARKER}{}", Value::Object(doc)))
    }
}

/// Parses JSON text from JavaScript as a `T`; a value that does not fit is an
/// `InvalidSessionError` (when `session`) or an `InvalidInputError` naming the field, e.g.
/// `mood_before`, `cssrs.plan` or `phq9[2]`.
pub(crate) fn parse<T: serde::de::DeserializeOwned>(
    text: &str,
    session: bool,
) -> Result<T, Failure> {
    let mut de = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        // serde reports "missing field `x`" at the enclosing object's path: the field is that
        // path plus `x` (an unknown field's path already ends with it).
        let named = message
            .split('`')
            .nth(1)
            .filter(|_| message.starts_with("missing field"));
        let field = match (path.as_str(), named) {
            (".", Some(name)) => Some(name.to_owned()),
            (p, Some(name)) => Some(format!("{p}.{name}")),
            (".", None) => None,
            (p, None) => Some(p.to_owned()),
        };
        // "at line 1 column 40" says nothing about an object built in JavaScript.
        let reason = match message.find(" at line ") {
            Some(i) => message[..i].to_owned(),
            None => message,
        };
        Failure::invalid(session, field.as_deref(), &reason)
    })
}
