//! `KeyHolder`: what the clinic does. The keystore's secret keys are opened into this object
//! and stay in Rust: no call returns key bytes, and there is no getter for them.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use blindsight_client::api::{ModelRef, Selection};
use blindsight_client::bindings::{Input, Problem};
use blindsight_client::{Error, KeyHolder, keystore};
use blindsight_crypto::compute::AggregateQuery;
use blindsight_crypto::{PublicBundle, SecretKeys};
use napi::bindgen_prelude::Buffer;
use napi_derive::napi;
use serde::Deserialize;
use serde_json::json;

use crate::errors::{Failure, parse};
use crate::work::{self, JsonTask};

/// The native half of `KeyHolder` (`index.js` wraps it): made with the server's URL, the
/// keyholder token and the tenant, then given its keystore once by `open`.
#[napi]
pub struct NativeKeyHolder {
    inner: Arc<KeyHolder>,
    secret: Arc<OnceLock<SecretKeys>>,
}

fn sdk(e: &Error) -> Failure {
    Failure::sdk(e, Input::Other)
}

fn opened(secret: &OnceLock<SecretKeys>) -> Result<&SecretKeys, Failure> {
    secret
        .get()
        .ok_or_else(|| Failure::other("this key holder has no keystore open: use KeyHolder.open"))
}

/// The options of `score`: the key set (the keystore's by default), the model (`crisis` v1
/// by default) and the selection (every `session` v1 record by default).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScoreOptions {
    #[serde(default)]
    key_id: Option<String>,
    #[serde(default)]
    model: Option<ModelRef>,
    #[serde(default)]
    select: Option<Selection>,
}

/// The options of `aggregate`: the key set (the keystore's by default), the query and the
/// selection (every `session` v1 record by default).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AggregateOptions {
    #[serde(default)]
    key_id: Option<String>,
    query: AggregateQuery,
    #[serde(default)]
    select: Option<Selection>,
}

#[napi]
impl NativeKeyHolder {
    /// A key holder of `tenant` on the server at `url` with the keyholder token.
    #[napi(constructor)]
    pub fn new(url: String, keyholder_token: String, tenant: String) -> Self {
        Self {
            inner: Arc::new(KeyHolder::connect(&url, &keyholder_token, &tenant)),
            secret: Arc::new(OnceLock::new()),
        }
    }

    /// Opens the keystore at `path` with `passphrase` (PBKDF2 and the client key's decoding
    /// run on the thread pool). Resolves to `{key_id}`; the secret keys stay here.
    #[napi]
    pub fn open(&self, path: String, passphrase: String) -> JsonTask {
        let secret = Arc::clone(&self.secret);
        let passphrase = zeroize::Zeroizing::new(passphrase);
        work::json(move || {
            let path = PathBuf::from(path);
            let keys =
                keystore::load(&path, &passphrase).map_err(|e| Problem::keystore(&e, &path))?;
            let key_id = keys.key_id().to_owned();
            secret
                .set(keys)
                .map_err(|_| Failure::other("this key holder already has a keystore open"))?;
            Ok(json!({ "key_id": key_id }))
        })
    }

    /// Registers a key set's public bundle (the bytes of a `.public` file). Resolves to
    /// `{key_id, manifest_fingerprint, parameter_set, created}`.
    #[napi]
    pub fn register(&self, bundle: Buffer) -> JsonTask {
        let bytes: Vec<u8> = bundle.to_vec();
        let inner = Arc::clone(&self.inner);
        work::json(move || {
            let public = PublicBundle::decode(&bytes).map_err(|e| sdk(&Error::Crypto(e)))?;
            inner.register(&public).map_err(|e| sdk(&e))
        })
    }

    /// Queues a risk-score job (options as JSON text: [`ScoreOptions`]). Resolves to
    /// `{job_id, kind, records, status}`.
    #[napi]
    pub fn score(&self, options: String) -> JsonTask {
        let (inner, secret) = (Arc::clone(&self.inner), Arc::clone(&self.secret));
        work::json(move || {
            let options: ScoreOptions = parse(&options, Input::Other)?;
            let key_id = match options.key_id {
                Some(k) => k,
                None => opened(&secret)?.key_id().to_owned(),
            };
            let model = options.model.unwrap_or_else(|| ModelRef::new("crisis", 1));
            inner
                .score(&key_id, model, options.select.unwrap_or_default())
                .map_err(|e| sdk(&e))
        })
    }

    /// Queues an aggregate job (options as JSON text: [`AggregateOptions`]). Resolves to
    /// `{job_id, kind, records, status}`.
    #[napi]
    pub fn aggregate(&self, options: String) -> JsonTask {
        let (inner, secret) = (Arc::clone(&self.inner), Arc::clone(&self.secret));
        work::json(move || {
            let options: AggregateOptions = parse(&options, Input::Other)?;
            let key_id = match options.key_id {
                Some(k) => k,
                None => opened(&secret)?.key_id().to_owned(),
            };
            inner
                .aggregate(&key_id, options.query, options.select.unwrap_or_default())
                .map_err(|e| sdk(&e))
        })
    }

    /// One job's state and progress (`index.js` polls it to wait without holding a thread).
    #[napi]
    pub fn job(&self, job_id: String) -> JsonTask {
        let inner = Arc::clone(&self.inner);
        work::json(move || inner.client().job(&job_id).map_err(|e| Failure::api(&e)))
    }

    /// The tenant's jobs, newest first.
    #[napi]
    pub fn jobs(&self) -> JsonTask {
        let inner = Arc::clone(&self.inner);
        work::json(move || inner.client().jobs().map_err(|e| Failure::api(&e)))
    }

    /// Fetches a finished job's output and decrypts it: one flat object per row
    /// (`JobResults::flat_rows`).
    #[napi]
    pub fn results(&self, job_id: String) -> JsonTask {
        let (inner, secret) = (Arc::clone(&self.inner), Arc::clone(&self.secret));
        work::json(move || {
            let results = inner
                .results(&job_id, opened(&secret)?)
                .map_err(|e| sdk(&e))?;
            Ok(results.flat_rows())
        })
    }

    /// The whole decrypted result as one object: `job_id`, `key_id`, `function`, `kind`,
    /// `records`, and `rows` (risk) or `aggregates` (aggregate), as `blindsight results
    /// --json` prints it.
    #[napi]
    pub fn job_results(&self, job_id: String) -> JsonTask {
        let (inner, secret) = (Arc::clone(&self.inner), Arc::clone(&self.secret));
        work::json(move || {
            let results = inner
                .results(&job_id, opened(&secret)?)
                .map_err(|e| sdk(&e))?;
            Ok(results.to_json())
        })
    }

    /// Fetches a record's sealed transcript and opens it with the keystore's transcript key.
    #[napi]
    pub fn open_transcript(&self, record_id: String) -> JsonTask {
        let (inner, secret) = (Arc::clone(&self.inner), Arc::clone(&self.secret));
        work::json(move || {
            inner
                .open_transcript(&record_id, opened(&secret)?)
                .map_err(|e| sdk(&e))
        })
    }

    /// The key set of the opened keystore (null before `open`).
    #[napi(getter)]
    pub fn key_id(&self) -> Option<String> {
        self.secret.get().map(|s| s.key_id().to_owned())
    }
}
