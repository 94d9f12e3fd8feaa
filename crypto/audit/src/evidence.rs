//! What an auditor verifies: the chains, key sets, schemas, records and jobs of a server, as
//! read from its database (`store::evidence::load`, offline) or fetched over its API with an
//! auditor token (`blindsight audit verify --url`). [`crate::verify()`] checks it; nothing here
//! is trusted because of where it came from.

use blindsight_crypto::{RecordMetadata, TranscriptDigest};

use blindsight_proto::{Entry, SignedHead};

/// Everything an audit run checks.
#[derive(Clone, Debug, Default)]
pub struct Evidence {
    /// Where it came from, for the report (e.g. `https://…` or `sqlite:///…`).
    pub source: String,
    /// The audit public keys (32-byte Ed25519) the auditor trusts: the published key, and
    /// any earlier keys it was rotated from. Heads and receipts must be signed by one of them.
    pub trusted_keys: Vec<Vec<u8>>,
    /// Heads verified in an earlier run ([`crate::KeptHeads`]): every chain must still
    /// contain them unchanged (rollback, truncation and forks are caught).
    pub kept_heads: Vec<SignedHead>,
    /// The chains: one per tenant, and the server-wide chain when the source shows it.
    pub chains: Vec<ChainEvidence>,
    /// Each tenant's stored objects.
    pub tenants: Vec<TenantEvidence>,
}

/// One chain and its signed head.
#[derive(Clone, Debug)]
pub struct ChainEvidence {
    /// The tenant whose chain it is; `None` for the server-wide chain.
    pub tenant_id: Option<String>,
    /// Every entry, from `seq` 1, in the order the source returned them.
    pub entries: Vec<Entry>,
    /// The signed head; `None` when the source holds no signed head for the chain.
    pub head: Option<SignedHead>,
}

/// A tenant's stored objects.
#[derive(Clone, Debug, Default)]
pub struct TenantEvidence {
    /// The tenant.
    pub tenant_id: String,
    /// Its key sets.
    pub keysets: Vec<KeysetEvidence>,
    /// Its custom record schemas (the built-in ones are compiled in).
    pub schemas: Vec<SchemaEvidence>,
    /// Its records, in ingest order.
    pub records: Vec<RecordEvidence>,
    /// Its jobs.
    pub jobs: Vec<JobEvidence>,
    /// Its lane rollup parts as stored; `None` when the source does not serve them (the API
    /// does not).
    pub rollups: Option<Vec<RollupEvidence>>,
}

/// A stored lane rollup part.
#[derive(Clone, Debug)]
pub struct RollupEvidence {
    /// Key set.
    pub key_id: String,
    /// Schema id.
    pub schema_id: String,
    /// Schema version.
    pub schema_version: u32,
    /// Cohort, day, part index and the records it holds.
    pub part: blindsight_proto::RollupPart,
    /// Slots per list, as stored.
    pub slots: u64,
    /// The stored sum (little-endian words).
    pub lane_sum: Vec<u8>,
}

/// A stored key set: public material only.
#[derive(Clone, Debug)]
pub struct KeysetEvidence {
    /// Key-set id.
    pub key_id: String,
    /// The parameter-set id stored with it.
    pub parameter_set: String,
    /// The manifest fingerprint stored with it (what apps pin).
    pub manifest_fingerprint: String,
    /// The manifest envelope as stored (`None` online, where only the app bundle, which
    /// carries the manifest, is served).
    pub manifest: Option<Vec<u8>>,
    /// The app bundle envelope.
    pub app_bundle: Vec<u8>,
    /// The compressed server key (safe-serialized), when the source serves it; needed to
    /// re-execute jobs.
    pub server_key: Option<Vec<u8>>,
}

/// A custom record schema as registered.
#[derive(Clone, Debug)]
pub struct SchemaEvidence {
    /// Schema id.
    pub schema_id: String,
    /// Version.
    pub version: u32,
    /// Its JSON definition as stored.
    pub definition: String,
}

/// A stored sealed transcript, as far as the source shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TranscriptEvidence {
    /// The record has none.
    None,
    /// The stored bytes.
    Stored(Vec<u8>),
    /// The record has one but the source does not serve it (the API serves transcripts to
    /// the key holder only).
    NotServed,
}

/// A stored record.
#[derive(Clone, Debug)]
pub struct RecordEvidence {
    /// Its metadata, from the routing columns (what its proof is bound to).
    pub metadata: RecordMetadata,
    /// The stored proven list.
    pub proven_list: Vec<u8>,
    /// The digest stored beside it.
    pub proven_list_digest: String,
    /// Its sealed transcript.
    pub transcript: TranscriptEvidence,
    /// The sealed transcript's digest stored (or served) beside it: what its proof is bound
    /// to. `None` when it has no transcript or was stored before transcripts were bound.
    pub transcript_digest: Option<String>,
    /// The UTC day it was rolled up under; `None` when it is in no rollup.
    pub rollup_day: Option<i64>,
}

impl RecordEvidence {
    /// The transcript digest its proof is checked against: computed from the stored bytes
    /// where the source serves them (and then compared with the digest stored beside them),
    /// else the digest the source stores.
    pub fn bound_transcript(&self) -> Result<Option<TranscriptDigest>, String> {
        let stored = self
            .transcript_digest
            .as_deref()
            .map(blindsight_crypto::parse_transcript_digest)
            .transpose()
            .map_err(|e| format!("its stored transcript digest: {e}"))?;
        match &self.transcript {
            TranscriptEvidence::Stored(bytes) => {
                let computed = blindsight_crypto::transcript_digest(bytes);
                match stored {
                    Some(d) if Some(d) != computed => {
                        Err("stored sealed transcript does not match its stored digest".into())
                    }
                    _ => Ok(computed),
                }
            }
            TranscriptEvidence::NotServed => Ok(stored),
            TranscriptEvidence::None if stored.is_some() => {
                Err("a transcript digest is stored for a record without a transcript".into())
            }
            TranscriptEvidence::None => Ok(None),
        }
    }
}

/// A job.
#[derive(Clone, Debug)]
pub struct JobEvidence {
    /// Job id.
    pub job_id: String,
    /// `risk_score` or `aggregate`.
    pub kind: String,
    /// The key set of its inputs.
    pub key_id: String,
    /// `queued`, `running`, `succeeded` or `failed`.
    pub status: String,
    /// Its frozen spec (JSON), as stored.
    pub spec: String,
    /// The stored output envelope, when the source serves it.
    pub result: Option<Vec<u8>>,
    /// The digest stored beside the output (offline), or `None`.
    pub result_digest: Option<String>,
    /// The stored signed receipt (JSON), if any.
    pub receipt: Option<String>,
    /// The seed a job with privacy drew its noise from (offline only: the API never serves
    /// it, since whoever holds it can remove the noise).
    pub noise_seed: Option<Vec<u8>>,
}
