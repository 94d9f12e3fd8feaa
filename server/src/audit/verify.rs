//! The checks of `blindsight audit verify`, over [`Evidence`] from a database or the API.
//!
//! 1. `chain`: every chain from genesis, and its head's signature by a trusted key;
//! 2. `proofs`: every stored record's proof re-verifies with its own metadata, and its
//!    digest matches the one stored and logged at ingest;
//! 3. `receipts`: every succeeded job has a receipt signed by a trusted key whose statements
//!    match the stored spec, inputs, key set, output and audit entry;
//! 4. `reexecute`: N sampled jobs are run again and must give the receipt's output digest;
//! 5. `storage`: every payload decodes as what it claims to be, nothing decodes as a client
//!    key, and no transcript is stored in the clear;
//! 6. `manifests`: every key set's manifest fingerprint matches its stored public bundle;
//! 7. `cohorts`: every aggregate job read at least its tenant's minimum cohort (as logged when
//!    the tenant was created).
//!
//! Each failure names the object, e.g. `tenant "t": entry 1834: hash does not chain`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use blindsight_crypto::receipt::{Receipt, SignedReceipt, inputs_root_of_lists};
use blindsight_crypto::scan::{Stored, scan};
use blindsight_crypto::tfhe::ServerKey;
use blindsight_crypto::{AppBundle, KeyManifest, RecordSchema, Verifier, sha256_hex};
use rayon::prelude::*;
use serde::Serialize;

use super::Entry;
use super::chain::{key_id, verify_chain};
use super::evidence::{
    ChainEvidence, Evidence, JobEvidence, KeysetEvidence, RecordEvidence, TenantEvidence,
    TranscriptEvidence,
};
use crate::compute::JobSpec;
use crate::store::StoredRecord;

/// How to verify.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// How many succeeded jobs to re-execute (sampled at random); 0 skips the check.
    pub reexecute: usize,
}

/// What a long check is doing, for a progress bar: `done` of `total` in `check`.
#[derive(Clone, Copy, Debug)]
pub struct Progress<'a> {
    /// The check's name.
    pub check: &'a str,
    /// Steps done.
    pub done: u64,
    /// Steps in all.
    pub total: u64,
}

/// One check's outcome.
#[derive(Clone, Debug, Serialize)]
pub struct Check {
    /// `chain`, `proofs`, `receipts`, `reexecute`, `storage`, `manifests` or `cohorts`.
    pub name: &'static str,
    /// No failure (a check with nothing to check passes).
    pub passed: bool,
    /// Objects checked.
    pub checked: u64,
    /// Objects that failed.
    pub failed: u64,
    /// One line on what was checked, e.g. `1,234 entries in 3 chains`.
    pub summary: String,
    /// The failures, first first (at most [`MAX_LISTED`]).
    pub failures: Vec<String>,
    /// What could not be checked from this source, and why.
    pub notes: Vec<String>,
}

/// The most failures listed per check.
pub const MAX_LISTED: usize = 50;

/// The outcome of a run.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Where the evidence came from.
    pub source: String,
    /// Every check passed.
    pub passed: bool,
    /// The first failure of the first failing check.
    pub first_failure: Option<String>,
    /// The checks, in order.
    pub checks: Vec<Check>,
}

/// Collects one check's outcome.
struct Tally {
    name: &'static str,
    checked: u64,
    failures: Vec<String>,
    failed: u64,
    notes: Vec<String>,
}

impl Tally {
    fn new(name: &'static str) -> Self {
        Self {
            name,
            checked: 0,
            failures: Vec::new(),
            failed: 0,
            notes: Vec::new(),
        }
    }

    /// Counts one object, failed when `outcome` is an error.
    fn count(&mut self, outcome: Result<(), String>) {
        self.checked += 1;
        if let Err(e) = outcome {
            self.fail(e);
        }
    }

    fn fail(&mut self, failure: String) {
        self.failed += 1;
        if self.failures.len() < MAX_LISTED {
            self.failures.push(failure);
        }
    }

    fn finish(self, summary: String) -> Check {
        Check {
            name: self.name,
            passed: self.failed == 0,
            checked: self.checked,
            failed: self.failed,
            summary,
            failures: self.failures,
            notes: self.notes,
        }
    }
}

fn chain_label(tenant: Option<&str>) -> String {
    match tenant {
        Some(t) => format!("tenant {t:?}"),
        None => "server-wide chain".into(),
    }
}

/// `n` with thousands separators, for summaries.
fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", count(n), if n == 1 { one } else { many })
}

/// Every stored app bundle, decoded once per run (decoding checks the CRS and public key
/// against the manifest, which is the slow part): by tenant and key id.
struct Bundles(HashMap<(String, String), Result<AppBundle, String>>);

impl Bundles {
    fn decode(evidence: &Evidence) -> Self {
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

    fn get(&self, tenant: &str, key_id: &str) -> Result<&AppBundle, String> {
        match self.0.get(&(tenant.to_owned(), key_id.to_owned())) {
            None => Err(format!("key set {key_id} is not stored")),
            Some(Err(e)) => Err(e.clone()),
            Some(Ok(b)) => Ok(b),
        }
    }
}

/// Runs every check over `evidence`.
pub fn verify(
    evidence: &Evidence,
    options: &Options,
    progress: &(dyn Fn(Progress<'_>) + Sync),
) -> Report {
    let bundles = Bundles::decode(evidence);
    let (receipts, verified) = check_receipts(evidence, &bundles);
    let checks = vec![
        check_chains(evidence),
        check_proofs(evidence, &bundles, progress),
        receipts,
        check_reexecution(&bundles, &verified, options, progress),
        check_storage(evidence, progress),
        check_manifests(evidence, &bundles),
        check_cohorts(evidence),
    ];
    let first_failure = checks.iter().find_map(|c| c.failures.first().cloned());
    Report {
        source: evidence.source.clone(),
        passed: checks.iter().all(|c| c.passed),
        first_failure,
        checks,
    }
}

impl Report {
    /// The report as text: one line per check, then its failures and notes, then the verdict.
    pub fn render(&self) -> String {
        let mut out = format!("audit of {}\n", self.source);
        for c in &self.checks {
            let verdict = if c.passed { "pass" } else { "FAIL" };
            out.push_str(&format!("  {verdict}  {:<10} {}\n", c.name, c.summary));
            for f in &c.failures {
                out.push_str(&format!("          - {f}\n"));
            }
            if c.failed as usize > c.failures.len() {
                out.push_str(&format!(
                    "          … and {} more\n",
                    count(c.failed - c.failures.len() as u64)
                ));
            }
            for n in &c.notes {
                out.push_str(&format!("          note: {n}\n"));
            }
        }
        match &self.first_failure {
            None if self.passed => out.push_str("result: every check passed\n"),
            None => out.push_str("result: FAILED\n"),
            Some(f) => out.push_str(&format!("result: FAILED (first failure: {f})\n")),
        }
        out
    }
}

/// The trusted key a signature names, if any.
fn trusted<'a>(evidence: &'a Evidence, named: &str) -> Option<&'a [u8]> {
    evidence
        .trusted_keys
        .iter()
        .find(|k| key_id(k) == named)
        .map(Vec::as_slice)
}

fn check_chains(evidence: &Evidence) -> Check {
    let mut t = Tally::new("chain");
    if evidence.trusted_keys.is_empty() {
        t.fail("no trusted audit key was given: nothing can be verified".into());
    }
    let mut signers: Vec<String> = Vec::new();
    for chain in &evidence.chains {
        let label = chain_label(chain.tenant_id.as_deref());
        t.checked += chain.entries.len() as u64;
        let outcome = verify_one_chain(evidence, chain);
        match outcome {
            Ok(Some(k)) => {
                if !signers.contains(&k) {
                    signers.push(k);
                }
            }
            Ok(None) => {}
            Err(e) => t.fail(format!("{label}: {e}")),
        }
    }
    let mut summary = format!(
        "{} in {}",
        plural(t.checked, "entry", "entries"),
        plural(evidence.chains.len() as u64, "chain", "chains")
    );
    if !signers.is_empty() {
        let short: Vec<String> = signers
            .iter()
            .map(|k| k[..12.min(k.len())].to_owned())
            .collect();
        summary.push_str(&format!("; heads signed by {}", short.join(", ")));
    }
    t.finish(summary)
}

/// Verifies a chain and its head; `Some(key id)` of the head's signer.
fn verify_one_chain(evidence: &Evidence, chain: &ChainEvidence) -> Result<Option<String>, String> {
    let Some(head) = &chain.head else {
        if chain.entries.is_empty() {
            return Ok(None);
        }
        return Err("head: no signed head is stored for this chain".into());
    };
    let key = trusted(evidence, &head.key_id).ok_or_else(|| {
        format!(
            "head: signed by key {}, which is not a trusted audit key",
            head.key_id
        )
    })?;
    verify_chain(chain.tenant_id.as_deref(), &chain.entries, head, key)
        .map_err(|e| e.to_string())?;
    Ok(Some(head.key_id.clone()))
}

/// The JSON body of each entry of `kind` in a tenant's chain, by the value of its `field`.
fn logged(
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

fn field<'a>(body: &'a serde_json::Value, name: &str) -> Option<&'a str> {
    body.get(name).and_then(|v| v.as_str())
}

/// The schema a record names: built in, or registered by the tenant.
fn schema_for(tenant: &TenantEvidence, id: &str, version: u32) -> Result<RecordSchema, String> {
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

fn check_proofs(
    evidence: &Evidence,
    bundles: &Bundles,
    progress: &(dyn Fn(Progress<'_>) + Sync),
) -> Check {
    let mut t = Tally::new("proofs");
    let total: u64 = evidence
        .tenants
        .iter()
        .map(|x| x.records.len() as u64)
        .sum();
    let done = AtomicU64::new(0);
    for tenant in &evidence.tenants {
        let ingested = logged(evidence, &tenant.tenant_id, "record.ingested", "record_id");
        let verifiers: HashMap<&str, Result<Verifier, String>> = tenant
            .keysets
            .iter()
            .map(|k| {
                let v = bundles
                    .get(&tenant.tenant_id, &k.key_id)
                    .cloned()
                    .map(Verifier::new);
                (k.key_id.as_str(), v)
            })
            .collect();
        let outcomes: Vec<Result<(), String>> = tenant
            .records
            .par_iter()
            .map(|r| {
                let id = &r.metadata.record_id;
                let outcome = (|| {
                    // The proof first: a swapped ciphertext is named as what it is.
                    let verifier = match verifiers.get(r.metadata.key_id.as_str()) {
                        None => return Err(format!("key set {} is not stored", r.metadata.key_id)),
                        Some(Err(e)) => return Err(e.clone()),
                        Some(Ok(v)) => v,
                    };
                    let schema =
                        schema_for(tenant, &r.metadata.schema_id, r.metadata.schema_version)?;
                    verifier
                        .verify_record(&r.proven_list, &schema, &r.metadata)
                        .map_err(|e| format!("proof does not verify with its metadata: {e}"))?;
                    if sha256_hex(&r.proven_list) != r.proven_list_digest {
                        return Err("stored ciphertext does not match its stored digest".into());
                    }
                    match ingested.get(id) {
                        None => Err("no record.ingested entry in the audit log".into()),
                        Some(body)
                            if field(body, "proven_list_digest") != Some(&r.proven_list_digest) =>
                        {
                            Err("stored ciphertext differs from the one logged at ingest".into())
                        }
                        Some(_) => Ok(()),
                    }
                })();
                let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                progress(Progress {
                    check: "proofs",
                    done: n,
                    total,
                });
                outcome.map_err(|e| format!("tenant {:?}: record {id:?}: {e}", tenant.tenant_id))
            })
            .collect();
        for o in outcomes {
            t.count(o);
        }
    }
    let summary = format!("{} re-verified", plural(t.checked, "record", "records"));
    t.finish(summary)
}

/// The stored records a job read, in its order.
fn job_inputs<'a>(
    tenant: &'a TenantEvidence,
    spec: &JobSpec,
) -> Result<Vec<&'a RecordEvidence>, String> {
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

/// Checks a succeeded job's receipt against everything stored; returns what it states.
fn check_receipt(
    evidence: &Evidence,
    bundles: &Bundles,
    tenant: &TenantEvidence,
    job: &JobEvidence,
    succeeded: &HashMap<String, serde_json::Value>,
) -> Result<Receipt, String> {
    let stored = job
        .receipt
        .as_deref()
        .ok_or("succeeded without a receipt")?;
    let signed: SignedReceipt =
        serde_json::from_str(stored).map_err(|e| format!("receipt does not parse: {e}"))?;
    let receipt = signed
        .verify(&evidence.trusted_keys)
        .map_err(|e| e.to_string())?;
    let mismatch = |what: &str| format!("receipt names another {what} than the job's");
    if receipt.job_id != job.job_id {
        return Err(mismatch("job"));
    }
    if receipt.tenant_id != tenant.tenant_id {
        return Err(mismatch("tenant"));
    }
    if receipt.key_id != job.key_id {
        return Err(mismatch("key set"));
    }
    if receipt.kind != job.kind {
        return Err(mismatch("kind"));
    }
    if receipt.spec_digest != sha256_hex(job.spec.as_bytes()) {
        return Err("receipt's spec digest does not match the stored spec".into());
    }
    let spec: JobSpec =
        serde_json::from_str(&job.spec).map_err(|e| format!("stored spec does not parse: {e}"))?;
    let (function, model_digest) = spec.function_and_model_digest();
    if receipt.function != function || receipt.model_digest != model_digest {
        return Err("receipt's function or model digest does not match the stored spec".into());
    }
    if receipt.parameter_set != blindsight_crypto::PARAMETER_SET_ID {
        return Err(format!(
            "receipt names parameter set {:?}, not {}",
            receipt.parameter_set,
            blindsight_crypto::PARAMETER_SET_ID
        ));
    }
    let inputs = job_inputs(tenant, &spec)?;
    let root = inputs_root_of_lists(
        inputs
            .iter()
            .map(|r| (r.metadata.record_id.as_str(), r.proven_list.as_slice())),
    );
    if receipt.inputs != inputs.len() as u64 || receipt.inputs_root != root {
        return Err("receipt's input digests do not match the stored ciphertext".into());
    }
    let bundle = bundles.get(&tenant.tenant_id, &job.key_id)?;
    if receipt.server_key_fingerprint != bundle.manifest().fingerprints.server_key {
        return Err("receipt's server-key fingerprint is not the key set's".into());
    }
    if let Some(result) = &job.result
        && sha256_hex(result) != receipt.output_digest
    {
        return Err("the stored output does not match the receipt's output digest".into());
    }
    if let Some(d) = &job.result_digest
        && *d != receipt.output_digest
    {
        return Err("the stored output digest does not match the receipt's".into());
    }
    let entry = succeeded
        .get(&job.job_id)
        .ok_or("no job.succeeded entry in the audit log")?;
    if field(entry, "result_digest") != Some(&receipt.output_digest) {
        return Err("the audit log names another output digest than the receipt".into());
    }
    if field(entry, "receipt_digest") != Some(&SignedReceipt::digest_of(stored)) {
        return Err("the audit log names another receipt than the stored one".into());
    }
    Ok(receipt)
}

/// A succeeded job whose receipt verified, with what it states: what re-execution samples.
type Verified<'a> = (&'a TenantEvidence, &'a JobEvidence, Receipt);

fn check_receipts<'a>(evidence: &'a Evidence, bundles: &Bundles) -> (Check, Vec<Verified<'a>>) {
    let mut t = Tally::new("receipts");
    let mut verified = Vec::new();
    for tenant in &evidence.tenants {
        let succeeded = logged(evidence, &tenant.tenant_id, "job.succeeded", "job_id");
        for job in tenant.jobs.iter().filter(|j| j.status == "succeeded") {
            let outcome = match check_receipt(evidence, bundles, tenant, job, &succeeded) {
                Ok(receipt) => {
                    verified.push((tenant, job, receipt));
                    Ok(())
                }
                Err(e) => Err(format!(
                    "tenant {:?}: job {}: {e}",
                    tenant.tenant_id, job.job_id
                )),
            };
            t.count(outcome);
        }
    }
    let summary = format!(
        "{} with signed receipts checked against stored inputs, outputs and the log",
        plural(t.checked, "succeeded job", "succeeded jobs")
    );
    (t.finish(summary), verified)
}

/// Picks `n` of `len` indices at random (an auditor's sample the server cannot predict).
fn sample(len: usize, n: usize) -> Vec<usize> {
    let mut all: Vec<usize> = (0..len).collect();
    let mut state =
        u64::from_le_bytes(blindsight_crypto::random_bytes::<8>().unwrap_or([7; 8])) | 1;
    let mut next = || {
        // xorshift64*: only to shuffle, not for anything secret.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    for i in (1..all.len()).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        all.swap(i, j);
    }
    all.truncate(n);
    all.sort_unstable();
    all
}

/// Runs a job again from public material only and returns its output's digest.
fn reexecute(
    key: &ServerKey,
    bundles: &Bundles,
    tenant: &TenantEvidence,
    job: &JobEvidence,
    progress: &AtomicI64,
) -> Result<String, String> {
    let spec: JobSpec =
        serde_json::from_str(&job.spec).map_err(|e| format!("stored spec does not parse: {e}"))?;
    let verifier = Verifier::new(bundles.get(&tenant.tenant_id, &job.key_id)?.clone());
    let select = spec.request.select();
    let schema = schema_for(tenant, &select.schema_id, select.schema_version)?;
    // As a worker loads them.
    let records: Vec<StoredRecord> = job_inputs(tenant, &spec)?
        .into_iter()
        .map(|r| StoredRecord {
            metadata: r.metadata.clone(),
            proven_list: r.proven_list.clone(),
            proven_list_digest: r.proven_list_digest.clone(),
        })
        .collect();
    let output = crate::compute::execute(key, &verifier, &schema, &spec, &records, progress)
        .map_err(|e| format!("re-execution failed: {e}"))?;
    Ok(sha256_hex(&output))
}

/// A key set's server key, decoded and decompressed once per run however many of its jobs are
/// re-executed.
fn server_key<'a>(
    cache: &'a mut HashMap<(String, String), Result<ServerKey, String>>,
    tenant: &TenantEvidence,
    key_id: &str,
) -> Result<&'a ServerKey, String> {
    cache
        .entry((tenant.tenant_id.clone(), key_id.to_owned()))
        .or_insert_with(|| {
            let keyset = tenant
                .keysets
                .iter()
                .find(|k| k.key_id == key_id)
                .ok_or_else(|| format!("key set {key_id} is not stored"))?;
            let bytes = keyset
                .server_key
                .as_deref()
                .ok_or_else(|| format!("key set {key_id}'s server key is not available"))?;
            blindsight_crypto::decode_server_key(bytes)
                .map(|k| k.decompress())
                .map_err(|e| format!("key set {key_id}'s server key does not decode: {e}"))
        })
        .as_ref()
        .map_err(Clone::clone)
}

fn check_reexecution(
    bundles: &Bundles,
    candidates: &[Verified<'_>],
    options: &Options,
    progress: &(dyn Fn(Progress<'_>) + Sync),
) -> Check {
    let mut t = Tally::new("reexecute");
    if options.reexecute == 0 {
        t.notes
            .push("no job re-executed (pass --reexecute N to re-run N sampled jobs)".into());
        return t.finish("skipped".into());
    }
    // Only jobs whose receipts verified: re-execution compares against what the server signed.
    let mut keys = HashMap::new();
    let picked = sample(candidates.len(), options.reexecute);
    let total = picked.len() as u64;
    let mut ids = Vec::new();
    for (n, i) in picked.into_iter().enumerate() {
        let (tenant, job, receipt) = &candidates[i];
        progress(Progress {
            check: "reexecute",
            done: n as u64,
            total,
        });
        let here = blindsight_crypto::receipt::fft_path();
        let outcome = if receipt.fft != here {
            Err(format!(
                "not re-executable here: the job ran on FFT path {}, this machine evaluates on {here}, which rounds differently; re-execute on a machine with {}",
                receipt.fft, receipt.fft
            ))
        } else {
            server_key(&mut keys, tenant, &job.key_id)
                .and_then(|key| reexecute(key, bundles, tenant, job, &AtomicI64::new(0)))
        }
        .and_then(|digest| {
            if digest == receipt.output_digest {
                Ok(())
            } else {
                Err(format!(
                    "re-execution gave output digest {digest}, the receipt names {}",
                    receipt.output_digest
                ))
            }
        });
        ids.push(job.job_id.clone());
        t.count(
            outcome.map_err(|e| format!("tenant {:?}: job {}: {e}", tenant.tenant_id, job.job_id)),
        );
    }
    progress(Progress {
        check: "reexecute",
        done: total,
        total,
    });
    if (options.reexecute as u64) > total {
        t.notes.push(format!(
            "{} asked for, {} with a verified receipt available",
            options.reexecute, total
        ));
    }
    let summary = if ids.is_empty() {
        "no succeeded job to re-execute".into()
    } else {
        format!(
            "{} re-executed, output digests compared ({})",
            plural(t.checked, "job", "jobs"),
            ids.join(", ")
        )
    };
    t.finish(summary)
}

fn check_storage(evidence: &Evidence, progress: &(dyn Fn(Progress<'_>) + Sync)) -> Check {
    let mut t = Tally::new("storage");
    // (what, its key set, claimed type, bytes)
    let mut payloads: Vec<(String, &str, Stored, &[u8])> = Vec::new();
    let mut not_served = 0u64;
    let mut server_keys_missing = 0u64;
    for tenant in &evidence.tenants {
        let who = format!("tenant {:?}", tenant.tenant_id);
        for k in &tenant.keysets {
            if let Some(m) = &k.manifest {
                payloads.push((
                    format!("{who}: key set {}: manifest", k.key_id),
                    &k.key_id,
                    Stored::Manifest,
                    m,
                ));
            }
            payloads.push((
                format!("{who}: key set {}: app bundle", k.key_id),
                &k.key_id,
                Stored::AppBundle,
                &k.app_bundle,
            ));
            match &k.server_key {
                Some(s) => payloads.push((
                    format!("{who}: key set {}: server key", k.key_id),
                    &k.key_id,
                    Stored::ServerKey,
                    s,
                )),
                None => server_keys_missing += 1,
            }
        }
        for r in &tenant.records {
            let id = &r.metadata.record_id;
            payloads.push((
                format!("{who}: record {id:?}: proven list"),
                &r.metadata.key_id,
                Stored::ProvenList,
                &r.proven_list,
            ));
            match &r.transcript {
                TranscriptEvidence::Stored(b) => payloads.push((
                    format!("{who}: record {id:?}: sealed transcript"),
                    &r.metadata.key_id,
                    Stored::SealedTranscript,
                    b,
                )),
                TranscriptEvidence::NotServed => not_served += 1,
                TranscriptEvidence::None => {}
            }
        }
        for j in &tenant.jobs {
            if let Some(out) = &j.result {
                payloads.push((
                    format!("{who}: job {}: output", j.job_id),
                    &j.key_id,
                    Stored::JobOutput,
                    out,
                ));
            }
        }
    }
    let total = payloads.len() as u64;
    let done = AtomicU64::new(0);
    let outcomes: Vec<Result<(), String>> = payloads
        .par_iter()
        .map(|(what, key_id, claimed, bytes)| {
            let outcome = scan(*claimed, key_id, bytes).map_err(|e| format!("{what}: {e}"));
            let n = done.fetch_add(1, Ordering::Relaxed) + 1;
            progress(Progress {
                check: "storage",
                done: n,
                total,
            });
            outcome
        })
        .collect();
    for o in outcomes {
        t.count(o);
    }
    if not_served > 0 {
        t.notes.push(format!(
            "{} not scanned: the API serves transcripts to the key holder only (scan the database with --db)",
            plural(not_served, "sealed transcript", "sealed transcripts")
        ));
    }
    if server_keys_missing > 0 {
        t.notes.push(format!(
            "{} not fetched (fetched with --reexecute, or scanned with --db)",
            plural(server_keys_missing, "server key", "server keys")
        ));
    }
    let summary = format!(
        "{} {}",
        plural(t.checked, "payload", "payloads"),
        if t.checked == 1 {
            "decodes as what it claims: not a client key, not plaintext"
        } else {
            "decode as what they claim; none is a client key or plaintext"
        }
    );
    t.finish(summary)
}

fn check_keyset(
    bundles: &Bundles,
    tenant: &TenantEvidence,
    k: &KeysetEvidence,
    registered: &HashMap<String, serde_json::Value>,
) -> Result<(), String> {
    // Decoding checked every component against the manifest; the manifest must be the one
    // stored (and pinned by apps).
    let bundle = bundles.get(&tenant.tenant_id, &k.key_id)?;
    let manifest = bundle.manifest();
    if manifest.fingerprint().map_err(|e| e.to_string())? != k.manifest_fingerprint {
        return Err("the app bundle's manifest does not have the stored fingerprint".into());
    }
    if manifest.key_id != k.key_id {
        return Err(format!("its manifest names key set {:?}", manifest.key_id));
    }
    if manifest.parameter_set != k.parameter_set {
        return Err("its manifest names another parameter set than the one stored".into());
    }
    if let Some(bytes) = &k.manifest {
        let stored = KeyManifest::decode(bytes)
            .map_err(|e| format!("stored manifest does not decode: {e}"))?;
        let fingerprint = stored.fingerprint().map_err(|e| e.to_string())?;
        if fingerprint != k.manifest_fingerprint || stored != *manifest {
            return Err(
                "the stored manifest is not the one its fingerprint and bundle name".into(),
            );
        }
    }
    if let Some(server_key) = &k.server_key
        && sha256_hex(server_key) != manifest.fingerprints.server_key
    {
        return Err("the stored server key does not match its manifest fingerprint".into());
    }
    match registered.get(&k.key_id) {
        None => Err("no keyset.registered entry in the audit log".into()),
        Some(body) if field(body, "manifest_fingerprint") != Some(&k.manifest_fingerprint) => {
            Err("the audit log names another manifest fingerprint".into())
        }
        Some(_) => Ok(()),
    }
}

fn check_manifests(evidence: &Evidence, bundles: &Bundles) -> Check {
    let mut t = Tally::new("manifests");
    for tenant in &evidence.tenants {
        let registered = logged(evidence, &tenant.tenant_id, "keyset.registered", "key_id");
        for k in &tenant.keysets {
            let outcome = check_keyset(bundles, tenant, k, &registered)
                .map_err(|e| format!("tenant {:?}: key set {}: {e}", tenant.tenant_id, k.key_id));
            t.count(outcome);
        }
    }
    let summary = format!(
        "{} {}",
        plural(t.checked, "key set", "key sets"),
        if t.checked == 1 {
            "matches its manifest fingerprint"
        } else {
            "match their manifest fingerprints"
        }
    );
    t.finish(summary)
}

fn check_cohorts(evidence: &Evidence) -> Check {
    let mut t = Tally::new("cohorts");
    for tenant in &evidence.tenants {
        let minimum = evidence
            .chains
            .iter()
            .find(|c| c.tenant_id.as_deref() == Some(tenant.tenant_id.as_str()))
            .and_then(|c| c.entries.iter().find(|e| e.kind == "tenant.created"))
            .and_then(|e| serde_json::from_str::<serde_json::Value>(&e.body).ok())
            .and_then(|b| b.get("min_cohort_size").and_then(serde_json::Value::as_u64));
        for job in tenant.jobs.iter().filter(|j| j.kind == "aggregate") {
            let outcome = match (minimum, serde_json::from_str::<JobSpec>(&job.spec)) {
                (None, _) => Err("no tenant.created entry names the minimum cohort".to_owned()),
                (_, Err(e)) => Err(format!("stored spec does not parse: {e}")),
                (Some(min), Ok(spec)) if (spec.records.len() as u64) < min => Err(format!(
                    "aggregate over {} records, below the minimum cohort of {min}",
                    spec.records.len()
                )),
                (Some(_), Ok(_)) => Ok(()),
            };
            t.count(
                outcome
                    .map_err(|e| format!("tenant {:?}: job {}: {e}", tenant.tenant_id, job.job_id)),
            );
        }
    }
    let summary = format!(
        "{} read at least the minimum cohort",
        plural(t.checked, "aggregate job", "aggregate jobs")
    );
    t.finish(summary)
}
