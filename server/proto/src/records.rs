//! Records: `POST /v1/records` and `GET /v1/records`. The record itself travels as a binary
//! envelope (`blindsight_crypto::RecordEnvelope`); these are the JSON bodies around it.

use blindsight_crypto::RecordMetadata;
use serde::{Deserialize, Serialize};

use crate::query::QueryString;

/// The reply to `POST /v1/records`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecordStored {
    /// The record id.
    pub record_id: String,
    /// Position in the server's ingest order.
    pub seq: i64,
    /// SHA-256 of the stored proven list.
    pub proven_list_digest: String,
}

/// A record's routing metadata, as listed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecordSummary {
    /// Position in the server's ingest order (use as `after` to page).
    pub seq: i64,
    /// The record id.
    pub record_id: String,
    /// The key set it is encrypted under.
    pub key_id: String,
    /// Schema id.
    pub schema_id: String,
    /// Schema version.
    pub schema_version: i64,
    /// Cohort label.
    pub cohort: Option<String>,
    /// Lexicon version of the text features.
    pub lexicon_version: Option<String>,
    /// When the session was recorded (seconds since the epoch), as the app declared.
    pub recorded_at: Option<i64>,
    /// When the server stored it.
    pub received_at: i64,
    /// SHA-256 of the stored proven list.
    pub proven_list_digest: String,
    /// Whether a sealed transcript is stored with it.
    pub has_transcript: bool,
    /// SHA-256 of that sealed transcript, which the record's proof is bound to; absent when it
    /// has none, or was stored before transcripts were bound into proofs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_transcript_digest: Option<String>,
    /// The UTC day (days since the epoch) whose lane rollup it was added to; absent for a
    /// record in no rollup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollup_day: Option<i64>,
}

impl RecordSummary {
    /// The record's metadata as it was bound into its proof and its transcript's seal, rebuilt
    /// from what the server lists for `tenant` (the key holder opens a transcript with it).
    /// `None` when a listed number is out of its metadata field's range.
    pub fn metadata(&self, tenant: &str) -> Option<RecordMetadata> {
        Some(RecordMetadata {
            tenant: tenant.to_owned(),
            key_id: self.key_id.clone(),
            schema_id: self.schema_id.clone(),
            schema_version: u32::try_from(self.schema_version).ok()?,
            record_id: self.record_id.clone(),
            cohort: self.cohort.clone(),
            lexicon_version: self.lexicon_version.clone(),
            recorded_at: match self.recorded_at {
                Some(t) => Some(u64::try_from(t).ok()?),
                None => None,
            },
        })
    }
}

/// The query of `GET /v1/records`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct RecordListQuery {
    /// Only records with this cohort label.
    pub cohort: Option<String>,
    /// Only records recorded (or, when undeclared, received) at or after this time (seconds
    /// since the epoch).
    pub since: Option<i64>,
    /// Only records recorded (or received) before this time.
    pub until: Option<i64>,
    /// Only records after this `seq` (the previous page's `next_after`).
    pub after: Option<i64>,
    /// Page size, 1–1000 (default 100).
    pub limit: Option<i64>,
}

impl RecordListQuery {
    /// The query string, percent-encoded, without the leading `?`.
    pub fn to_query_string(&self) -> String {
        let mut q = QueryString::default();
        q.opt("cohort", self.cohort.as_deref());
        q.opt("since", self.since);
        q.opt("until", self.until);
        q.opt("after", self.after);
        q.opt("limit", self.limit);
        q.finish()
    }
}

/// A page of records (`GET /v1/records`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecordPage {
    /// The records, in ingest order.
    pub records: Vec<RecordSummary>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_after: Option<i64>,
}
