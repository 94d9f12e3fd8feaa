use std::collections::HashMap;

use blindsight_crypto::{KeyManifest, sha256_hex};

use crate::context::{Bundles, field, logged};
use crate::evidence::{Evidence, KeysetEvidence, TenantEvidence};
use crate::report::{Check, Tally, plural};

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

pub(crate) fn check_manifests(evidence: &Evidence, bundles: &Bundles) -> Check {
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
