//! `supervise`: the supervisor report over training sessions, decrypted with the keystore.

use std::path::PathBuf;
use std::time::Duration;

use blindsight_client::supervisor;

use crate::args::{ServerArgs, keystore_path, open_keystore, write_private};
use crate::progress::StderrProgress;

/// How the report is printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// Aligned tables, then each trainee's progress chart.
    Table,
    /// One CSV line per view.
    Csv,
    /// JSON.
    Json,
}

/// What `supervise` was asked for.
pub(crate) struct SuperviseArgs<'a> {
    pub(crate) key_id: Option<&'a str>,
    pub(crate) trainees: &'a [String],
    pub(crate) window: usize,
    pub(crate) format: Format,
    pub(crate) output: Option<&'a PathBuf>,
    pub(crate) keystore: Option<&'a PathBuf>,
    pub(crate) timeout: u64,
}

pub(crate) fn supervise(server: &ServerArgs, args: &SuperviseArgs<'_>) -> anyhow::Result<()> {
    let config = server.config()?;
    let key_id = args
        .key_id
        .map(str::to_owned)
        .or(config.key_id.clone())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "no key set: pass --key-id, set BLINDSIGHT_KEY_ID, or put \"key_id\" in the config file"
            )
        })?;
    let path = keystore_path(args.keystore, &config)?;
    // The keystore is opened before any job is queued, so a wrong passphrase or key set
    // fails fast.
    let secret = open_keystore(&path)?;
    anyhow::ensure!(
        secret.key_id() == key_id,
        "{} holds key set {}, not {key_id}; pass that key set's keystore",
        path.display(),
        secret.key_id()
    );
    let client = server.client(&config)?;
    let plan = supervisor::plan_from_server(&client, &key_id, args.trainees, args.window)?;
    eprintln!(
        "queueing {} aggregate job(s) and one bias v1 job over {} trainee(s)",
        plan.views.len(),
        plan.sessions.len()
    );
    let report = supervisor::run(
        &client,
        &key_id,
        &secret,
        &plan,
        &mut StderrProgress::default(),
        Duration::from_secs(args.timeout),
    )?;
    let text = match args.format {
        Format::Table => {
            let mut text = report.table();
            for trainee in plan.sessions.keys() {
                if let Some(chart) = report.chart(trainee) {
                    text.push('\n');
                    text.push_str(&chart);
                }
            }
            text
        }
        Format::Csv => report.to_csv(),
        Format::Json => serde_json::to_string_pretty(&report.to_json())? + "\n",
    };
    match args.output {
        // Decrypted data: written owner-only.
        Some(path) => write_private(path, &text)?,
        None => print!("{text}"),
    }
    Ok(())
}
