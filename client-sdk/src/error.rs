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
    Api(#[from] crate::api::ApiError),
    /// A keystore already exists where a new one would be written.
    #[error(
        "{0} already exists; refusing to overwrite a keystore (move it away or choose another path)"
    )]
    KeystoreExists(PathBuf),
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
