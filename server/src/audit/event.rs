//! What the audit log records: one variant per security-relevant event, each with ids,
//! digests and outcomes only. A token, a ciphertext, a transcript or a value has no field to
//! go in. Bodies are canonical JSON: an object with keys in byte order and no whitespace
//! (serde_json's escaping), so the same event always hashes the same.

use std::collections::BTreeMap;

use serde_json::Value;

/// A security-relevant event, as written to the audit log.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event<'a> {
    /// A tenant was created (the first entry of its chain).
    TenantCreated {
        /// Its smallest aggregate cohort.
        min_cohort_size: u32,
        /// Its privacy budget (zCDP ρ, millionths), if it has one.
        privacy_budget_micro: Option<u64>,
    },
    /// A key set's public bundle was stored (not logged again for an identical re-upload).
    KeysetRegistered {
        /// Key-set id.
        key_id: &'a str,
        /// Parameter-set id.
        parameter_set: &'a str,
        /// SHA-256 of the canonical manifest (what apps pin).
        manifest_fingerprint: &'a str,
        /// SHA-256 of the uploaded bundle.
        bundle_digest: &'a str,
    },
    /// A custom record schema was stored.
    SchemaRegistered {
        /// Schema id.
        schema_id: &'a str,
        /// Schema version.
        version: u32,
        /// SHA-256 of its canonical JSON.
        digest: &'a str,
    },
    /// A record's proof verified with its own metadata and the record was stored.
    RecordIngested {
        /// Record id.
        record_id: &'a str,
        /// Key set it is encrypted under.
        key_id: &'a str,
        /// Schema id.
        schema_id: &'a str,
        /// Schema version.
        schema_version: u32,
        /// SHA-256 of the stored proven list.
        proven_list_digest: &'a str,
        /// Whether a sealed transcript was stored with it.
        has_transcript: bool,
        /// SHA-256 of that sealed transcript (bound into the record's proof).
        sealed_transcript_digest: Option<&'a str>,
    },
    /// A risk model was stored.
    ModelRegistered {
        /// Model id.
        model_id: &'a str,
        /// Version.
        version: u32,
        /// Schema id it reads.
        schema_id: &'a str,
        /// Schema version.
        schema_version: u32,
        /// SHA-256 of its canonical JSON.
        digest: &'a str,
    },
    /// A job was queued.
    JobCreated {
        /// Job id.
        job_id: &'a str,
        /// `risk_score` or `aggregate`.
        kind: &'a str,
        /// Function id, e.g. `risk_score/crisis-v1` or `aggregate/v2` (absent for a spec
        /// that is not a job request's, e.g. the queue's own tests).
        function: Option<&'a str>,
        /// Key set of the inputs.
        key_id: &'a str,
        /// Records selected (absent likewise).
        records: Option<usize>,
        /// The zCDP ρ (millionths) the job spends of its tenant's privacy budget.
        privacy_rho_micro: Option<u64>,
        /// SHA-256 of the frozen spec (the exact model, query and record ids).
        spec_digest: &'a str,
        /// SHA-256 of the model's canonical JSON (risk jobs).
        model_digest: Option<&'a str>,
    },
    /// A job's result was stored.
    JobSucceeded {
        /// Job id.
        job_id: &'a str,
        /// SHA-256 of the stored output envelope.
        result_digest: &'a str,
        /// SHA-256 of the stored signed receipt (absent only for a result stored without
        /// one, which `audit verify` reports).
        receipt_digest: Option<&'a str>,
        /// The attempt that produced it.
        attempt: i64,
    },
    /// A job attempt failed; `retry` says whether the job went back to the queue or failed
    /// for good.
    JobFailed {
        /// Job id.
        job_id: &'a str,
        /// The server-side reason (never a value).
        error: &'a str,
        /// The attempt that failed.
        attempt: i64,
        /// Whether it will be retried.
        retry: bool,
    },
    /// A job's encrypted output was downloaded.
    ResultDownloaded {
        /// Job id.
        job_id: &'a str,
        /// SHA-256 of the output envelope served.
        result_digest: &'a str,
    },
    /// A record's sealed transcript was downloaded.
    TranscriptDownloaded {
        /// Record id.
        record_id: &'a str,
        /// SHA-256 of the sealed box served.
        sealed_transcript_digest: &'a str,
    },
    /// A request was refused for a missing or invalid credential (server-wide chain).
    AuthFailed {
        /// The route template, e.g. `/v1/records`.
        route: &'a str,
        /// The HTTP method.
        method: &'a str,
        /// `missing-token` or `invalid-token`.
        reason: &'a str,
    },
    /// An address was locked out after repeated failed authentications (server-wide chain).
    /// The address itself is not recorded: see docs/STORAGE.md.
    LockedOut {
        /// For how long, in seconds.
        lockout_s: u64,
    },
    /// A `serve` process started with security-relevant settings that differ from the last
    /// ones recorded (server-wide chain): a configuration change.
    ServerConfig {
        /// The default minimum cohort for new tenants.
        min_cohort: u32,
        /// Failed authentications from one address before a lockout.
        lockout_after: u32,
        /// Sustained requests per second per token, in thousandths.
        rate_per_token_milli: u64,
        /// Requests handled at once before load shedding.
        max_in_flight: usize,
        /// Seconds a request may take.
        request_timeout_s: u64,
        /// Whether tenants can be created (an admin token is configured).
        admin_enabled: bool,
        /// The reverse proxies whose `X-Forwarded-For` names the client (comma-separated;
        /// empty: none).
        trusted_proxies: &'a str,
        /// Connections held at once.
        max_connections: usize,
        /// Seconds a client has to send a request's headers.
        header_timeout_s: u64,
        /// The server build.
        build: &'a str,
    },
    /// A server process started signing heads with this key (server-wide chain).
    SigningKey {
        /// The key's id (SHA-256 of the public key).
        key_id: &'a str,
        /// The Ed25519 public key, hex.
        public_key: &'a str,
    },
    /// An operator resolved a chain that no longer extended the head the server had kept for
    /// it (`blindsight-server audit resolve`): written in that chain, as its next entry.
    HeadRewound {
        /// The kept head's entry count.
        kept_seq: i64,
        /// The kept head's hash.
        kept_hash: &'a str,
        /// The chain's entry count when resolved.
        found_seq: i64,
        /// Its last entry's hash then.
        found_hash: &'a str,
        /// `shortened` or `rewritten`.
        cause: &'a str,
        /// What the operator gave as the reason.
        reason: &'a str,
    },
}

impl Event<'_> {
    /// The entry's `kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::TenantCreated { .. } => "tenant.created",
            Event::KeysetRegistered { .. } => "keyset.registered",
            Event::SchemaRegistered { .. } => "schema.registered",
            Event::RecordIngested { .. } => "record.ingested",
            Event::ModelRegistered { .. } => "model.registered",
            Event::JobCreated { .. } => "job.created",
            Event::JobSucceeded { .. } => "job.succeeded",
            Event::JobFailed { retry: true, .. } => "job.attempt_failed",
            Event::JobFailed { retry: false, .. } => "job.failed",
            Event::ResultDownloaded { .. } => "job.result_downloaded",
            Event::TranscriptDownloaded { .. } => "record.transcript_downloaded",
            Event::AuthFailed { .. } => "auth.failed",
            Event::LockedOut { .. } => "auth.locked_out",
            Event::ServerConfig { .. } => "server.config",
            Event::SigningKey { .. } => "audit.signing_key",
            Event::HeadRewound { .. } => "audit.head_rewound",
        }
    }

    /// The entry's body: canonical JSON (keys sorted, no whitespace).
    pub fn body(&self) -> String {
        let mut m: BTreeMap<&'static str, Value> = BTreeMap::new();
        let mut put = |k: &'static str, v: Value| {
            m.insert(k, v);
        };
        match *self {
            Event::TenantCreated {
                min_cohort_size,
                privacy_budget_micro,
            } => {
                put("min_cohort_size", min_cohort_size.into());
                if let Some(b) = privacy_budget_micro {
                    put("privacy_budget_rho_micro", b.into());
                }
            }
            Event::KeysetRegistered {
                key_id,
                parameter_set,
                manifest_fingerprint,
                bundle_digest,
            } => {
                put("key_id", key_id.into());
                put("parameter_set", parameter_set.into());
                put("manifest_fingerprint", manifest_fingerprint.into());
                put("bundle_digest", bundle_digest.into());
            }
            Event::SchemaRegistered {
                schema_id,
                version,
                digest,
            } => {
                put("schema_id", schema_id.into());
                put("version", version.into());
                put("digest", digest.into());
            }
            Event::RecordIngested {
                record_id,
                key_id,
                schema_id,
                schema_version,
                proven_list_digest,
                has_transcript,
                sealed_transcript_digest,
            } => {
                put("record_id", record_id.into());
                put("key_id", key_id.into());
                put("schema_id", schema_id.into());
                put("schema_version", schema_version.into());
                put("proven_list_digest", proven_list_digest.into());
                put("has_transcript", has_transcript.into());
                if let Some(d) = sealed_transcript_digest {
                    put("sealed_transcript_digest", d.into());
                }
                // Only verified records are stored; the outcome is part of the claim.
                put("proof", "verified".into());
            }
            Event::ModelRegistered {
                model_id,
                version,
                schema_id,
                schema_version,
                digest,
            } => {
                put("model_id", model_id.into());
                put("version", version.into());
                put("schema_id", schema_id.into());
                put("schema_version", schema_version.into());
                put("digest", digest.into());
            }
            Event::JobCreated {
                job_id,
                kind,
                function,
                key_id,
                records,
                privacy_rho_micro,
                spec_digest,
                model_digest,
            } => {
                put("job_id", job_id.into());
                put("kind", kind.into());
                if let Some(f) = function {
                    put("function", f.into());
                }
                put("key_id", key_id.into());
                if let Some(n) = records {
                    put("records", n.into());
                }
                if let Some(rho) = privacy_rho_micro {
                    put("privacy_rho_micro", rho.into());
                }
                put("spec_digest", spec_digest.into());
                if let Some(d) = model_digest {
                    put("model_digest", d.into());
                }
            }
            Event::JobSucceeded {
                job_id,
                result_digest,
                receipt_digest,
                attempt,
            } => {
                put("job_id", job_id.into());
                put("result_digest", result_digest.into());
                if let Some(d) = receipt_digest {
                    put("receipt_digest", d.into());
                }
                put("attempt", attempt.into());
            }
            Event::JobFailed {
                job_id,
                error,
                attempt,
                retry,
            } => {
                put("job_id", job_id.into());
                put("error", error.into());
                put("attempt", attempt.into());
                put("retry", retry.into());
            }
            Event::ResultDownloaded {
                job_id,
                result_digest,
            } => {
                put("job_id", job_id.into());
                put("result_digest", result_digest.into());
            }
            Event::TranscriptDownloaded {
                record_id,
                sealed_transcript_digest,
            } => {
                put("record_id", record_id.into());
                put("sealed_transcript_digest", sealed_transcript_digest.into());
            }
            Event::AuthFailed {
                route,
                method,
                reason,
            } => {
                put("route", route.into());
                put("method", method.into());
                put("reason", reason.into());
            }
            Event::LockedOut { lockout_s } => {
                put("lockout_s", lockout_s.into());
            }
            Event::ServerConfig {
                min_cohort,
                lockout_after,
                rate_per_token_milli,
                max_in_flight,
                request_timeout_s,
                admin_enabled,
                trusted_proxies,
                max_connections,
                header_timeout_s,
                build,
            } => {
                put("min_cohort", min_cohort.into());
                put("lockout_after", lockout_after.into());
                put("rate_per_token_milli", rate_per_token_milli.into());
                put("max_in_flight", max_in_flight.into());
                put("request_timeout_s", request_timeout_s.into());
                put("admin_enabled", admin_enabled.into());
                put("trusted_proxies", trusted_proxies.into());
                put("max_connections", max_connections.into());
                put("header_timeout_s", header_timeout_s.into());
                put("build", build.into());
            }
            Event::SigningKey { key_id, public_key } => {
                put("key_id", key_id.into());
                put("public_key", public_key.into());
            }
            Event::HeadRewound {
                kept_seq,
                kept_hash,
                found_seq,
                found_hash,
                cause,
                reason,
            } => {
                put("kept_seq", kept_seq.into());
                put("kept_hash", kept_hash.into());
                put("found_seq", found_seq.into());
                put("found_hash", found_hash.into());
                put("cause", cause.into());
                put("reason", reason.into());
            }
        }
        // Serialising a map of strings to JSON scalars cannot fail.
        serde_json::to_string(&m).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_canonical_json() {
        let e = Event::RecordIngested {
            record_id: "rec-1",
            key_id: "ks",
            schema_id: "session",
            schema_version: 1,
            proven_list_digest: "ab",
            has_transcript: true,
            sealed_transcript_digest: Some("cd"),
        };
        assert_eq!(e.kind(), "record.ingested");
        assert_eq!(
            e.body(),
            r#"{"has_transcript":true,"key_id":"ks","proof":"verified","proven_list_digest":"ab","record_id":"rec-1","schema_id":"session","schema_version":1,"sealed_transcript_digest":"cd"}"#
        );
        let f = Event::JobFailed {
            job_id: "j",
            error: "quote \" and\nnewline",
            attempt: 2,
            retry: false,
        };
        assert_eq!(f.kind(), "job.failed");
        assert_eq!(
            f.body(),
            r#"{"attempt":2,"error":"quote \" and\nnewline","job_id":"j","retry":false}"#
        );
    }
}
