//! What the checks share: the key sets' app bundles decoded once, the trusted key a signature
//! names, what the audit log says happened, stored schemas, and a job's input records.

use std::collections::HashMap;

use blindsight_crypto::{AppBundle, RecordSchema};
use blindsight_proto::chain::key_id;
use blindsight_proto::{Entry, JobSpec, rollup_ranges};
use rayon::prelude::*;

use crate::evidence::{Evidence, KeysetEvidence, RecordEvidence, TenantEvidence};

/// Every stored app bundle, decoded once per run (decoding checks the CRS and public key
/// against the manifest, which is the slow part): by tenant and key id.
pub(crate) struct Bundles(HashMap<(String, String), Result<AppBundle, String>>);

impl Bundles {
    pub(crate) fn decode(evidence: &Evidence) -> Self {
        let all: Vec<(&str, &KeysetEvidence)> = evidence
            .tenants
            .iter()
            .flat_map(|t| t.keysets.iter().map(|k| (t.tenant_id.as_str(), k)))
            .collect();
        Self(
            all.par_iter()
                .map(|(tenant, k)| {
                    let bundle = AppBundle::decode(&k.app_bundle).map_err(|e| {
                        format!("key set {}'s app bundle does not decode: {e}", k.key_id)
                    });
                    (((*tenant).to_owned(), k.key_id.clone()), bundle)
                })
                .collect(),
        )
    }

    pub(crate) fn get(&self, tenant: &str, key_id: &str) -> Result<&AppBundle, String> {
        match self.0.get(&(tenant.to_owned(), key_id.to_owned())) {
            None => Err(format!("key set {key_id} is not stored")),
            Some(Err(e)) => Err(e.clone()),
            Some(Ok(b)) => Ok(b),
        }
    }
}

/// The trusted key a signature names, if any.
pub(crate) fn trusted<'a>(evidence: &'a Evidence, named: &str) -> Option<&'a [u8]> {
    evidence
        .trusted_keys
        .iter()
        .find(|k| key_id(k) == named)
        .map(Vec::as_slice)
}

/// The JSON body of each entry of `kind` in a tenant's chain, by the value of its `field`.
pub(crate) fn logged(
    evidence: &Evidence,
    tenant: &str,
    kind: &str,
    field: &str,
) -> HashMap<String, serde_json::Value> {
    let mut out = HashMap::new();
    let entries: &[Entry] = evidence
        .chains
        .iter()
        .find(|c| c.tenant_id.as_deref() == Some(tenant))
        .map_or(&[], |c| c.entries.as_slice());
    for e in entries.iter().filter(|e| e.kind == kind) {
        if let Ok(body) = serde_json::from_str::<serde_json::Value>(&e.body)
            && let Some(key) = body.get(field).and_then(|v| v.as_str())
        {
            out.insert(key.to_owned(), body);
        }
    }
    out
}

pub(crate) fn field<'a>(body: &'a serde_json::Value, name: &str) -> Option<&'a str> {
    body.get(name).and_then(|v| v.as_str())
}

/// The schema a record names: built in, or registered by the tenant.
pub(crate) fn schema_for(
    tenant: &TenantEvidence,
    id: &str,
    version: u32,
) -> Result<RecordSchema, String> {
    if let Some(s) = blindsight_crypto::schemas::builtin(id, version) {
        return Ok(s);
    }
    let stored = tenant
        .schemas
        .iter()
        .find(|s| s.schema_id == id && s.version == version)
        .ok_or_else(|| format!("schema {id}@{version} is neither built in nor registered"))?;
    serde_json::from_str(&stored.definition)
        .map_err(|e| format!("stored schema {id}@{version} does not parse: {e}"))
}

/// A lane rollup's cohort and day: key set, schema id and version, cohort, UTC day.
pub(crate) type RollupGroup<'a> = (&'a str, &'a str, u32, Option<&'a str>, i64);

/// A tenant's rolled-up records by cohort and day, each group in ingest order (a part's
/// records are its group's records by position).
pub(crate) fn rollup_members(
    tenant: &TenantEvidence,
) -> HashMap<RollupGroup<'_>, Vec<&RecordEvidence>> {
    let mut groups: HashMap<RollupGroup<'_>, Vec<&RecordEvidence>> = HashMap::new();
    for r in &tenant.records {
        if let Some(day) = r.rollup_day {
            let m = &r.metadata;
            groups
                .entry((
                    m.key_id.as_str(),
                    m.schema_id.as_str(),
                    m.schema_version,
                    m.cohort.as_deref(),
                    day,
                ))
                .or_default()
                .push(r);
        }
    }
    groups
}

/// The stored records a job read, in its order: its listed records, or its rollup parts'
/// records part by part.
pub(crate) fn job_inputs<'a>(
    tenant: &'a TenantEvidence,
    spec: &JobSpec,
) -> Result<Vec<&'a RecordEvidence>, String> {
    if !spec.rollup.is_empty() {
        let select = spec.request.select();
        let groups = rollup_members(tenant);
        let mut out = Vec::new();
        for (part, first, count) in rollup_ranges(&spec.rollup) {
            let key = (
                spec.request.key_id(),
                select.schema_id.as_str(),
                select.schema_version,
                part.cohort.as_deref(),
                part.day,
            );
            let members = groups.get(&key).map_or(&[][..], Vec::as_slice);
            let range = usize::try_from(first).unwrap_or(usize::MAX)
                ..usize::try_from(first + count).unwrap_or(usize::MAX);
            let slice = members.get(range).ok_or_else(|| {
                format!(
                    "rollup part {} of cohort {:?} day {} names {count} records from the {}th, \
                     but that cohort and day holds {} stored records",
                    part.part,
                    part.cohort,
                    part.day,
                    first + 1,
                    members.len()
                )
            })?;
            out.extend(slice.iter().copied());
        }
        return Ok(out);
    }
    let by_id: HashMap<&str, &RecordEvidence> = tenant
        .records
        .iter()
        .map(|r| (r.metadata.record_id.as_str(), r))
        .collect();
    spec.records
        .iter()
        .map(|id| {
            by_id
                .get(id.as_str())
                .copied()
                .ok_or_else(|| format!("input record {id:?} is no longer stored"))
        })
        .collect()
}
