//! Every `/v1` route as a method of the transport [`Client`]; the role types
//! ([`crate::Recorder`], [`crate::KeyHolder`], [`crate::Auditor`], [`crate::Admin`]) are built
//! on these. Bodies are `blindsight-proto`'s types, the same the server answers with.
//!
//! Key holders register risk models ([`Client::register_model`]), queue jobs
//! ([`Client::create_job`] with a [`JobRequest`]), follow them ([`Client::wait_for_job`]) and
//! fetch their encrypted outputs ([`Client::job_result`]), which [`crate::results`] decrypts.
//!
//! Auditors read the audit log ([`Client::audit_key`], [`Client::audit_head`],
//! [`Client::audit_entries`]), receipts ([`Client::job_receipt`]), schemas
//! ([`Client::schemas`]) and public key material ([`Client::keyset_public`],
//! [`Client::keyset_server_key`]); [`crate::audit`] gathers it all for `blindsight audit
//! verify`.

use std::time::{Duration, Instant};

use blindsight_crypto::compute::RiskModel;
use blindsight_crypto::receipt::SignedReceipt;
use blindsight_crypto::{AppBundle, RecordEnvelope, RecordSchema};
pub use blindsight_proto::{
    AuditKey, Entry, Job, JobCreated, JobRequest, JobStatus, JobTasks, KeysetRegistered,
    MANIFEST_FINGERPRINT_HEADER, ModelInfo, ModelRef, ModelRegistered, NewTenant, Problem,
    RecordListQuery, RecordStored, RecordSummary, SchemaInfo, SchemaRegistered, Selection,
    SignedHead, TenantCreated, TenantTokens,
};
use blindsight_proto::{
    AuditPage, AuditQuery, JobList, JobReceipt, ModelList, RecordPage, SchemaList, percent_encode,
};
use ureq::http::Method;

use crate::progress::Progress;
use crate::transport::to_json;
pub use crate::transport::{ApiError, Client};

/// The outcome of a record upload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Uploaded {
    /// Stored by this call.
    Created(RecordStored),
    /// This exact record was stored before (an earlier attempt succeeded).
    AlreadyStored,
}

impl Client {
    /// Creates a tenant (admin token) with the server's default minimum cohort.
    pub fn create_tenant(
        &self,
        name: &str,
        tenant_id: Option<&str>,
    ) -> Result<TenantCreated, ApiError> {
        self.create_tenant_with(&NewTenant {
            name: name.to_owned(),
            tenant_id: tenant_id.map(str::to_owned),
            min_cohort_size: None,
            privacy_budget: None,
        })
    }

    /// Creates a tenant (admin token) with every setting spelled out.
    pub fn create_tenant_with(&self, tenant: &NewTenant) -> Result<TenantCreated, ApiError> {
        let body = to_json(tenant)?;
        // Tokens are shown once: a retry after a lost response could only create a second
        // tenant, so a lost connection or timeout is reported, not retried.
        let reply = self.send_with(
            Method::POST,
            "/v1/tenants",
            Some((&body, "application/json")),
            false,
        )?;
        Self::json(&reply)
    }

    /// Registers a public bundle (keyholder token). Idempotent for the same bundle.
    pub fn register_keyset(
        &self,
        key_id: &str,
        bundle: &[u8],
    ) -> Result<KeysetRegistered, ApiError> {
        let path = format!("/v1/keysets/{}", percent_encode(key_id));
        let reply = self.send(
            Method::PUT,
            &path,
            Some((bundle, "application/octet-stream")),
        )?;
        Self::json(&reply)
    }

    /// Fetches a key set's app bundle and refuses it unless its manifest has the fingerprint
    /// the caller pinned (so a server cannot swap keys under an app).
    pub fn app_bundle(&self, key_id: &str, pinned_fingerprint: &str) -> crate::Result<AppBundle> {
        let path = format!("/v1/keysets/{}/public", percent_encode(key_id));
        let reply = self.send(Method::GET, &path, None)?;
        Ok(AppBundle::decode_pinned(&reply.body, pinned_fingerprint)?)
    }

    /// Uploads a record (ingest token). A retry of an upload that was stored reports
    /// [`Uploaded::AlreadyStored`]; a different record under a used id is refused.
    pub fn upload_record(&self, record: &RecordEnvelope) -> crate::Result<Uploaded> {
        let bytes = record.encode()?;
        match self.send(
            Method::POST,
            "/v1/records",
            Some((&bytes, "application/octet-stream")),
        ) {
            Ok(reply) => Ok(Uploaded::Created(Self::json(&reply)?)),
            Err(ApiError::Refused {
                same_content: Some(true),
                ..
            }) => Ok(Uploaded::AlreadyStored),
            Err(e) => Err(e.into()),
        }
    }

    /// Lists every record matching `query` (keyholder or auditor token), page by page.
    pub fn records(&self, query: &RecordListQuery) -> Result<Vec<RecordSummary>, ApiError> {
        let mut out = Vec::new();
        let mut page_query = RecordListQuery {
            after: None,
            limit: Some(1000),
            ..query.clone()
        };
        loop {
            let reply = self.send(
                Method::GET,
                &format!("/v1/records?{}", page_query.to_query_string()),
                None,
            )?;
            let page: RecordPage = Self::json(&reply)?;
            out.extend(page.records);
            match page.next_after {
                Some(a) => page_query.after = Some(a),
                None => return Ok(out),
            }
        }
    }

    /// A record's stored proven list (keyholder or auditor token).
    pub fn proof(&self, record_id: &str) -> Result<Vec<u8>, ApiError> {
        let path = format!("/v1/records/{}/proof", percent_encode(record_id));
        Ok(self.send(Method::GET, &path, None)?.body)
    }

    /// A record's sealed transcript (keyholder token).
    pub fn sealed_transcript(&self, record_id: &str) -> Result<Vec<u8>, ApiError> {
        let path = format!("/v1/records/{}/transcript", percent_encode(record_id));
        Ok(self.send(Method::GET, &path, None)?.body)
    }

    /// Registers a custom record schema (keyholder token). The identical schema again is not
    /// an error (the returned flag, whether this call stored it, is false); other content
    /// under a used id and version, or a built-in id, is refused with `schema-exists`.
    pub fn register_schema(
        &self,
        schema: &RecordSchema,
    ) -> Result<(SchemaRegistered, bool), ApiError> {
        let body = to_json(schema)?;
        let path = format!(
            "/v1/schemas/{}/{}",
            percent_encode(&schema.id),
            schema.version
        );
        let reply = self.send(Method::PUT, &path, Some((&body, "application/json")))?;
        Ok((Self::json(&reply)?, reply.status == 201))
    }

    /// Registers a risk model (keyholder token). Registering the identical model again is
    /// not an error (the returned flag, whether this call stored it, is false); other content
    /// under a used id and version is refused with `model-exists`, an invalid model with
    /// `invalid-model`.
    pub fn register_model(&self, model: &RiskModel) -> Result<(ModelRegistered, bool), ApiError> {
        let body = to_json(model)?;
        let reply = self.send(
            Method::POST,
            "/v1/models",
            Some((&body, "application/json")),
        )?;
        Ok((Self::json(&reply)?, reply.status == 201))
    }

    /// The models the server knows for this tenant (keyholder or auditor token).
    pub fn models(&self) -> Result<Vec<ModelInfo>, ApiError> {
        let reply = self.send(Method::GET, "/v1/models", None)?;
        Ok(Self::json::<ModelList>(&reply)?.models)
    }

    /// Queues a job (keyholder token). Every check that can refuse it (unknown key set,
    /// schema or model, an invalid query, no records, a cohort below the tenant's minimum:
    /// `cohort-too-small`) happens now, not when it runs. A lost connection is reported, not
    /// retried: the first attempt may have queued the job.
    pub fn create_job(&self, request: &JobRequest) -> Result<JobCreated, ApiError> {
        let body = to_json(request)?;
        let reply = self.send_with(
            Method::POST,
            "/v1/jobs",
            Some((&body, "application/json")),
            false,
        )?;
        Self::json(&reply)
    }

    /// The tenant's jobs, newest first (keyholder or auditor token).
    pub fn jobs(&self) -> Result<Vec<Job>, ApiError> {
        let reply = self.send(Method::GET, "/v1/jobs", None)?;
        Ok(Self::json::<JobList>(&reply)?.jobs)
    }

    /// One job's state and progress (keyholder or auditor token).
    pub fn job(&self, job_id: &str) -> Result<Job, ApiError> {
        let path = format!("/v1/jobs/{}", percent_encode(job_id));
        Self::json(&self.send(Method::GET, &path, None)?)
    }

    /// A finished job's encrypted output envelope (keyholder or auditor token; the server
    /// records every download in the audit log); decrypt it with [`crate::results::decrypt`].
    /// Refused with `job-not-finished` while the job is queued or running and `job-failed`
    /// when it failed.
    pub fn job_result(&self, job_id: &str) -> Result<Vec<u8>, ApiError> {
        let path = format!("/v1/jobs/{}/result", percent_encode(job_id));
        Ok(self.send(Method::GET, &path, None)?.body)
    }

    /// The published audit signing key (any caller). Refused as [`ApiError::BadResponse`]
    /// unless its `key_id` is the SHA-256 of its 32-byte public key.
    pub fn audit_key(&self) -> Result<AuditKey, ApiError> {
        let key: AuditKey = Self::json(&self.send(Method::GET, "/v1/audit/key", None)?)?;
        key.checked_public_key().map_err(ApiError::BadResponse)?;
        Ok(key)
    }

    /// The signed head of the caller's audit chain (keyholder or auditor token; the admin
    /// token reads the server-wide chain).
    pub fn audit_head(&self) -> Result<SignedHead, ApiError> {
        Self::json(&self.send(Method::GET, "/v1/audit/head", None)?)
    }

    /// Every entry of the caller's audit chain, from the first, page by page; `on_page` sees
    /// how many entries have been read so far after each page.
    pub fn audit_entries(&self, mut on_page: impl FnMut(usize)) -> Result<Vec<Entry>, ApiError> {
        let mut out: Vec<Entry> = Vec::new();
        let mut after = 0i64;
        loop {
            let query = AuditQuery {
                after: Some(after),
                limit: Some(1000),
            };
            let path = format!("/v1/audit?{}", query.to_query_string());
            let page: AuditPage = Self::json(&self.send(Method::GET, &path, None)?)?;
            out.extend(page.entries);
            on_page(out.len());
            match page.next_after {
                // A server that does not move forward would keep this loop going for ever.
                Some(next) if next > after => after = next,
                Some(next) => {
                    return Err(ApiError::BadResponse(format!(
                        "the audit log's next page starts after entry {next}, not after {after}"
                    )));
                }
                None => return Ok(out),
            }
        }
    }

    /// A key set's app bundle envelope as stored, unpinned, and the manifest fingerprint the
    /// server sends with it (any tenant token). Apps use [`Self::app_bundle`], which pins;
    /// auditors check the bytes themselves.
    pub fn keyset_public(&self, key_id: &str) -> Result<(Vec<u8>, Option<String>), ApiError> {
        let path = format!("/v1/keysets/{}/public", percent_encode(key_id));
        let reply = self.send(Method::GET, &path, None)?;
        let fingerprint = reply
            .headers
            .get(MANIFEST_FINGERPRINT_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok((reply.body, fingerprint))
    }

    /// A key set's compressed server key as stored (keyholder or auditor token): public
    /// evaluation material, needed to re-execute jobs.
    pub fn keyset_server_key(&self, key_id: &str) -> Result<Vec<u8>, ApiError> {
        let path = format!("/v1/keysets/{}/server-key", percent_encode(key_id));
        Ok(self.send(Method::GET, &path, None)?.body)
    }

    /// The tenant's registered schemas (keyholder or auditor token); the built-in ones are
    /// not listed.
    pub fn schemas(&self) -> Result<Vec<SchemaInfo>, ApiError> {
        let reply = self.send(Method::GET, "/v1/schemas", None)?;
        Ok(Self::json::<SchemaList>(&reply)?.schemas)
    }

    /// A finished job's signed receipt (keyholder or auditor token); `no-receipt` (404) when
    /// its result was stored without one.
    pub fn job_receipt(&self, job_id: &str) -> Result<SignedReceipt, ApiError> {
        let path = format!("/v1/jobs/{}/receipt", percent_encode(job_id));
        Ok(Self::json::<JobReceipt>(&self.send(Method::GET, &path, None)?)?.into())
    }

    /// [`Self::wait_for_job`], reporting the job's progress to `progress` as one stage named
    /// `what`.
    pub fn wait_with_progress(
        &self,
        job_id: &str,
        what: &str,
        progress: &mut dyn Progress,
        timeout: Duration,
    ) -> Result<Job, ApiError> {
        progress.begin(what, 0);
        let job = self.wait_for_job(
            job_id,
            |job| {
                // One bar for the whole job; a job cut into tasks says how far they are.
                let status = match job.tasks {
                    Some(t) if !job.status.is_finished() => format!(
                        "{}: {} of {} tasks done, {} running",
                        job.status.name(),
                        t.succeeded,
                        t.total,
                        t.running
                    ),
                    _ => job.status.name().to_owned(),
                };
                progress.update(
                    job.progress_done.max(0) as u64,
                    job.progress_total.max(0) as u64,
                    &status,
                );
            },
            timeout,
        );
        progress.end();
        job
    }

    /// Polls a job until it has succeeded or failed and returns it as it finished (a failed
    /// job is returned, not an error: see [`Job::error`]). `on_progress` sees the job first and
    /// then whenever its status or progress changes. Gives up with
    /// [`ApiError::WaitTimedOut`] after `timeout`; the job keeps running on the server.
    pub fn wait_for_job(
        &self,
        job_id: &str,
        mut on_progress: impl FnMut(&Job),
        timeout: Duration,
    ) -> Result<Job, ApiError> {
        self.wait_for_job_or_stop(job_id, timeout, self.poll_interval, |job, changed| {
            if changed {
                on_progress(job);
            }
            Ok(())
        })
    }

    /// [`Client::wait_for_job`] for a caller that may end the wait itself (a language
    /// binding's callback that raised, an interrupt): `on_poll` sees every poll's job and
    /// whether its status or progress changed since the last (true the first time); an error it
    /// returns ends the wait with that error. Polls every `poll`.
    pub fn wait_for_job_or_stop<E: From<ApiError>>(
        &self,
        job_id: &str,
        timeout: Duration,
        poll: Duration,
        mut on_poll: impl FnMut(&Job, bool) -> Result<(), E>,
    ) -> Result<Job, E> {
        let start = Instant::now();
        let mut last: Option<(JobStatus, i64, i64, i64, Option<JobTasks>)> = None;
        loop {
            let job = self.job(job_id)?;
            let seen = (
                job.status,
                job.progress_done,
                job.progress_total,
                job.attempts,
                job.tasks,
            );
            let changed = last != Some(seen);
            last = Some(seen);
            on_poll(&job, changed)?;
            if job.status.is_finished() {
                return Ok(job);
            }
            let waited = start.elapsed();
            if waited >= timeout {
                return Err(ApiError::WaitTimedOut {
                    job_id: job.job_id,
                    waited,
                    status: job.status,
                    done: job.progress_done,
                    total: job.progress_total,
                }
                .into());
            }
            std::thread::sleep(poll.max(Duration::from_millis(10)).min(timeout - waited));
        }
    }
}
