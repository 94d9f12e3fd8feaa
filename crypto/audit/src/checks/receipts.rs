use std::collections::HashMap;

use blindsight_crypto::compute::{is_tasked, task_ranges};
use blindsight_crypto::receipt::{Receipt, SignedReceipt, inputs_root_of_lists};
use blindsight_crypto::sha256_hex;
use blindsight_proto::JobSpec;

use crate::context::{Bundles, field, job_inputs, logged};
use crate::evidence::{Evidence, JobEvidence, TenantEvidence};
use crate::report::{Check, Tally, plural};

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
    match (spec.privacy_rho_micro(), &receipt.privacy) {
        (None, None) => {}
        (Some(rho), Some(p)) if p.rho_micro == rho => {
            if let Some(seed) = &job.noise_seed {
                let seed: [u8; 32] = seed.as_slice().try_into().map_err(|_| {
                    format!("the stored noise seed is {} bytes, not 32", seed.len())
                })?;
                if blindsight_crypto::dp::seed_commitment(&seed) != p.seed_commitment {
                    return Err(
                        "the stored noise seed is not the one the receipt commits to".into(),
                    );
                }
            }
        }
        _ => {
            return Err(
                "the receipt's privacy (ρ and noise commitment) does not match the job's query"
                    .into(),
            );
        }
    }
    let cut = spec
        .task_records
        .filter(|&n| is_tasked(spec.record_count(), Some(n)));
    match (cut, &receipt.tasks) {
        (None, None) => {}
        (Some(n), Some(t))
            if t.task_records == n
                && t.tasks == task_ranges(spec.record_count(), n).len() as u64 => {}
        _ => {
            return Err("the receipt's tasks do not match how the job's spec cuts it".into());
        }
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
pub(crate) type Verified<'a> = (&'a TenantEvidence, &'a JobEvidence, Receipt);

pub(crate) fn check_receipts<'a>(
    evidence: &'a Evidence,
    bundles: &Bundles,
) -> (Check, Vec<Verified<'a>>) {
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
