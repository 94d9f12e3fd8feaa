//! `blindsight-node`: the Blindsight client SDK for Node.js, the native addon
//! (`blindsight.node`, this cdylib renamed) of the `@blindsight/sdk` package, whose `index.js`
//! wraps it with promises, plain objects and `Error` subclasses.
//!
//! - `NativeRecorder`: an app back end records sessions (encrypted, proven and sealed in Rust)
//!   or builds their envelopes without HTTP. Holds public material only.
//! - `NativeKeyHolder`: opens a keystore (the secret keys stay in this addon: no call returns
//!   key bytes), queues risk and aggregate jobs, decrypts results, opens transcripts.
//! - `keygen`: a new key set written to a passphrase-encrypted keystore; `createTenant`: the
//!   operator's one call.
//!
//! Every network call, proof, key generation and decryption runs on libuv's thread pool
//! ([`work`]): the JavaScript thread only starts it and gets a promise. Sessions, selections
//! and queries cross as JSON text into the SDK's serde types, the field that does not parse
//! named; results come back as JSON text. Errors carry their class and details
//! ([`errors`]).

mod errors;
mod keyholder;
mod recorder;
mod work;

use std::path::PathBuf;

use blindsight_client::api::NewTenant;
use blindsight_client::bindings::Input;
use blindsight_client::{Admin, Error, keystore};
use blindsight_crypto::{DEFAULT_ITERATIONS, KeySet};
use napi_derive::napi;
use serde::Deserialize;
use serde_json::json;

pub use keyholder::NativeKeyHolder;
pub use recorder::NativeRecorder;
pub use work::Work;

use crate::errors::{Failure, parse};
use crate::work::JsonTask;

/// The addon's version: the workspace's (`package.json` must say the same).
#[napi]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}

/// Generates a key set in `out_dir`: `<key_id>.keystore` (the secrets, encrypted under
/// `passphrase`, mode 0600, never overwritten), `<key_id>.public` (what the key holder
/// registers) and `<key_id>.app` (what apps load). Resolves to `{key_id, fingerprint,
/// keystore, public, app}`: the manifest fingerprint apps pin, and the three paths. The
/// secret keys never reach JavaScript.
#[napi]
pub fn keygen(out_dir: String, passphrase: String, key_id: Option<String>) -> JsonTask {
    let passphrase = zeroize::Zeroizing::new(passphrase);
    work::json(move || {
        if passphrase.chars().count() < 12 {
            return Err(Failure::invalid(
                Input::Other,
                Some("passphrase"),
                "choose a passphrase of at least 12 characters",
            ));
        }
        let out_dir = PathBuf::from(out_dir);
        let failed = |e: Error| Failure::sdk(&e, Input::Other);
        let keys = match key_id.as_deref() {
            Some(id) => KeySet::generate_with_id(id, |_| {}),
            None => KeySet::generate_with_progress(|_| {}),
        }
        .map_err(|e| failed(e.into()))?;
        let (secret, public) = keys.into_parts();
        let id = secret.key_id().to_owned();
        let ks = out_dir.join(format!("{id}.keystore"));
        keystore::save(&ks, &secret, &passphrase, DEFAULT_ITERATIONS).map_err(failed)?;
        drop(secret);
        let public_path = out_dir.join(format!("{id}.public"));
        let public_bytes = public.encode().map_err(|e| failed(e.into()))?;
        keystore::write_private_atomic(&public_path, &public_bytes, false).map_err(failed)?;
        let app_path = out_dir.join(format!("{id}.app"));
        let app_bytes = public.app_bundle().encode().map_err(|e| failed(e.into()))?;
        keystore::write_private_atomic(&app_path, &app_bytes, false).map_err(failed)?;
        let fingerprint = public
            .manifest()
            .fingerprint()
            .map_err(|e| failed(e.into()))?;
        Ok(json!({
            "key_id": id,
            "fingerprint": fingerprint,
            "keystore": ks,
            "public": public_path,
            "app": app_path,
        }))
    })
}

/// The options of `createTenant`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TenantOptions {
    name: String,
    #[serde(default)]
    tenant_id: Option<String>,
    #[serde(default)]
    min_cohort_size: Option<u32>,
}

/// Creates a tenant with the server's admin token (options as JSON text: `name`, and
/// optionally `tenant_id` and `min_cohort_size`). Resolves to `{tenant_id, name,
/// min_cohort_size, tokens: {keyholder, ingest, auditor}}`: the tokens are shown only now.
#[napi]
pub fn create_tenant(url: String, admin_token: String, options: String) -> JsonTask {
    let admin_token = zeroize::Zeroizing::new(admin_token);
    work::json(move || {
        let options: TenantOptions = parse(&options, Input::Other)?;
        let tenant = NewTenant {
            name: options.name,
            tenant_id: options.tenant_id,
            min_cohort_size: options.min_cohort_size,
            privacy_budget: None,
        };
        Admin::connect(&url, &admin_token)
            .create_tenant(&tenant)
            .map_err(|e| Failure::api(&e))
    })
}
