//! Registered risk models (definitions are clear weights and thresholds: no data).

use sqlx::Row;

use super::{AuditLog, WriteError, audit};
use crate::audit::Event;
use crate::db::{Db, now};
use crate::store::StoreError;

/// A stored model.
#[derive(Clone, Debug)]
pub struct ModelRow {
    /// Model id.
    pub model_id: String,
    /// Version.
    pub version: i64,
    /// The model's canonical JSON.
    pub definition: String,
    /// SHA-256 of `definition`.
    pub digest: String,
}

fn from_row(r: &sqlx::any::AnyRow) -> Result<ModelRow, StoreError> {
    Ok(ModelRow {
        model_id: r.try_get("model_id")?,
        version: r.try_get("version")?,
        definition: r.try_get("definition")?,
        digest: r.try_get("digest")?,
    })
}

/// A tenant's model by id and version.
pub async fn model(
    db: &Db,
    tenant_id: &str,
    model_id: &str,
    version: u32,
) -> Result<Option<ModelRow>, StoreError> {
    let row = sqlx::query(
        "SELECT model_id, version, definition, digest FROM models \
         WHERE tenant_id = $1 AND model_id = $2 AND version = $3",
    )
    .bind(tenant_id)
    .bind(model_id)
    .bind(i64::from(version))
    .fetch_optional(db.pool())
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// A tenant's models, by id and version.
pub async fn list_models(db: &Db, tenant_id: &str) -> Result<Vec<ModelRow>, StoreError> {
    let rows = sqlx::query(
        "SELECT model_id, version, definition, digest FROM models WHERE tenant_id = $1 \
         ORDER BY model_id, version",
    )
    .bind(tenant_id)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(from_row).collect()
}

/// Stores a model with its audit entry; [`WriteError::Exists`] when its id and version are
/// taken.
pub async fn insert_model(
    db: &AuditLog,
    tenant_id: &str,
    model: &blindsight_crypto::compute::RiskModel,
    definition: &str,
    digest: &str,
) -> Result<(), WriteError> {
    let mut tx = db.begin_write().await?;
    sqlx::query(
        "INSERT INTO models (tenant_id, model_id, version, schema_id, schema_version, definition, digest, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(tenant_id)
    .bind(&model.id)
    .bind(i64::from(model.version))
    .bind(&model.schema_id)
    .bind(i64::from(model.schema_version))
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
        &Event::ModelRegistered {
            model_id: &model.id,
            version: model.version,
            schema_id: &model.schema_id,
            schema_version: model.schema_version,
            digest,
        },
    )
    .await?;
    audit::commit(tx, db, [&entry]).await?;
    Ok(())
}
