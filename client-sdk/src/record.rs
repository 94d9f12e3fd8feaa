//! The sans-I/O path: a record envelope built from any schema's values, for apps with their
//! own HTTP stack (upload the envelope's bytes with `POST /v1/records`). [`crate::Recorder`]
//! builds and uploads in one call.

use blindsight_crypto::{
    AppBundle, RecordEnvelope, RecordMetadata, RecordSchema, RecordValues, encrypt_record, seal,
    transcript_digest,
};

use crate::Result;

/// What an app records with a built-in schema: a therapy [`crate::session::Session`]
/// (`session` v1) or a practice [`crate::training::TrainingSession`] (`training` v1). The
/// language bindings take either through this one trait.
pub trait Recordable {
    /// The record id the app chose.
    fn record_id(&self) -> &str;
    /// Validates, extracts the on-device features, encrypts and proves the values and seals the
    /// transcript: the envelope the app uploads.
    fn to_record(&self, app: &AppBundle, tenant: &str) -> Result<RecordEnvelope>;
}

/// One record of any schema, before it is encrypted: its routing metadata, its values (by
/// field name) and an optional transcript, which is sealed to the key holder.
#[derive(Clone, Debug)]
pub struct NewRecord<'a> {
    /// The schema its values follow: the built-in `session` v1 or one the key holder
    /// registered (`GET /v1/schemas` lists their definitions).
    pub schema: &'a RecordSchema,
    /// The record id, chosen by the app so a retried upload cannot create a duplicate.
    pub record_id: String,
    /// The cohort label analytics select on.
    pub cohort: Option<String>,
    /// When it was recorded, seconds since the Unix epoch.
    pub recorded_at: Option<u64>,
    /// The lexicon version of text features among the values, if any.
    pub lexicon_version: Option<String>,
    /// Every field's value.
    pub values: RecordValues,
    /// The transcript, sealed to the key holder; never sent in clear.
    pub transcript: Option<String>,
}

impl NewRecord<'_> {
    /// The metadata its proof and its transcript's seal are bound to.
    pub fn metadata(&self, tenant: &str, key_id: &str) -> RecordMetadata {
        RecordMetadata {
            tenant: tenant.to_owned(),
            key_id: key_id.to_owned(),
            schema_id: self.schema.id.clone(),
            schema_version: self.schema.version,
            record_id: self.record_id.clone(),
            cohort: self.cohort.clone(),
            lexicon_version: self.lexicon_version.clone(),
            recorded_at: self.recorded_at,
        }
    }
}

/// Validates every value against the schema (each out-of-range or missing value is refused
/// with the field named, before anything is encrypted), seals the transcript, and encrypts and
/// proves the values under the app bundle's key set, bound to the metadata and the sealed
/// transcript's digest: the envelope an app uploads.
pub fn build_envelope(
    app: &AppBundle,
    tenant: &str,
    record: &NewRecord<'_>,
) -> Result<RecordEnvelope> {
    let metadata = record.metadata(tenant, app.key_id());
    record.schema.order_values(&record.values)?;
    let sealed_transcript = match &record.transcript {
        Some(t) => seal(
            app.transcript_key(),
            &metadata.transcript_aad(),
            t.as_bytes(),
        )?,
        None => Vec::new(),
    };
    let list = encrypt_record(
        app,
        record.schema,
        &metadata,
        &record.values,
        transcript_digest(&sealed_transcript).as_ref(),
    )?;
    Ok(RecordEnvelope {
        proven_list: list.encode()?,
        sealed_transcript,
        metadata,
    })
}
