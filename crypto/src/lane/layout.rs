//! What a schema puts in the lane, slot by slot, and which aggregates the lane can answer.
//!
//! Slots, in order:
//! 1. every field's bits, LSB first, in its declared width (a boolean is one slot): the FHE
//!    path derives its radix blocks from these, and sums and means read them;
//! 2. each declared histogram: one slot per bucket, exactly one of them set (one-hot);
//! 3. each declared indicator: one slot for `feature >= at_least`, then the bits of each of its
//!    `sums` fields, set only where the indicator is (for conditional sums).
//!
//! The proof makes every slot a bit; it does not relate slots to each other (that a histogram
//! is one-hot, or that an indicator agrees with its feature, is the app's word; see
//! docs/THREAT_MODEL.md).

use crate::compute::FeatureRef;
use crate::params::LANE_MAX_SLOTS;
use crate::schema::{FieldType, RecordSchema, Value};
pub use crate::schema::{LaneHistogram, LaneIndicator, LaneLayout};
use crate::{Error, Result};

/// The most histograms or indicators one schema may declare.
pub const MAX_LANE_ENTRIES: usize = 32;
/// The most edges one declared histogram may have.
pub const MAX_LANE_EDGES: usize = 64;

/// A linear form over slots: `Σ weight × slot` per record, plus `constant` per record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotForm {
    /// `(slot, weight)` pairs.
    pub weights: Vec<(usize, i64)>,
    /// Added once per record.
    pub constant: i64,
}

#[derive(Clone, Debug)]
struct Histogram {
    feature: FeatureRef,
    edges: Vec<i64>,
    first: usize,
}

#[derive(Clone, Debug)]
struct Indicator {
    feature: FeatureRef,
    at_least: i64,
    flag: usize,
    /// (field index, first slot, bits)
    sums: Vec<(usize, usize, usize)>,
}

/// A schema's lane layout resolved to slot positions.
#[derive(Clone, Debug)]
pub struct SlotMap {
    /// (first slot, bits) per field, in schema order.
    fields: Vec<(usize, usize)>,
    histograms: Vec<Histogram>,
    indicators: Vec<Indicator>,
    slots: usize,
}

/// Slots a field takes: its bits, a boolean one.
pub fn lane_bits(ty: FieldType) -> usize {
    if ty == FieldType::Bool {
        1
    } else {
        ty.bits() as usize
    }
}

fn true_value(feature: &FeatureRef, values: &[Value]) -> i64 {
    i64::from(feature.clear_value(values)) - i64::from(feature.offset())
}

impl RecordSchema {
    /// Checks the schema is well formed: identifiers, unique names, sane ranges, and a lane
    /// layout that resolves and fits the lane CRS.
    pub fn validate(&self) -> Result<()> {
        self.validate_fields()?;
        SlotMap::new(self).map(drop)
    }

    /// The schema's lane layout resolved to slot positions (checks the layout and that the
    /// record fits the lane CRS).
    pub fn slot_map(&self) -> Result<SlotMap> {
        SlotMap::new(self)
    }
}

impl SlotMap {
    /// Resolves and checks `schema`'s lane layout: features exist, edges increase, sums name
    /// integer fields, and the whole record fits the lane CRS.
    pub fn new(schema: &RecordSchema) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidSchema {
            schema: schema.id.chars().take(64).collect(),
            reason: format!("lane: {reason}"),
        };
        let layout = &schema.lane;
        if layout.histograms.len() > MAX_LANE_ENTRIES || layout.indicators.len() > MAX_LANE_ENTRIES
        {
            return Err(invalid(format!(
                "at most {MAX_LANE_ENTRIES} histograms and {MAX_LANE_ENTRIES} indicators"
            )));
        }
        let mut next = 0usize;
        let fields = schema
            .fields
            .iter()
            .map(|f| {
                let first = next;
                next += lane_bits(f.ty);
                (first, lane_bits(f.ty))
            })
            .collect();
        let mut histograms = Vec::new();
        for h in &layout.histograms {
            let feature =
                FeatureRef::resolve(schema, &h.feature).map_err(|e| invalid(e.to_string()))?;
            if h.edges.is_empty() || h.edges.len() > MAX_LANE_EDGES {
                return Err(invalid(format!(
                    "histogram over {:?} needs 1 to {MAX_LANE_EDGES} edges",
                    h.feature
                )));
            }
            if h.edges.windows(2).any(|w| w[0] >= w[1]) {
                return Err(invalid(format!(
                    "histogram over {:?}: edges must increase",
                    h.feature
                )));
            }
            histograms.push(Histogram {
                feature,
                edges: h.edges.clone(),
                first: next,
            });
            next += h.edges.len() + 1;
        }
        let mut indicators = Vec::new();
        for ind in &layout.indicators {
            let feature =
                FeatureRef::resolve(schema, &ind.feature).map_err(|e| invalid(e.to_string()))?;
            let flag = next;
            next += 1;
            let mut sums = Vec::new();
            for name in &ind.sums {
                let index = schema
                    .fields
                    .iter()
                    .position(|f| &f.name == name)
                    .ok_or_else(|| {
                        invalid(format!(
                            "indicator on {:?} sums {name:?}, which is not a field of the schema",
                            ind.feature
                        ))
                    })?;
                let ty = schema.fields[index].ty;
                if ty == FieldType::Bool {
                    return Err(invalid(format!(
                        "indicator on {:?} sums {name:?}, a boolean; count it with an indicator instead",
                        ind.feature
                    )));
                }
                sums.push((index, next, lane_bits(ty)));
                next += lane_bits(ty);
            }
            indicators.push(Indicator {
                feature,
                at_least: ind.at_least,
                flag,
                sums,
            });
        }
        if next > LANE_MAX_SLOTS {
            return Err(invalid(format!(
                "{next} slots exceed the {LANE_MAX_SLOTS} the lane CRS can prove"
            )));
        }
        Ok(Self {
            fields,
            histograms,
            indicators,
            slots: next,
        })
    }

    /// Slots in one record's lane list.
    pub fn slots(&self) -> usize {
        self.slots
    }

    /// Each field's width in slots, in schema order (what the FHE path derives blocks from).
    pub fn field_widths(&self) -> Vec<usize> {
        self.fields.iter().map(|&(_, bits)| bits).collect()
    }

    /// The record's slots from its clear values (schema order, already range-checked).
    pub fn encode(&self, values: &[Value]) -> Vec<u64> {
        let mut slots = vec![0u64; self.slots];
        let uint = |v: &Value| match *v {
            Value::Bool(b) => u64::from(b),
            Value::Uint(u) => u64::from(u),
        };
        for (&(first, bits), v) in self.fields.iter().zip(values) {
            let v = uint(v);
            for i in 0..bits {
                slots[first + i] = (v >> i) & 1;
            }
        }
        for h in &self.histograms {
            let v = true_value(&h.feature, values);
            let bucket = h.edges.iter().filter(|&&e| e <= v).count();
            slots[h.first + bucket] = 1;
        }
        for ind in &self.indicators {
            if true_value(&ind.feature, values) >= ind.at_least {
                slots[ind.flag] = 1;
                for &(index, first, bits) in &ind.sums {
                    let v = uint(&values[index]);
                    for i in 0..bits {
                        slots[first + i] = (v >> i) & 1;
                    }
                }
            }
        }
        slots
    }

    fn field_form(&self, index: usize, sign: i64) -> Vec<(usize, i64)> {
        let (first, bits) = self.fields[index];
        (0..bits).map(|i| (first + i, sign << i)).collect()
    }

    /// A feature's encrypted value (offset included) as a linear form over slots, when it is
    /// linear in the fields (every field, `phq9_total`, `gad7_total`, `mood_change`).
    pub fn linear(&self, feature: &FeatureRef) -> Option<SlotForm> {
        use crate::compute::Derived;
        Some(match feature {
            FeatureRef::Field { index, .. } => SlotForm {
                weights: self.field_form(*index, 1),
                constant: 0,
            },
            FeatureRef::Derived {
                derived: Derived::MoodChange,
                inputs,
                ..
            } => {
                // mood_after + 15 - mood_before
                let mut weights = self.field_form(inputs[0], 1);
                weights.extend(self.field_form(inputs[1], -1));
                SlotForm {
                    weights,
                    constant: i64::from(feature.offset()),
                }
            }
            FeatureRef::Derived { inputs, .. } => SlotForm {
                weights: inputs.iter().flat_map(|&i| self.field_form(i, 1)).collect(),
                constant: 0,
            },
        })
    }

    /// Records whose feature is at least `threshold` (true units), from a declared indicator
    /// or a declared histogram with that edge.
    pub fn count_at_least(&self, feature: &FeatureRef, threshold: i64) -> Option<SlotForm> {
        if let Some(ind) = self
            .indicators
            .iter()
            .find(|i| &i.feature == feature && i.at_least == threshold)
        {
            return Some(SlotForm {
                weights: vec![(ind.flag, 1)],
                constant: 0,
            });
        }
        self.histograms
            .iter()
            .filter(|h| &h.feature == feature)
            .find_map(|h| {
                let k = h.edges.iter().position(|&e| e == threshold)?;
                Some(SlotForm {
                    weights: (k + 1..=h.edges.len()).map(|b| (h.first + b, 1)).collect(),
                    constant: 0,
                })
            })
    }

    /// A declared full-domain histogram over `feature` (an edge at every value above its
    /// smallest): the slot of each value's bucket, in increasing order of value. Bucket `b`
    /// holds the records whose feature's encrypted value (offset included) is `b`.
    pub fn full_domain(&self, feature: &FeatureRef) -> Option<Vec<usize>> {
        let lo = -i64::from(feature.offset());
        let hi = i64::from(feature.max_value()) + lo;
        self.histograms
            .iter()
            .find(|h| &h.feature == feature && h.edges.iter().copied().eq(lo + 1..=hi))
            .map(|h| (0..=h.edges.len()).map(|b| h.first + b).collect())
    }

    /// The sum of `field` over records whose `condition` is at least `at_least`, and their
    /// count, from a declared indicator that sums that field.
    pub fn sum_where(
        &self,
        field: &FeatureRef,
        condition: &FeatureRef,
        at_least: i64,
    ) -> Option<(SlotForm, SlotForm)> {
        let FeatureRef::Field { index, .. } = field else {
            return None;
        };
        self.indicators
            .iter()
            .filter(|i| &i.feature == condition && i.at_least == at_least)
            .find_map(|ind| {
                let &(_, first, bits) = ind.sums.iter().find(|s| s.0 == *index)?;
                Some((
                    SlotForm {
                        weights: (0..bits).map(|i| (first + i, 1 << i)).collect(),
                        constant: 0,
                    },
                    SlotForm {
                        weights: vec![(ind.flag, 1)],
                        constant: 0,
                    },
                ))
            })
    }
}
