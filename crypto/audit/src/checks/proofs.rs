use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use blindsight_crypto::{Verifier, sha256_hex};
use rayon::prelude::*;

use crate::context::{Bundles, field, logged, schema_for};
use crate::evidence::Evidence;
use crate::report::{Check, Progress, Tally, plural};

pub(crate) fn check_proofs(
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
                    let transcript = r.bound_transcript()?;
                    verifier
                        .verify_stored_record(
                            &r.proven_list,
                            &schema,
                            &r.metadata,
                            transcript.as_ref(),
                        )
                        .map_err(|e| {
                            format!("proof does not verify with its metadata and transcript: {e}")
                        })?;
                    if sha256_hex(&r.proven_list) != r.proven_list_digest {
                        return Err("stored ciphertext does not match its stored digest".into());
                    }
                    let Some(body) = ingested.get(id) else {
                        return Err("no record.ingested entry in the audit log".into());
                    };
                    if field(body, "proven_list_digest") != Some(&r.proven_list_digest) {
                        return Err(
                            "stored ciphertext differs from the one logged at ingest".into()
                        );
                    }
                    // Logged since transcripts are bound into proofs.
                    match field(body, "sealed_transcript_digest") {
                        Some(logged) if transcript.map(hex::encode).as_deref() != Some(logged) => {
                            Err(
                                "stored sealed transcript differs from the one logged at ingest"
                                    .into(),
                            )
                        }
                        _ => Ok(()),
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
