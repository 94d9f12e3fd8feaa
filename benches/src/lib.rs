//! `blindsight-benches`: shared workloads for the criterion benchmarks and the comparison
//! harness (`cargo run --release -p blindsight-benches --bin compare`), so every measurement
//! runs on the same fixed inputs.
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

/// A deterministic `session` v1 record (schema order) that varies with `i` across every tier:
/// questionnaire items, C-SSRS answers and lexicon counts follow a fixed pattern.
pub fn session_record(i: u32) -> Vec<Value> {
    let schema = blindsight_crypto::schemas::session_v1();
    schema
        .fields
        .iter()
        .enumerate()
        .map(|(j, f)| {
            let x = i.wrapping_mul(2_654_435_761).rotate_left(j as u32 % 29) ^ (j as u32 * 97);
            match f.ty {
                blindsight_crypto::FieldType::Bool => Value::Bool(x.is_multiple_of(7)),
                _ => Value::Uint(f.min + x % (f.max - f.min + 1)),
            }
        })
        .collect()
}

/// The aggregates the benchmarks and the harness measure, one per query (name, query).
pub fn aggregate_workloads() -> Vec<(&'static str, blindsight_crypto::compute::AggregateQuery)> {
    use blindsight_crypto::compute::{Aggregate, AggregateQuery};
    let one = |a: Aggregate| AggregateQuery {
        aggregates: vec![a],
    };
    vec![
        (
            "sum/phq9_total",
            one(Aggregate::Sum {
                field: "phq9_total".into(),
            }),
        ),
        (
            "mean/mood_change",
            one(Aggregate::Mean {
                field: "mood_change".into(),
            }),
        ),
        (
            "max/lex_hopelessness",
            one(Aggregate::Max {
                field: "lex_hopelessness".into(),
            }),
        ),
        (
            "histogram/phq9_total",
            one(Aggregate::Histogram {
                field: "phq9_total".into(),
                edges: vec![5, 10, 15, 20],
            }),
        ),
        (
            "count_at_least/gad7_total",
            one(Aggregate::CountAtLeast {
                field: "gad7_total".into(),
                threshold: 10,
            }),
        ),
        (
            "sum_where/mood_after/phq9_total",
            one(Aggregate::SumWhere {
                field: "mood_after".into(),
                where_field: "phq9_total".into(),
                at_least: 10,
            }),
        ),
    ]
}
