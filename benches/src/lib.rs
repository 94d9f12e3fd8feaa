//! `blindsight-benches`: shared workloads for the criterion benchmarks and the comparison
//! harness (`cargo run --release -p blindsight-benches --bin compare`), so every measurement
//! runs on the same fixed inputs.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod server;

use blindsight_crypto::{FieldSpec, RecordMetadata, RecordSchema, RecordValues, Value};

/// The 40-field u8 record the crypto benchmarks encrypt, prove, verify and expand.
pub fn forty_u8_schema() -> RecordSchema {
    RecordSchema {
        id: "bench-u8x40".into(),
        version: 1,
        fields: (0..40)
            .map(|i| FieldSpec::uint(&format!("f{i:02}"), 0, 255))
            .collect(),
        lane: Default::default(),
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
    schema_record(&blindsight_crypto::schemas::session_v1(), i)
}

/// A deterministic record of `schema` (schema order) that varies with `i`: every field follows
/// a fixed pattern over its range.
pub fn schema_record(schema: &RecordSchema, i: u32) -> Vec<Value> {
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
        privacy: None,
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

/// [`session_record`] as named values (what `encrypt_record` and the client SDK take).
pub fn session_values(i: u32) -> RecordValues {
    blindsight_crypto::schemas::session_v1()
        .fields
        .iter()
        .map(|f| f.name.clone())
        .zip(session_record(i))
        .collect()
}

/// Whether a criterion bench binary runs in criterion's test mode (each benchmark once, as
/// `cargo test` runs the benches) rather than measuring (`cargo bench`, which passes
/// `--bench`), so a bench can keep its test run short.
pub fn criterion_test_mode() -> bool {
    let args: Vec<String> = std::env::args().collect();
    !args.iter().any(|a| a == "--bench") || args.iter().any(|a| a == "--test")
}

/// The CPU model and hardware thread count, for the header of a report.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!(
        "{cpu}, {} hardware threads",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    )
}

/// The `p`-th percentile (0–100, nearest rank) of `sorted` (ascending); 0 when empty.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Whether this build was optimized (`release`/`bench`) or is the dev profile, where only the
/// dependencies (tfhe included) are optimized: reports say which they were measured in.
pub fn profile() -> &'static str {
    if cfg!(debug_assertions) {
        "dev (dependencies optimized, our crates not)"
    } else {
        "release"
    }
}

/// The 1-, 5- and 15-minute load averages (`/proc/loadavg`), to tell a quiet machine from a
/// shared one in a report; `None` where the OS has no such file.
pub fn load_average() -> Option<[f64; 3]> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut it = text.split_whitespace().map(str::parse::<f64>);
    Some([it.next()?.ok()?, it.next()?.ok()?, it.next()?.ok()?])
}

/// Where and how a benchmark binary ran, for its report (flattened into its JSON): the
/// machine, the build profile, and the load averages when it started and ended.
#[derive(serde::Serialize)]
pub struct RunInfo {
    /// [`machine`].
    pub machine: String,
    /// [`profile`].
    pub profile: &'static str,
    /// Load averages (1, 5, 15 minutes) when the run started.
    pub load_before: Option<[f64; 3]>,
    /// And when it ended.
    pub load_after: Option<[f64; 3]>,
}

impl RunInfo {
    /// Taken when the run starts.
    pub fn start() -> Self {
        Self {
            machine: machine(),
            profile: profile(),
            load_before: load_average(),
            load_after: None,
        }
    }

    /// The same, with the load averages when the run ended.
    pub fn finish(self) -> Self {
        Self {
            load_after: load_average(),
            ..self
        }
    }

    /// The first words of a report's header line.
    pub fn header(&self) -> String {
        format!(
            "machine: {}; profile: {}; load average (1/5/15 min) {} at start, {} at end",
            self.machine,
            self.profile,
            format_load(self.load_before),
            format_load(self.load_after)
        )
    }
}

/// Load averages as `1.23 / 2.34 / 3.45`, or `unknown`.
pub fn format_load(load: Option<[f64; 3]>) -> String {
    load.map_or("unknown".into(), |[a, b, c]| {
        format!("{a:.2} / {b:.2} / {c:.2}")
    })
}

/// Writes a bench's report as JSON to `path` when one was given (`--json PATH`).
pub fn write_json<T: serde::Serialize>(
    path: Option<&std::path::Path>,
    report: &T,
) -> anyhow::Result<()> {
    if let Some(path) = path {
        let json = serde_json::to_vec_pretty(report)?;
        std::fs::write(path, json)
            .map_err(|e| anyhow::anyhow!("couldn't write {}: {e}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// Record `i` of a bench as an app sends it: [`session_values`] encrypted and proven under
/// `app` as record `rec-<i>` (six digits) of `tenant` in `cohort`, recorded a minute after
/// the one before, with `transcript` sealed beside it.
pub fn session_envelope(
    app: &blindsight_crypto::AppBundle,
    tenant: &str,
    i: u32,
    cohort: &str,
    transcript: &str,
) -> anyhow::Result<blindsight_crypto::RecordEnvelope> {
    let schema = blindsight_crypto::schemas::session_v1();
    let meta = RecordMetadata {
        tenant: tenant.into(),
        key_id: app.key_id().into(),
        schema_id: schema.id.clone(),
        schema_version: schema.version,
        record_id: format!("rec-{i:06}"),
        cohort: Some(cohort.into()),
        lexicon_version: Some("lex-1".into()),
        recorded_at: Some(1_790_000_000 + u64::from(i) * 60),
    };
    let sealed_transcript = blindsight_crypto::seal(
        app.transcript_key(),
        &meta.transcript_aad(),
        transcript.as_bytes(),
    )?;
    let list = blindsight_crypto::encrypt_record(
        app,
        &schema,
        &meta,
        &session_values(i),
        blindsight_crypto::transcript_digest(&sealed_transcript).as_ref(),
    )?;
    Ok(blindsight_crypto::RecordEnvelope {
        sealed_transcript,
        proven_list: list.encode()?,
        metadata: meta,
    })
}
