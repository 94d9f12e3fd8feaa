//! `Recorder`: what an app back end does. It holds the ingest token and the app bundle
//! (public material only); nothing it holds decrypts, and it has no call that would.

use std::sync::{Arc, OnceLock};

use blindsight_client::api::{Client, Uploaded};
use blindsight_client::bindings::Input;
use blindsight_client::record::Recordable;
use blindsight_client::session::Session;
use blindsight_client::training::TrainingSession;
use blindsight_client::{Error, Recorder};
use blindsight_crypto::{AppBundle, RecordEnvelope};
use napi_derive::napi;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::errors::{Failure, parse};
use crate::work::{self, BytesTask, JsonTask};

/// The native half of `Recorder` (`index.js` wraps it): made with the server's URL, an ingest
/// token and the tenant, then given its app bundle once, by `connect` (fetched and pinned) or
/// `useAppBundle` (bytes the app holds).
#[napi]
pub struct NativeRecorder {
    url: String,
    token: zeroize::Zeroizing<String>,
    tenant: String,
    inner: Arc<OnceLock<Recorder>>,
}

fn sdk(e: &Error) -> Failure {
    Failure::sdk(e, Input::Other)
}

fn connected(inner: &OnceLock<Recorder>) -> Result<&Recorder, Failure> {
    inner.get().ok_or_else(|| {
        Failure::other(
            "this recorder has no app bundle yet: use Recorder.connect or Recorder.fromAppBundle",
        )
    })
}

/// What an upload did, as `{record_id, seq, proven_list_digest, created}` (`created` false,
/// `seq` and the digest null: an earlier attempt stored this exact record).
fn stored(record_id: &str, up: Uploaded) -> Value {
    match up {
        Uploaded::Created(s) => json!({
            "record_id": s.record_id,
            "seq": s.seq,
            "proven_list_digest": s.proven_list_digest,
            "created": true,
        }),
        _ => json!({
            "record_id": record_id,
            "seq": null,
            "proven_list_digest": null,
            "created": false,
        }),
    }
}

fn identity(recorder: &Recorder) -> Result<Value, Failure> {
    let manifest = recorder.app_bundle().manifest();
    let fingerprint = manifest.fingerprint().map_err(|e| sdk(&Error::Crypto(e)))?;
    Ok(json!({ "key_id": manifest.key_id, "fingerprint": fingerprint }))
}

fn encode(envelope: &RecordEnvelope) -> Result<Vec<u8>, Failure> {
    envelope.encode().map_err(|e| sdk(&Error::Crypto(e)))
}

#[napi]
impl NativeRecorder {
    /// A recorder for `tenant` on the server at `url` with an ingest token (`url` and the
    /// token may be empty for a recorder that only builds envelopes).
    #[napi(constructor)]
    pub fn new(url: String, ingest_token: String, tenant: String) -> Self {
        Self {
            url,
            token: zeroize::Zeroizing::new(ingest_token),
            tenant,
            inner: Arc::new(OnceLock::new()),
        }
    }

    /// Fetches the app bundle of `key_id`, refused unless its manifest fingerprint is `pin`.
    /// Resolves to `{key_id, fingerprint}`.
    #[napi]
    pub fn connect(&self, key_id: String, pin: String) -> JsonTask {
        let (url, token, tenant) = (self.url.clone(), self.token.clone(), self.tenant.clone());
        let inner = Arc::clone(&self.inner);
        work::json(move || {
            let recorder =
                Recorder::connect(&url, &token, &tenant, &key_id, &pin).map_err(|e| sdk(&e))?;
            let id = identity(&recorder)?;
            inner
                .set(recorder)
                .map_err(|_| Failure::other("this recorder already has an app bundle"))?;
            Ok(id)
        })
    }

    /// Uses an app bundle the app already holds (the bytes of a `.app` file), refused unless
    /// its manifest fingerprint is `pin`. Resolves to `{key_id, fingerprint}`.
    #[napi]
    pub fn use_app_bundle(&self, bundle: napi::bindgen_prelude::Buffer, pin: String) -> JsonTask {
        let bytes: Vec<u8> = bundle.to_vec();
        let client = Client::new(&self.url, &self.token);
        let tenant = self.tenant.clone();
        let inner = Arc::clone(&self.inner);
        work::json(move || {
            let app = AppBundle::decode_pinned(&bytes, &pin).map_err(|e| sdk(&Error::Crypto(e)))?;
            let recorder = Recorder::with_bundle(client, &tenant, app);
            let id = identity(&recorder)?;
            inner
                .set(recorder)
                .map_err(|_| Failure::other("this recorder already has an app bundle"))?;
            Ok(id)
        })
    }

    /// Validates a session (JSON text, `docs/session-example.json`'s format), extracts its
    /// lexicon features, encrypts and proves it, seals its transcript and uploads it.
    #[napi]
    pub fn record(&self, session: String) -> JsonTask {
        self.upload::<Session>(session)
    }

    /// [`Self::record`] for a practice session under `training` v1
    /// (`docs/training-example.json`'s format).
    #[napi]
    pub fn record_training(&self, session: String) -> JsonTask {
        self.upload::<TrainingSession>(session)
    }

    /// The record envelope of a session, encrypted, proven and sealed, without uploading it:
    /// the body of `POST /v1/records` (`application/octet-stream`).
    #[napi]
    pub fn build_envelope(&self, session: String) -> BytesTask {
        self.envelope::<Session>(session)
    }

    /// [`Self::build_envelope`] for a practice session under `training` v1.
    #[napi]
    pub fn build_training_envelope(&self, session: String) -> BytesTask {
        self.envelope::<TrainingSession>(session)
    }

    /// The app bundle this recorder encrypts under, encoded (public material only: the
    /// manifest, the compact public key, the CRS and the transcript public key).
    #[napi]
    pub fn app_bundle(&self) -> BytesTask {
        let inner = Arc::clone(&self.inner);
        work::bytes(move || {
            connected(&inner)?
                .app_bundle()
                .encode()
                .map_err(|e| sdk(&Error::Crypto(e)))
        })
    }

    /// The tenant.
    #[napi(getter)]
    pub fn tenant(&self) -> String {
        self.tenant.clone()
    }
}

impl NativeRecorder {
    /// Parses `session` (JSON text) as an `S` and records it, on the thread pool.
    fn upload<S: Recordable + DeserializeOwned>(&self, session: String) -> JsonTask {
        let inner = Arc::clone(&self.inner);
        work::json(move || {
            let recorder = connected(&inner)?;
            let session: S = parse(&session, Input::Session)?;
            let up = recorder
                .record_any(&session)
                .map_err(|e| Failure::sdk(&e, Input::Session))?;
            Ok(stored(session.record_id(), up))
        })
    }

    /// Parses `session` (JSON text) as an `S` and builds its envelope, on the thread pool.
    fn envelope<S: Recordable + DeserializeOwned>(&self, session: String) -> BytesTask {
        let (inner, tenant) = (Arc::clone(&self.inner), self.tenant.clone());
        work::bytes(move || {
            let recorder = connected(&inner)?;
            let session: S = parse(&session, Input::Session)?;
            let envelope = session
                .to_record(recorder.app_bundle(), &tenant)
                .map_err(|e| Failure::sdk(&e, Input::Session))?;
            encode(&envelope)
        })
    }
}
