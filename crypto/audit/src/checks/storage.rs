use std::sync::atomic::{AtomicU64, Ordering};

use blindsight_crypto::scan::{Stored, scan};
use rayon::prelude::*;

use crate::evidence::{Evidence, TranscriptEvidence};
use crate::report::{Check, Progress, Tally, plural};

pub(crate) fn check_storage(
    evidence: &Evidence,
    progress: &(dyn Fn(Progress<'_>) + Sync),
) -> Check {
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
