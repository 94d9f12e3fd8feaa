//! What `blindsight audit verify` checks, gathered from a server over its API: the auditor's
//! source of evidence (the other, offline from a server's database, is the CLI's).
//!
//! - [`fetch_evidence`]: over the API with a tenant's auditor (or keyholder) token: the
//!   tenant's chain and signed head, records with their proofs, custom schemas, key sets,
//!   jobs with their receipts and outputs (and, to re-execute jobs, the server keys).
//! - [`parse_audit_key`]: the audit keys the auditor trusts, from `--audit-key` values.
//!
//! [`blindsight_audit::verify`] then checks the [`Evidence`]; nothing here is
//! trusted because of where it came from.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use blindsight_audit::evidence::{
    ChainEvidence, Evidence, JobEvidence, KeysetEvidence, RecordEvidence, SchemaEvidence,
    TenantEvidence, TranscriptEvidence,
};
use blindsight_crypto::AppBundle;
use blindsight_proto::Entry;
use blindsight_proto::chain::key_id;

use crate::api::{ApiError, Client, Job, JobStatus, RecordListQuery};
use crate::progress::Progress;
use crate::{Error, Result};

/// What to fetch.
#[derive(Clone, Debug, Default)]
pub struct FetchOptions {
    /// How many jobs will be re-executed: when more than 0, every key set's server key is
    /// fetched too (about 100 MB each).
    pub reexecute: usize,
}

/// A fetched object, or `None` when the server answers 404: the evidence then shows it
/// missing and the checks judge that, rather than the fetch failing.
fn found<T>(fetched: Result<T, ApiError>, what: impl FnOnce() -> String) -> Result<Option<T>> {
    match fetched {
        Ok(v) => Ok(Some(v)),
        Err(ApiError::Refused { status: 404, .. }) => Ok(None),
        Err(e) => Err(Error::fetch(format!("couldn't fetch {}", what()), e)),
    }
}

/// A string field of an audit entry's JSON body.
fn body_field(entry: &Entry, field: &str) -> Option<String> {
    serde_json::from_str::<serde_json::Value>(&entry.body)
        .ok()?
        .get(field)?
        .as_str()
        .map(str::to_owned)
}

/// Gathers the evidence of the token's tenant from the server `client` talks to (an auditor
/// or keyholder token): its records with their proofs, custom schemas, jobs with their
/// receipts and outputs, its audit chain with the signed head, and every key set the chain,
/// the records or the jobs name. The trusted keys are left empty for the caller to fill.
///
/// The chain is read after the records and jobs, its head before its entries: every object
/// fetched was logged (in the same transaction) before the head, and entries appended while
/// the pages are read are kept. Downloading a job's output is itself logged by the server
/// (`job.result_downloaded`), after the head read here.
pub fn fetch_evidence(
    client: &Client,
    options: &FetchOptions,
    progress: &mut dyn Progress,
) -> Result<Evidence> {
    let first = client
        .audit_head()
        .map_err(|e| Error::fetch("couldn't read the audit head (GET /v1/audit/head)", e))?;
    let tenant = first.tenant_id.clone().ok_or_else(|| {
        Error::Audit(
            "this token reads the server-wide chain (an admin token): audit verify needs a tenant's auditor or keyholder token".into(),
        )
    })?;

    let records = fetch_records(client, &tenant, progress)?;
    let schemas = client
        .schemas()
        .map_err(|e| Error::fetch("couldn't list the tenant's schemas (GET /v1/schemas)", e))?
        .into_iter()
        .map(|s| SchemaEvidence {
            schema_id: s.schema_id,
            version: s.version,
            definition: s.definition,
        })
        .collect();
    let listed = client
        .jobs()
        .map_err(|e| Error::fetch("couldn't list the tenant's jobs (GET /v1/jobs)", e))?;

    // The head first, then every entry up to it and any appended since.
    progress.begin("audit log", 0);
    let head = client
        .audit_head()
        .map_err(|e| Error::fetch("couldn't read the audit head (GET /v1/audit/head)", e))?;
    if head.tenant_id.as_deref() != Some(tenant.as_str()) {
        return Err(Error::Audit(format!(
            "the server's audit head names another chain than the one it named a moment ago ({:?}, then {:?})",
            tenant, head.tenant_id
        )));
    }
    let expected = u64::try_from(head.seq).unwrap_or(0);
    let entries = client
        .audit_entries(|n| {
            let n = n as u64;
            progress.update(n, expected.max(n), "entries");
        })
        .map_err(|e| Error::fetch("couldn't read the audit log (GET /v1/audit)", e))?;
    progress.end();

    let jobs = fetch_jobs(client, listed, &entries, progress)?;
    let keysets = fetch_keysets(client, options, &entries, &records, &jobs, progress)?;

    Ok(Evidence {
        source: client.base_url().to_owned(),
        trusted_keys: Vec::new(),
        kept_heads: Vec::new(),
        chains: vec![ChainEvidence {
            tenant_id: Some(tenant.clone()),
            entries,
            head: Some(head),
        }],
        tenants: vec![TenantEvidence {
            tenant_id: tenant,
            keysets,
            schemas,
            records,
            jobs,
            // The API does not serve rollup sums: `audit verify --db` recomputes them.
            rollups: None,
        }],
    })
}

fn fetch_records(
    client: &Client,
    tenant: &str,
    progress: &mut dyn Progress,
) -> Result<Vec<RecordEvidence>> {
    let summaries = client
        .records(&RecordListQuery::default())
        .map_err(|e| Error::fetch("couldn't list the tenant's records (GET /v1/records)", e))?;
    let total = summaries.len() as u64;
    progress.begin("records", total);
    let mut records = Vec::with_capacity(summaries.len());
    for (i, summary) in summaries.into_iter().enumerate() {
        let metadata = summary.metadata(tenant).ok_or_else(|| {
            Error::Audit(format!(
                "record {}: a listed number is out of its metadata field's range",
                summary.record_id
            ))
        })?;
        // A listed record whose proof is not served shows as an empty proven list, which the
        // checks report as not matching its digest.
        let proven_list = found(client.proof(&summary.record_id), || {
            format!("record {}'s proof", summary.record_id)
        })?
        .unwrap_or_default();
        records.push(RecordEvidence {
            metadata,
            proven_list,
            proven_list_digest: summary.proven_list_digest,
            // The API serves sealed transcripts to the key holder only.
            transcript: if summary.has_transcript {
                TranscriptEvidence::NotServed
            } else {
                TranscriptEvidence::None
            },
            transcript_digest: summary.sealed_transcript_digest,
            rollup_day: summary.rollup_day,
        });
        progress.update(i as u64 + 1, total, &summary.record_id);
    }
    progress.end();
    Ok(records)
}

/// The listed jobs (the server lists the newest 1,000), with any other job the chain says was
/// created; for each succeeded one, its receipt and output.
fn fetch_jobs(
    client: &Client,
    listed: Vec<Job>,
    entries: &[Entry],
    progress: &mut dyn Progress,
) -> Result<Vec<JobEvidence>> {
    let mut jobs: BTreeMap<String, Job> =
        listed.into_iter().map(|j| (j.job_id.clone(), j)).collect();
    let unlisted: BTreeSet<String> = entries
        .iter()
        .filter(|e| e.kind == "job.created")
        .filter_map(|e| body_field(e, "job_id"))
        .filter(|id| !jobs.contains_key(id))
        .collect();
    for job_id in unlisted {
        // Logged but not there: the checks see it missing.
        if let Some(job) = found(client.job(&job_id), || format!("job {job_id}"))? {
            jobs.insert(job_id, job);
        }
    }
    let mut jobs: Vec<Job> = jobs.into_values().collect();
    jobs.sort_by(|a, b| (a.created_at, &a.job_id).cmp(&(b.created_at, &b.job_id)));

    let total = jobs.len() as u64;
    progress.begin("jobs", total);
    let mut out = Vec::with_capacity(jobs.len());
    for (i, job) in jobs.into_iter().enumerate() {
        let (mut receipt, mut result) = (None, None);
        if job.status == JobStatus::Succeeded {
            receipt = found(client.job_receipt(&job.job_id), || {
                format!("job {}'s receipt", job.job_id)
            })?
            .map(|r| {
                serde_json::to_string(&r)
                    .map_err(|e| Error::Audit(format!("couldn't encode a receipt: {e}")))
            })
            .transpose()?;
            result = found(client.job_result(&job.job_id), || {
                format!("job {}'s output", job.job_id)
            })?;
        }
        progress.update(i as u64 + 1, total, &job.job_id);
        out.push(JobEvidence {
            job_id: job.job_id,
            kind: job.kind,
            key_id: job.key_id,
            status: job.status.name().to_owned(),
            spec: job.spec,
            result,
            result_digest: None,
            receipt,
            noise_seed: None,
        });
    }
    progress.end();
    Ok(out)
}

/// Every key set the chain (`keyset.registered`), the records or the jobs name.
fn fetch_keysets(
    client: &Client,
    options: &FetchOptions,
    entries: &[Entry],
    records: &[RecordEvidence],
    jobs: &[JobEvidence],
    progress: &mut dyn Progress,
) -> Result<Vec<KeysetEvidence>> {
    let mut logged: BTreeMap<String, Option<String>> = BTreeMap::new();
    for e in entries.iter().filter(|e| e.kind == "keyset.registered") {
        if let Some(key_id) = body_field(e, "key_id") {
            logged.insert(key_id, body_field(e, "parameter_set"));
        }
    }
    let ids: BTreeSet<String> = logged
        .keys()
        .cloned()
        .chain(records.iter().map(|r| r.metadata.key_id.clone()))
        .chain(jobs.iter().map(|j| j.key_id.clone()))
        .collect();
    let total = ids.len() as u64;
    progress.begin("key sets", total);
    let mut out = Vec::with_capacity(ids.len());
    for (i, key_id) in ids.into_iter().enumerate() {
        progress.update(i as u64, total, &key_id);
        // Named but not served: the checks see it missing.
        let Some((app_bundle, fingerprint)) = found(client.keyset_public(&key_id), || {
            format!("key set {key_id}")
        })?
        else {
            continue;
        };
        // The parameter set from the bundle's own manifest; one that does not decode is the
        // checks' to report, with what the log says.
        let parameter_set = AppBundle::decode(&app_bundle)
            .map(|b| b.manifest().parameter_set.clone())
            .ok()
            .or_else(|| logged.get(&key_id).cloned().flatten())
            .unwrap_or_default();
        let server_key = if options.reexecute > 0 {
            found(client.keyset_server_key(&key_id), || {
                format!("key set {key_id}'s server key")
            })?
        } else {
            None
        };
        out.push(KeysetEvidence {
            key_id,
            parameter_set,
            manifest_fingerprint: fingerprint.unwrap_or_default(),
            manifest: None,
            app_bundle,
            server_key,
        });
    }
    progress.update(total, total, "");
    progress.end();
    Ok(out)
}

/// Decodes one `--audit-key` value: 64 hex digits, or a file holding either those or the JSON
/// of `GET /v1/audit/key` (whose `key_id`, when present, must match the key).
pub fn parse_audit_key(value: &str) -> Result<Vec<u8>> {
    fn hex_key(text: &str) -> Option<Vec<u8>> {
        let text = text.trim();
        (text.len() == 64).then(|| hex::decode(text).ok()).flatten()
    }
    if let Some(key) = hex_key(value) {
        return Ok(key);
    }
    let path = Path::new(value);
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::Audit(format!(
            "--audit-key {value:?} is neither 64 hex digits nor a readable file: {e}"
        ))
    })?;
    if let Some(key) = hex_key(&text) {
        return Ok(key);
    }
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        Error::Audit(format!(
            "{} holds neither 64 hex digits nor the JSON of GET /v1/audit/key: {e}",
            path.display()
        ))
    })?;
    let key = json
        .get("public_key")
        .and_then(|k| k.as_str())
        .and_then(hex_key)
        .ok_or_else(|| {
            Error::Audit(format!(
                "{}: `public_key` is not 64 hex digits (expected the JSON of GET /v1/audit/key)",
                path.display()
            ))
        })?;
    if let Some(id) = json.get("key_id").and_then(|k| k.as_str())
        && !id.eq_ignore_ascii_case(&key_id(&key))
    {
        return Err(Error::Audit(format!(
            "{}: `key_id` is not the SHA-256 of `public_key`",
            path.display()
        )));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_keys_parse_from_hex_and_from_files() {
        let key = [7u8; 32];
        let hex_key = hex::encode(key);
        assert_eq!(parse_audit_key(&hex_key).unwrap(), key);
        assert_eq!(
            parse_audit_key(&hex_key.to_uppercase()).unwrap(),
            key,
            "hex of either case"
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("key.hex");
        std::fs::write(&file, format!("{hex_key}\n")).unwrap();
        assert_eq!(parse_audit_key(file.to_str().unwrap()).unwrap(), key);
        let json = dir.path().join("key.json");
        let doc = serde_json::json!({
            "algorithm": "ed25519",
            "public_key": hex_key,
            "key_id": key_id(&key),
        });
        std::fs::write(&json, doc.to_string()).unwrap();
        assert_eq!(parse_audit_key(json.to_str().unwrap()).unwrap(), key);

        let mut wrong = doc.clone();
        wrong["key_id"] = "00".repeat(32).into();
        std::fs::write(&json, wrong.to_string()).unwrap();
        let err = parse_audit_key(json.to_str().unwrap()).unwrap_err();
        assert!(format!("{err:#}").contains("key_id"), "{err:#}");
        for bad in ["abc", &"zz".repeat(32), &"00".repeat(31)] {
            let err = parse_audit_key(bad).unwrap_err();
            assert!(format!("{err:#}").contains("64 hex digits"), "{err:#}");
        }
        std::fs::write(&file, "not a key").unwrap();
        assert!(parse_audit_key(file.to_str().unwrap()).is_err());
    }
}
