//! Look-ups that handlers and workers share: a tenant's record schemas and risk models (built
//! in or registered) and its key sets' decoded material (proof verifiers, decompressed server keys),
//! decoded once on the FHE pool and cached. Workers come here, never to a handler module.

use std::sync::Arc;

use blindsight_crypto::ComputeKey;
use blindsight_crypto::compute::RiskModel;
use blindsight_crypto::{AppBundle, RecordSchema, Verifier};

use crate::error::ApiError;
use crate::state::{AppState, KeyMaterial};
use crate::store;

/// The schema a record names: a built-in one, or one the tenant registered.
pub async fn schema(
    state: &AppState,
    tenant: &str,
    schema_id: &str,
    version: u32,
) -> Result<Option<RecordSchema>, ApiError> {
    if let Some(s) = blindsight_crypto::schemas::builtin(schema_id, version) {
        return Ok(Some(s));
    }
    let Some((definition, _)) = store::schema(state.db(), tenant, schema_id, version).await? else {
        return Ok(None);
    };
    serde_json::from_str(&definition)
        .map(Some)
        .map_err(|e| ApiError::Internal(format!("stored schema {schema_id}@{version}: {e}")))
}

/// The proof verifier of a tenant's key set, decoded once and cached.
pub async fn verifier(
    state: &AppState,
    tenant: &str,
    key_id: &str,
) -> Result<Option<Arc<Verifier>>, ApiError> {
    let cache_key = (tenant.to_owned(), key_id.to_owned(), "verifier");
    if let Some(KeyMaterial::Verifier(v)) = state.key_cache().get(&cache_key).as_deref() {
        return Ok(Some(Arc::clone(v)));
    }
    let Some((bytes, _)) = store::app_bundle(state.db(), tenant, key_id).await? else {
        return Ok(None);
    };
    let weight = bytes.len() as u64;
    let verifier = state
        .fhe()
        .run(move || AppBundle::decode(&bytes).map(|b| Arc::new(Verifier::new(b))))
        .await??;
    state.key_cache().insert(
        cache_key,
        Arc::new(KeyMaterial::Verifier(Arc::clone(&verifier))),
        weight,
    );
    Ok(Some(verifier))
}

/// The decompressed server key of a tenant's key set, decompressed once and cached (never per
/// request).
pub async fn server_key(
    state: &AppState,
    tenant: &str,
    key_id: &str,
) -> Result<Option<Arc<ComputeKey>>, ApiError> {
    let cache_key = (tenant.to_owned(), key_id.to_owned(), "server-key");
    if let Some(KeyMaterial::ServerKey(k)) = state.key_cache().get(&cache_key).as_deref() {
        return Ok(Some(Arc::clone(k)));
    }
    let Some(bytes) = store::server_key(state.db(), tenant, key_id).await? else {
        return Ok(None);
    };
    let (key, weight) = state
        .fhe()
        .run(move || -> Result<_, blindsight_crypto::Error> {
            let key = ComputeKey::from_compressed(&blindsight_crypto::decode_server_key(&bytes)?)?;
            let weight = key.memory_size();
            Ok((Arc::new(key), weight))
        })
        .await??;
    state.key_cache().insert(
        cache_key,
        Arc::new(KeyMaterial::ServerKey(Arc::clone(&key))),
        weight,
    );
    Ok(Some(key))
}

/// The model a job names: built in, or registered by the tenant.
pub async fn model(
    state: &AppState,
    tenant: &str,
    id: &str,
    version: u32,
) -> Result<Option<RiskModel>, ApiError> {
    if let Some(m) = blindsight_crypto::compute::builtin_model(id, version) {
        return Ok(Some(m));
    }
    let Some(row) = store::model(state.db(), tenant, id, version).await? else {
        return Ok(None);
    };
    serde_json::from_str(&row.definition)
        .map(Some)
        .map_err(|e| ApiError::Internal(format!("stored model {id}@{version}: {e}")))
}
