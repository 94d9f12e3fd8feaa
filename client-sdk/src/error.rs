//! The one error type of `blindsight-client`.

use std::path::PathBuf;

/// Everything that can go wrong in the client SDK.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A cryptographic check or operation failed.
    #[error(transparent)]
    Crypto(#[from] blindsight_crypto::Error),
    /// A file could not be read or written.
    #[error("couldn't {action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The server refused a request or could not be reached.
    #[error(transparent)]
    Api(#[from] crate::transport::ApiError),
    /// A keystore already exists where a new one would be written.
    #[error(
        "{0} already exists; refusing to overwrite a keystore (move it away or choose another path)"
    )]
    KeystoreExists(PathBuf),
    /// A job's output is encrypted under another key set than the keystore's.
    #[error(
        "job {job_id} is encrypted under key set {job_key_id}, but the keystore holds key set {keystore_key_id}; use that key set's keystore"
    )]
    WrongKeystore {
        /// The job.
        job_id: String,
        /// The key set the job ran under.
        job_key_id: String,
        /// The key set of the keystore given.
        keystore_key_id: String,
    },
    /// A job has no result yet.
    #[error("job {job_id} is {status}, not finished; wait for it and try again")]
    JobNotFinished {
        /// The job.
        job_id: String,
        /// Its status.
        status: blindsight_proto::JobStatus,
    },
    /// A job failed on the server.
    #[error("job {job_id} failed on the server: {reason}")]
    JobFailed {
        /// The job.
        job_id: String,
        /// The server's reason.
        reason: String,
    },
    /// A job's output does not have the layout its request implies (a server fault, or an
    /// output that belongs to another job): nothing is reported from it.
    #[error("the output of job {job_id} does not match its request: {reason}")]
    UnexpectedOutput {
        /// The job.
        job_id: String,
        /// What does not match.
        reason: String,
    },
    /// The job reads a schema this client does not have (pass it to
    /// [`crate::results::decrypt_with_schema`]).
    #[error(
        "job {job_id} reads schema {schema_id}@{schema_version}, which is not built in; decrypt it with that schema"
    )]
    UnknownSchema {
        /// The job.
        job_id: String,
        /// Schema id.
        schema_id: String,
        /// Schema version.
        schema_version: u32,
    },
    /// A request an audit needed failed.
    #[error("{what}: {source}")]
    Fetch {
        /// What was being fetched, e.g. `couldn't read the audit log (GET /v1/audit)`.
        what: String,
        /// Why.
        source: crate::transport::ApiError,
    },
    /// Evidence or an audit key that cannot be used as it is.
    #[error("{0}")]
    Audit(String),
    /// A session or schema value that cannot be recorded (the field is named).
    #[error("{0}")]
    Record(String),
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A failed request, with what it was for.
    pub(crate) fn fetch(what: impl Into<String>, source: crate::transport::ApiError) -> Self {
        Error::Fetch {
            what: what.into(),
            source,
        }
    }
}
