//! Lane rollups: per key set, schema, cohort and UTC day, the running wrapping sum of the lane
//! lists ingested, kept in parts of at most [`LANE_ROLLUP_PART_RECORDS`] records and updated
//! in the transaction that stores the record. An aggregate over whole days that the lane
//! answers reads these sums (and the records' ids and digests, for its receipt) instead of
//! every record's list.
//!
//! A part's records are its cohort-and-day's records in ingest (`seq`) order: part `k` holds
//! records `k × 16,384 ..`, and a part starts only when the one before is full. Each record
//! also stores its part (`rollup_part`), so a part's records are found by index. Writers take
//! the cohort-and-day's lock (part 0's row) before the record gets its `seq`, so on PostgreSQL
//! too the order in which records join a rollup is their `seq` order; that is what lets a job
//! (and an auditor) name a part's records by position alone.

use blindsight_crypto::params::LANE_ROLLUP_PART_RECORDS;
use blindsight_crypto::{LaneBody, LaneSum};
use blindsight_proto::RollupPart;
use sqlx::Row;

use crate::db::{Backend, Db, now};
use crate::store::{Selection, StoreError};

/// Seconds in a UTC day: rollups are per day of the record's time.
pub const DAY_SECONDS: i64 = 86_400;

/// The cohort and day a record is rolled up under.
#[derive(Clone, Copy, Debug)]
pub struct Group<'a> {
    /// Tenant.
    pub tenant_id: &'a str,
    /// Key set.
    pub key_id: &'a str,
    /// Schema id.
    pub schema_id: &'a str,
    /// Schema version.
    pub schema_version: u32,
    /// Cohort; `None` for records that name none.
    pub cohort: Option<&'a str>,
    /// UTC day (days since the epoch).
    pub day: i64,
}

/// The day of a time (seconds since the epoch; record times are never negative).
pub fn day_of(at: i64) -> i64 {
    at.div_euclid(DAY_SECONDS)
}

fn sql_error(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Database(sqlx::Error::Protocol(format!("{what}: {e}")))
}

/// Where the next record of a group goes: its last part, or the next one when that is full.
#[derive(Debug)]
pub(crate) struct Target {
    /// The part's index.
    pub(crate) part: i64,
    /// Its sum so far (empty for a new part).
    sum: LaneSum,
}

/// Takes the group's lock (part 0's row, created empty if new) and says which part the next
/// record joins. Called before the record is inserted, so records join the group in `seq`
/// order.
pub(crate) async fn lock(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    backend: Backend,
    g: &Group<'_>,
    slots: usize,
) -> Result<Target, StoreError> {
    let empty = LaneSum::new(slots).map_err(|e| sql_error("lane rollup", e))?;
    sqlx::query(
        "INSERT INTO lane_rollups (tenant_id, key_id, schema_id, schema_version, cohort, day, part, records, slots, lane_sum, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, 0, 0, $7, $8, $9) ON CONFLICT DO NOTHING",
    )
    .bind(g.tenant_id)
    .bind(g.key_id)
    .bind(g.schema_id)
    .bind(i64::from(g.schema_version))
    .bind(g.cohort.unwrap_or(""))
    .bind(g.day)
    .bind(slots as i64)
    .bind(empty.to_bytes())
    .bind(now())
    .execute(&mut **tx)
    .await?;
    if backend == Backend::Postgres {
        // SQLite's writers are serialized by BEGIN IMMEDIATE already.
        sqlx::query(
            "SELECT part FROM lane_rollups WHERE tenant_id = $1 AND key_id = $2 AND schema_id = $3 \
               AND schema_version = $4 AND cohort = $5 AND day = $6 AND part = 0 FOR UPDATE",
        )
        .bind(g.tenant_id)
        .bind(g.key_id)
        .bind(g.schema_id)
        .bind(i64::from(g.schema_version))
        .bind(g.cohort.unwrap_or(""))
        .bind(g.day)
        .execute(&mut **tx)
        .await?;
    }
    let last = sqlx::query(
        "SELECT part, records, lane_sum FROM lane_rollups WHERE tenant_id = $1 AND key_id = $2 \
           AND schema_id = $3 AND schema_version = $4 AND cohort = $5 AND day = $6 \
         ORDER BY part DESC LIMIT 1",
    )
    .bind(g.tenant_id)
    .bind(g.key_id)
    .bind(g.schema_id)
    .bind(i64::from(g.schema_version))
    .bind(g.cohort.unwrap_or(""))
    .bind(g.day)
    .fetch_one(&mut **tx)
    .await?;
    let part: i64 = last.try_get("part")?;
    let records = u64::try_from(last.try_get::<i64, _>("records")?).unwrap_or(0);
    if records < LANE_ROLLUP_PART_RECORDS {
        let stored: Vec<u8> = last.try_get("lane_sum")?;
        let sum = LaneSum::from_bytes(&stored, slots, records)
            .map_err(|e| sql_error("stored lane rollup", e))?;
        Ok(Target { part, sum })
    } else {
        Ok(Target {
            part: part + 1,
            sum: empty,
        })
    }
}

/// Adds a record's lane list to the part [`lock`] chose, in the same transaction.
pub(crate) async fn add(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    g: &Group<'_>,
    target: Target,
    list: &LaneBody,
) -> Result<(), StoreError> {
    let Target { part, mut sum } = target;
    sum.add(list).map_err(|e| sql_error("lane rollup", e))?;
    sqlx::query(
        "INSERT INTO lane_rollups (tenant_id, key_id, schema_id, schema_version, cohort, day, part, records, slots, lane_sum, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
         ON CONFLICT (tenant_id, key_id, schema_id, schema_version, cohort, day, part) \
         DO UPDATE SET records = excluded.records, lane_sum = excluded.lane_sum, updated_at = excluded.updated_at",
    )
    .bind(g.tenant_id)
    .bind(g.key_id)
    .bind(g.schema_id)
    .bind(i64::from(g.schema_version))
    .bind(g.cohort.unwrap_or(""))
    .bind(g.day)
    .bind(part)
    .bind(sum.records() as i64)
    .bind(list.slots() as i64)
    .bind(sum.to_bytes())
    .bind(now())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The non-empty rollup parts of a selection over whole days (`since` and `until` multiples
/// of a day, or open), in (cohort, day, part) order, with the records each holds now.
pub async fn parts(
    db: &Db,
    tenant_id: &str,
    s: &Selection<'_>,
) -> Result<Vec<RollupPart>, StoreError> {
    let rows = sqlx::query(
        "SELECT cohort, day, part, records FROM lane_rollups \
         WHERE tenant_id = $1 AND key_id = $2 AND schema_id = $3 AND schema_version = $4 \
           AND ($5 IS NULL OR cohort = $5) AND ($6 IS NULL OR day >= $6) AND ($7 IS NULL OR day < $7) \
           AND records > 0 \
         ORDER BY cohort, day, part",
    )
    .bind(tenant_id)
    .bind(s.key_id)
    .bind(s.schema_id)
    .bind(i64::from(s.schema_version))
    .bind(s.cohort)
    .bind(s.since.map(day_of))
    .bind(s.until.map(day_of))
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            let cohort: String = r.try_get("cohort")?;
            Ok(RollupPart {
                cohort: (!cohort.is_empty()).then_some(cohort),
                day: r.try_get("day")?,
                part: u32::try_from(r.try_get::<i64, _>("part")?).unwrap_or(u32::MAX),
                records: u64::try_from(r.try_get::<i64, _>("records")?).unwrap_or(0),
            })
        })
        .collect()
}

/// How many records a selection holds: all of them, and those rolled up.
pub async fn count_selected(
    db: &Db,
    tenant_id: &str,
    s: &Selection<'_>,
) -> Result<(u64, u64), StoreError> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS total, COUNT(rollup_day) AS rolled FROM records \
         WHERE tenant_id = $1 AND key_id = $2 AND schema_id = $3 AND schema_version = $4 \
           AND ($5 IS NULL OR cohort = $5) \
           AND ($6 IS NULL OR COALESCE(recorded_at, received_at) >= $6) \
           AND ($7 IS NULL OR COALESCE(recorded_at, received_at) < $7)",
    )
    .bind(tenant_id)
    .bind(s.key_id)
    .bind(s.schema_id)
    .bind(i64::from(s.schema_version))
    .bind(s.cohort)
    .bind(s.since)
    .bind(s.until)
    .fetch_one(db.pool())
    .await?;
    let count = |c: &str| -> Result<u64, StoreError> {
        Ok(u64::try_from(row.try_get::<i64, _>(c)?).unwrap_or(0))
    };
    Ok((count("total")?, count("rolled")?))
}

/// Which rollup a job's part belongs to.
#[derive(Clone, Copy, Debug)]
pub struct PartRef<'a> {
    /// Tenant.
    pub tenant_id: &'a str,
    /// Key set.
    pub key_id: &'a str,
    /// Schema id.
    pub schema_id: &'a str,
    /// Schema version.
    pub schema_version: u32,
    /// The part.
    pub part: &'a RollupPart,
}

/// A part's stored sum as it stands: `(records, sum)`; `None` when there is no such part.
pub async fn part_sum(db: &Db, p: &PartRef<'_>) -> Result<Option<(u64, LaneSum)>, StoreError> {
    let row = sqlx::query(
        "SELECT records, slots, lane_sum FROM lane_rollups WHERE tenant_id = $1 AND key_id = $2 \
           AND schema_id = $3 AND schema_version = $4 AND cohort = $5 AND day = $6 AND part = $7",
    )
    .bind(p.tenant_id)
    .bind(p.key_id)
    .bind(p.schema_id)
    .bind(i64::from(p.schema_version))
    .bind(p.part.cohort.as_deref().unwrap_or(""))
    .bind(p.part.day)
    .bind(i64::from(p.part.part))
    .fetch_optional(db.pool())
    .await?;
    let Some(row) = row else { return Ok(None) };
    let records = u64::try_from(row.try_get::<i64, _>("records")?).unwrap_or(0);
    let slots = usize::try_from(row.try_get::<i64, _>("slots")?).unwrap_or(0);
    let bytes: Vec<u8> = row.try_get("lane_sum")?;
    let sum = LaneSum::from_bytes(&bytes, slots, records)
        .map_err(|e| sql_error("stored lane rollup", e))?;
    Ok(Some((records, sum)))
}

/// A record of a rollup part: its id, its proven list's digest, and (when asked for) the list.
#[derive(Clone, Debug)]
pub struct PartRecord {
    /// Record id.
    pub record_id: String,
    /// SHA-256 of its proven list, as stored.
    pub proven_list_digest: String,
    /// The proven list.
    pub proven_list: Option<Vec<u8>>,
}

/// Records `first .. first + count` (ingest order, counted from the part's first record) of a
/// part, with their lists when `lists`.
pub async fn part_records(
    db: &Db,
    p: &PartRef<'_>,
    first: u64,
    count: u64,
    lists: bool,
) -> Result<Vec<PartRecord>, StoreError> {
    let columns = if lists {
        "record_id, proven_list_digest, proven_list"
    } else {
        "record_id, proven_list_digest"
    };
    let cohort = if p.part.cohort.is_some() {
        "cohort = $5"
    } else {
        "cohort IS NULL AND $5 = ''"
    };
    let rows = sqlx::query(&format!(
        "SELECT {columns} FROM records WHERE tenant_id = $1 AND key_id = $2 AND schema_id = $3 \
           AND schema_version = $4 AND {cohort} AND rollup_day = $6 AND rollup_part = $9 \
         ORDER BY seq LIMIT $7 OFFSET $8"
    ))
    .bind(p.tenant_id)
    .bind(p.key_id)
    .bind(p.schema_id)
    .bind(i64::from(p.schema_version))
    .bind(p.part.cohort.as_deref().unwrap_or(""))
    .bind(p.part.day)
    .bind(i64::try_from(count).unwrap_or(i64::MAX))
    .bind(i64::try_from(first).unwrap_or(i64::MAX))
    .bind(i64::from(p.part.part))
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(PartRecord {
                record_id: r.try_get("record_id")?,
                proven_list_digest: r.try_get("proven_list_digest")?,
                proven_list: if lists {
                    Some(r.try_get("proven_list")?)
                } else {
                    None
                },
            })
        })
        .collect()
}

/// A stored rollup part, as an auditor reads it.
#[derive(Clone, Debug)]
pub struct StoredRollup {
    /// Key set.
    pub key_id: String,
    /// Schema id.
    pub schema_id: String,
    /// Schema version.
    pub schema_version: u32,
    /// The part.
    pub part: RollupPart,
    /// Its slots.
    pub slots: u64,
    /// The stored sum (little-endian words).
    pub lane_sum: Vec<u8>,
}

/// Every rollup part of a tenant.
pub async fn all(db: &Db, tenant_id: &str) -> Result<Vec<StoredRollup>, StoreError> {
    let rows = sqlx::query(
        "SELECT key_id, schema_id, schema_version, cohort, day, part, records, slots, lane_sum \
         FROM lane_rollups WHERE tenant_id = $1 \
         ORDER BY key_id, schema_id, schema_version, cohort, day, part",
    )
    .bind(tenant_id)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            let cohort: String = r.try_get("cohort")?;
            Ok(StoredRollup {
                key_id: r.try_get("key_id")?,
                schema_id: r.try_get("schema_id")?,
                schema_version: u32::try_from(r.try_get::<i64, _>("schema_version")?)
                    .unwrap_or(u32::MAX),
                part: RollupPart {
                    cohort: (!cohort.is_empty()).then_some(cohort),
                    day: r.try_get("day")?,
                    part: u32::try_from(r.try_get::<i64, _>("part")?).unwrap_or(u32::MAX),
                    records: u64::try_from(r.try_get::<i64, _>("records")?).unwrap_or(0),
                },
                slots: u64::try_from(r.try_get::<i64, _>("slots")?).unwrap_or(0),
                lane_sum: r.try_get("lane_sum")?,
            })
        })
        .collect()
}
