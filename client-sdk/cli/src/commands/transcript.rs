//! `transcript open`: a record's sealed transcript opened with the keystore.

use std::path::PathBuf;

use anyhow::Context;
use blindsight_client::api::RecordListQuery;

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
    let summary = client
        .records(&RecordListQuery::default())?
        .into_iter()
        .find(|r| r.record_id == record_id)
        .with_context(|| format!("the server has no record {record_id:?} for this tenant"))?;
    let sealed = client.sealed_transcript(record_id)?;
    let secret = open_keystore(&path)?;
    let meta = summary
        .metadata(&tenant)
        .context("the record's listed metadata is out of range")?;
    let text = blindsight_crypto::open(secret.transcript_secret(), &meta.transcript_aad(), &sealed)
        .context(
            "the transcript did not open: wrong keystore, or it was not sealed for this record",
        )?;
    println!("{}", String::from_utf8_lossy(&text));
    Ok(())
}
