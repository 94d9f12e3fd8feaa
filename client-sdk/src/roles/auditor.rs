//! [`Auditor`]: what compliance does, holding nothing secret.

use blindsight_audit::{Evidence, Options, Report};

use crate::Result;
use crate::api::Client;
use crate::audit::{FetchOptions, fetch_evidence};
use crate::progress::Progress;

/// An auditor of one tenant, with its auditor (or keyholder) token.
#[derive(Debug)]
pub struct Auditor {
    client: Client,
}

impl Auditor {
    /// Connects to the server at `url` with an auditor token.
    pub fn connect(url: &str, auditor_token: &str) -> Self {
        Self {
            client: Client::new(url, auditor_token),
        }
    }

    /// Gathers the tenant's evidence over the API (the chain and its signed head, records and
    /// proofs, schemas, key sets, jobs with receipts and outputs; server keys when jobs are
    /// to be re-executed).
    pub fn evidence(&self, reexecute: usize, progress: &mut dyn Progress) -> Result<Evidence> {
        fetch_evidence(&self.client, &FetchOptions { reexecute }, progress)
    }

    /// Gathers the evidence and runs every check, trusting only `trusted_keys` (Ed25519
    /// public keys, pinned out of band) for signed heads and receipts.
    pub fn verify(
        &self,
        trusted_keys: Vec<Vec<u8>>,
        options: &Options,
        progress: &mut dyn Progress,
    ) -> Result<Report> {
        let mut evidence = self.evidence(options.reexecute, progress)?;
        evidence.trusted_keys = trusted_keys;
        Ok(blindsight_audit::verify(&evidence, options, &|_| {}))
    }

    /// The transport.
    pub fn client(&self) -> &Client {
        &self.client
    }
}
