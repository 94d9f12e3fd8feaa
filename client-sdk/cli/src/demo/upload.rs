//! The demo's uploads: patient sessions and practice sessions alike, encrypted, proven and
//! uploaded one by one with progress.

use blindsight_client::api::Client;
use blindsight_crypto::RecordEnvelope;

use super::{Demo, Result};

impl Demo<'_> {
    /// Encrypts, proves and uploads each item (`build` gives its record id and envelope) with
    /// progress under `stage`; returns the bytes uploaded.
    pub(super) fn upload_each<T>(
        &mut self,
        app: &Client,
        stage: &str,
        items: &[T],
        build: impl Fn(&T) -> (&str, blindsight_client::Result<RecordEnvelope>),
    ) -> Result<usize> {
        let n = items.len() as u64;
        let mut bytes = 0;
        self.progress.begin(stage, n);
        for (i, item) in items.iter().enumerate() {
            let (id, record) = build(item);
            let uploaded = record.and_then(|r| {
                bytes += r.encode()?.len();
                app.upload_record(&r)
            });
            if let Err(e) = uploaded {
                self.progress.end();
                return Err(e.into());
            }
            self.progress.update(i as u64 + 1, n, id);
        }
        self.progress.end();
        Ok(bytes)
    }
}
