//! [`KeyHolder`]: what the clinic does.

use std::time::Duration;

use blindsight_crypto::compute::{AggregateQuery, RiskModel};
use blindsight_crypto::{PublicBundle, RecordSchema, SecretKeys};

use crate::api::{
    Client, Job, JobCreated, JobRequest, KeysetRegistered, ModelRef, ModelRegistered,
    SchemaRegistered, Selection,
};
use crate::progress::Progress;
use crate::results::{self, JobResults};
use crate::supervisor::{self, SupervisorReport};
use crate::transcript;
use crate::{Error, Result};

/// The key holder of one tenant, with its keyholder token. Secret keys are passed in from a
/// keystore for the calls that decrypt, never held by this type.
#[derive(Debug)]
pub struct KeyHolder {
    client: Client,
    tenant: String,
}

impl KeyHolder {
    /// Connects to the server at `url` with the tenant's keyholder token.
    pub fn connect(url: &str, keyholder_token: &str, tenant: &str) -> Self {
        Self::with_client(Client::new(url, keyholder_token), tenant)
    }

    /// A key holder over a configured transport.
    pub fn with_client(client: Client, tenant: &str) -> Self {
        Self {
            client,
            tenant: tenant.to_owned(),
        }
    }

    /// Registers a key set's public bundle (public material only: the server key, the
    /// compact public key, the CRS and the transcript key, with their manifest).
    pub fn register(&self, public: &PublicBundle) -> Result<KeysetRegistered> {
        Ok(self
            .client
            .register_keyset(public.key_id(), &public.encode()?)?)
    }

    /// Registers a custom record schema, so apps can record it; the flag says whether this
    /// call stored it.
    pub fn register_schema(&self, schema: &RecordSchema) -> Result<(SchemaRegistered, bool)> {
        Ok(self.client.register_schema(schema)?)
    }

    /// Registers a risk model; the flag says whether this call stored it.
    pub fn register_model(&self, model: &RiskModel) -> Result<(ModelRegistered, bool)> {
        Ok(self.client.register_model(model)?)
    }

    /// Queues a risk-score job over the selected records.
    pub fn score(&self, key_id: &str, model: ModelRef, select: Selection) -> Result<JobCreated> {
        Ok(self
            .client
            .create_job(&JobRequest::risk_score(key_id, model, select))?)
    }

    /// Queues an aggregate job over the selected cohort.
    pub fn aggregate(
        &self,
        key_id: &str,
        query: AggregateQuery,
        select: Selection,
    ) -> Result<JobCreated> {
        Ok(self
            .client
            .create_job(&JobRequest::aggregate(key_id, query, select))?)
    }

    /// Waits until the job has succeeded or failed (at most `timeout`), calling `on_progress`
    /// whenever its state changes.
    pub fn wait(
        &self,
        job_id: &str,
        on_progress: impl FnMut(&Job),
        timeout: Duration,
    ) -> Result<Job> {
        Ok(self.client.wait_for_job(job_id, on_progress, timeout)?)
    }

    /// Fetches a finished job's output and decrypts it with the keystore's secret keys.
    pub fn results(&self, job_id: &str, secret: &SecretKeys) -> Result<JobResults> {
        results::fetch(&self.client, job_id, secret)
    }

    /// The supervisor report over the `training` v1 sessions of key set `key_id`
    /// ([`crate::supervisor`]): plans the views from the record listing (`trainees` narrows it;
    /// `window` sessions in the first and last windows), queues their aggregate jobs and one
    /// `bias` v1 job, waits with progress and decrypts with `secret`.
    pub fn supervisor_report(
        &self,
        key_id: &str,
        secret: &SecretKeys,
        trainees: &[String],
        window: usize,
        progress: &mut dyn Progress,
        timeout: Duration,
    ) -> Result<SupervisorReport> {
        let plan = supervisor::plan_from_server(&self.client, key_id, trainees, window)?;
        supervisor::run(&self.client, key_id, secret, &plan, progress, timeout)
    }

    /// Fetches a record's sealed transcript and opens it with the keystore's transcript key
    /// (the seal is bound to the record's metadata).
    pub fn open_transcript(&self, record_id: &str, secret: &SecretKeys) -> Result<String> {
        transcript::fetch(&self.client, &self.tenant, record_id)?
            .ok_or_else(|| {
                Error::Record(format!(
                    "the server has no record {record_id:?} for this tenant"
                ))
            })?
            .open(secret)
    }

    /// The transport, for anything else a keyholder token may do.
    pub fn client(&self) -> &Client {
        &self.client
    }
}
