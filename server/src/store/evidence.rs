//! Reads a whole database as [`Evidence`] for `blindsight audit verify --db`: every chain with
//! the signed head stored beside it, and every tenant's key sets, schemas, records and jobs,
//! payloads included. Reads only; nothing here is trusted by the checks.

use sqlx::Row;

use super::audit::SERVER_CHAIN;
use crate::audit::Entry;
use crate::db::Db;
use crate::store::StoreError;
use blindsight_audit::evidence::{
    ChainEvidence, Evidence, JobEvidence, KeysetEvidence, RecordEvidence, RollupEvidence,
    SchemaEvidence, TenantEvidence, TranscriptEvidence,
};

/// Loads everything the database holds (`source` names it in the report; the trusted keys
/// are the caller's to fill in).
pub async fn load(db: &Db, source: &str) -> Result<Evidence, StoreError> {
    let mut evidence = Evidence {
        source: source.to_owned(),
        ..Evidence::default()
    };
    let mut chains: Vec<String> = sqlx::query_scalar(
        "SELECT chain FROM audit_heads UNION SELECT DISTINCT chain FROM audit_log",
    )
    .fetch_all(db.pool())
    .await?;
    chains.sort();
    for chain in chains {
        evidence.chains.push(load_chain(db, &chain).await?);
    }
    let tenants: Vec<String> =
        sqlx::query_scalar("SELECT tenant_id FROM tenants ORDER BY tenant_id")
            .fetch_all(db.pool())
            .await?;
    for tenant in tenants {
        evidence.tenants.push(load_tenant(db, &tenant).await?);
    }
    Ok(evidence)
}

async fn load_chain(db: &Db, chain: &str) -> Result<ChainEvidence, StoreError> {
    let tenant = (chain != SERVER_CHAIN).then(|| chain.to_owned());
    // By `seq`: entries whose contents were swapped or renumbered show as entries that do
    // not chain.
    let rows = sqlx::query(
        "SELECT seq, at, kind, body, prev_hash, hash FROM audit_log WHERE chain = $1 ORDER BY seq",
    )
    .bind(chain)
    .fetch_all(db.pool())
    .await?;
    let entries = rows
        .iter()
        .map(|r| {
            Ok(Entry {
                seq: r.try_get("seq")?,
                tenant_id: tenant.clone(),
                at: r.try_get("at")?,
                kind: r.try_get("kind")?,
                body: r.try_get("body")?,
                prev_hash: r.try_get("prev_hash")?,
                hash: r.try_get("hash")?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let head = super::audit::signed_head(db, tenant.as_deref()).await?;
    Ok(ChainEvidence {
        tenant_id: tenant,
        entries,
        head,
    })
}

async fn load_tenant(db: &Db, tenant: &str) -> Result<TenantEvidence, StoreError> {
    let keysets = sqlx::query(
        "SELECT key_id, parameter_set, manifest_fingerprint, manifest, app_bundle, server_key \
         FROM keysets WHERE tenant_id = $1 ORDER BY key_id",
    )
    .bind(tenant)
    .fetch_all(db.pool())
    .await?
    .iter()
    .map(|r| {
        Ok(KeysetEvidence {
            key_id: r.try_get("key_id")?,
            parameter_set: r.try_get("parameter_set")?,
            manifest_fingerprint: r.try_get("manifest_fingerprint")?,
            manifest: Some(r.try_get("manifest")?),
            app_bundle: r.try_get("app_bundle")?,
            server_key: Some(r.try_get("server_key")?),
        })
    })
    .collect::<Result<Vec<_>, StoreError>>()?;
    let schemas = super::list_schemas(db, tenant)
        .await?
        .into_iter()
        .map(|(schema_id, version, definition, _digest)| SchemaEvidence {
            schema_id,
            version: u32::try_from(version).unwrap_or(u32::MAX),
            definition,
        })
        .collect();
    let records = sqlx::query(
        "SELECT record_id, key_id, schema_id, schema_version, cohort, lexicon_version, recorded_at, \
                proven_list, proven_list_digest, sealed_transcript, sealed_transcript_digest, rollup_day \
         FROM records WHERE tenant_id = $1 ORDER BY seq",
    )
    .bind(tenant)
    .fetch_all(db.pool())
    .await?
    .iter()
    .map(|r| {
        let transcript: Option<Vec<u8>> = r.try_get("sealed_transcript")?;
        Ok(RecordEvidence {
            metadata: super::selection::metadata_from_row(tenant, r)?,
            proven_list: r.try_get("proven_list")?,
            proven_list_digest: r.try_get("proven_list_digest")?,
            transcript: transcript.map_or(TranscriptEvidence::None, TranscriptEvidence::Stored),
            transcript_digest: r.try_get("sealed_transcript_digest")?,
            rollup_day: r.try_get("rollup_day")?,
        })
    })
    .collect::<Result<Vec<_>, StoreError>>()?;
    let jobs = sqlx::query(
        "SELECT j.job_id, j.kind, j.key_id, j.status, j.spec, r.result, r.result_digest, r.receipt, r.noise_seed \
         FROM jobs j LEFT JOIN job_results r ON r.job_id = j.job_id \
         WHERE j.tenant_id = $1 ORDER BY j.created_at, j.job_id",
    )
    .bind(tenant)
    .fetch_all(db.pool())
    .await?
    .iter()
    .map(|r| {
        Ok(JobEvidence {
            job_id: r.try_get("job_id")?,
            kind: r.try_get("kind")?,
            key_id: r.try_get("key_id")?,
            status: r.try_get("status")?,
            spec: r.try_get("spec")?,
            result: r.try_get("result")?,
            result_digest: r.try_get("result_digest")?,
            receipt: r.try_get("receipt")?,
            noise_seed: r.try_get("noise_seed")?,
        })
    })
    .collect::<Result<Vec<_>, StoreError>>()?;
    let rollups = super::rollups::all(db, tenant)
        .await?
        .into_iter()
        .map(|r| RollupEvidence {
            key_id: r.key_id,
            schema_id: r.schema_id,
            schema_version: r.schema_version,
            part: r.part,
            slots: r.slots,
            lane_sum: r.lane_sum,
        })
        .collect();
    Ok(TenantEvidence {
        tenant_id: tenant.to_owned(),
        keysets,
        schemas,
        records,
        jobs,
        rollups: Some(rollups),
    })
}
