//! [`Recorder`]: what an app does.

use blindsight_crypto::AppBundle;

use crate::Result;
use crate::api::{Client, Uploaded};
use crate::record::{NewRecord, Recordable, build_envelope};
use crate::session::Session;
use crate::training::TrainingSession;

/// An app recording sessions for one tenant under one key set. It holds the app bundle (public
/// material only), fetched once and checked against the manifest fingerprint the app pins.
#[derive(Debug)]
pub struct Recorder {
    client: Client,
    tenant: String,
    app: AppBundle,
}

impl Recorder {
    /// Connects to the server at `url` with an ingest token and loads the app bundle of
    /// `key_id`, refused unless its manifest fingerprint is `pin`.
    pub fn connect(
        url: &str,
        ingest_token: &str,
        tenant: &str,
        key_id: &str,
        pin: &str,
    ) -> Result<Self> {
        let client = Client::new(url, ingest_token);
        let app = client.app_bundle(key_id, pin)?;
        Ok(Self::with_bundle(client, tenant, app))
    }

    /// A recorder over a client and an app bundle the app already holds (and checked).
    pub fn with_bundle(client: Client, tenant: &str, app: AppBundle) -> Self {
        Self {
            client,
            tenant: tenant.to_owned(),
            app,
        }
    }

    /// The app bundle records are encrypted under.
    pub fn app_bundle(&self) -> &AppBundle {
        &self.app
    }

    /// Extracts the session's lexicon features on the device, encrypts and proves it as a
    /// `session` v1 record, seals its transcript, and uploads it. A retry of an upload that was
    /// stored is [`Uploaded::AlreadyStored`], never a second record.
    pub fn record(&self, session: &Session) -> Result<Uploaded> {
        self.record_any(session)
    }

    /// Extracts a practice session's training features from the trainee's own messages on
    /// the device, encrypts and proves it as a `training` v1 record (cohort label: the
    /// trainee's pseudonym), seals the conversation, and uploads it.
    pub fn record_training(&self, session: &TrainingSession) -> Result<Uploaded> {
        self.record_any(session)
    }

    /// [`Recorder::record`] or [`Recorder::record_training`], by what `session` is.
    pub fn record_any(&self, session: &impl Recordable) -> Result<Uploaded> {
        self.client
            .upload_record(&session.to_record(&self.app, &self.tenant)?)
    }

    /// Records the values of any schema (the built-in one or one the key holder registered).
    pub fn record_values(&self, record: &NewRecord<'_>) -> Result<Uploaded> {
        self.client
            .upload_record(&build_envelope(&self.app, &self.tenant, record)?)
    }

    /// The transport, for anything else an ingest token may do.
    pub fn client(&self) -> &Client {
        &self.client
    }
}
