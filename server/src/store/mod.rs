//! Every query the server makes. Rows hold ciphertext, proofs, sealed boxes, public keys,
//! digests and routing metadata only (docs/STORAGE.md describes each column). Writes that
//! belong together run in one transaction.
//!
//! Size: the tenant, key-set, schema and record queries; the job queue, audit log, rollups
//! and selections have files of their own.

use blindsight_proto::RecordSummary;
use sqlx::Row;

use crate::audit::Event;
use crate::auth::{Role, TokenHash};
use crate::db::{Db, now};

/// Why a store operation failed: what callers see, never a raw driver error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database failed (unreachable, a query refused, a row that does not decode).
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// An audit chain no longer extends the head the signing key kept for it: nothing is
    /// appended to it or signed for it until an operator resolves it.
    #[error("{0}")]
    Halted(crate::audit::witness::Divergence),
    /// The heads kept beside the signing key could not be written.
    #[error(transparent)]
    Witness(#[from] crate::audit::witness::WitnessError),
}

/// A write refused by a uniqueness rule rather than failed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The row exists already.
    #[error("already exists")]
    Exists,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for WriteError {
    fn from(e: sqlx::Error) -> Self {
        WriteError::Store(e.into())
    }
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

impl WriteError {
    fn from_insert(e: sqlx::Error) -> Self {
        if is_unique_violation(&e) {
            WriteError::Exists
        } else {
            WriteError::Store(e.into())
        }
    }
}

/// Creates a tenant and its tokens (hashes only) in one transaction, which also starts the
/// tenant's audit chain.
pub async fn create_tenant(
    db: &AuditLog,
    tenant_id: &str,
    name: &str,
    min_cohort_size: u32,
    privacy_budget_micro: Option<u64>,
    tokens: &[(Role, TokenHash)],
) -> Result<(), WriteError> {
    let mut tx = db.begin_write().await?;
    let at = now();
    sqlx::query(
        "INSERT INTO tenants (tenant_id, name, min_cohort_size, created_at, privacy_budget_micro) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(tenant_id)
    .bind(name)
    .bind(i64::from(min_cohort_size))
    .bind(at)
    .bind(privacy_budget_micro.map(|b| i64::try_from(b).unwrap_or(i64::MAX)))
    .execute(&mut *tx)
    .await
    .map_err(WriteError::from_insert)?;
    for (role, hash) in tokens {
        sqlx::query(
            "INSERT INTO tokens (lookup, token_hash, tenant_id, role, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(hash.lookup())
        .bind(hash.0.to_vec())
        .bind(tenant_id)
        .bind(role.as_str())
        .bind(at)
        .execute(&mut *tx)
        .await?;
    }
    let entry = audit::append(
        &mut tx,
        db,
        Some(tenant_id),
        &Event::TenantCreated {
            min_cohort_size,
            privacy_budget_micro,
        },
    )
    .await?;
    audit::commit(tx, db, [&entry]).await?;
    Ok(())
}

/// A tenant's privacy budget and what its jobs have spent (zCDP ρ, millionths); `None` for an
/// unknown tenant, a `None` budget for a tenant without one.
pub async fn tenant_privacy(
    db: &Db,
    tenant_id: &str,
) -> Result<Option<(Option<u64>, u64)>, StoreError> {
    let row = sqlx::query(
        "SELECT privacy_budget_micro, privacy_spent_micro FROM tenants WHERE tenant_id = $1",
    )
    .bind(tenant_id)
    .fetch_optional(db.pool())
    .await?;
    row.map(|r| {
        let budget: Option<i64> = r.try_get("privacy_budget_micro")?;
        let spent: i64 = r.try_get("privacy_spent_micro")?;
        Ok((
            budget.map(|b| u64::try_from(b).unwrap_or(0)),
            u64::try_from(spent).unwrap_or(0),
        ))
    })
    .transpose()
}

/// The tenant and role of a presented token, if it is one the server issued. The row is found
/// by the hash's first 8 bytes and the whole hash compared in constant time.
pub async fn authenticate(db: &Db, hash: &TokenHash) -> Result<Option<(String, Role)>, StoreError> {
    let row = sqlx::query("SELECT token_hash, tenant_id, role FROM tokens WHERE lookup = $1")
        .bind(hash.lookup())
        .fetch_optional(db.pool())
        .await?;
    let Some(row) = row else { return Ok(None) };
    let stored: Vec<u8> = row.try_get("token_hash")?;
    if !hash.matches(&stored) {
        return Ok(None);
    }
    let role: String = row.try_get("role")?;
    Ok(Role::parse(&role).map(|r| (row.get::<String, _>("tenant_id"), r)))
}

/// A tenant's setting for the smallest cohort an aggregate may run over.
pub async fn tenant_min_cohort(db: &Db, tenant_id: &str) -> Result<Option<i64>, StoreError> {
    sqlx::query_scalar("SELECT min_cohort_size FROM tenants WHERE tenant_id = $1")
        .bind(tenant_id)
        .fetch_optional(db.pool())
        .await
        .map_err(StoreError::from)
}

/// A key set as stored.
#[derive(Debug)]
pub struct KeysetRow<'a> {
    /// Owner.
    pub tenant_id: &'a str,
    /// Key-set id.
    pub key_id: &'a str,
    /// Parameter-set id from the manifest.
    pub parameter_set: &'a str,
    /// SHA-256 of the canonical manifest (what apps pin).
    pub manifest_fingerprint: &'a str,
    /// SHA-256 of the uploaded bundle (idempotency).
    pub bundle_digest: &'a str,
    /// The manifest's canonical JSON.
    pub manifest: &'a [u8],
    /// The app bundle envelope (compact public key, CRS, transcript key, manifest).
    pub app_bundle: &'a [u8],
    /// The compressed server key (safe-serialized).
    pub server_key: &'a [u8],
}

/// Whether a key-set upload created a row or found the same bundle already there.
#[derive(Debug, PartialEq, Eq)]
pub enum KeysetOutcome {
    /// Stored now.
    Created,
    /// The same bundle was stored before.
    Unchanged,
    /// A different bundle is stored under this id.
    Conflict,
}

/// The stored bundle digest of a key set, if any.
pub async fn keyset_digest(
    db: &Db,
    tenant_id: &str,
    key_id: &str,
) -> Result<Option<String>, StoreError> {
    sqlx::query_scalar("SELECT bundle_digest FROM keysets WHERE tenant_id = $1 AND key_id = $2")
        .bind(tenant_id)
        .bind(key_id)
        .fetch_optional(db.pool())
        .await
        .map_err(StoreError::from)
}

/// Stores a key set unless one is stored under its id (idempotent for the same bundle), with
/// its audit entry.
pub async fn insert_keyset(
    db: &AuditLog,
    row: &KeysetRow<'_>,
) -> Result<KeysetOutcome, StoreError> {
    let mut tx = db.begin_write().await?;
    let existing: Option<String> = sqlx::query_scalar(
        "SELECT bundle_digest FROM keysets WHERE tenant_id = $1 AND key_id = $2",
    )
    .bind(row.tenant_id)
    .bind(row.key_id)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(digest) = existing {
        return Ok(if digest == row.bundle_digest {
            KeysetOutcome::Unchanged
        } else {
            KeysetOutcome::Conflict
        });
    }
    let inserted = sqlx::query(
        "INSERT INTO keysets (tenant_id, key_id, parameter_set, manifest_fingerprint, bundle_digest, manifest, app_bundle, server_key, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(row.tenant_id)
    .bind(row.key_id)
    .bind(row.parameter_set)
    .bind(row.manifest_fingerprint)
    .bind(row.bundle_digest)
    .bind(row.manifest.to_vec())
    .bind(row.app_bundle.to_vec())
    .bind(row.server_key.to_vec())
    .bind(now())
    .execute(&mut *tx)
    .await;
    match inserted {
        Ok(_) => {}
        // A concurrent upload of the same id won the race (PostgreSQL).
        Err(e) if is_unique_violation(&e) => {
            drop(tx);
            return Ok(match keyset_digest(db, row.tenant_id, row.key_id).await? {
                Some(d) if d == row.bundle_digest => KeysetOutcome::Unchanged,
                _ => KeysetOutcome::Conflict,
            });
        }
        Err(e) => return Err(e.into()),
    }
    let entry = audit::append(
        &mut tx,
        db,
        Some(row.tenant_id),
        &Event::KeysetRegistered {
            key_id: row.key_id,
            parameter_set: row.parameter_set,
            manifest_fingerprint: row.manifest_fingerprint,
            bundle_digest: row.bundle_digest,
        },
    )
    .await?;
    audit::commit(tx, db, [&entry]).await?;
    Ok(KeysetOutcome::Created)
}

/// The app bundle envelope and manifest fingerprint of a key set.
pub async fn app_bundle(
    db: &Db,
    tenant_id: &str,
    key_id: &str,
) -> Result<Option<(Vec<u8>, String)>, StoreError> {
    let row = sqlx::query(
        "SELECT app_bundle, manifest_fingerprint FROM keysets WHERE tenant_id = $1 AND key_id = $2",
    )
    .bind(tenant_id)
    .bind(key_id)
    .fetch_optional(db.pool())
    .await?;
    row.map(|r| Ok((r.try_get("app_bundle")?, r.try_get("manifest_fingerprint")?)))
        .transpose()
}

/// The manifest envelope of a key set.
pub async fn keyset_manifest(
    db: &Db,
    tenant_id: &str,
    key_id: &str,
) -> Result<Option<Vec<u8>>, StoreError> {
    sqlx::query_scalar("SELECT manifest FROM keysets WHERE tenant_id = $1 AND key_id = $2")
        .bind(tenant_id)
        .bind(key_id)
        .fetch_optional(db.pool())
        .await
        .map_err(StoreError::from)
}

/// The compressed server key of a key set.
pub async fn server_key(
    db: &Db,
    tenant_id: &str,
    key_id: &str,
) -> Result<Option<Vec<u8>>, StoreError> {
    sqlx::query_scalar("SELECT server_key FROM keysets WHERE tenant_id = $1 AND key_id = $2")
        .bind(tenant_id)
        .bind(key_id)
        .fetch_optional(db.pool())
        .await
        .map_err(StoreError::from)
}

/// A registered schema's JSON definition and digest.
pub async fn schema(
    db: &Db,
    tenant_id: &str,
    schema_id: &str,
    version: u32,
) -> Result<Option<(String, String)>, StoreError> {
    let row = sqlx::query(
        "SELECT definition, digest FROM schemas WHERE tenant_id = $1 AND schema_id = $2 AND schema_version = $3",
    )
    .bind(tenant_id)
    .bind(schema_id)
    .bind(i64::from(version))
    .fetch_optional(db.pool())
    .await?;
    row.map(|r| Ok((r.try_get("definition")?, r.try_get("digest")?)))
        .transpose()
}

/// Stores a schema definition, with its audit entry.
pub async fn insert_schema(
    db: &AuditLog,
    tenant_id: &str,
    schema_id: &str,
    version: u32,
    definition: &str,
    digest: &str,
) -> Result<(), WriteError> {
    let mut tx = db.begin_write().await?;
    sqlx::query(
        "INSERT INTO schemas (tenant_id, schema_id, schema_version, definition, digest, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(tenant_id)
    .bind(schema_id)
    .bind(i64::from(version))
    .bind(definition)
    .bind(digest)
    .bind(now())
    .execute(&mut *tx)
    .await
    .map_err(WriteError::from_insert)?;
    let entry = audit::append(
        &mut tx,
        db,
        Some(tenant_id),
        &Event::SchemaRegistered {
            schema_id,
            version,
            digest,
        },
    )
    .await?;
    audit::commit(tx, db, [&entry]).await?;
    Ok(())
}

/// A record as stored.
#[derive(Debug)]
pub struct RecordRow<'a> {
    /// The verified metadata.
    pub metadata: &'a blindsight_crypto::RecordMetadata,
    /// The safe-serialized proven list.
    pub proven_list: &'a [u8],
    /// SHA-256 of the proven list.
    pub proven_list_digest: &'a str,
    /// The sealed transcript, if the session had one.
    pub sealed_transcript: Option<&'a [u8]>,
    /// Its lane list (ciphertext only), when its schema declares lane slots: added to its
    /// cohort-and-day's rollup in the same transaction.
    pub lane: Option<&'a blindsight_crypto::LaneBody>,
}

/// Whether the record stored under `record_id` holds exactly `envelope`'s content: every
/// metadata column, the proven list (by its digest, computed from the stored bytes at ingest)
/// and the sealed transcript byte for byte. `None` when no record has that id.
pub async fn record_is_identical(
    db: &Db,
    tenant_id: &str,
    envelope: &blindsight_crypto::RecordEnvelope,
    proven_list_digest: &str,
) -> Result<Option<bool>, StoreError> {
    let m = &envelope.metadata;
    let row = sqlx::query(
        "SELECT key_id, schema_id, schema_version, cohort, lexicon_version, recorded_at, \
                proven_list_digest, sealed_transcript \
         FROM records WHERE tenant_id = $1 AND record_id = $2",
    )
    .bind(tenant_id)
    .bind(&m.record_id)
    .fetch_optional(db.pool())
    .await?;
    let Some(r) = row else {
        return Ok(None);
    };
    let transcript: Option<Vec<u8>> = r.try_get("sealed_transcript")?;
    let uploaded =
        (!envelope.sealed_transcript.is_empty()).then_some(envelope.sealed_transcript.as_slice());
    let recorded_at: Option<i64> = r.try_get("recorded_at")?;
    Ok(Some(
        r.try_get::<String, _>("key_id")? == m.key_id
            && r.try_get::<String, _>("schema_id")? == m.schema_id
            && r.try_get::<i64, _>("schema_version")? == i64::from(m.schema_version)
            && r.try_get::<Option<String>, _>("cohort")? == m.cohort
            && r.try_get::<Option<String>, _>("lexicon_version")? == m.lexicon_version
            && recorded_at == m.recorded_at.and_then(|t| i64::try_from(t).ok())
            && r.try_get::<String, _>("proven_list_digest")? == proven_list_digest
            && transcript.as_deref() == uploaded,
    ))
}

/// Stores a verified record with its audit entry; [`WriteError::Exists`] when its id is
/// taken.
pub async fn insert_record(db: &AuditLog, row: &RecordRow<'_>) -> Result<i64, WriteError> {
    let m = row.metadata;
    let recorded_at = m.recorded_at.map(|t| i64::try_from(t).unwrap_or(i64::MAX));
    let received_at = now();
    let transcript_digest = row.sealed_transcript.map(blindsight_crypto::sha256_hex);
    let group = rollups::Group {
        tenant_id: &m.tenant,
        key_id: &m.key_id,
        schema_id: &m.schema_id,
        schema_version: m.schema_version,
        cohort: m.cohort.as_deref(),
        day: rollups::day_of(recorded_at.unwrap_or(received_at)),
    };
    let mut tx = db.begin_write().await?;
    let target = match row.lane {
        Some(lane) => Some(rollups::lock(&mut tx, db.backend(), &group, lane.slots()).await?),
        None => None,
    };
    let seq: i64 = sqlx::query_scalar(
        "INSERT INTO records (tenant_id, record_id, key_id, schema_id, schema_version, cohort, lexicon_version, recorded_at, received_at, proven_list, proven_list_digest, sealed_transcript, sealed_transcript_digest, rollup_day, rollup_part) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) RETURNING seq",
    )
    .bind(&m.tenant)
    .bind(&m.record_id)
    .bind(&m.key_id)
    .bind(&m.schema_id)
    .bind(i64::from(m.schema_version))
    .bind(m.cohort.as_deref())
    .bind(m.lexicon_version.as_deref())
    .bind(recorded_at)
    .bind(received_at)
    .bind(row.proven_list.to_vec())
    .bind(row.proven_list_digest)
    .bind(row.sealed_transcript.map(<[u8]>::to_vec))
    .bind(transcript_digest.as_deref())
    .bind(row.lane.map(|_| group.day))
    .bind(target.as_ref().map(|t| t.part))
    .fetch_one(&mut *tx)
    .await
    .map_err(WriteError::from_insert)?;
    if let (Some(lane), Some(target)) = (row.lane, target) {
        rollups::add(&mut tx, &group, target, lane).await?;
    }
    let entry = audit::append(
        &mut tx,
        db,
        Some(&m.tenant),
        &Event::RecordIngested {
            record_id: &m.record_id,
            key_id: &m.key_id,
            schema_id: &m.schema_id,
            schema_version: m.schema_version,
            proven_list_digest: row.proven_list_digest,
            has_transcript: row.sealed_transcript.is_some(),
            sealed_transcript_digest: transcript_digest.as_deref(),
        },
    )
    .await?;
    audit::commit(tx, db, [&entry]).await?;
    Ok(seq)
}

/// Which records to list.
#[derive(Clone, Debug, Default)]
pub struct RecordFilter {
    /// Only this cohort.
    pub cohort: Option<String>,
    /// Only records recorded (or, when undeclared, received) at or after this time.
    pub since: Option<i64>,
    /// Only records recorded (or received) before this time.
    pub until: Option<i64>,
    /// Only records after this `seq`.
    pub after: Option<i64>,
    /// At most this many.
    pub limit: i64,
}

/// Lists a tenant's records in ingest order.
pub async fn list_records(
    db: &Db,
    tenant_id: &str,
    f: &RecordFilter,
) -> Result<Vec<RecordSummary>, StoreError> {
    let rows = sqlx::query(
        "SELECT seq, record_id, key_id, schema_id, schema_version, cohort, lexicon_version, recorded_at, received_at, proven_list_digest, sealed_transcript_digest, rollup_day, \
                CASE WHEN sealed_transcript IS NULL THEN 0 ELSE 1 END AS has_transcript \
         FROM records \
         WHERE tenant_id = $1 \
           AND ($2 IS NULL OR cohort = $2) \
           AND ($3 IS NULL OR COALESCE(recorded_at, received_at) >= $3) \
           AND ($4 IS NULL OR COALESCE(recorded_at, received_at) < $4) \
           AND seq > $5 \
         ORDER BY seq LIMIT $6",
    )
    .bind(tenant_id)
    .bind(f.cohort.as_deref())
    .bind(f.since)
    .bind(f.until)
    .bind(f.after.unwrap_or(0))
    .bind(f.limit)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(RecordSummary {
                seq: r.try_get("seq")?,
                record_id: r.try_get("record_id")?,
                key_id: r.try_get("key_id")?,
                schema_id: r.try_get("schema_id")?,
                schema_version: r.try_get("schema_version")?,
                cohort: r.try_get("cohort")?,
                lexicon_version: r.try_get("lexicon_version")?,
                recorded_at: r.try_get("recorded_at")?,
                received_at: r.try_get("received_at")?,
                proven_list_digest: r.try_get("proven_list_digest")?,
                has_transcript: r.try_get::<i32, _>("has_transcript")? != 0,
                sealed_transcript_digest: r.try_get("sealed_transcript_digest")?,
                rollup_day: r.try_get("rollup_day")?,
            })
        })
        .collect()
}

/// A stored record's proven list, or its sealed transcript (`None` inside when it has none).
pub async fn record_blob(
    db: &Db,
    tenant_id: &str,
    record_id: &str,
    transcript: bool,
) -> Result<Option<Option<Vec<u8>>>, StoreError> {
    let sql = if transcript {
        "SELECT sealed_transcript FROM records WHERE tenant_id = $1 AND record_id = $2"
    } else {
        "SELECT proven_list FROM records WHERE tenant_id = $1 AND record_id = $2"
    };
    let row = sqlx::query(sql)
        .bind(tenant_id)
        .bind(record_id)
        .fetch_optional(db.pool())
        .await?;
    row.map(|r| r.try_get::<Option<Vec<u8>>, _>(0))
        .transpose()
        .map_err(StoreError::from)
}

pub mod audit;
pub use audit::AuditLog;
pub mod db;
pub mod evidence;
pub mod jobs;
mod models;
pub mod rollups;
mod selection;

pub use models::{ModelRow, insert_model, list_models, model};
pub use selection::{
    MAX_JOB_RECORDS, PAGE_RECORDS, Selection, StoredRecord, records_by_id, records_page,
    select_records,
};

/// A tenant's registered schemas, by id and version: `(schema_id, version, definition,
/// digest)` each (the built-in schemas are not stored).
pub async fn list_schemas(
    db: &Db,
    tenant_id: &str,
) -> Result<Vec<(String, i64, String, String)>, StoreError> {
    let rows = sqlx::query(
        "SELECT schema_id, schema_version, definition, digest FROM schemas WHERE tenant_id = $1 \
         ORDER BY schema_id, schema_version",
    )
    .bind(tenant_id)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("schema_id")?,
                r.try_get("schema_version")?,
                r.try_get("definition")?,
                r.try_get("digest")?,
            ))
        })
        .collect()
}
