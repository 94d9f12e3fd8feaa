//! `blindsight-benches`: shared workloads for the criterion benchmarks (and, later, the
//! comparison harness), so every measurement runs on the same fixed inputs.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use blindsight_crypto::{FieldSpec, RecordMetadata, RecordSchema, RecordValues, Value};

/// The 40-field u8 record the crypto benchmarks encrypt, prove, verify and expand.
pub fn forty_u8_schema() -> RecordSchema {
    RecordSchema {
        id: "bench-u8x40".into(),
        version: 1,
        fields: (0..40)
            .map(|i| FieldSpec::uint(&format!("f{i:02}"), 0, 255))
            .collect(),
    }
}

/// Fixed values for [`forty_u8_schema`] (no randomness: every run encrypts the same record).
pub fn forty_u8_values() -> RecordValues {
    (0..40u32)
        .map(|i| (format!("f{i:02}"), Value::Uint((i * 37 + 11) % 256)))
        .collect()
}

/// Metadata for a benchmark record under `key_id`.
pub fn bench_meta(key_id: &str, record_id: &str) -> RecordMetadata {
    RecordMetadata {
        tenant: "bench".into(),
        key_id: key_id.into(),
        schema_id: "bench-u8x40".into(),
        schema_version: 1,
        record_id: record_id.into(),
        cohort: None,
        lexicon_version: None,
        recorded_at: None,
    }
}

/// Programmable bootstraps performed so far by this process (tfhe's `pbs-stats` counter);
/// `None` when built without the `pbs-stats` feature.
pub fn pbs_count() -> Option<u64> {
    #[cfg(feature = "pbs-stats")]
    {
        Some(blindsight_crypto::tfhe::get_pbs_count())
    }
    #[cfg(not(feature = "pbs-stats"))]
    {
        None
    }
}

/// Resets tfhe's PBS counter (no-op without `pbs-stats`).
pub fn reset_pbs_count() {
    #[cfg(feature = "pbs-stats")]
    blindsight_crypto::tfhe::reset_pbs_count();
}
