//! `record`: an app's sessions (or, with `--training`, a training platform's practice
//! sessions) encrypted, proven, sealed and uploaded.

use std::path::PathBuf;

use anyhow::Context;
use blindsight_client::api::{Problem, Uploaded};
use blindsight_client::session::Session;
use blindsight_client::training::TrainingSession;
use blindsight_crypto::{AppBundle, RecordEnvelope};

use crate::args::{KeysetArgs, ServerArgs};
use crate::progress::progress;

/// What `record` uploads: patient sessions (`session` v1) or practice sessions (`training`
/// v1), read from the same JSON/JSONL files.
trait Recordable: serde::de::DeserializeOwned {
    fn record_id(&self) -> &str;
    /// Checks every field is present and in range, as encryption would, without encrypting.
    fn validate(&self) -> anyhow::Result<()>;
    fn envelope(&self, bundle: &AppBundle, tenant: &str) -> anyhow::Result<RecordEnvelope>;
}

impl Recordable for Session {
    fn record_id(&self) -> &str {
        &self.record_id
    }

    fn validate(&self) -> anyhow::Result<()> {
        blindsight_crypto::schemas::session_v1().order_values(&self.values()?)?;
        Ok(())
    }

    fn envelope(&self, bundle: &AppBundle, tenant: &str) -> anyhow::Result<RecordEnvelope> {
        Ok(self.to_record(bundle, tenant)?)
    }
}

impl Recordable for TrainingSession {
    fn record_id(&self) -> &str {
        &self.record_id
    }

    fn validate(&self) -> anyhow::Result<()> {
        blindsight_crypto::schemas::training_v1().order_values(&self.values()?)?;
        Ok(())
    }

    fn envelope(&self, bundle: &AppBundle, tenant: &str) -> anyhow::Result<RecordEnvelope> {
        Ok(self.to_record(bundle, tenant)?)
    }
}

/// Reads one session (`.json`) or a batch (`.jsonl`), validating every one before returning.
fn read_sessions<T: Recordable>(file: &PathBuf) -> anyhow::Result<Vec<T>> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("couldn't read {}", file.display()))?;
    let jsonl = file.extension().is_some_and(|e| e == "jsonl");
    let mut sessions = Vec::new();
    if jsonl {
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let session: T = serde_json::from_str(line)
                .with_context(|| format!("{} line {}", file.display(), n + 1))?;
            session
                .validate()
                .with_context(|| format!("{} line {}", file.display(), n + 1))?;
            sessions.push(session);
        }
    } else {
        let session: T = serde_json::from_str(&text).with_context(|| file.display().to_string())?;
        session
            .validate()
            .with_context(|| file.display().to_string())?;
        sessions.push(session);
    }
    anyhow::ensure!(!sessions.is_empty(), "{} holds no sessions", file.display());
    Ok(sessions)
}

pub(crate) fn record(
    server: &ServerArgs,
    keyset: &KeysetArgs,
    file: &PathBuf,
    training: bool,
) -> anyhow::Result<()> {
    if training {
        upload(server, keyset, read_sessions::<TrainingSession>(file)?)
    } else {
        upload(server, keyset, read_sessions::<Session>(file)?)
    }
}

fn upload<T: Recordable>(
    server: &ServerArgs,
    keyset: &KeysetArgs,
    sessions: Vec<T>,
) -> anyhow::Result<()> {
    let config = server.config()?;
    let tenant = server.tenant(&config)?;
    let key_id = keyset.key_id.clone().or(config.key_id.clone()).context(
        "no key set: pass --key-id, set BLINDSIGHT_KEY_ID, or put \"key_id\" in the config file",
    )?;
    let pin = keyset.pin.clone().or(config.manifest_fingerprint.clone()).context(
        "no pinned fingerprint: pass --pin (the manifest fingerprint `keygen` printed) or set BLINDSIGHT_PIN",
    )?;
    let client = server.client(&config)?;
    let bundle = client
        .app_bundle(&key_id, &pin)
        .context("couldn't load the pinned key set")?;
    let bar = progress(sessions.len(), "encrypt, prove, upload");
    let plain = bar.is_hidden();
    let (mut created, mut already, mut skipped) = (0, 0, 0);
    for (i, session) in sessions.iter().enumerate() {
        let envelope = session
            .envelope(&bundle, &tenant)
            .with_context(|| format!("session {}", session.record_id()))?;
        match client.upload_record(&envelope) {
            Ok(Uploaded::Created(_)) => created += 1,
            Ok(Uploaded::AlreadyStored) => already += 1,
            // The record id is the idempotency key: a re-run of a batch (fresh encryption,
            // so other bytes) resumes past what an earlier run stored.
            Err(blindsight_client::Error::Api(e)) if e.problem() == Some(Problem::RecordExists) => {
                skipped += 1;
                bar.suspend(|| {
                    eprintln!(
                        "skipped {}: the record id is already used on the server",
                        session.record_id()
                    )
                });
            }
            Err(e) => {
                return Err(anyhow::Error::new(e).context(format!(
                    "uploading {} ({created} stored before it)",
                    session.record_id()
                )));
            }
        }
        bar.inc(1);
        if plain {
            eprintln!("[{}/{}] {}", i + 1, sessions.len(), session.record_id());
        }
    }
    bar.finish_and_clear();
    println!("{created} record(s) stored, {already} already stored, {skipped} skipped");
    Ok(())
}
