use blindsight_proto::SignedHead;
use blindsight_proto::chain::{AuditError, contains_head, verify_chain};

use crate::context::trusted;
use crate::evidence::{ChainEvidence, Evidence};
use crate::report::{Check, Tally, chain_label, plural};

pub(crate) fn check_chains(evidence: &Evidence) -> Check {
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
    for kept in &evidence.kept_heads {
        if let Err(e) = check_kept(evidence, kept) {
            t.fail(e);
        }
    }
    let mut summary = format!(
        "{} in {}",
        plural(t.checked, "entry", "entries"),
        plural(evidence.chains.len() as u64, "chain", "chains")
    );
    if !evidence.kept_heads.is_empty() {
        summary.push_str(&format!(
            "; {} from an earlier run checked",
            plural(evidence.kept_heads.len() as u64, "kept head", "kept heads")
        ));
    }
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

/// Checks that a chain still contains a head verified in an earlier run, naming the cause
/// when it does not: rolled back (the chain or its signed head ends before the kept head),
/// rewritten or forked (the entry or the heads before it differ).
fn check_kept(evidence: &Evidence, kept: &SignedHead) -> Result<(), String> {
    let label = chain_label(kept.tenant_id.as_deref());
    let chain = evidence
        .chains
        .iter()
        .find(|c| c.tenant_id == kept.tenant_id)
        .ok_or_else(|| {
            format!("{label}: a head kept from an earlier run names this chain, which this source does not show")
        })?;
    let key = trusted(evidence, &kept.key_id).ok_or_else(|| {
        format!(
            "{label}: the kept head of entry {} is signed by key {}, which is not a trusted audit key",
            kept.seq, kept.key_id
        )
    })?;
    kept.verify_signature(key)
        .map_err(|e| format!("{label}: kept {e}"))?;
    let earlier = format!("entry {} was verified in an earlier run", kept.seq);
    if let Some(head) = &chain.head
        && head.seq < kept.seq
    {
        return Err(format!(
            "{label}: rolled back: the signed head names entry {}, but {earlier}",
            head.seq
        ));
    }
    contains_head(&chain.entries, kept).map_err(|e| match e {
        AuditError::HeadBeyondLog { last, .. } => format!(
            "{label}: rolled back: the chain ends at entry {last}, but {earlier} (entries removed, or an older backup restored)"
        ),
        AuditError::HeadMismatch { seq } => format!(
            "{label}: forked: entry {seq} is not the one verified in an earlier run (the chain was rewritten from there or before)"
        ),
        AuditError::PrevHeadMismatch { seq } => format!(
            "{label}: forked: the heads before entry {seq} are not the ones verified in an earlier run (the chain was rewritten before it)"
        ),
        e => format!("{label}: kept {e}"),
    })
}
