//! `blindsight.KeyHolder`: what the clinic does. The keystore's secret keys are opened into
//! this object and stay in Rust: no call returns key bytes, and `repr()` shows none.

use std::path::PathBuf;
use std::time::Duration;

use blindsight_client::api::{Client, ModelRef, RecordListQuery, Selection};
use blindsight_client::bindings::Input;
use blindsight_client::results::JobResults;
use blindsight_client::{ApiError, Error, KeyHolder, keystore};
use blindsight_crypto::compute::AggregateQuery;
use blindsight_crypto::{PublicBundle, SecretKeys};
use pyo3::prelude::*;
use pyo3::types::PyList;

use crate::convert::{parse, to_py, to_py_ser};
use crate::errors;
use crate::recorder::BytesOrPath;

/// The key holder of one tenant, with its keyholder token and an opened keystore.
#[pyclass(frozen, module = "blindsight", name = "KeyHolder")]
pub(crate) struct PyKeyHolder {
    inner: KeyHolder,
    secret: SecretKeys,
    url: String,
    tenant: String,
}

fn sdk(e: Error) -> PyErr {
    errors::sdk(&e, Input::Other)
}

/// How a wait ends early: the callback raised (or Ctrl-C), or a request failed.
enum Stop {
    Raised(PyErr),
    Api(ApiError),
}

impl From<ApiError> for Stop {
    fn from(e: ApiError) -> Self {
        Stop::Api(e)
    }
}

impl From<PyErr> for Stop {
    fn from(e: PyErr) -> Self {
        Stop::Raised(e)
    }
}

fn selection(select: Option<&Bound<'_, PyAny>>) -> PyResult<Selection> {
    match select {
        Some(s) if !s.is_none() => parse(s, Input::Other),
        _ => Ok(Selection::default()),
    }
}

impl PyKeyHolder {
    /// Fetches and decrypts a job's results with the interpreter released.
    fn fetch(&self, py: Python<'_>, job_id: &str) -> PyResult<JobResults> {
        py.detach(|| self.inner.results(job_id, &self.secret))
            .map_err(sdk)
    }
}

#[pymethods]
impl PyKeyHolder {
    /// Opens the keystore at `keystore` with `passphrase` (KeystoreError when it is wrong or
    /// the file is not a keystore) and connects to the server at `url` with the tenant's
    /// keyholder token. The secret keys stay inside this object.
    /// `max_attempts` is how many times a request is tried in all when the server sheds load,
    /// rate-limits or cannot be reached (only where a retry cannot do anything twice).
    #[staticmethod]
    #[pyo3(signature = (url, token, tenant, keystore, passphrase, max_attempts=5))]
    fn open(
        py: Python<'_>,
        url: &str,
        token: &str,
        tenant: &str,
        keystore: PathBuf,
        passphrase: &str,
        max_attempts: u32,
    ) -> PyResult<Self> {
        let secret = py
            .detach(|| keystore::load(&keystore, passphrase))
            .map_err(|e| errors::keystore(&e, &keystore))?;
        Ok(Self {
            inner: KeyHolder::with_client(
                Client::new(url, token).with_max_attempts(max_attempts),
                tenant,
            ),
            secret,
            url: url.to_owned(),
            tenant: tenant.to_owned(),
        })
    }

    /// Registers a key set's public bundle (bytes, or the path of the `.public` file
    /// `keygen` wrote): public material only. Idempotent for the same bundle.
    fn register<'py>(
        &self,
        py: Python<'py>,
        public_bundle: BytesOrPath,
    ) -> PyResult<Bound<'py, PyAny>> {
        let bytes = public_bundle.read("read the public bundle")?;
        let registered = py
            .detach(|| -> Result<_, Error> {
                let public = PublicBundle::decode(&bytes)?;
                self.inner.register(&public)
            })
            .map_err(sdk)?;
        to_py_ser(py, &registered)
    }

    /// Queues a risk-score job with model `model` at `version` over the selected records
    /// (`select`: `schema_id`, `schema_version`, `cohort`, `since`, `until`, `record_ids`);
    /// returns the created job (`job_id`, `kind`, `records`, `status`).
    #[pyo3(signature = (model="crisis", version=1, select=None))]
    fn score<'py>(
        &self,
        py: Python<'py>,
        model: &str,
        version: u32,
        select: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let select = selection(select)?;
        let key_id = self.secret.key_id();
        let created = py
            .detach(|| {
                self.inner
                    .score(key_id, ModelRef::new(model, version), select)
            })
            .map_err(sdk)?;
        to_py_ser(py, &created)
    }

    /// Queues an aggregate job: `query` is `{"aggregates": [{"op": "mean", "field":
    /// "mood_change"}, …]}` (`docs/API.md`), over the selected cohort.
    #[pyo3(signature = (query, select=None))]
    fn aggregate<'py>(
        &self,
        py: Python<'py>,
        query: &Bound<'py, PyAny>,
        select: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let query: AggregateQuery = parse(query, Input::Other)?;
        let select = selection(select)?;
        let key_id = self.secret.key_id();
        let created = py
            .detach(|| self.inner.aggregate(key_id, query, select))
            .map_err(sdk)?;
        to_py_ser(py, &created)
    }

    /// Waits until the job has succeeded or failed and returns it (a failed job is returned,
    /// with its `error`). `progress`, when given, is called with the job (a dict) first and
    /// whenever its status or progress changes; an exception it raises ends the wait. Raises
    /// WaitTimeoutError after `timeout` seconds (the job keeps running on the server).
    #[pyo3(signature = (job_id, progress=None, timeout=600.0, poll_interval=0.5))]
    fn wait<'py>(
        &self,
        py: Python<'py>,
        job_id: &str,
        progress: Option<Bound<'py, PyAny>>,
        timeout: f64,
        poll_interval: f64,
    ) -> PyResult<Bound<'py, PyAny>> {
        let timeout = Duration::try_from_secs_f64(timeout.max(0.0)).unwrap_or(Duration::MAX);
        let poll = Duration::try_from_secs_f64(poll_interval.max(0.01))
            .unwrap_or(Duration::from_millis(500));
        let progress = progress.map(Bound::unbind);
        let client = self.inner.client();
        // The GIL is released while polling and sleeping, and taken for each poll's callback
        // and to see a pending Ctrl-C.
        let job = py
            .detach(|| {
                client.wait_for_job_or_stop(job_id, timeout, poll, |job, changed| {
                    Python::attach(|py| {
                        if let (Some(callback), true) = (&progress, changed) {
                            callback.bind(py).call1((to_py_ser(py, job)?,))?;
                        }
                        Ok(py.check_signals()?)
                    })
                })
            })
            .map_err(|stop| match stop {
                Stop::Raised(e) => e,
                Stop::Api(e) => errors::api(&e, None),
            })?;
        to_py_ser(py, &job)
    }

    /// One job's state and progress.
    fn job<'py>(&self, py: Python<'py>, job_id: &str) -> PyResult<Bound<'py, PyAny>> {
        let job = py
            .detach(|| self.inner.client().job(job_id))
            .map_err(|e| errors::api(&e, None))?;
        to_py_ser(py, &job)
    }

    /// The tenant's jobs, newest first.
    fn jobs<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let jobs = py
            .detach(|| self.inner.client().jobs())
            .map_err(|e| errors::api(&e, None))?;
        to_py_ser(py, &jobs)
    }

    /// The tenant's records (metadata only: nothing stored is in clear), optionally of one
    /// cohort.
    #[pyo3(signature = (cohort=None))]
    fn records<'py>(&self, py: Python<'py>, cohort: Option<String>) -> PyResult<Bound<'py, PyAny>> {
        let query = RecordListQuery {
            cohort,
            ..RecordListQuery::default()
        };
        let records = py
            .detach(|| self.inner.client().records(&query))
            .map_err(|e| errors::api(&e, None))?;
        to_py_ser(py, &records)
    }

    /// Fetches a finished job's output and decrypts it: one dict per row (risk jobs:
    /// `record_id`, `score`, `tier`; aggregate jobs: `aggregate`, `op`, `field`, the value's
    /// fields such as `count`, `sum`, `mean`, `buckets`, and `computed_by`). JobError while
    /// the job is queued or running, or when it failed.
    fn results<'py>(&self, py: Python<'py>, job_id: &str) -> PyResult<Bound<'py, PyList>> {
        let results = self.fetch(py, job_id)?;
        let rows = results.flat_rows();
        let list = PyList::empty(py);
        for row in &rows {
            list.append(to_py(py, row)?)?;
        }
        Ok(list)
    }

    /// [`results`] as a pandas DataFrame (one row per result row). ImportError when pandas
    /// is not installed.
    fn results_frame<'py>(&self, py: Python<'py>, job_id: &str) -> PyResult<Bound<'py, PyAny>> {
        let pandas = py.import("pandas").map_err(|e| {
            pyo3::exceptions::PyImportError::new_err(format!(
                "KeyHolder.results_frame needs pandas, which could not be imported ({e}); \
                 install it (pip install pandas) or use KeyHolder.results, a list of dicts"
            ))
        })?;
        let rows = self.results(py, job_id)?;
        pandas.getattr("DataFrame")?.call1((rows,))
    }

    /// The whole decrypted result as one dict: `job_id`, `key_id`, `function`, `kind`,
    /// `records`, and `rows` (risk) or `aggregates` (aggregate), as `blindsight results
    /// --json` prints it.
    fn job_results<'py>(&self, py: Python<'py>, job_id: &str) -> PyResult<Bound<'py, PyAny>> {
        let results = self.fetch(py, job_id)?;
        to_py(py, &results.to_json())
    }

    /// Fetches a record's sealed transcript and opens it with the keystore's transcript key.
    fn open_transcript(&self, py: Python<'_>, record_id: &str) -> PyResult<String> {
        py.detach(|| self.inner.open_transcript(record_id, &self.secret))
            .map_err(sdk)
    }

    /// The key set of the opened keystore.
    #[getter]
    fn key_id(&self) -> &str {
        self.secret.key_id()
    }

    /// The tenant.
    #[getter]
    fn tenant(&self) -> &str {
        &self.tenant
    }

    /// The server's base URL.
    #[getter]
    fn url(&self) -> &str {
        &self.url
    }

    fn __repr__(&self) -> String {
        format!(
            "KeyHolder(url={:?}, tenant={:?}, key_id={:?}, keystore=opened)",
            self.url,
            self.tenant,
            self.secret.key_id()
        )
    }
}
