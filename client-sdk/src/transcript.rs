//! Sealed transcripts for the key holder: fetched with the metadata their seal is bound to
//! (rebuilt from the record's listing), then opened with the keystore's transcript key.

use blindsight_crypto::{RecordMetadata, SecretKeys};

use crate::api::{Client, RecordListQuery};
use crate::{Error, Result};

/// A record's sealed transcript as the server returned it, with the metadata it was sealed to.
#[derive(Clone, Debug)]
pub struct FetchedTranscript {
    /// The record's metadata (the seal's associated data).
    pub metadata: RecordMetadata,
    /// The sealed box.
    pub sealed: Vec<u8>,
}

impl FetchedTranscript {
    /// Opens it with the keystore's transcript key. Fails when the keystore is another key
    /// set's or the box was not sealed for this record.
    pub fn open(&self, secret: &SecretKeys) -> Result<String> {
        let text = blindsight_crypto::open(
            secret.transcript_secret(),
            &self.metadata.transcript_aad(),
            &self.sealed,
        )?;
        Ok(String::from_utf8_lossy(&text).into_owned())
    }
}

/// Fetches `record_id`'s sealed transcript for `tenant` (keyholder token); `None` when the
/// server does not list the record.
pub fn fetch(client: &Client, tenant: &str, record_id: &str) -> Result<Option<FetchedTranscript>> {
    let Some(summary) = client
        .records(&RecordListQuery::default())?
        .into_iter()
        .find(|r| r.record_id == record_id)
    else {
        return Ok(None);
    };
    let metadata = summary.metadata(tenant).ok_or_else(|| {
        Error::Record(format!(
            "record {record_id}: a listed number is out of its metadata field's range"
        ))
    })?;
    let sealed = client.sealed_transcript(record_id)?;
    Ok(Some(FetchedTranscript { metadata, sealed }))
}
