use blindsight_proto::chain::verify_chain;

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
