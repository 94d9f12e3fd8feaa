//! Job results for the key holder: a finished job's encrypted output, checked against what the
//! job asked for, decrypted with the keystore's client key, and presented as a table, CSV or
//! JSON.
//!
//! The server chooses the output's layout, so nothing is trusted from it that the request
//! does not imply: a risk job's output must hold a score and a tier for exactly the records the
//! job selected, in order, under the model's function id; an aggregate job's output must have
//! exactly the layout the key holder's own compilation of the query gives for the cohort size
//! (the one clear value the server reports). Anything else is
//! [`Error::UnexpectedOutput`] and nothing is reported.
//!
//! ```no_run
//! # fn main() -> blindsight_client::Result<()> {
//! use blindsight_client::{api::Client, keystore, results};
//! let client = Client::new("http://127.0.0.1:8080", "bst_…");
//! let secret = keystore::load("keys/k1.keystore".as_ref(), "passphrase")?;
//! let job = client.wait_for_job("job-…", |_| {}, std::time::Duration::from_secs(600))?;
//! let results = results::fetch(&client, &job.job_id, &secret)?;
//! println!("{}", results.table());
//! # Ok(()) }
//! ```
//!

use blindsight_crypto::compute::{
    AGGREGATE_FUNCTION, Aggregate, AggregateQuery, AggregateValue, ComputedBy, JobOutput, Tier,
    check_shards,
};
use blindsight_crypto::schemas::builtin;
use blindsight_crypto::{FieldType, RecordSchema, SecretKeys};
use serde::{Deserialize, Serialize};

use blindsight_proto::ListedSpec;

use crate::api::{Client, Job, JobRequest, JobStatus};
use crate::{Error, Result};

mod render;

pub use render::{columns, statistics};

/// One record's decrypted risk score.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RiskRow {
    /// The record.
    pub record_id: String,
    /// Its score under the job's model.
    pub score: u64,
    /// Its tier.
    pub tier: Tier,
}

/// One decrypted aggregate, with what was asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AggregateRow {
    /// The aggregate as requested.
    pub aggregate: Aggregate,
    /// Its value, in the field's true units.
    pub value: AggregateValue,
    /// Which path computed it: the additive lane, the FHE path, or none (the clear count).
    pub computed_by: ComputedBy,
}

/// The decrypted rows of a job.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rows {
    /// A risk job: one row per record, in the order the job selected them.
    Risk(Vec<RiskRow>),
    /// An aggregate job: one row per aggregate, in query order.
    Aggregate(Vec<AggregateRow>),
}

/// A job's decrypted results.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobResults {
    /// The job.
    pub job_id: String,
    /// The key set it ran under.
    pub key_id: String,
    /// The function that produced the output (`risk_score/crisis-v1`, `aggregate/v2`).
    pub function: String,
    /// Records the job read.
    pub records: u64,
    /// The results.
    pub rows: Rows,
    /// The differential privacy the results carry, when the query asked for it: every lane
    /// result is noisy (`blindsight_crypto::dp`).
    pub privacy: Option<blindsight_crypto::dp::Privacy>,
}

/// Reads a listed job's spec (`blindsight_proto::ListedSpec`), naming the job when it is not
/// understood.
fn parse_spec(job: &Job) -> Result<ListedSpec> {
    ListedSpec::parse(&job.spec).map_err(|e| Error::UnexpectedOutput {
        job_id: job.job_id.clone(),
        reason: format!("the job's spec is not understood: {e}"),
    })
}

/// Fetches a finished job's output and decrypts it with `secret` (keyholder token). A job that
/// is still queued or running is [`Error::JobNotFinished`] (wait with
/// [`Client::wait_for_job`] first), a failed one [`Error::JobFailed`].
pub fn fetch(client: &Client, job_id: &str, secret: &SecretKeys) -> Result<JobResults> {
    let job = client.job(job_id)?;
    match job.status {
        JobStatus::Succeeded => {}
        JobStatus::Failed => {
            return Err(Error::JobFailed {
                job_id: job.job_id,
                reason: job.error.unwrap_or_else(|| "no reason recorded".into()),
            });
        }
        status => {
            return Err(Error::JobNotFinished {
                job_id: job.job_id,
                status,
            });
        }
    }
    check_keystore(&job, secret)?;
    let output = client.job_result(job_id)?;
    decrypt(&job, &output, secret)
}

/// Decrypts a job's output envelope (as [`Client::job_result`] returns it) with `secret`,
/// reading the job's schema from the built-in ones.
pub fn decrypt(job: &Job, output: &[u8], secret: &SecretKeys) -> Result<JobResults> {
    let spec = parse_spec(job)?;
    let select = spec.request.select();
    let schema = builtin(&select.schema_id, select.schema_version);
    decrypt_spec(job, &spec, output, secret, schema.as_ref())
}

/// [`decrypt`] for a job over a schema that is not built in (the one the key holder
/// registered).
pub fn decrypt_with_schema(
    job: &Job,
    output: &[u8],
    secret: &SecretKeys,
    schema: &RecordSchema,
) -> Result<JobResults> {
    let spec = parse_spec(job)?;
    decrypt_spec(job, &spec, output, secret, Some(schema))
}

fn check_keystore(job: &Job, secret: &SecretKeys) -> Result<()> {
    if secret.key_id() != job.key_id {
        return Err(Error::WrongKeystore {
            job_id: job.job_id.clone(),
            job_key_id: job.key_id.clone(),
            keystore_key_id: secret.key_id().to_owned(),
        });
    }
    Ok(())
}

fn decrypt_spec(
    job: &Job,
    spec: &ListedSpec,
    output: &[u8],
    secret: &SecretKeys,
    schema: Option<&RecordSchema>,
) -> Result<JobResults> {
    check_keystore(job, secret)?;
    let unexpected = |reason: String| Error::UnexpectedOutput {
        job_id: job.job_id.clone(),
        reason,
    };
    let select = spec.request.select();
    if let Some(schema) = schema
        && (schema.id != select.schema_id || schema.version != select.schema_version)
    {
        return Err(unexpected(format!(
            "the job reads schema {}@{}, not {}@{}",
            select.schema_id, select.schema_version, schema.id, schema.version
        )));
    }
    let out = JobOutput::decode(output, &job.key_id)?;
    let manifest = &out.manifest;
    let records = manifest.clear.get("records").copied();
    let selected = match &spec.records {
        Some(ids) => Some(ids.len() as u64),
        None if !spec.rollup.is_empty() => Some(spec.rollup.iter().map(|p| p.records).sum()),
        None => None,
    };
    if let (Some(n), Some(selected)) = (records, selected)
        && n != selected
    {
        return Err(unexpected(format!(
            "the output covers {n} records, the job selected {selected}"
        )));
    }
    let rows = match &spec.request {
        JobRequest::RiskScore { model, .. } => {
            let function = match &spec.model {
                Some(m) => {
                    if (m.id.as_str(), m.version) != (model.id.as_str(), model.version) {
                        return Err(unexpected(format!(
                            "the job asked for model {}@{} but froze {}@{}",
                            model.id, model.version, m.id, m.version
                        )));
                    }
                    m.function_id()
                }
                None => format!("risk_score/{}-v{}", model.id, model.version),
            };
            if manifest.function != function {
                return Err(unexpected(format!(
                    "it was produced by {:?}, not {function:?}",
                    manifest.function
                )));
            }
            // The score's type follows from the model, when the model and schema are known.
            let score_type = match (&spec.model, schema) {
                (Some(m), Some(s)) => Some(m.compile(s)?.score_type),
                _ => None,
            };
            Rows::Risk(
                risk_rows(manifest, score_type, spec.records.as_deref(), &out, secret)
                    .map_err(unexpected)?,
            )
        }
        JobRequest::Aggregate { query, .. } => {
            if manifest.function != AGGREGATE_FUNCTION {
                return Err(unexpected(format!(
                    "it was produced by {:?}, not {AGGREGATE_FUNCTION:?}",
                    manifest.function
                )));
            }
            let schema = schema.ok_or_else(|| Error::UnknownSchema {
                job_id: job.job_id.clone(),
                schema_id: select.schema_id.clone(),
                schema_version: select.schema_version,
            })?;
            let n = records
                .ok_or_else(|| unexpected("it does not say how many records it covers".into()))?;
            let shards = blindsight_proto::rollup_shards(&spec.rollup).map_err(unexpected)?;
            Rows::Aggregate(
                aggregate_rows(query, schema, n, shards, &out, secret).map_err(unexpected)?,
            )
        }
    };
    let records = match &rows {
        Rows::Risk(r) => r.len() as u64,
        Rows::Aggregate(_) => records.unwrap_or_default(),
    };
    Ok(JobResults {
        job_id: job.job_id.clone(),
        key_id: job.key_id.clone(),
        function: manifest.function.clone(),
        records,
        rows,
        privacy: match &spec.request {
            JobRequest::Aggregate { query, .. } => query.privacy,
            JobRequest::RiskScore { .. } => None,
        },
    })
}

/// Reads `<record id>/score`, `<record id>/tier` pairs, checking the ids against the job's
/// selection when it is known.
fn risk_rows(
    manifest: &blindsight_crypto::compute::OutputManifest,
    score_type: Option<FieldType>,
    selected: Option<&[String]>,
    out: &JobOutput,
    secret: &SecretKeys,
) -> std::result::Result<Vec<RiskRow>, String> {
    let outputs = &manifest.outputs;
    if !outputs.len().is_multiple_of(2) {
        return Err(format!(
            "{} results, not a score and a tier per record",
            outputs.len()
        ));
    }
    let mut ids = Vec::with_capacity(outputs.len() / 2);
    for pair in outputs.chunks(2) {
        let score = pair[0]
            .label
            .strip_suffix("/score")
            .ok_or_else(|| format!("result {:?} is not a score", pair[0].label))?;
        let tier = pair[1]
            .label
            .strip_suffix("/tier")
            .ok_or_else(|| format!("result {:?} is not a tier", pair[1].label))?;
        if score != tier {
            return Err(format!(
                "a score for {score:?} is followed by a tier for {tier:?}"
            ));
        }
        if pair[1].ty != FieldType::U2 {
            return Err(format!(
                "the tier of {score:?} is a {:?}, not a u2",
                pair[1].ty
            ));
        }
        if let Some(ty) = score_type
            && pair[0].ty != ty
        {
            return Err(format!(
                "the score of {score:?} is a {:?}; the model's scores are {ty:?}",
                pair[0].ty
            ));
        }
        ids.push(score.to_owned());
    }
    if let Some(selected) = selected
        && ids != selected
    {
        return Err(format!(
            "it scores records {} but the job selected {}",
            preview(&ids),
            preview(selected)
        ));
    }
    let values = out
        .decrypt(secret.client_key())
        .map_err(|e| e.to_string())?;
    ids.into_iter()
        .zip(values.chunks(2))
        .map(|(record_id, v)| {
            let tier = Tier::from_value(v[1])
                .ok_or_else(|| format!("the tier of {record_id:?} decrypts to {}", v[1]))?;
            Ok(RiskRow {
                record_id,
                score: v[0],
                tier,
            })
        })
        .collect()
}

fn preview(ids: &[String]) -> String {
    let shown: Vec<&str> = ids.iter().take(3).map(String::as_str).collect();
    let more = ids.len().saturating_sub(shown.len());
    if more > 0 {
        format!("{} and {more} more", shown.join(", "))
    } else {
        format!("[{}]", shown.join(", "))
    }
}

/// Compiles the query as the key holder asked it for the reported cohort size (in the shards
/// the job's rollup parts give, or equal shards), requires the output's layout to be exactly
/// that, and interprets the decrypted values.
fn aggregate_rows(
    query: &AggregateQuery,
    schema: &RecordSchema,
    records: u64,
    shards: Option<Vec<u64>>,
    out: &JobOutput,
    secret: &SecretKeys,
) -> std::result::Result<Vec<AggregateRow>, String> {
    let n = usize::try_from(records).map_err(|_| format!("{records} records"))?;
    let compiled = query.compile(schema, n).map_err(|e| e.to_string())?;
    let map = schema.slot_map().map_err(|e| e.to_string())?;
    let plan = match shards {
        Some(shards) => {
            check_shards(records, &shards).map_err(|e| e.to_string())?;
            compiled.lane_plan_for_shards(&map, shards)
        }
        None => compiled.lane_plan(&map),
    };
    let expected_lane = (!plan.manifest.outputs.is_empty()).then(|| plan.manifest.clone());
    if out.manifest.lane != expected_lane {
        return Err(format!(
            "its lane layout is not the one the query gives for {records} records over schema \
             {}@{} ({} lane results where {} were expected)",
            schema.id,
            schema.version,
            out.manifest.lane.as_ref().map_or(0, |l| l.outputs.len()),
            plan.manifest.outputs.len()
        ));
    }
    let expected = compiled.fhe_outputs(&plan);
    if expected != out.manifest.outputs {
        let first = expected
            .iter()
            .zip(&out.manifest.outputs)
            .find(|(a, b)| a != b)
            .map(|(a, b)| {
                format!(
                    "; first difference: {} ({:?}) where {} ({:?}) was expected",
                    b.label, b.ty, a.label, a.ty
                )
            })
            .unwrap_or_default();
        return Err(format!(
            "{} results where the query gives {} for {records} records{first}",
            out.manifest.outputs.len(),
            expected.len()
        ));
    }
    let values = out
        .decrypt(secret.client_key())
        .map_err(|e| e.to_string())?;
    let lane = match &out.manifest.lane {
        Some(lane) => {
            let lane_secret = secret.lane_secret().map_err(|e| e.to_string())?;
            lane.decrypt(&lane_secret, &out.lane)
                .map_err(|e| e.to_string())?
        }
        None => Vec::new(),
    };
    let interpreted = compiled
        .interpret_split(&plan, &values, &lane)
        .map_err(|e| e.to_string())?;
    Ok(query
        .aggregates
        .iter()
        .cloned()
        .zip(interpreted)
        .zip(plan.computed_by(query))
        .map(|((aggregate, value), computed_by)| AggregateRow {
            aggregate,
            value,
            computed_by,
        })
        .collect())
}

/// The buckets of a histogram with `edges`: `< e1`, `[e1, e2)`, …, `>= en`.
fn bucket_labels(edges: &[i64]) -> Vec<String> {
    let mut labels = Vec::with_capacity(edges.len() + 1);
    if let Some(first) = edges.first() {
        labels.push(format!("< {first}"));
    }
    for w in edges.windows(2) {
        labels.push(format!("[{}, {})", w[0], w[1]));
    }
    if let Some(last) = edges.last() {
        labels.push(format!(">= {last}"));
    }
    labels
}

fn mean(sum: i64, count: u64) -> Option<f64> {
    (count > 0).then(|| sum as f64 / count as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aggregate_results() -> JobResults {
        JobResults {
            job_id: "job-1".into(),
            key_id: "k1".into(),
            function: AGGREGATE_FUNCTION.into(),
            records: 5,
            privacy: None,
            rows: Rows::Aggregate(vec![
                AggregateRow {
                    aggregate: Aggregate::Count,
                    value: AggregateValue::Count { count: 5 },
                    computed_by: ComputedBy::Clear,
                },
                AggregateRow {
                    aggregate: Aggregate::Mean {
                        field: "mood_change".into(),
                    },
                    value: AggregateValue::Mean { sum: 12, count: 5 },
                    computed_by: ComputedBy::Lane,
                },
                AggregateRow {
                    aggregate: Aggregate::Histogram {
                        field: "phq9_total".into(),
                        edges: vec![5, 10],
                    },
                    value: AggregateValue::Histogram {
                        buckets: vec![2, 1, 2],
                    },
                    computed_by: ComputedBy::Fhe,
                },
            ]),
        }
    }

    #[test]
    fn histogram_buckets_are_labelled_by_their_edges() {
        assert_eq!(
            bucket_labels(&[5, 10, 15]),
            ["< 5", "[5, 10)", "[10, 15)", ">= 15"]
        );
        assert_eq!(bucket_labels(&[1]), ["< 1", ">= 1"]);
    }

    #[test]
    fn aggregate_results_render_as_table_csv_and_json() {
        let r = aggregate_results();
        let table = r.table();
        assert!(
            table.contains("job job-1 (aggregate/v2, key set k1): 5 record(s)"),
            "{table}"
        );
        assert!(table.contains("mean(mood_change)"), "{table}");
        assert!(table.contains("2.40 (sum 12 / 5)"), "{table}");
        assert!(
            table
                .lines()
                .any(|l| l.trim_start().starts_with("[5, 10)") && l.ends_with('1')),
            "{table}"
        );

        let csv = r.to_csv();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], "aggregate,statistic,value");
        assert_eq!(lines[1], "count,count,5");
        assert_eq!(lines[2], "mean(mood_change),mean,2.4000");
        // Descriptions and bucket labels with commas are quoted.
        assert!(
            lines.contains(&"\"histogram(phq9_total; [5, 10])\",\"[5, 10)\",1"),
            "{csv}"
        );

        let json = r.to_json();
        assert_eq!(json["kind"], "aggregate");
        assert_eq!(json["aggregates"][1]["value"]["sum"], 12);
        assert_eq!(json["aggregates"][1]["mean"], 2.4);
        assert_eq!(json["aggregates"][2]["aggregate"]["edges"][1], 10);

        let flat = r.flat_rows();
        assert_eq!(flat[1]["aggregate"], "mean(mood_change)");
        assert_eq!(flat[1]["sum"], 12);
        assert_eq!(flat[1]["mean"], 2.4);
        assert_eq!(flat[2]["labels"][1], "[5, 10)");
        assert!(flat.iter().all(|row| row.get("computed_by").is_some()));
    }

    #[test]
    fn risk_results_render_with_tier_counts() {
        let r = JobResults {
            job_id: "job-2".into(),
            key_id: "k1".into(),
            function: "risk_score/crisis-v1".into(),
            records: 2,
            privacy: None,
            rows: Rows::Risk(vec![
                RiskRow {
                    record_id: "s,1".into(),
                    score: 20,
                    tier: Tier::Low,
                },
                RiskRow {
                    record_id: "s-2".into(),
                    score: 6,
                    tier: Tier::High,
                },
            ]),
        };
        let table = r.table();
        assert!(
            table.contains("tiers: high 1, moderate 0, low 1, none 0"),
            "{table}"
        );
        assert_eq!(
            r.to_csv(),
            "record_id,score,tier\n\"s,1\",20,low\ns-2,6,high\n"
        );
        assert_eq!(r.to_json()["rows"][1]["tier"], "high");
        let flat = serde_json::json!({ "record_id": "s,1", "score": 20, "tier": "low" });
        assert_eq!(r.flat_rows()[0], flat);
    }

    #[test]
    fn specs_are_read_frozen_or_bare() {
        let job = |spec: &str| Job {
            job_id: "job-1".into(),
            tenant_id: "t".into(),
            key_id: "k1".into(),
            kind: "aggregate".into(),
            spec: spec.into(),
            status: JobStatus::Succeeded,
            attempts: 1,
            max_attempts: 3,
            progress_done: 2,
            progress_total: 2,
            error: None,
            created_at: 0,
            started_at: None,
            finished_at: None,
            tasks: None,
        };
        let frozen = r#"{"request":{"kind":"aggregate","key_id":"k1","query":{"aggregates":[{"op":"count"}]},
            "select":{"schema_id":"session","schema_version":1,"cohort":"a"}},"records":["r1","r2"],"new_field":1}"#;
        let spec = parse_spec(&job(frozen)).unwrap();
        assert_eq!(
            spec.records.as_deref(),
            Some(&["r1".to_owned(), "r2".to_owned()][..])
        );
        assert_eq!(spec.request.select().cohort.as_deref(), Some("a"));
        let bare = r#"{"kind":"risk_score","key_id":"k1","model":{"id":"crisis","version":1},
            "select":{"schema_id":"session","schema_version":1}}"#;
        assert_eq!(parse_spec(&job(bare)).unwrap().request.kind(), "risk_score");
        let err = parse_spec(&job("{}")).err().unwrap().to_string();
        assert!(err.contains("spec is not understood"), "{err}");
    }
}
