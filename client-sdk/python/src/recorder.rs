//! `blindsight.Recorder`: what an app does. It holds the app bundle (public material only) and
//! the ingest token; nothing it holds decrypts, and it has no call that would.

use std::path::PathBuf;

use blindsight_client::api::{Client, Uploaded};
use blindsight_client::bindings::Input;
use blindsight_client::record::Recordable;
use blindsight_client::session::Session;
use blindsight_client::training::TrainingSession;
use blindsight_client::{Error, Recorder};
use blindsight_crypto::{AppBundle, RecordEnvelope};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use serde::de::DeserializeOwned;

use crate::convert::parse;
use crate::errors;

/// An app recording sessions for one tenant under one key set.
#[pyclass(frozen, module = "blindsight", name = "Recorder")]
pub(crate) struct PyRecorder {
    inner: Recorder,
    url: Option<String>,
    tenant: String,
    fingerprint: String,
}

/// Bytes given directly, or the path of a file holding them.
#[derive(FromPyObject)]
pub(crate) enum BytesOrPath {
    Bytes(Vec<u8>),
    Path(PathBuf),
}

impl BytesOrPath {
    /// The bytes; `action` says what reading them is for ("read the app bundle").
    pub(crate) fn read(self, action: &'static str) -> PyResult<Vec<u8>> {
        match self {
            BytesOrPath::Bytes(b) => Ok(b),
            BytesOrPath::Path(path) => std::fs::read(&path).map_err(|source| {
                errors::sdk(
                    &Error::Io {
                        action,
                        path,
                        source,
                    },
                    Input::Other,
                )
            }),
        }
    }
}

fn stored<'py>(py: Python<'py>, record_id: &str, up: Uploaded) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    match up {
        Uploaded::Created(s) => {
            d.set_item("record_id", s.record_id)?;
            d.set_item("seq", s.seq)?;
            d.set_item("proven_list_digest", s.proven_list_digest)?;
            d.set_item("created", true)?;
        }
        // An earlier attempt stored this exact record (a retry after a lost answer).
        _ => {
            d.set_item("record_id", record_id)?;
            d.set_item("seq", py.None())?;
            d.set_item("proven_list_digest", py.None())?;
            d.set_item("created", false)?;
        }
    }
    Ok(d)
}

impl PyRecorder {
    fn new(inner: Recorder, url: Option<String>, tenant: &str) -> PyResult<Self> {
        let fingerprint = inner
            .app_bundle()
            .manifest()
            .fingerprint()
            .map_err(|e| errors::sdk(&Error::Crypto(e), Input::Other))?;
        Ok(Self {
            inner,
            url,
            tenant: tenant.to_owned(),
            fingerprint,
        })
    }

    /// Parses `session` as an `S` and records it, the interpreter released meanwhile.
    fn upload<'py, S: Recordable + DeserializeOwned + Sync>(
        &self,
        py: Python<'py>,
        session: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        self.require_server()?;
        let session: S = parse(session, Input::Session)?;
        let up = py
            .detach(|| self.inner.record_any(&session))
            .map_err(|e| errors::sdk(&e, Input::Session))?;
        stored(py, session.record_id(), up)
    }

    /// Parses `session` as an `S` and builds its envelope, the interpreter released meanwhile.
    fn envelope<'py, S: Recordable + DeserializeOwned + Sync>(
        &self,
        py: Python<'py>,
        session: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let session: S = parse(session, Input::Session)?;
        let app = self.inner.app_bundle();
        let bytes = py
            .detach(|| encoded(session.to_record(app, &self.tenant)))
            .map_err(|e| errors::sdk(&e, Input::Session))?;
        Ok(PyBytes::new(py, &bytes))
    }

    fn require_server(&self) -> PyResult<()> {
        if self.url.is_none() {
            return Err(errors::other(
                "this recorder was made from an app bundle without a server URL: upload the \
                 bytes of build_envelope() yourself (POST /v1/records), or pass url and \
                 ingest_token to Recorder.from_app_bundle"
                    .into(),
            ));
        }
        Ok(())
    }
}

#[pymethods]
impl PyRecorder {
    /// Connects to the server at `url` with an ingest token and loads the app bundle of
    /// `key_id`, refused (PinMismatchError) unless its manifest fingerprint is `pin`.
    /// `max_attempts`: how many times a request is tried in all when the server sheds load,
    /// rate-limits or cannot be reached (an upload retried after it was stored is recognised,
    /// never stored twice).
    #[staticmethod]
    #[pyo3(signature = (url, ingest_token, tenant, key_id, pin, max_attempts=5))]
    fn connect(
        py: Python<'_>,
        url: &str,
        ingest_token: &str,
        tenant: &str,
        key_id: &str,
        pin: &str,
        max_attempts: u32,
    ) -> PyResult<Self> {
        let inner = py
            .detach(|| {
                let client = Client::new(url, ingest_token).with_max_attempts(max_attempts);
                let app = client.app_bundle(key_id, pin)?;
                Ok::<_, Error>(Recorder::with_bundle(client, tenant, app))
            })
            .map_err(|e| errors::sdk(&e, Input::Other))?;
        Self::new(inner, Some(url.to_owned()), tenant)
    }

    /// A recorder over an app bundle the app already holds (bytes, or the path of a `.app`
    /// file), refused unless its manifest fingerprint is `pin`. Without `url` it only builds
    /// envelopes (sans I/O); with `url` and `ingest_token` it records too.
    #[staticmethod]
    #[pyo3(signature = (app_bundle, tenant, pin, url=None, ingest_token=None, max_attempts=5))]
    fn from_app_bundle(
        py: Python<'_>,
        app_bundle: BytesOrPath,
        tenant: &str,
        pin: &str,
        url: Option<String>,
        ingest_token: Option<&str>,
        max_attempts: u32,
    ) -> PyResult<Self> {
        let bytes = app_bundle.read("read the app bundle")?;
        let app = py
            .detach(|| AppBundle::decode_pinned(&bytes, pin))
            .map_err(|e| errors::sdk(&Error::Crypto(e), Input::Other))?;
        let client = Client::new(url.as_deref().unwrap_or(""), ingest_token.unwrap_or(""))
            .with_max_attempts(max_attempts);
        Self::new(Recorder::with_bundle(client, tenant, app), url, tenant)
    }

    /// Extracts the session's lexicon features, encrypts and proves it as a `session` v1
    /// record, seals its transcript, and uploads it; returns the stored record (`record_id`,
    /// `seq`, `proven_list_digest`, and `created`: false when an earlier attempt stored it).
    fn record<'py>(
        &self,
        py: Python<'py>,
        session: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        self.upload::<Session>(py, session)
    }

    /// Records a therapist trainee's practice session as a `training` v1 record.
    fn record_training<'py>(
        &self,
        py: Python<'py>,
        session: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        self.upload::<TrainingSession>(py, session)
    }

    /// Sans I/O: the encrypted, proven, sealed record envelope of a session, as the bytes an
    /// app with its own HTTP stack uploads (`POST /v1/records`,
    /// `application/octet-stream`).
    fn build_envelope<'py>(
        &self,
        py: Python<'py>,
        session: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        self.envelope::<Session>(py, session)
    }

    /// [`build_envelope`] for a training session.
    fn build_training_envelope<'py>(
        &self,
        py: Python<'py>,
        session: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        self.envelope::<TrainingSession>(py, session)
    }

    /// The app bundle records are encrypted under (public material only), encoded.
    fn app_bundle<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let bytes = self
            .inner
            .app_bundle()
            .encode()
            .map_err(|e| errors::sdk(&Error::Crypto(e), Input::Other))?;
        Ok(PyBytes::new(py, &bytes))
    }

    /// The key set records are encrypted under.
    #[getter]
    fn key_id(&self) -> &str {
        self.inner.app_bundle().key_id()
    }

    /// The tenant records are recorded for.
    #[getter]
    fn tenant(&self) -> &str {
        &self.tenant
    }

    /// The key set's manifest fingerprint (the pin).
    #[getter]
    fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The server's base URL, or None for a sans-I/O recorder.
    #[getter]
    fn url(&self) -> Option<&str> {
        self.url.as_deref()
    }

    fn __repr__(&self) -> String {
        format!(
            "Recorder(url={:?}, tenant={:?}, key_id={:?}, fingerprint={:?})",
            self.url.as_deref().unwrap_or("(none: sans I/O)"),
            self.tenant,
            self.inner.app_bundle().key_id(),
            self.fingerprint
        )
    }
}

/// The envelope's bytes.
fn encoded(envelope: Result<RecordEnvelope, Error>) -> Result<Vec<u8>, Error> {
    Ok(envelope?.encode()?)
}
