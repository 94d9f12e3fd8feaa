//! The demo's uploads: patient sessions and practice sessions alike, encrypted, proven and
//! uploaded one by one with progress.

use blindsight_client::api::Client;
use blindsight_client::record::Recordable;
use blindsight_crypto::AppBundle;

use super::{Demo, Result};

impl Demo<'_> {
    /// Encrypts, proves and uploads the session of each item (`session` picks it) under
    /// `bundle` for `tenant`, with progress under `stage`; returns the bytes uploaded.
    pub(super) fn upload_each<T, S: Recordable>(
        &mut self,
        app: &Client,
        bundle: &AppBundle,
        tenant: &str,
        stage: &str,
        items: &[T],
        session: impl Fn(&T) -> &S,
    ) -> Result<usize> {
        let n = items.len() as u64;
        let mut bytes = 0;
        self.progress.begin(stage, n);
        for (i, item) in items.iter().enumerate() {
            let session = session(item);
            let uploaded = session.to_record(bundle, tenant).and_then(|r| {
                bytes += r.encode()?.len();
                app.upload_record(&r)
            });
            if let Err(e) = uploaded {
                self.progress.end();
                return Err(e.into());
            }
            self.progress.update(i as u64 + 1, n, session.record_id());
        }
        self.progress.end();
        Ok(bytes)
    }
}
