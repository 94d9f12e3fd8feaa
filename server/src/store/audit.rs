//! The audit log's queries: appending an entry inside the transaction of the event it
//! records, reading a chain's head, paging through a chain.
//!
//! Appends are serialised per chain on its row in `audit_heads`: PostgreSQL locks it with
//! `SELECT … FOR UPDATE`; on SQLite every write transaction already holds the database's
//! write lock (`BEGIN IMMEDIATE`, [`Db::begin_write`]). Two writers can therefore never both
//! extend the same head; the unique indexes on `(chain, seq)` and `(chain, prev_hash)` are the
//! backstop if anything ever tried. An append is the last write of its transaction, so a
//! transaction holding the head lock waits for nothing else before it commits.

use sqlx::{Any, Row, Transaction};

use crate::audit::chain::{GENESIS_HASH, entry_hash, parse_hash};
use crate::audit::{Entry, Event, SignedHead, SigningKey};
use crate::db::{Backend, Db, now};
use crate::store::StoreError;

/// The audit log: the database and the key that signs every head it moves. Audited writes
/// take an `AuditLog`, not a bare [`Db`], so none can run without the key: a chain head is
/// never stored unsigned. It reads as the [`Db`] it writes to.
#[derive(Clone, Debug)]
pub struct AuditLog {
    db: Db,
    key: SigningKey,
}

impl AuditLog {
    /// The audit log of `db`, signed with `key`.
    pub fn new(db: Db, key: SigningKey) -> Self {
        Self { db, key }
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The key that signs its heads (and job receipts).
    pub fn key(&self) -> &SigningKey {
        &self.key
    }
}

impl std::ops::Deref for AuditLog {
    type Target = Db;

    fn deref(&self) -> &Db {
        &self.db
    }
}

/// The `chain` value of the server-wide chain; a tenant's chain is its tenant id, and tenant
/// ids are never empty.
pub(crate) const SERVER_CHAIN: &str = "";

fn chain_key(tenant: Option<&str>) -> &str {
    tenant.unwrap_or(SERVER_CHAIN)
}

fn decode_hash(text: &str, column: &str) -> Result<[u8; 32], StoreError> {
    parse_hash(text)
        .ok_or_else(|| sqlx::Error::ColumnDecode {
            index: column.into(),
            source: format!("{column} is not 64 hex digits").into(),
        })
        .map_err(StoreError::from)
}

/// Locks a chain's head for this transaction (creating it at genesis if the chain is new)
/// and returns its `seq` and hash.
async fn lock_head(
    tx: &mut Transaction<'static, Any>,
    backend: Backend,
    tenant: Option<&str>,
) -> Result<(i64, [u8; 32]), StoreError> {
    let chain = chain_key(tenant);
    // A new chain's head row; under concurrency the second inserter waits for the first
    // and then does nothing.
    sqlx::query(
        "INSERT INTO audit_heads (chain, seq, hash, at) VALUES ($1, 0, $2, 0) ON CONFLICT (chain) DO NOTHING",
    )
    .bind(chain)
    .bind(hex::encode(GENESIS_HASH))
    .execute(&mut **tx)
    .await?;
    let sql = match backend {
        Backend::Postgres => "SELECT seq, hash FROM audit_heads WHERE chain = $1 FOR UPDATE",
        // The transaction already holds SQLite's single write lock.
        Backend::Sqlite => "SELECT seq, hash FROM audit_heads WHERE chain = $1",
    };
    let row = sqlx::query(sql).bind(chain).fetch_one(&mut **tx).await?;
    let seq: i64 = row.try_get("seq")?;
    let hash: String = row.try_get("hash")?;
    Ok((seq, decode_hash(&hash, "hash")?))
}

/// Writes the entry after a locked head and moves the head to it, signed with the log's key.
async fn append_locked(
    tx: &mut Transaction<'static, Any>,
    db: &AuditLog,
    tenant: Option<&str>,
    (seq, prev): (i64, [u8; 32]),
    event: &Event<'_>,
) -> Result<Entry, StoreError> {
    let chain = chain_key(tenant);
    let seq = seq + 1;
    let at = now();
    let kind = event.kind();
    let body = event.body();
    let raw = entry_hash(&prev, seq, tenant, at, kind, &body);
    let hash = hex::encode(raw);
    let prev_hash = hex::encode(prev);
    sqlx::query(
        "INSERT INTO audit_log (chain, seq, at, kind, body, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(chain)
    .bind(seq)
    .bind(at)
    .bind(kind)
    .bind(&body)
    .bind(&prev_hash)
    .bind(&hash)
    .execute(&mut **tx)
    .await?;
    let signed = db.key().sign_head(tenant, seq, &raw, at);
    sqlx::query(
        "UPDATE audit_heads SET seq = $2, hash = $3, at = $4, key_id = $5, signature = $6 WHERE chain = $1",
    )
    .bind(chain)
    .bind(seq)
    .bind(&hash)
    .bind(at)
    .bind(&signed.key_id)
    .bind(&signed.signature)
    .execute(&mut **tx)
    .await?;
    Ok(Entry {
        seq,
        tenant_id: tenant.map(str::to_owned),
        at,
        kind: kind.to_owned(),
        body,
        prev_hash,
        hash,
    })
}

/// Appends `event` to a tenant's chain (`None`: the server-wide chain) inside `tx`, the
/// transaction of the event it records. Call it as the transaction's last write.
pub async fn append(
    tx: &mut Transaction<'static, Any>,
    db: &AuditLog,
    tenant: Option<&str>,
    event: &Event<'_>,
) -> Result<Entry, StoreError> {
    let head = lock_head(tx, db.backend(), tenant).await?;
    append_locked(tx, db, tenant, head, event).await
}

/// Appends events that have no other transaction (a download, a failed authentication) in
/// one transaction of their own.
pub async fn append_alone(
    db: &AuditLog,
    tenant: Option<&str>,
    events: &[Event<'_>],
) -> Result<Vec<Entry>, StoreError> {
    let mut tx = db.begin_write().await?;
    let mut out = Vec::with_capacity(events.len());
    for event in events {
        out.push(append(&mut tx, db, tenant, event).await?);
    }
    tx.commit().await?;
    Ok(out)
}

/// Records a download of a job's output (with the stored result's digest) in the tenant's
/// chain. `None` when the tenant has no result for that job.
pub async fn result_downloaded(
    db: &AuditLog,
    tenant: &str,
    job_id: &str,
) -> Result<Option<Entry>, StoreError> {
    let mut tx = db.begin_write().await?;
    let digest: Option<String> = sqlx::query_scalar(
        "SELECT r.result_digest FROM job_results r JOIN jobs j ON j.job_id = r.job_id \
         WHERE j.tenant_id = $1 AND r.job_id = $2",
    )
    .bind(tenant)
    .bind(job_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(digest) = digest else {
        return Ok(None);
    };
    let entry = append(
        &mut tx,
        db,
        Some(tenant),
        &Event::ResultDownloaded {
            job_id,
            result_digest: &digest,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Some(entry))
}

/// Records in the server-wide chain that `key` signs heads, unless it is recorded already
/// (`true` when this call recorded it). `serve` and `worker` call it on start, so the chain
/// lists every key that ever signed.
pub async fn record_signing_key(db: &AuditLog) -> Result<bool, StoreError> {
    let key = db.key();
    let public_key = hex::encode(key.public_key());
    let event = Event::SigningKey {
        key_id: key.key_id(),
        public_key: &public_key,
    };
    // Any earlier entry of the same key counts.
    append_server_event_once(db, &event, false).await
}

/// Records `serve`'s security-relevant settings in the server-wide chain when they differ
/// from the last ones recorded (`true` when this call recorded them): every configuration
/// change is in the log.
pub async fn record_config(db: &AuditLog, config: &Event<'_>) -> Result<bool, StoreError> {
    append_server_event_once(db, config, true).await
}

/// Appends `event` to the server-wide chain unless an entry of its kind with the same body is
/// already there (`latest_only`: unless the latest entry of its kind has the same body).
/// Checked under the head lock, so processes starting at once record it once.
async fn append_server_event_once(
    db: &AuditLog,
    event: &Event<'_>,
    latest_only: bool,
) -> Result<bool, StoreError> {
    let mut tx = db.begin_write().await?;
    let head = lock_head(&mut tx, db.backend(), None).await?;
    let body = event.body();
    let known = if latest_only {
        let latest: Option<String> = sqlx::query_scalar(
            "SELECT body FROM audit_log WHERE chain = $1 AND kind = $2 ORDER BY seq DESC LIMIT 1",
        )
        .bind(SERVER_CHAIN)
        .bind(event.kind())
        .fetch_optional(&mut *tx)
        .await?;
        latest.as_deref() == Some(body.as_str())
    } else {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM audit_log WHERE chain = $1 AND kind = $2 AND body = $3",
        )
        .bind(SERVER_CHAIN)
        .bind(event.kind())
        .bind(&body)
        .fetch_one(&mut *tx)
        .await?;
        n > 0
    };
    if known {
        return Ok(false);
    }
    append_locked(&mut tx, db, None, head, event).await?;
    tx.commit().await?;
    Ok(true)
}

/// A chain's head: its last entry's `seq` and hash (0 and zeros for an empty chain).
pub async fn head(db: &Db, tenant: Option<&str>) -> Result<(i64, [u8; 32]), StoreError> {
    let row = sqlx::query("SELECT seq, hash FROM audit_heads WHERE chain = $1")
        .bind(chain_key(tenant))
        .fetch_optional(db.pool())
        .await?;
    match row {
        None => Ok((0, GENESIS_HASH)),
        Some(r) => Ok((
            r.try_get("seq")?,
            decode_hash(&r.try_get::<String, _>("hash")?, "hash")?,
        )),
    }
}

/// A page of a chain: at most `limit` entries with `seq > after`, in order.
pub async fn entries(
    db: &Db,
    tenant: Option<&str>,
    after: i64,
    limit: i64,
) -> Result<Vec<Entry>, StoreError> {
    let rows = sqlx::query(
        "SELECT seq, at, kind, body, prev_hash, hash FROM audit_log \
         WHERE chain = $1 AND seq > $2 ORDER BY seq LIMIT $3",
    )
    .bind(chain_key(tenant))
    .bind(after)
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Entry {
                seq: r.try_get("seq")?,
                tenant_id: tenant.map(str::to_owned),
                at: r.try_get("at")?,
                kind: r.try_get("kind")?,
                body: r.try_get("body")?,
                prev_hash: r.try_get("prev_hash")?,
                hash: r.try_get("hash")?,
            })
        })
        .collect()
}

/// A chain's head as stored with its signature when it last moved (`None` when the chain has
/// no head row, or its head was stored unsigned).
pub async fn signed_head(db: &Db, tenant: Option<&str>) -> Result<Option<SignedHead>, StoreError> {
    let row =
        sqlx::query("SELECT seq, hash, at, key_id, signature FROM audit_heads WHERE chain = $1")
            .bind(chain_key(tenant))
            .fetch_optional(db.pool())
            .await?;
    let Some(r) = row else { return Ok(None) };
    let key_id: Option<String> = r.try_get("key_id")?;
    let signature: Option<String> = r.try_get("signature")?;
    Ok(match (key_id, signature) {
        (Some(key_id), Some(signature)) => Some(SignedHead {
            tenant_id: tenant.map(str::to_owned),
            seq: r.try_get("seq")?,
            hash: r.try_get("hash")?,
            at: r.try_get("at")?,
            key_id,
            signature,
        }),
        _ => None,
    })
}
