//! Decrypted results as people and programs read them: an aligned table, CSV (one line per
//! statistic) and JSON.

use std::fmt::Write as _;

use blindsight_crypto::compute::{Aggregate, AggregateValue, Tier};

use super::{AggregateRow, JobResults, Rows, bucket_labels, mean};

/// An aggregate's values as (statistic, value) pairs: what the CSV has one line for each.
pub fn statistics(row: &AggregateRow) -> Vec<(String, String)> {
    let fmt_mean =
        |sum: i64, count: u64| mean(sum, count).map_or(String::new(), |m| format!("{m:.4}"));
    match &row.value {
        AggregateValue::Count { count } => vec![("count".into(), count.to_string())],
        AggregateValue::Sum { sum } => vec![("sum".into(), sum.to_string())],
        AggregateValue::Mean { sum, count } | AggregateValue::SumWhere { sum, count } => vec![
            ("mean".into(), fmt_mean(*sum, *count)),
            ("sum".into(), sum.to_string()),
            ("count".into(), count.to_string()),
        ],
        AggregateValue::Min { value } => vec![("min".into(), value.to_string())],
        AggregateValue::Max { value } => vec![("max".into(), value.to_string())],
        AggregateValue::Histogram { buckets } => {
            let labels = match &row.aggregate {
                Aggregate::Histogram { edges, .. } if edges.len() + 1 == buckets.len() => {
                    bucket_labels(edges)
                }
                _ => (0..buckets.len()).map(|i| format!("bucket {i}")).collect(),
            };
            labels
                .into_iter()
                .zip(buckets)
                .map(|(l, c)| (l, c.to_string()))
                .collect()
        }
        AggregateValue::CountAtLeast { count } => vec![("count".into(), count.to_string())],
    }
}

/// Quotes a CSV field when it needs it (RFC 4180).
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// Lays out rows as aligned columns (the first left-aligned, the others right-aligned when
/// numeric).
pub fn columns(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let numeric: Vec<bool> = (0..header.len())
        .map(|i| {
            i > 0
                && rows
                    .iter()
                    .all(|r| r[i].parse::<f64>().is_ok() || r[i].is_empty())
        })
        .collect();
    let mut out = String::new();
    let line = |out: &mut String, cells: &[&str]| {
        let mut parts = Vec::with_capacity(cells.len());
        for (i, cell) in cells.iter().enumerate() {
            let w = widths[i];
            parts.push(if numeric[i] {
                format!("{cell:>w$}")
            } else {
                format!("{cell:<w$}")
            });
        }
        let _ = writeln!(out, "{}", parts.join("  ").trim_end());
    };
    line(&mut out, header);
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    let rule: Vec<&str> = rule.iter().map(String::as_str).collect();
    line(&mut out, &rule);
    for row in rows {
        let cells: Vec<&str> = row.iter().map(String::as_str).collect();
        line(&mut out, &cells);
    }
    out
}

impl JobResults {
    /// `risk_score` or `aggregate`.
    pub fn kind(&self) -> &'static str {
        match self.rows {
            Rows::Risk(_) => "risk_score",
            Rows::Aggregate(_) => "aggregate",
        }
    }

    /// A human-readable table, headed by the job, function and record count. Risk results
    /// end with the number of records per tier.
    pub fn table(&self) -> String {
        let mut out = format!(
            "job {} ({}, key set {}): {} record(s)\n\n",
            self.job_id, self.function, self.key_id, self.records
        );
        match &self.rows {
            Rows::Risk(rows) => {
                let cells: Vec<Vec<String>> = rows
                    .iter()
                    .map(|r| {
                        vec![
                            r.record_id.clone(),
                            r.score.to_string(),
                            r.tier.name().to_owned(),
                        ]
                    })
                    .collect();
                out.push_str(&columns(&["record", "score", "tier"], &cells));
                let count = |t: Tier| rows.iter().filter(|r| r.tier == t).count();
                let _ = writeln!(
                    out,
                    "\ntiers: high {}, moderate {}, low {}, none {}",
                    count(Tier::High),
                    count(Tier::Moderate),
                    count(Tier::Low),
                    count(Tier::None)
                );
            }
            Rows::Aggregate(rows) => {
                let mut cells = Vec::new();
                for row in rows {
                    let by = row.computed_by.name().to_owned();
                    match &row.value {
                        AggregateValue::Histogram { .. } => {
                            cells.push(vec![row.aggregate.describe(), String::new(), by]);
                            for (label, value) in statistics(row) {
                                cells.push(vec![format!("  {label}"), value, String::new()]);
                            }
                        }
                        value => cells.push(vec![row.aggregate.describe(), value.to_string(), by]),
                    }
                }
                out.push_str(&columns(&["aggregate", "result", "computed by"], &cells));
                if let Some(p) = &self.privacy {
                    let _ = writeln!(
                        out,
                        "\n(ε = {}, δ = {:e})-differentially private: every lane result carries \
                         noise, clamped to its possible range; the count is exact",
                        p.epsilon, p.delta
                    );
                }
            }
        }
        out
    }

    /// CSV with a header line. Risk: `record_id,score,tier`, one line per record. Aggregate:
    /// `aggregate,statistic,value`, one line per statistic (a mean gives `mean`, `sum` and
    /// `count`; a histogram one line per bucket, e.g. `[5, 10)`).
    pub fn to_csv(&self) -> String {
        let mut out = String::new();
        match &self.rows {
            Rows::Risk(rows) => {
                out.push_str("record_id,score,tier\n");
                for r in rows {
                    let _ = writeln!(out, "{},{},{}", csv_field(&r.record_id), r.score, r.tier);
                }
            }
            Rows::Aggregate(rows) => {
                out.push_str("aggregate,statistic,value\n");
                for row in rows {
                    let what = csv_field(&row.aggregate.describe());
                    for (stat, value) in statistics(row) {
                        let _ = writeln!(out, "{what},{},{value}", csv_field(&stat));
                    }
                }
            }
        }
        out
    }

    /// The results as JSON: `job_id`, `key_id`, `function`, `kind`, `records`, then `rows`
    /// (risk: `record_id`, `score`, `tier`) or `aggregates` (each with the `aggregate` as
    /// requested, its `description` and its `value`).
    pub fn to_json(&self) -> serde_json::Value {
        let mut doc = serde_json::json!({
            "job_id": self.job_id,
            "key_id": self.key_id,
            "function": self.function,
            "kind": self.kind(),
            "records": self.records,
        });
        match &self.rows {
            Rows::Risk(rows) => doc["rows"] = serde_json::json!(rows),
            Rows::Aggregate(rows) => {
                doc["aggregates"] = rows
                    .iter()
                    .map(|r| {
                        let mut v = serde_json::json!({
                            "aggregate": r.aggregate,
                            "description": r.aggregate.describe(),
                            "value": r.value,
                            "computed_by": r.computed_by,
                        });
                        if let AggregateValue::Mean { sum, count }
                        | AggregateValue::SumWhere { sum, count } = r.value
                        {
                            v["mean"] = serde_json::json!(mean(sum, count));
                        }
                        v
                    })
                    .collect();
            }
        }
        doc
    }

    /// One flat JSON object per row, the shape the language bindings return: risk rows are
    /// `record_id`, `score`, `tier`; aggregate rows are `aggregate` (its description), the
    /// aggregate's own fields (`op`, `field`, …), its value's (`count`, `sum`, `value`,
    /// `buckets`), `mean` where there is one, `labels` for histogram buckets, and
    /// `computed_by`.
    pub fn flat_rows(&self) -> Vec<serde_json::Value> {
        use serde_json::{Map, Value, json};
        let fields = |v: Value| match v {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        match &self.rows {
            Rows::Risk(rows) => rows
                .iter()
                .map(|r| json!({ "record_id": r.record_id, "score": r.score, "tier": r.tier.name() }))
                .collect(),
            Rows::Aggregate(rows) => rows
                .iter()
                .map(|r| {
                    let mut out = Map::new();
                    out.insert("aggregate".into(), r.aggregate.describe().into());
                    out.extend(fields(json!(r.aggregate)));
                    out.extend(fields(json!(r.value)));
                    if let AggregateValue::Mean { sum, count }
                    | AggregateValue::SumWhere { sum, count } = r.value
                    {
                        out.insert("mean".into(), json!(mean(sum, count)));
                    }
                    if let AggregateValue::Histogram { .. } = r.value {
                        let labels: Vec<String> =
                            statistics(r).into_iter().map(|(l, _)| l).collect();
                        out.insert("labels".into(), json!(labels));
                    }
                    out.insert("computed_by".into(), json!(r.computed_by));
                    Value::Object(out)
                })
                .collect(),
        }
    }
}
