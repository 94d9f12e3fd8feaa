//! Selecting records for a job by routing metadata, and loading them for the worker.

use blindsight_crypto::{RecordMetadata, TranscriptDigest};
use sqlx::Row;

use crate::db::Db;
use crate::store::StoreError;

/// The most records one job may read.
pub const MAX_JOB_RECORDS: i64 = 100_000;

/// Which records a job reads: routing metadata only.
#[derive(Clone, Debug, Default)]
pub struct Selection<'a> {
    /// Key set.
    pub key_id: &'a str,
    /// Schema id.
    pub schema_id: &'a str,
    /// Schema version.
    pub schema_version: u32,
    /// Only this cohort.
    pub cohort: Option<&'a str>,
    /// Recorded (or, when undeclared, received) at or after.
    pub since: Option<i64>,
    /// Recorded (or received) before.
    pub until: Option<i64>,
}

/// The ids of the records matching `s`, in ingest order (at most `MAX_JOB_RECORDS + 1`, so
/// the caller can tell a selection that is too large).
pub async fn select_records(
    db: &Db,
    tenant_id: &str,
    s: &Selection<'_>,
) -> Result<Vec<String>, StoreError> {
    sqlx::query_scalar(
        "SELECT record_id FROM records \
         WHERE tenant_id = $1 AND key_id = $2 AND schema_id = $3 AND schema_version = $4 \
           AND ($5 IS NULL OR cohort = $5) \
           AND ($6 IS NULL OR COALESCE(recorded_at, received_at) >= $6) \
           AND ($7 IS NULL OR COALESCE(recorded_at, received_at) < $7) \
         ORDER BY seq LIMIT $8",
    )
    .bind(tenant_id)
    .bind(s.key_id)
    .bind(s.schema_id)
    .bind(i64::from(s.schema_version))
    .bind(s.cohort)
    .bind(s.since)
    .bind(s.until)
    .bind(MAX_JOB_RECORDS + 1)
    .fetch_all(db.pool())
    .await
    .map_err(StoreError::from)
}

/// A stored record as a worker reads it.
#[derive(Clone, Debug)]
pub struct StoredRecord {
    /// Its metadata, rebuilt from the routing columns (what its proof is bound to).
    pub metadata: RecordMetadata,
    /// The proven list.
    pub proven_list: Vec<u8>,
    /// SHA-256 of the proven list, as stored.
    pub proven_list_digest: String,
    /// SHA-256 of its sealed transcript, as stored (what its proof binds; `None` when it has
    /// none, or was stored before transcripts were bound).
    pub transcript_digest: Option<TranscriptDigest>,
}

/// Loads the tenant's records with these ids, in the order given. Ids that are not stored
/// are left out (the caller compares lengths).
pub async fn records_by_id(
    db: &Db,
    tenant_id: &str,
    ids: &[String],
) -> Result<Vec<StoredRecord>, StoreError> {
    let mut out = Vec::with_capacity(ids.len());
    // One query per batch of ids would need dialect-specific array binding; records are
    // loaded by primary key, so one indexed lookup each is cheap next to the FHE work.
    for id in ids {
        let row = sqlx::query(
            "SELECT record_id, key_id, schema_id, schema_version, cohort, lexicon_version, recorded_at, proven_list, proven_list_digest, sealed_transcript_digest \
             FROM records WHERE tenant_id = $1 AND record_id = $2",
        )
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(db.pool())
        .await?;
        let Some(r) = row else { continue };
        out.push(StoredRecord {
            metadata: metadata_from_row(tenant_id, &r)?,
            proven_list: r.try_get("proven_list")?,
            proven_list_digest: r.try_get("proven_list_digest")?,
            transcript_digest: transcript_digest_from_row(&r)?,
        });
    }
    Ok(out)
}

/// How many ids [`records_page`] takes at once (well under SQLite's and PostgreSQL's limits on
/// bound parameters).
pub const PAGE_RECORDS: usize = 500;

/// The tenant's records among `ids` (at most [`PAGE_RECORDS`]), in one query and in no
/// particular order; ids that are not stored are left out (the caller compares lengths).
pub async fn records_page(
    db: &Db,
    tenant_id: &str,
    ids: &[String],
) -> Result<Vec<StoredRecord>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let placeholders: Vec<String> = (0..ids.len().min(PAGE_RECORDS))
        .map(|i| format!("${}", i + 2))
        .collect();
    let sql = format!(
        "SELECT record_id, key_id, schema_id, schema_version, cohort, lexicon_version, recorded_at, proven_list, proven_list_digest, sealed_transcript_digest \
         FROM records WHERE tenant_id = $1 AND record_id IN ({})",
        placeholders.join(", ")
    );
    let mut query = sqlx::query(&sql).bind(tenant_id);
    for id in ids.iter().take(PAGE_RECORDS) {
        query = query.bind(id);
    }
    query
        .fetch_all(db.pool())
        .await?
        .iter()
        .map(|r| {
            Ok(StoredRecord {
                metadata: metadata_from_row(tenant_id, r)?,
                proven_list: r.try_get("proven_list")?,
                proven_list_digest: r.try_get("proven_list_digest")?,
                transcript_digest: transcript_digest_from_row(r)?,
            })
        })
        .collect()
}

/// A record's stored transcript digest (`sealed_transcript_digest`), parsed.
pub(crate) fn transcript_digest_from_row(
    r: &sqlx::any::AnyRow,
) -> Result<Option<TranscriptDigest>, StoreError> {
    let hex: Option<String> = r.try_get("sealed_transcript_digest")?;
    hex.map(|h| {
        blindsight_crypto::parse_transcript_digest(&h)
            .map_err(|e| StoreError::Database(sqlx::Error::Decode(Box::new(e))))
    })
    .transpose()
}

/// A record's metadata rebuilt from its routing columns (`record_id`, `key_id`, `schema_id`,
/// `schema_version`, `cohort`, `lexicon_version`, `recorded_at`): what its proof is bound to.
pub(crate) fn metadata_from_row(
    tenant_id: &str,
    r: &sqlx::any::AnyRow,
) -> Result<RecordMetadata, StoreError> {
    let schema_version: i64 = r.try_get("schema_version")?;
    let recorded_at: Option<i64> = r.try_get("recorded_at")?;
    Ok(RecordMetadata {
        tenant: tenant_id.to_owned(),
        key_id: r.try_get("key_id")?,
        schema_id: r.try_get("schema_id")?,
        schema_version: u32::try_from(schema_version).unwrap_or(u32::MAX),
        record_id: r.try_get("record_id")?,
        cohort: r.try_get("cohort")?,
        lexicon_version: r.try_get("lexicon_version")?,
        recorded_at: recorded_at.map(|t| u64::try_from(t).unwrap_or(0)),
    })
}
