//! `transcript open`: a record's sealed transcript opened with the keystore.

use std::path::PathBuf;

use anyhow::Context;
use blindsight_client::transcript;

use crate::args::{ServerArgs, keystore_path, open_keystore};

pub(crate) fn open_transcript(
    server: &ServerArgs,
    record_id: &str,
    keystore_flag: Option<&PathBuf>,
) -> anyhow::Result<()> {
    let config = server.config()?;
    let tenant = server.tenant(&config)?;
    let path = keystore_path(keystore_flag, &config)?;
    let client = server.client(&config)?;
    // Everything the server can refuse is asked before the passphrase is.
    let fetched = transcript::fetch(&client, &tenant, record_id)?
        .with_context(|| format!("the server has no record {record_id:?} for this tenant"))?;
    let secret = open_keystore(&path)?;
    let text = fetched.open(&secret).context(
        "the transcript did not open: wrong keystore, or it was not sealed for this record",
    )?;
    println!("{text}");
    Ok(())
}
