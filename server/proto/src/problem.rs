//! Problem types: every refusal the server answers with, as one enum that both sides use. The
//! server renders a [`Problem`] as RFC 7807 problem JSON (`application/problem+json`) whose
//! `type` is [`PROBLEM_BASE`] followed by the problem's slug; the client parses the document
//! back into a [`ProblemDocument`] and its [`Problem`]. docs/API.md lists every one (a test
//! checks the table against [`Problem::ALL`]).

use std::fmt;

use serde::{Deserialize, Serialize};

/// The prefix of every problem `type`; the suffix is the stable slug.
pub const PROBLEM_BASE: &str = "https://blindsight.dev/problems/";

macro_rules! problems {
    ($($(#[doc = $doc:literal])* $variant:ident = ($status:literal, $slug:literal),)*) => {
        /// A stable, machine-readable reason for a refusal: its slug and HTTP status.
        ///
        /// A few slugs answer with two statuses (`unknown-key-set` is 404 when the route names
        /// the key set and 422 when a request body does); each pair is its own variant.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Problem {
            $($(#[doc = $doc])* $variant,)*
        }

        impl Problem {
            /// Every problem type, in the order docs/API.md lists them.
            pub const ALL: &'static [Problem] = &[$(Problem::$variant,)*];

            /// The stable slug (the last segment of the `type` URI).
            pub const fn slug(self) -> &'static str {
                match self {
                    $(Problem::$variant => $slug,)*
                }
            }

            /// The HTTP status the server answers with.
            pub const fn status(self) -> u16 {
                match self {
                    $(Problem::$variant => $status,)*
                }
            }
        }
    };
}

problems! {
    /// Bytes are not the envelope they claim to be (magic, framing, truncation, trailing data).
    Malformed = (400, "malformed"),
    /// An envelope format version this server does not know.
    UnsupportedFormatVersion = (400, "unsupported-format-version"),
    /// A JSON body that does not parse, or has unknown fields.
    MalformedJson = (400, "malformed-json"),
    /// A query string that does not parse, or has unknown parameters.
    MalformedQuery = (400, "malformed-query"),
    /// An id in the path or body that is not a valid id.
    InvalidId = (400, "invalid-id"),
    /// The body could not be read (the connection broke mid-upload).
    BodyUnreadable = (400, "body-unreadable"),
    /// A request to upgrade to a WebSocket that is not a valid one (its `Sec-WebSocket-*`
    /// headers or method).
    InvalidUpgrade = (400, "invalid-upgrade"),
    /// A path parameter that is not of its type (e.g. a schema version that is not a number).
    InvalidPath = (400, "invalid-path"),
    /// A missing or unknown token.
    Unauthorized = (401, "unauthorized"),
    /// The route exists but not with this method (`Allow` lists the ones it has).
    MethodNotAllowed = (405, "method-not-allowed"),
    /// A valid token whose role may not use the route.
    Forbidden = (403, "forbidden"),
    /// No such route or resource.
    NotFound = (404, "not-found"),
    /// The key set the route names is not registered for this tenant.
    UnknownKeySet = (404, "unknown-key-set"),
    /// The record the route names is not stored for this tenant.
    UnknownRecord = (404, "unknown-record"),
    /// The record has no sealed transcript.
    NoTranscript = (404, "no-transcript"),
    /// The job the route names does not exist for this tenant.
    UnknownJob = (404, "unknown-job"),
    /// The job's result was stored without a receipt.
    NoReceipt = (404, "no-receipt"),
    /// The job is queued or running.
    JobNotFinished = (409, "job-not-finished"),
    /// The tenant id is taken.
    TenantExists = (409, "tenant-exists"),
    /// A different bundle is registered under this key id.
    KeySetConflict = (409, "key-set-conflict"),
    /// A different schema (or a built-in one) has this id and version.
    SchemaExists = (409, "schema-exists"),
    /// A different model (or a built-in one) has this id and version.
    ModelExists = (409, "model-exists"),
    /// A record with this id is stored (`same_content` says whether it is byte-identical).
    RecordExists = (409, "record-exists"),
    /// A body over the route's limit, or a component over its own limit.
    TooLarge = (413, "too-large"),
    /// The proof does not verify with the record's metadata.
    ProofInvalid = (422, "proof-invalid"),
    /// The record names another tenant, or metadata and envelope disagree.
    MetadataMismatch = (422, "metadata-mismatch"),
    /// Key material made for another parameter set.
    WrongParameterSet = (422, "wrong-parameter-set"),
    /// A ciphertext or key that does not conform to the pinned parameters.
    NonConformant = (422, "non-conformant"),
    /// A list whose shape is not the schema's.
    ShapeMismatch = (422, "shape-mismatch"),
    /// An envelope for another key set.
    WrongKeyId = (422, "wrong-key-id"),
    /// An envelope of another kind than the route takes.
    WrongEnvelopeKind = (422, "wrong-envelope-kind"),
    /// A component whose fingerprint is not the manifest's.
    FingerprintMismatch = (422, "fingerprint-mismatch"),
    /// A value that expanded to a trivial (unencrypted) ciphertext.
    TrivialCiphertext = (422, "trivial-ciphertext"),
    /// A request body names a key set that is not registered.
    UnknownKeySetRef = (422, "unknown-key-set"),
    /// A request body names a schema that is not registered.
    UnknownSchema = (422, "unknown-schema"),
    /// A schema definition that is not valid.
    InvalidSchema = (422, "invalid-schema"),
    /// A field value out of its declared range or type.
    InvalidField = (422, "invalid-field"),
    /// A risk model that is not valid for its schema.
    InvalidModel = (422, "invalid-model"),
    /// An aggregate query that is not valid for its schema.
    InvalidQuery = (422, "invalid-query"),
    /// A request body names a model that is not registered.
    UnknownModel = (422, "unknown-model"),
    /// A request body names a record that is not stored or does not match the selection.
    UnknownRecordRef = (422, "unknown-record"),
    /// The selection matches no record.
    NoRecords = (422, "no-records"),
    /// The selection matches more records than one job may read.
    TooManyRecords = (422, "too-many-records"),
    /// An aggregate over fewer records than the tenant's minimum cohort.
    CohortTooSmall = (422, "cohort-too-small"),
    /// A job with privacy would spend more than the tenant's privacy budget has left (or the
    /// tenant has none).
    PrivacyBudgetExhausted = (422, "privacy-budget-exhausted"),
    /// The job's result was asked for and the job failed.
    JobFailed = (422, "job-failed"),
    /// The token exceeded its rate.
    RateLimited = (429, "rate-limited"),
    /// Too many failed authentications from this address.
    LockedOut = (429, "locked-out"),
    /// A fault on the server's side; the detail is logged, never returned.
    Internal = (500, "internal"),
    /// Load shedding.
    Overloaded = (503, "overloaded"),
    /// The request took longer than the server's limit.
    Timeout = (503, "timeout"),
    /// Not migrated, the database unreachable, or shutting down.
    NotReady = (503, "not-ready"),
    /// The route needs the admin token and none is configured.
    AdminDisabled = (503, "admin-disabled"),
    /// An audit chain no longer extends the head the server signed last (entries removed, an
    /// older backup restored): nothing is written to it until an operator resolves it.
    AuditHalted = (503, "audit-halted"),
}

impl Problem {
    /// The problem with this slug and status, if there is one.
    pub fn from_parts(status: u16, slug: &str) -> Option<Problem> {
        Problem::ALL
            .iter()
            .copied()
            .find(|p| p.status() == status && p.slug() == slug)
    }

    /// The problem named by a `type` URI (`https://blindsight.dev/problems/<slug>`) answered
    /// with `status`.
    pub fn from_type_uri(status: u16, uri: &str) -> Option<Problem> {
        Problem::from_parts(status, uri.strip_prefix(PROBLEM_BASE)?)
    }

    /// The `type` URI.
    pub fn type_uri(self) -> String {
        format!("{PROBLEM_BASE}{}", self.slug())
    }

    /// Whether a client may retry the same request later (load shedding, rate limits,
    /// lockouts, timeouts, readiness).
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            Problem::RateLimited
                | Problem::LockedOut
                | Problem::Overloaded
                | Problem::Timeout
                | Problem::NotReady
        )
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.slug())
    }
}

/// The RFC 7807 problem document every error response carries.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = Problem))]
pub struct ProblemDocument {
    /// `https://blindsight.dev/problems/<slug>`: stable, machine-readable.
    #[serde(rename = "type")]
    pub kind: String,
    /// The HTTP status text.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What was wrong and what to do (absent on 5xx).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Extension members, e.g. `same_content` on `record-exists`, `records` and `minimum` on
    /// `cohort-too-small`.
    #[serde(flatten)]
    #[cfg_attr(feature = "openapi", schema(ignore))]
    pub extensions: serde_json::Map<String, serde_json::Value>,
}

impl ProblemDocument {
    /// The document for `problem`, with the status text `title` and an optional detail.
    pub fn new(problem: Problem, title: &str, detail: Option<String>) -> Self {
        Self {
            kind: problem.type_uri(),
            title: title.to_owned(),
            status: problem.status(),
            detail,
            extensions: serde_json::Map::new(),
        }
    }

    /// The problem type, when it is one this protocol defines.
    pub fn problem(&self) -> Option<Problem> {
        Problem::from_type_uri(self.status, &self.kind)
    }

    /// The slug (the `type` URI's last segment), whether or not this protocol defines it.
    pub fn slug(&self) -> &str {
        self.kind.rsplit('/').next().unwrap_or_default()
    }

    /// For `record-exists`: whether the stored record is byte-identical to the upload.
    pub fn same_content(&self) -> Option<bool> {
        self.extensions.get("same_content")?.as_bool()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn every_problem_round_trips_through_its_slug_and_status() {
        let mut seen = HashSet::new();
        for &p in Problem::ALL {
            assert!(seen.insert((p.status(), p.slug())), "{p:?} twice");
            assert_eq!(Problem::from_parts(p.status(), p.slug()), Some(p));
            assert_eq!(Problem::from_type_uri(p.status(), &p.type_uri()), Some(p));
            assert!(p.slug().chars().all(|c| c.is_ascii_lowercase() || c == '-'));
        }
        assert_eq!(Problem::from_parts(404, "proof-invalid"), None);
        assert_eq!(Problem::from_type_uri(422, "proof-invalid"), None);
    }

    #[test]
    fn a_document_keeps_its_extensions() {
        let text = r#"{"type":"https://blindsight.dev/problems/record-exists","title":"Conflict","status":409,"detail":"d","same_content":true}"#;
        let doc: ProblemDocument = serde_json::from_str(text).unwrap();
        assert_eq!(doc.problem(), Some(Problem::RecordExists));
        assert_eq!(doc.same_content(), Some(true));
        assert_eq!(serde_json::to_string(&doc).unwrap(), text);
    }
}
