//! Cohort analytics on ciphertext: count, sum, mean, min, max, histogram, count at or above a
//! threshold, and a sum (with its count) where another field is at or above a threshold.
//!
//! A query names schema fields or derived fields (`phq9_total`, `gad7_total`,
//! `mood_change`); thresholds and bucket edges are in the field's true units. The server
//! computes each derived field and each distinct flag once per record, then one
//! multi-operand sum per output over the whole cohort, widened so it cannot overflow: a sum's
//! width holds `records × largest value`. A histogram is returned as the number of records at
//! or above each edge; bucket counts are their differences, taken after decryption. Means are
//! sums and counts, divided after decryption. The record count is not secret (the server
//! selected the records) and travels in clear.
//!
//! Size: one concern in one place: the query language, its compilation against a schema, and
//! the three evaluations that must agree (optimised on ciphertext, straightforward on
//! ciphertext for the benchmarks, in clear for the tests); about 50 lines are tests.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use tfhe::integer::{IntegerCiphertext, RadixCiphertext};
use tfhe::prelude::*;
use tfhe::shortint::Ciphertext;
use tfhe::{FheBool, FheUint32};

use super::eval::{Columns, Eval, to_radix};
use super::features::{Derived, FeatureRef, blocks_for, result_type_for};
use super::output::OutputSpec;
use super::risk::feature16;
use crate::record::EncryptedValue;
use crate::schema::{RecordSchema, Value};
use crate::{Error, Result};

/// The most aggregates one query may ask for.
pub const MAX_AGGREGATES: usize = 32;
/// The most bucket edges one histogram may have.
pub const MAX_EDGES: usize = 16;

/// One aggregate over the selected cohort.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Aggregate {
    /// The number of records (in clear: the server selected them).
    Count,
    /// The sum of a field.
    Sum {
        /// The field.
        field: String,
    },
    /// The mean of a field, as its sum and the record count.
    Mean {
        /// The field.
        field: String,
    },
    /// The smallest value of a field.
    Min {
        /// The field.
        field: String,
    },
    /// The largest value of a field.
    Max {
        /// The field.
        field: String,
    },
    /// Counts per bucket: `[min, e1)`, `[e1, e2)`, …, `[en, max]` for increasing edges.
    Histogram {
        /// The field.
        field: String,
        /// Increasing bucket edges (each the first value of a bucket).
        edges: Vec<i64>,
    },
    /// The number of records whose field is at least `threshold`.
    CountAtLeast {
        /// The field.
        field: String,
        /// The threshold.
        threshold: i64,
    },
    /// The sum of `field` over records whose `where_field` is at least `at_least`, and their
    /// number (so a conditional mean is one division away).
    SumWhere {
        /// The field summed.
        field: String,
        /// The field tested.
        where_field: String,
        /// The threshold.
        at_least: i64,
    },
}

impl Aggregate {
    /// A short human-readable description, e.g. `mean(mood_change)`.
    pub fn describe(&self) -> String {
        match self {
            Aggregate::Count => "count".into(),
            Aggregate::Sum { field } => format!("sum({field})"),
            Aggregate::Mean { field } => format!("mean({field})"),
            Aggregate::Min { field } => format!("min({field})"),
            Aggregate::Max { field } => format!("max({field})"),
            Aggregate::Histogram { field, edges } => format!("histogram({field}; {edges:?})"),
            Aggregate::CountAtLeast { field, threshold } => {
                format!("count({field} >= {threshold})")
            }
            Aggregate::SumWhere {
                field,
                where_field,
                at_least,
            } => format!("sum({field} where {where_field} >= {at_least})"),
        }
    }
}

/// A list of aggregates over one schema.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AggregateQuery {
    /// The aggregates, computed in one pass over the cohort.
    pub aggregates: Vec<Aggregate>,
    /// Differential privacy for the results (`crate::dp`): the server adds discrete Gaussian
    /// noise to every lane ciphertext, spending the tenant's privacy budget. Only for queries
    /// the lane answers entirely, and not for `min` or `max`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privacy: Option<crate::dp::Privacy>,
}

/// A decrypted (or clear-reference) aggregate, in the field's true units.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum AggregateValue {
    /// Records in the cohort.
    Count {
        /// The count.
        count: u64,
    },
    /// A sum.
    Sum {
        /// The sum.
        sum: i64,
    },
    /// A mean as sum and count.
    Mean {
        /// The sum.
        sum: i64,
        /// The count.
        count: u64,
    },
    /// A minimum.
    Min {
        /// The value.
        value: i64,
    },
    /// A maximum.
    Max {
        /// The value.
        value: i64,
    },
    /// Records per bucket (one more bucket than edges).
    Histogram {
        /// The counts.
        buckets: Vec<u64>,
    },
    /// Records at or above the threshold.
    CountAtLeast {
        /// The count.
        count: u64,
    },
    /// A conditional sum and the number of records it covers.
    SumWhere {
        /// The sum.
        sum: i64,
        /// Records whose condition held.
        count: u64,
    },
}

impl std::fmt::Display for AggregateValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mean = |sum: i64, count: u64| {
            if count == 0 {
                "n/a".to_owned()
            } else {
                format!("{:.2}", sum as f64 / count as f64)
            }
        };
        match self {
            AggregateValue::Count { count } => write!(f, "{count}"),
            AggregateValue::Sum { sum } => write!(f, "{sum}"),
            AggregateValue::Mean { sum, count } => {
                write!(f, "{} (sum {sum} / {count})", mean(*sum, *count))
            }
            AggregateValue::Min { value } | AggregateValue::Max { value } => write!(f, "{value}"),
            AggregateValue::Histogram { buckets } => write!(f, "{buckets:?}"),
            AggregateValue::CountAtLeast { count } => write!(f, "{count}"),
            AggregateValue::SumWhere { sum, count } => {
                write!(f, "sum {sum} over {count} (mean {})", mean(*sum, *count))
            }
        }
    }
}

/// What one aggregate reads, resolved.
#[derive(Clone, Debug)]
pub(super) enum Plan {
    Count,
    Sum {
        f: usize,
        mean: bool,
    },
    Extremum {
        f: usize,
        max: bool,
    },
    AtLeast {
        flags: Vec<usize>,
        edges: Vec<i64>,
        histogram: bool,
    },
    SumWhere {
        f: usize,
        flag: usize,
    },
}

/// A query checked against a schema: the distinct features and flags it needs per record,
/// and its output layout.
#[derive(Clone, Debug)]
pub struct CompiledQuery {
    pub(super) features: Vec<FeatureRef>,
    /// (feature, encoded threshold) per distinct flag.
    pub(super) flags: Vec<(usize, i64)>,
    pub(super) plans: Vec<Plan>,
    records: usize,
    /// ρ (millionths) of zCDP the results are released under, when the query asks for privacy.
    pub(super) privacy: Option<u64>,
}

#[derive(Default)]
struct Resolver {
    features: Vec<FeatureRef>,
    flags: Vec<(usize, i64)>,
}

impl Resolver {
    fn feature(&mut self, schema: &RecordSchema, name: &str) -> Result<usize> {
        let f = FeatureRef::resolve(schema, name)?;
        Ok(match self.features.iter().position(|g| *g == f) {
            Some(i) => i,
            None => {
                self.features.push(f);
                self.features.len() - 1
            }
        })
    }

    /// A flag `feature >= threshold` (threshold in true units).
    fn flag(&mut self, schema: &RecordSchema, name: &str, threshold: i64) -> Result<usize> {
        let f = self.feature(schema, name)?;
        let key = (f, threshold + i64::from(self.features[f].offset()));
        Ok(match self.flags.iter().position(|k| *k == key) {
            Some(i) => i,
            None => {
                self.flags.push(key);
                self.flags.len() - 1
            }
        })
    }
}

impl AggregateQuery {
    /// Checks the query against `schema` for a cohort of `records` and lays out its outputs.
    pub fn compile(&self, schema: &RecordSchema, records: usize) -> Result<CompiledQuery> {
        if self.aggregates.is_empty() || self.aggregates.len() > MAX_AGGREGATES {
            return Err(Error::InvalidQuery(format!(
                "a query has 1 to {MAX_AGGREGATES} aggregates"
            )));
        }
        let mut r = Resolver::default();
        let mut plans = Vec::new();
        for agg in &self.aggregates {
            let ctx = |e: Error| Error::InvalidQuery(format!("{}: {e}", agg.describe()));
            let plan = match agg {
                Aggregate::Count => Plan::Count,
                Aggregate::Sum { field } | Aggregate::Mean { field } => Plan::Sum {
                    f: r.feature(schema, field).map_err(ctx)?,
                    mean: matches!(agg, Aggregate::Mean { .. }),
                },
                Aggregate::Min { field } | Aggregate::Max { field } => Plan::Extremum {
                    f: r.feature(schema, field).map_err(ctx)?,
                    max: matches!(agg, Aggregate::Max { .. }),
                },
                Aggregate::Histogram { field, edges } => {
                    if edges.is_empty() || edges.len() > MAX_EDGES {
                        return Err(ctx(Error::InvalidQuery(format!(
                            "a histogram has 1 to {MAX_EDGES} edges"
                        ))));
                    }
                    if edges.windows(2).any(|w| w[0] >= w[1]) {
                        return Err(ctx(Error::InvalidQuery("edges must increase".into())));
                    }
                    let flags = edges
                        .iter()
                        .map(|&e| r.flag(schema, field, e))
                        .collect::<Result<Vec<_>>>()
                        .map_err(ctx)?;
                    Plan::AtLeast {
                        flags,
                        edges: edges.clone(),
                        histogram: true,
                    }
                }
                Aggregate::CountAtLeast { field, threshold } => Plan::AtLeast {
                    flags: vec![r.flag(schema, field, *threshold).map_err(ctx)?],
                    edges: vec![*threshold],
                    histogram: false,
                },
                Aggregate::SumWhere {
                    field,
                    where_field,
                    at_least,
                } => Plan::SumWhere {
                    f: r.feature(schema, field).map_err(ctx)?,
                    flag: r.flag(schema, where_field, *at_least).map_err(ctx)?,
                },
            };
            plans.push(plan);
        }
        let privacy = match &self.privacy {
            None => None,
            Some(p) => {
                if let Some(a) = self
                    .aggregates
                    .iter()
                    .find(|a| matches!(a, Aggregate::Min { .. } | Aggregate::Max { .. }))
                {
                    return Err(Error::InvalidQuery(format!(
                        "{}: a minimum or maximum is not differentially private (one record \
                         decides it); ask for a histogram of the field instead",
                        a.describe()
                    )));
                }
                Some(p.rho_micro()?)
            }
        };
        Ok(CompiledQuery {
            features: r.features,
            flags: r.flags,
            plans,
            records,
            privacy,
        })
    }

    /// The aggregates computed in clear over clear records (values in schema order): the
    /// reference every decrypted result must match.
    pub fn evaluate_clear(
        &self,
        schema: &RecordSchema,
        records: &[Vec<Value>],
    ) -> Result<Vec<AggregateValue>> {
        let q = self.compile(schema, records.len())?;
        let mut outputs = Vec::new();
        let feature = |f: usize, rec: &Vec<Value>| u64::from(q.features[f].clear_value(rec));
        let flag = |i: usize, rec: &Vec<Value>| {
            let (f, t) = q.flags[i];
            i64::from(q.features[f].clear_value(rec)) >= t
        };
        for plan in &q.plans {
            match plan {
                Plan::Count => {}
                Plan::Sum { f, .. } => outputs.push(records.iter().map(|r| feature(*f, r)).sum()),
                Plan::Extremum { f, max } => {
                    let it = records.iter().map(|r| feature(*f, r));
                    outputs.push(if *max { it.max() } else { it.min() }.unwrap_or(0));
                }
                Plan::AtLeast { flags, .. } => {
                    for &i in flags {
                        outputs.push(records.iter().filter(|r| flag(i, r)).count() as u64);
                    }
                }
                Plan::SumWhere { f, flag: i } => {
                    let kept = records.iter().filter(|r| flag(*i, r));
                    outputs.push(kept.clone().map(|r| feature(*f, r)).sum());
                    outputs.push(kept.count() as u64);
                }
            }
        }
        q.interpret(&outputs)
    }
}

impl CompiledQuery {
    fn sum_max(&self, f: usize) -> u64 {
        self.records as u64 * u64::from(self.features[f].max_value())
    }

    /// Records the query was compiled for.
    pub fn records(&self) -> usize {
        self.records
    }

    /// ρ (millionths) of zCDP the results are released under; `None` without privacy.
    pub fn privacy_rho_micro(&self) -> Option<u64> {
        self.privacy
    }

    /// The encrypted outputs, in list order.
    pub fn outputs(&self) -> Vec<OutputSpec> {
        let count_ty = result_type_for(self.records as u64);
        let mut out = Vec::new();
        for (i, plan) in self.plans.iter().enumerate() {
            match plan {
                Plan::Count => {}
                Plan::Sum { f, .. } => out.push(OutputSpec::new(
                    format!("{i}:sum"),
                    result_type_for(self.sum_max(*f)),
                )),
                Plan::Extremum { f, max } => out.push(OutputSpec::new(
                    format!("{i}:{}", if *max { "max" } else { "min" }),
                    result_type_for(u64::from(self.features[*f].max_value())),
                )),
                Plan::AtLeast { edges, .. } => {
                    for e in edges {
                        out.push(OutputSpec::new(format!("{i}:ge:{e}"), count_ty));
                    }
                }
                Plan::SumWhere { f, .. } => {
                    out.push(OutputSpec::new(
                        format!("{i}:sum"),
                        result_type_for(self.sum_max(*f)),
                    ));
                    out.push(OutputSpec::new(format!("{i}:count"), count_ty));
                }
            }
        }
        out
    }

    /// Turns decrypted outputs (in [`Self::outputs`] order) into aggregate values.
    pub fn interpret(&self, decrypted: &[u64]) -> Result<Vec<AggregateValue>> {
        let expected = self.outputs().len();
        if decrypted.len() != expected {
            return Err(Error::ShapeMismatch(format!(
                "{} decrypted outputs for a query with {expected}",
                decrypted.len()
            )));
        }
        let n = self.records as u64;
        let mut it = decrypted.iter().copied();
        let mut next = || it.next().unwrap_or(0) as i64;
        let mut values = Vec::new();
        for plan in &self.plans {
            values.push(match plan {
                Plan::Count => AggregateValue::Count { count: n },
                Plan::Sum { f, mean } => {
                    let sum = next() - i64::from(self.features[*f].offset()) * n as i64;
                    if *mean {
                        AggregateValue::Mean { sum, count: n }
                    } else {
                        AggregateValue::Sum { sum }
                    }
                }
                Plan::Extremum { f, max } => {
                    let value = next() - i64::from(self.features[*f].offset());
                    if *max {
                        AggregateValue::Max { value }
                    } else {
                        AggregateValue::Min { value }
                    }
                }
                Plan::AtLeast {
                    edges, histogram, ..
                } => {
                    let at_least: Vec<u64> = edges.iter().map(|_| next() as u64).collect();
                    if *histogram {
                        AggregateValue::Histogram {
                            buckets: buckets(n, &at_least),
                        }
                    } else {
                        AggregateValue::CountAtLeast { count: at_least[0] }
                    }
                }
                Plan::SumWhere { f, .. } => {
                    let raw = next();
                    let count = next() as u64;
                    let sum = raw - i64::from(self.features[*f].offset()) * count as i64;
                    AggregateValue::SumWhere { sum, count }
                }
            });
        }
        Ok(values)
    }

    /// Runs the query over the cohort with the optimised evaluation: per record (in
    /// parallel) each feature and flag once, then one multi-operand sum per output (in
    /// parallel). Results are in [`Self::outputs`] order.
    pub fn evaluate(
        &self,
        key: &tfhe::ServerKey,
        records: &[Vec<EncryptedValue>],
    ) -> Result<Vec<RadixCiphertext>> {
        if records.len() != self.records {
            return Err(Error::ShapeMismatch(format!(
                "the query was compiled for {} records, {} were given",
                self.records,
                records.len()
            )));
        }
        self.evaluate_partial(key, records)
    }

    /// [`Self::evaluate`] over one task's share of the cohort (at least one record, at most
    /// the cohort): every result already has its output type's width (sized for the whole
    /// cohort), so [`Self::merge_partials`] combines the tasks' results into the cohort's.
    pub fn evaluate_partial(
        &self,
        key: &tfhe::ServerKey,
        records: &[Vec<EncryptedValue>],
    ) -> Result<Vec<RadixCiphertext>> {
        if records.is_empty() || records.len() > self.records {
            return Err(Error::ShapeMismatch(format!(
                "a share of 1 to {} records was expected, {} were given",
                self.records,
                records.len()
            )));
        }
        let ev = Eval::new(key.as_ref());
        let needs_masked: Vec<(usize, usize)> = self
            .plans
            .iter()
            .filter_map(|p| match p {
                Plan::SumWhere { f, flag } => Some((*f, *flag)),
                _ => None,
            })
            .collect();
        let per_record: Vec<PerRecord> = records
            .par_iter()
            .map(|values| {
                let features: Vec<RadixCiphertext> = self
                    .features
                    .par_iter()
                    .map(|f| feature_value(&ev, f, values))
                    .collect();
                let flags: Vec<Ciphertext> = self
                    .flags
                    .par_iter()
                    .map(|&(f, t)| {
                        let max = u64::from(self.features[f].max_value());
                        if t <= 0 {
                            ev.trivial_block(1)
                        } else {
                            ev.at_least(&features[f], max, t as u64)
                        }
                    })
                    .collect();
                let masked = needs_masked
                    .par_iter()
                    .map(|&(f, flag)| ev.keep_if(&features[f], &flags[flag]))
                    .collect();
                PerRecord {
                    features,
                    flags,
                    masked,
                }
            })
            .collect();
        let count_blocks = blocks_for(self.records as u64);
        let mut jobs: Vec<Box<dyn Fn() -> RadixCiphertext + Send + Sync + '_>> = Vec::new();
        let mut masked_index = 0;
        for plan in &self.plans {
            match plan {
                Plan::Count => {}
                Plan::Sum { f, .. } => {
                    let f = *f;
                    let width = blocks_for(self.sum_max(f));
                    let ev = &ev;
                    let per_record = &per_record;
                    jobs.push(Box::new(move || {
                        let mut c = Columns::default();
                        for r in per_record {
                            c.push_radix(&r.features[f], 0);
                        }
                        ev.sum(c, width)
                    }));
                }
                Plan::Extremum { f, max } => {
                    let (f, max) = (*f, *max);
                    let (ev, per_record) = (&ev, &per_record);
                    jobs.push(Box::new(move || {
                        ev.extremum(
                            per_record.iter().map(|r| r.features[f].clone()).collect(),
                            max,
                        )
                    }));
                }
                Plan::AtLeast { flags, .. } => {
                    for &flag in flags {
                        let (ev, per_record) = (&ev, &per_record);
                        jobs.push(Box::new(move || {
                            let mut c = Columns::default();
                            for r in per_record {
                                c.push(0, r.flags[flag].clone());
                            }
                            ev.sum(c, count_blocks)
                        }));
                    }
                }
                Plan::SumWhere { f, flag } => {
                    let (f, flag, m) = (*f, *flag, masked_index);
                    masked_index += 1;
                    let width = blocks_for(self.sum_max(f));
                    let (ev, per_record) = (&ev, &per_record);
                    jobs.push(Box::new(move || {
                        let mut c = Columns::default();
                        for r in per_record {
                            c.push_radix(&r.masked[m], 0);
                        }
                        ev.sum(c, width)
                    }));
                    jobs.push(Box::new(move || {
                        let mut c = Columns::default();
                        for r in per_record {
                            c.push(0, r.flags[flag].clone());
                        }
                        ev.sum(c, count_blocks)
                    }));
                }
            }
        }
        let outputs = self.outputs();
        let results: Vec<RadixCiphertext> = jobs.par_iter().map(|job| job()).collect();
        // Fit each result to its output type's width (trivial zeros above: free; a result is
        // never wider than its type, which was chosen to hold its largest value).
        Ok(results
            .into_iter()
            .zip(&outputs)
            .map(|(r, spec)| ev.fit(&r, spec.ty.blocks() as usize))
            .collect())
    }

    /// Combines the results of tasks that each evaluated a share of the cohort
    /// ([`Self::evaluate_partial`], in task order) into the cohort's: sums and counts add (one
    /// multi-operand sum per output), `min`/`max` take one more comparison per task. Results
    /// are in [`Self::outputs`] order, each of its output type's width.
    pub fn merge_partials(
        &self,
        key: &tfhe::ServerKey,
        partials: Vec<Vec<RadixCiphertext>>,
    ) -> Result<Vec<RadixCiphertext>> {
        let outputs = self.outputs();
        if partials.is_empty() {
            return Err(Error::ShapeMismatch("no task results to merge".into()));
        }
        for (t, p) in partials.iter().enumerate() {
            let widths: Vec<usize> = p.iter().map(|r| r.blocks().len()).collect();
            let expected: Vec<usize> = outputs.iter().map(|o| o.ty.blocks() as usize).collect();
            if widths != expected {
                return Err(Error::ShapeMismatch(format!(
                    "task {t}'s results have widths {widths:?} where the query's outputs have {expected:?}"
                )));
            }
        }
        // Per output: `Some(max)` for an extremum, `None` for a sum or count.
        let mut extremum = Vec::with_capacity(outputs.len());
        for plan in &self.plans {
            match plan {
                Plan::Count => {}
                Plan::Sum { .. } => extremum.push(None),
                Plan::Extremum { max, .. } => extremum.push(Some(*max)),
                Plan::AtLeast { flags, .. } => extremum.extend(flags.iter().map(|_| None)),
                Plan::SumWhere { .. } => extremum.extend([None, None]),
            }
        }
        let ev = Eval::new(key.as_ref());
        let mut columns: Vec<Vec<RadixCiphertext>> = vec![Vec::new(); outputs.len()];
        for partial in partials {
            for (column, value) in columns.iter_mut().zip(partial) {
                column.push(value);
            }
        }
        Ok(columns
            .into_par_iter()
            .zip(extremum)
            .zip(outputs)
            .map(|((values, extremum), spec)| {
                let blocks = spec.ty.blocks() as usize;
                match extremum {
                    Some(max) => ev.fit(&ev.extremum(values, max), blocks),
                    None => {
                        let mut c = Columns::default();
                        for v in &values {
                            c.push_radix(v, 0);
                        }
                        ev.sum(c, blocks)
                    }
                }
            })
            .collect())
    }

    /// The same query with tfhe's high-level API, straightforwardly: every value widened to
    /// 32 bits, sums with `+`, `min`/`max` pairwise in order, comparisons with `ge`, the
    /// conditional sum with `if_then_else`. The thread's server key must be set. Outputs are in
    /// [`Self::outputs`] order.
    pub fn evaluate_reference(&self, records: &[Vec<EncryptedValue>]) -> Result<Vec<FheUint32>> {
        let wide = |f: usize, values: &[EncryptedValue]| {
            FheUint32::cast_from(feature16(&self.features[f], values))
        };
        let flag = |i: usize, values: &[EncryptedValue]| -> FheBool {
            let (f, t) = self.flags[i];
            wide(f, values).ge(t.max(0) as u32)
        };
        let zero = || FheUint32::encrypt_trivial(0u32);
        let add_all = |terms: Vec<FheUint32>| terms.into_iter().fold(zero(), |acc, t| acc + t);
        let mut out = Vec::new();
        for plan in &self.plans {
            match plan {
                Plan::Count => {}
                Plan::Sum { f, .. } => {
                    out.push(add_all(records.iter().map(|r| wide(*f, r)).collect()));
                }
                Plan::Extremum { f, max } => {
                    let mut it = records.iter().map(|r| wide(*f, r));
                    let first = it.next().unwrap_or_else(zero);
                    out.push(it.fold(first, |a, b| if *max { a.max(&b) } else { a.min(&b) }));
                }
                Plan::AtLeast { flags, .. } => {
                    for &i in flags {
                        out.push(add_all(
                            records
                                .iter()
                                .map(|r| FheUint32::cast_from(flag(i, r)))
                                .collect(),
                        ));
                    }
                }
                Plan::SumWhere { f, flag: i } => {
                    out.push(add_all(
                        records
                            .iter()
                            .map(|r| flag(*i, r).if_then_else(&wide(*f, r), &zero()))
                            .collect(),
                    ));
                    out.push(add_all(
                        records
                            .iter()
                            .map(|r| FheUint32::cast_from(flag(*i, r)))
                            .collect(),
                    ));
                }
            }
        }
        Ok(out)
    }
}

struct PerRecord {
    features: Vec<RadixCiphertext>,
    flags: Vec<Ciphertext>,
    masked: Vec<RadixCiphertext>,
}

/// A feature's encrypted value for one record: a field as it is; a total as one
/// multi-operand sum of its items; `mood_change` as `mood_after + (15 - mood_before)`, where
/// the complement is free per block.
fn feature_value(
    ev: &Eval<'_>,
    feature: &FeatureRef,
    values: &[EncryptedValue],
) -> RadixCiphertext {
    match feature {
        FeatureRef::Field { index, .. } => to_radix(&values[*index]),
        FeatureRef::Derived {
            derived,
            inputs,
            max,
        } => {
            let width = blocks_for(u64::from(*max));
            let mut c = Columns::default();
            if *derived == Derived::MoodChange {
                c.push_radix(&to_radix(&values[inputs[0]]), 0);
                c.push_radix(&ev.complement(&to_radix(&values[inputs[1]])), 0);
            } else {
                for &i in inputs {
                    c.push_radix(&to_radix(&values[i]), 0);
                }
            }
            ev.sum(c, width)
        }
    }
}

/// Bucket counts from "records at or above each edge".
fn buckets(n: u64, at_least: &[u64]) -> Vec<u64> {
    let mut out = Vec::with_capacity(at_least.len() + 1);
    let mut above = n;
    for &c in at_least {
        out.push(above.saturating_sub(c));
        above = c;
    }
    out.push(above);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FieldType;
    use crate::schemas::session_v1;

    #[test]
    fn buckets_are_differences_of_at_least_counts() {
        assert_eq!(buckets(10, &[7, 3, 1]), vec![3, 4, 2, 1]);
        assert_eq!(buckets(0, &[0]), vec![0, 0]);
    }

    #[test]
    fn queries_are_checked_and_laid_out() {
        let schema = session_v1();
        let q: AggregateQuery = serde_json::from_str(
            r#"{"aggregates":[{"op":"count"},{"op":"mean","field":"mood_change"},
                {"op":"histogram","field":"phq9_total","edges":[5,10,15,20]},
                {"op":"sum_where","field":"mood_after","where_field":"phq9_total","at_least":10},
                {"op":"max","field":"lex_hopelessness"}]}"#,
        )
        .unwrap();
        let c = q.compile(&schema, 1000).unwrap();
        let labels: Vec<_> = c.outputs().into_iter().map(|o| (o.label, o.ty)).collect();
        assert_eq!(labels[0], ("1:sum".into(), FieldType::U16));
        assert_eq!(labels[1], ("2:ge:5".into(), FieldType::U10));
        assert_eq!(labels.len(), 1 + 4 + 2 + 1);
        // phq9_total >= 10 is one flag shared by the histogram and the conditional sum.
        assert_eq!(c.flags.len(), 4);
        for (bad, needle) in [
            (r#"{"aggregates":[]}"#, "1 to 32"),
            (r#"{"aggregates":[{"op":"sum","field":"nope"}]}"#, "nope"),
            (
                r#"{"aggregates":[{"op":"histogram","field":"phq9_total","edges":[5,5]}]}"#,
                "increase",
            ),
        ] {
            let q: AggregateQuery = serde_json::from_str(bad).unwrap();
            let err = q.compile(&schema, 10).unwrap_err().to_string();
            assert!(err.contains(needle), "{err}");
        }
        assert!(
            serde_json::from_str::<AggregateQuery>(
                r#"{"aggregates":[{"op":"sum","field":"a","x":1}]}"#
            )
            .is_err()
        );
    }
}
