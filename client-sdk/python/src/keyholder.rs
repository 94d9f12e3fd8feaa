//! `blindsight.KeyHolder`: what the clinic does. The keystore's secret keys are opened into
//! this object and stay in Rust: no call returns key bytes, and `repr()` shows none.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use blindsight_client::api::{Client, ModelRef, RecordListQuery, Selection};
use blindsight_client::results::{JobResults, Rows, statistics};
use blindsight_client::{Error, KeyHolder, keystore};
use blindsight_crypto::compute::{AggregateQuery, AggregateValue};
use blindsight_crypto::{PublicBundle, SecretKeys};
use pyo3::prelude::*;
use pyo3::types::PyList;
use serde_json::{Map, Value};

use crate::convert::{parse, to_py, to_py_ser};
use crate::errors;
use crate::recorder::BytesOrPath;

const INPUT: &str = "InvalidInputError";

/// The key holder of one tenant, with its keyholder token and an opened keystore.
#[pyclass(frozen, module = "blindsight", name = "KeyHolder")]
pub(crate) struct PyKeyHolder {
    inner: KeyHolder,
    secret: SecretKeys,
    url: String,
    tenant: String,
}

fn sdk(e: Error) -> PyErr {
    errors::sdk(&e, false)
}

fn selection(select: Option<&Bound<'_, PyAny>>) -> PyResult<Selection> {
    match select {
        Some(s) if !s.is_none() => parse(s, INPUT),
        _ => Ok(Selection::default()),
    }
}

/// One decrypted row as a flat dict: risk rows are `record_id`, `score`, `tier`; aggregate
/// rows are `aggregate` (its description), the aggregate's own fields (`op`, `field`, …),
/// its value's (`count`, `sum`, `value`, `buckets`), `mean` where there is one, `labels` for
/// histogram buckets, and `computed_by`.
fn rows(results: &JobResults) -> Result<Vec<Value>, String> {
    let object = |v: Value| match v {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    match &results.rows {
        Rows::Risk(rows) => Ok(rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "record_id": r.record_id,
                    "score": r.score,
                    "tier": r.tier.name(),
                })
            })
            .collect()),
        Rows::Aggregate(rows) => rows
            .iter()
            .map(|r| {
                let mut out = Map::new();
                out.insert("aggregate".into(), r.aggregate.describe().into());
                out.extend(object(ser(&r.aggregate)?));
                out.extend(object(ser(&r.value)?));
                if let AggregateValue::Mean { sum, count }
                | AggregateValue::SumWhere { sum, count } = r.value
                {
                    let mean = (count > 0).then(|| sum as f64 / count as f64);
                    out.insert("mean".into(), serde_json::json!(mean));
                }
                if let AggregateValue::Histogram { .. } = r.value {
                    let labels: Vec<String> = statistics(r).into_iter().map(|(l, _)| l).collect();
                    out.insert("labels".into(), serde_json::json!(labels));
                }
                out.insert("computed_by".into(), ser(&r.computed_by)?);
                Ok(Value::Object(out))
            })
            .collect(),
        _ => Err("results of a kind this binding does not know".into()),
    }
}

fn ser<T: serde::Serialize>(value: &T) -> Result<Value, String> {
    serde_json::to_value(value).map_err(|e| e.to_string())
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
        let bytes = public_bundle.read("public bundle")?;
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
        let query: AggregateQuery = parse(query, INPUT)?;
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
        let client = self.inner.client();
        let start = Instant::now();
        let mut last = None;
        loop {
            let job = py
                .detach(|| client.job(job_id))
                .map_err(|e| errors::api(&e, None))?;
            let seen = (
                job.status,
                job.progress_done,
                job.progress_total,
                job.attempts,
                job.tasks,
            );
            if last != Some(seen) {
                last = Some(seen);
                if let Some(callback) = &progress {
                    callback.call1((to_py_ser(py, &job)?,))?;
                }
            }
            if job.status.is_finished() {
                return to_py_ser(py, &job);
            }
            let waited = start.elapsed();
            if waited >= timeout {
                return Err(errors::api(
                    &blindsight_client::ApiError::WaitTimedOut {
                        job_id: job.job_id,
                        waited,
                        status: job.status,
                        done: job.progress_done,
                        total: job.progress_total,
                    },
                    None,
                ));
            }
            py.detach(|| std::thread::sleep(poll.min(timeout - waited)));
            py.check_signals()?;
        }
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
        let rows = rows(&results).map_err(errors::other)?;
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
