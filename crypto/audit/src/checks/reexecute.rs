use std::collections::HashMap;
use std::sync::atomic::AtomicI64;

use blindsight_crypto::compute::{JobInput, run_job};
use blindsight_crypto::{ComputeKey, Verifier, sha256_hex};
use blindsight_proto::JobSpec;

use super::receipts::Verified;
use crate::context::{Bundles, job_inputs, schema_for};
use crate::evidence::{JobEvidence, TenantEvidence};
use crate::report::{Check, Options, Progress, Tally, plural};

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
    key: &ComputeKey,
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
    let inputs: Vec<JobInput<'_>> = job_inputs(tenant, &spec)?
        .into_iter()
        .map(|r| {
            Ok(JobInput {
                metadata: &r.metadata,
                proven_list: &r.proven_list,
                transcript: r
                    .bound_transcript()
                    .map_err(|e| format!("record {}: {e}", r.metadata.record_id))?,
            })
        })
        .collect::<Result<_, String>>()?;
    let mut work = spec.work(&inputs)?;
    if spec.privacy_rho_micro().is_some() {
        let seed = job.noise_seed.as_deref().ok_or(
            "its noise seed is not served by this source (the API never serves it); \
             re-execute it with --db",
        )?;
        work.noise_seed = Some(
            seed.try_into()
                .map_err(|_| format!("the stored noise seed is {} bytes, not 32", seed.len()))?,
        );
    }
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let output = run_job(key, &verifier, &schema, work, threads, progress)
        .map_err(|e| format!("re-execution failed: {e}"))?;
    Ok(sha256_hex(&output))
}

/// A key set's server key, decoded and decompressed once per run however many of its jobs are
/// re-executed.
fn server_key<'a>(
    cache: &'a mut HashMap<(String, String), Result<ComputeKey, String>>,
    tenant: &TenantEvidence,
    key_id: &str,
) -> Result<&'a ComputeKey, String> {
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
                .and_then(|k| ComputeKey::from_compressed(&k))
                .map_err(|e| format!("key set {key_id}'s server key does not decode: {e}"))
        })
        .as_ref()
        .map_err(Clone::clone)
}

pub(crate) fn check_reexecution(
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
