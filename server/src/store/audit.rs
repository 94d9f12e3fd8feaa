//! The audit log's queries: appending an entry inside the transaction of the event it
//! records, reading a chain's head, paging through a chain.
//!
//! Appends are serialised per chain on its row in `audit_heads`: PostgreSQL locks it with
//! `SELECT … FOR UPDATE`; on SQLite every write transaction already holds the database's
//! write lock (`BEGIN IMMEDIATE`, [`Db::begin_write`]). Two writers can therefore never both
//! extend the same head; the unique indexes on `(chain, seq)` and `(chain, prev_hash)` are the
//! backstop if anything ever tried. An append is the last write of its transaction, so a
//! transaction holding the head lock waits for nothing else before it commits.
//!
//! Freshness: under the head lock, an append first checks that the chain still extends the
//! head the signing key last kept for it (`audit::witness`), and refuses
//! ([`StoreError::Halted`]) when it does not; [`commit`] keeps the new heads once the
//! transaction is durable. Every signed head names the digest of the head before it.
//!
//! Size: appending, the head lock, the freshness check against the kept heads and an
//! operator's resolution are one protocol, read and checked in one place.

use sqlx::{Any, Row, Transaction};

use crate::audit::chain::{GENESIS_HASH, entry_hash, head_digest, head_digests, parse_hash};
use crate::audit::witness::{Divergence, judge};
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

/// A chain's head as stored: `seq` entries, the last with `hash` written at `at`, and the
/// `prev_head` it was signed with (`None` for a head signed before heads named their
/// predecessor).
#[derive(Clone, Copy, Debug)]
pub(crate) struct StoredHead {
    seq: i64,
    hash: [u8; 32],
    at: i64,
    prev_head: Option<[u8; 32]>,
}

fn stored_head(row: &sqlx::any::AnyRow) -> Result<StoredHead, StoreError> {
    let prev: Option<String> = row.try_get("prev_head")?;
    Ok(StoredHead {
        seq: row.try_get("seq")?,
        hash: decode_hash(&row.try_get::<String, _>("hash")?, "hash")?,
        at: row.try_get("at")?,
        prev_head: prev.map(|p| decode_hash(&p, "prev_head")).transpose()?,
    })
}

const HEAD_COLUMNS: &str = "seq, hash, at, prev_head";

/// Locks a chain's head for this transaction (creating it at genesis if the chain is new)
/// and returns it.
async fn lock_head(
    tx: &mut Transaction<'static, Any>,
    backend: Backend,
    tenant: Option<&str>,
) -> Result<StoredHead, StoreError> {
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
        Backend::Postgres => {
            format!("SELECT {HEAD_COLUMNS} FROM audit_heads WHERE chain = $1 FOR UPDATE")
        }
        // The transaction already holds SQLite's single write lock.
        Backend::Sqlite => format!("SELECT {HEAD_COLUMNS} FROM audit_heads WHERE chain = $1"),
    };
    let row = sqlx::query(&sql).bind(chain).fetch_one(&mut **tx).await?;
    stored_head(&row)
}

/// The hash of entry `seq` of a chain (zeros for 0), if the chain holds it.
async fn hash_at(
    conn: &mut sqlx::AnyConnection,
    tenant: Option<&str>,
    seq: i64,
) -> Result<Option<String>, StoreError> {
    if seq == 0 {
        return Ok(Some(hex::encode(GENESIS_HASH)));
    }
    Ok(
        sqlx::query_scalar("SELECT hash FROM audit_log WHERE chain = $1 AND seq = $2")
            .bind(chain_key(tenant))
            .bind(seq)
            .fetch_optional(conn)
            .await?,
    )
}

/// Checks that a chain's head in the database still extends the head the signing key kept
/// for it; halts the chain when it does not. The kept head is re-read from its file once
/// before refusing (an operator may have resolved the chain, or another process moved it).
async fn check_extends_kept(
    conn: &mut sqlx::AnyConnection,
    key: &SigningKey,
    tenant: Option<&str>,
    head: (i64, &[u8; 32]),
) -> Result<(), StoreError> {
    let chain = chain_key(tenant);
    let witness = key.witness();
    let mut reloaded = false;
    loop {
        let Some(kept) = witness.kept(chain) else {
            witness.clear(chain);
            return Ok(());
        };
        let found = match kept.seq.cmp(&head.0) {
            std::cmp::Ordering::Greater => None,
            std::cmp::Ordering::Equal => Some(hex::encode(head.1)),
            std::cmp::Ordering::Less => hash_at(&mut *conn, tenant, kept.seq).await?,
        };
        match judge(chain, &kept, head.0, found.as_deref()) {
            Ok(()) => {
                witness.clear(chain);
                return Ok(());
            }
            Err(_) if !reloaded && witness.reload(chain) => reloaded = true,
            Err(d) => {
                witness.halt(&d);
                return Err(StoreError::Halted(d));
            }
        }
    }
}

/// The digest of a stored head ([`head_digest`]): from its stored `prev_head`, or, for a head
/// signed before heads named their predecessor, from the chain's entries (once per chain:
/// the next head stores it).
async fn digest_of(
    conn: &mut sqlx::AnyConnection,
    tenant: Option<&str>,
    head: &StoredHead,
) -> Result<[u8; 32], StoreError> {
    if head.seq == 0 {
        return Ok(GENESIS_HASH);
    }
    if let Some(prev) = head.prev_head {
        return Ok(head_digest(tenant, head.seq, &head.hash, head.at, &prev));
    }
    let entries = read_entries(conn, tenant, 0, head.seq).await?;
    Ok(head_digests(tenant, &entries)
        .last()
        .copied()
        .unwrap_or(GENESIS_HASH))
}

/// Writes the entry after a locked head and moves the head to it, signed with the log's key.
async fn append_locked(
    tx: &mut Transaction<'static, Any>,
    db: &AuditLog,
    tenant: Option<&str>,
    head: &StoredHead,
    event: &Event<'_>,
) -> Result<Entry, StoreError> {
    let chain = chain_key(tenant);
    let prev_head = digest_of(tx, tenant, head).await?;
    let prev = head.hash;
    let seq = head.seq + 1;
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
    let signed = db.key().sign_head(tenant, seq, &raw, at, &prev_head);
    sqlx::query(
        "UPDATE audit_heads SET seq = $2, hash = $3, at = $4, key_id = $5, signature = $6, prev_head = $7 WHERE chain = $1",
    )
    .bind(chain)
    .bind(seq)
    .bind(&hash)
    .bind(at)
    .bind(&signed.key_id)
    .bind(&signed.signature)
    .bind(hex::encode(prev_head))
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
/// transaction of the event it records. Call it as the transaction's last write, and
/// [`commit`] the transaction with the entry. Refused ([`StoreError::Halted`]) when the chain
/// no longer extends the head the signing key kept.
pub async fn append(
    tx: &mut Transaction<'static, Any>,
    db: &AuditLog,
    tenant: Option<&str>,
    event: &Event<'_>,
) -> Result<Entry, StoreError> {
    let head = lock_head(tx, db.backend(), tenant).await?;
    check_extends_kept(tx, db.key(), tenant, (head.seq, &head.hash)).await?;
    append_locked(tx, db, tenant, &head, event).await
}

/// Commits a transaction that appended `appended`, then keeps their heads beside the signing
/// key (durably, before returning). A head that cannot be kept is logged and reported by
/// `/readyz`; the committed event stands.
pub async fn commit<'a>(
    tx: Transaction<'static, Any>,
    db: &AuditLog,
    appended: impl IntoIterator<Item = &'a Entry>,
) -> Result<(), StoreError> {
    tx.commit().await?;
    let heads: Vec<(String, i64, String)> = appended
        .into_iter()
        .map(|e| {
            (
                chain_key(e.tenant_id.as_deref()).to_owned(),
                e.seq,
                e.hash.clone(),
            )
        })
        .collect();
    let witness = db.key().witness().clone();
    // A file written and synced: off the async threads.
    let _ = tokio::task::spawn_blocking(move || {
        for (chain, seq, hash) in heads {
            // Failures are logged and reported by the witness itself.
            let _ = witness.keep(&chain, seq, &hash);
        }
    })
    .await;
    Ok(())
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
    commit(tx, db, &out).await?;
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
    commit(tx, db, [&entry]).await?;
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
    check_extends_kept(&mut tx, db.key(), None, (head.seq, &head.hash)).await?;
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
    let entry = append_locked(&mut tx, db, None, &head, event).await?;
    commit(tx, db, [&entry]).await?;
    Ok(true)
}

/// Checks every chain the signing key kept a head for against the database (on start, and
/// from `/readyz` while a chain is halted): the chains that no longer extend their kept
/// heads, each halted.
pub async fn check_kept_heads(log: &AuditLog) -> Result<Vec<Divergence>, StoreError> {
    let witness = log.key().witness();
    let mut out = Vec::new();
    let mut conn = log.pool().acquire().await?;
    for chain in witness.all().into_keys() {
        let tenant = (chain != SERVER_CHAIN).then_some(chain.as_str());
        let (seq, hash) = head(log, tenant).await?;
        match check_extends_kept(&mut conn, log.key(), tenant, (seq, &hash)).await {
            Ok(()) => {}
            Err(StoreError::Halted(d)) => out.push(d),
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// Resolves every halted chain (`blindsight-server audit resolve`): appends an
/// `audit.head_rewound` entry naming the kept head, what the database held instead and the
/// operator's `reason` to the chain as it now stands, signs it, and keeps the new head. The
/// chain then extends its kept head again. Returns each divergence with its entry.
pub async fn resolve(log: &AuditLog, reason: &str) -> Result<Vec<(Divergence, Entry)>, StoreError> {
    let witness = log.key().witness();
    let mut out = Vec::new();
    for (chain, kept) in witness.all() {
        let tenant = (chain != SERVER_CHAIN).then_some(chain.as_str());
        let mut tx = log.begin_write().await?;
        let head = lock_head(&mut tx, log.backend(), tenant).await?;
        let found = if kept.seq > head.seq {
            None
        } else {
            hash_at(&mut tx, tenant, kept.seq).await?
        };
        let Err(divergence) = judge(&chain, &kept, head.seq, found.as_deref()) else {
            continue;
        };
        // Whoever moved the head may have left its stored `prev_head` behind: the digest
        // the next head names is computed from the entries instead.
        let head = StoredHead {
            prev_head: None,
            ..head
        };
        let found_hash = hex::encode(head.hash);
        let entry = append_locked(
            &mut tx,
            log,
            tenant,
            &head,
            &Event::HeadRewound {
                kept_seq: kept.seq,
                kept_hash: &kept.hash,
                found_seq: head.seq,
                found_hash: &found_hash,
                cause: divergence.cause(),
                reason,
            },
        )
        .await?;
        tx.commit().await?;
        witness.reset(&chain, entry.seq, &entry.hash)?;
        out.push((divergence, entry));
    }
    Ok(out)
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
    let mut conn = db.pool().acquire().await?;
    read_entries(&mut conn, tenant, after, limit).await
}

async fn read_entries(
    conn: &mut sqlx::AnyConnection,
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
    .fetch_all(conn)
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

/// A chain's head signed by `key`, for `GET /v1/audit/head`: the head as stored when it last
/// moved, or (stored unsigned, by another key, or before heads named their predecessor)
/// signed now, over the same fields. Refused ([`StoreError::Halted`]) when the chain no
/// longer extends the head `key` kept: a shortened chain is never signed.
pub async fn current_head(
    db: &Db,
    key: &SigningKey,
    tenant: Option<&str>,
) -> Result<SignedHead, StoreError> {
    let mut conn = db.pool().acquire().await?;
    let row = sqlx::query(&format!(
        "SELECT {HEAD_COLUMNS}, key_id, signature FROM audit_heads WHERE chain = $1"
    ))
    .bind(chain_key(tenant))
    .fetch_optional(&mut *conn)
    .await?;
    let (head, signed) = match &row {
        None => (
            StoredHead {
                seq: 0,
                hash: GENESIS_HASH,
                at: 0,
                prev_head: None,
            },
            None,
        ),
        Some(r) => (stored_head(r)?, stored_signature(r, tenant)?),
    };
    check_extends_kept(&mut conn, key, tenant, (head.seq, &head.hash)).await?;
    if let Some(signed) = signed
        && signed.key_id == key.key_id()
        && signed.prev_head.is_some()
    {
        return Ok(signed);
    }
    let prev = match head.prev_head {
        Some(p) => p,
        None if head.seq <= 1 => GENESIS_HASH,
        None => {
            let entries = read_entries(&mut conn, tenant, 0, head.seq - 1).await?;
            head_digests(tenant, &entries)
                .last()
                .copied()
                .unwrap_or(GENESIS_HASH)
        }
    };
    Ok(key.sign_head(tenant, head.seq, &head.hash, head.at, &prev))
}

fn stored_signature(
    r: &sqlx::any::AnyRow,
    tenant: Option<&str>,
) -> Result<Option<SignedHead>, StoreError> {
    let key_id: Option<String> = r.try_get("key_id")?;
    let signature: Option<String> = r.try_get("signature")?;
    Ok(match (key_id, signature) {
        (Some(key_id), Some(signature)) => Some(SignedHead {
            tenant_id: tenant.map(str::to_owned),
            seq: r.try_get("seq")?,
            hash: r.try_get("hash")?,
            at: r.try_get("at")?,
            prev_head: r.try_get("prev_head")?,
            key_id,
            signature,
        }),
        _ => None,
    })
}

/// A chain's head as stored with its signature when it last moved (`None` when the chain has
/// no head row, or its head was stored unsigned).
pub async fn signed_head(db: &Db, tenant: Option<&str>) -> Result<Option<SignedHead>, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {HEAD_COLUMNS}, key_id, signature FROM audit_heads WHERE chain = $1"
    ))
    .bind(chain_key(tenant))
    .fetch_optional(db.pool())
    .await?;
    match row {
        None => Ok(None),
        Some(r) => stored_signature(&r, tenant),
    }
}
