//! `results`: a job's output decrypted as a table, CSV or JSON.

use std::path::{Path, PathBuf};
use std::time::Duration;

use blindsight_client::results;

use super::wait::follow;
use crate::args::{ServerArgs, keystore_path, open_keystore, write_private};

pub(crate) fn show_results(
    server: &ServerArgs,
    job_id: &str,
    keystore_flag: Option<&PathBuf>,
    csv: Option<&Path>,
    json: Option<&Path>,
    timeout: u64,
) -> anyhow::Result<()> {
    let config = server.config()?;
    let path = keystore_path(keystore_flag, &config)?;
    let client = server.client(&config)?;
    let mut job = client.job(job_id)?;
    // The keystore is opened before any wait, so a wrong passphrase or key set fails fast.
    let secret = open_keystore(&path)?;
    anyhow::ensure!(
        secret.key_id() == job.key_id,
        "job {} ran under key set {}, but {} holds key set {}; pass that key set's keystore",
        job.job_id,
        job.key_id,
        path.display(),
        secret.key_id()
    );
    if !job.status.is_finished() {
        job = follow(&client, job_id, Duration::from_secs(timeout))?;
    }
    let results = results::fetch(&client, &job.job_id, &secret)?;
    print!("{}", results.table());
    if let Some(path) = csv {
        write_private(path, &results.to_csv())?;
    }
    if let Some(path) = json {
        let text = serde_json::to_string_pretty(&results.to_json())?;
        write_private(path, &(text + "\n"))?;
    }
    Ok(())
}
