//! What models and queries read: a schema field, or a field derived from several.
//!
//! Derived fields are computed on the server, per record, once per job, and only when a job
//! reads them. `phq9_total` and `gad7_total` are sums of questionnaire items (linear, so a
//! risk model folds their weight into the items' weights instead of computing the total).
//! `mood_change` is `mood_after - mood_before`, carried with an offset of 15 so that it stays
//! unsigned on ciphertext: its encrypted value is `mood_after + (15 - mood_before)`, and the
//! key holder's report subtracts the offset after decryption. Over `training` records,
//! `questions` (open + closed), `reflections` (simple + complex) and `bias_total` (every bias
//! category) are linear sums too.

use serde::{Deserialize, Serialize};

use crate::schema::{FieldType, RecordSchema, Value};
use crate::schemas::{GAD7_ITEMS, PHQ9_ITEMS, TRAINING_BIAS};
use crate::{Error, Result};

/// A field computed from other fields of the record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Derived {
    /// The sum of the nine PHQ-9 items (0–27).
    Phq9Total,
    /// The sum of the seven GAD-7 items (0–21).
    Gad7Total,
    /// `mood_after - mood_before` (−10…10), encrypted with an offset of 15.
    MoodChange,
    /// Open plus closed questions of a training session (0–126).
    Questions,
    /// Simple plus complex reflections of a training session (0–126).
    Reflections,
    /// Every bias and stigma count of a training session (0–90).
    BiasTotal,
}

/// The offset `mood_change` is encrypted with: 15 is the largest value a 4-bit `mood_before`
/// can hold, so `15 - mood_before` is a per-block complement that costs no bootstrap.
pub const MOOD_CHANGE_OFFSET: u32 = 15;

impl Derived {
    /// Every derived field.
    pub const ALL: [Derived; 6] = [
        Derived::Phq9Total,
        Derived::Gad7Total,
        Derived::MoodChange,
        Derived::Questions,
        Derived::Reflections,
        Derived::BiasTotal,
    ];

    /// The name models and queries use.
    pub fn name(self) -> &'static str {
        match self {
            Derived::Phq9Total => "phq9_total",
            Derived::Gad7Total => "gad7_total",
            Derived::MoodChange => "mood_change",
            Derived::Questions => "questions",
            Derived::Reflections => "reflections",
            Derived::BiasTotal => "bias_total",
        }
    }

    /// The derived field called `name`, if any.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.name() == name)
    }

    /// The schema fields it is computed from.
    pub fn inputs(self) -> &'static [&'static str] {
        match self {
            Derived::Phq9Total => &PHQ9_ITEMS,
            Derived::Gad7Total => &GAD7_ITEMS,
            Derived::MoodChange => &["mood_after", "mood_before"],
            Derived::Questions => &["mi_open_questions", "mi_closed_questions"],
            Derived::Reflections => &["mi_simple_reflections", "mi_complex_reflections"],
            Derived::BiasTotal => &TRAINING_BIAS,
        }
    }

    /// What is subtracted from the encrypted value to get the true one.
    pub fn offset(self) -> u32 {
        match self {
            Derived::MoodChange => MOOD_CHANGE_OFFSET,
            _ => 0,
        }
    }

    /// True for plain sums of their inputs.
    pub fn is_linear(self) -> bool {
        !matches!(self, Derived::MoodChange)
    }
}

/// A feature resolved against a schema: where its inputs are and how wide its value is.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum FeatureRef {
    /// A schema field, by position.
    Field {
        /// Position in the schema.
        index: usize,
        /// Its type.
        ty: FieldType,
        /// Its largest value.
        max: u32,
    },
    /// A derived field, with its inputs' positions (in [`Derived::inputs`] order).
    Derived {
        /// Which one.
        derived: Derived,
        /// Positions of its inputs.
        inputs: Vec<usize>,
        /// The largest encrypted value.
        max: u32,
    },
}

impl FeatureRef {
    /// Resolves `name` (a schema field or a derived field) against `schema`.
    pub fn resolve(schema: &RecordSchema, name: &str) -> Result<Self> {
        let find = |n: &str| schema.fields.iter().position(|f| f.name == n);
        if let Some(index) = find(name) {
            let f = &schema.fields[index];
            let max = if f.ty == FieldType::Bool { 1 } else { f.max };
            return Ok(FeatureRef::Field {
                index,
                ty: f.ty,
                max,
            });
        }
        let Some(derived) = Derived::parse(name) else {
            return Err(Error::InvalidField {
                field: name.chars().take(64).collect(),
                reason: format!(
                    "neither a field of schema {}@{} nor a derived field ({})",
                    schema.id,
                    schema.version,
                    Derived::ALL.map(Derived::name).join(", ")
                ),
            });
        };
        let mut inputs = Vec::new();
        let mut max = 0u32;
        for input in derived.inputs() {
            let index = find(input).ok_or_else(|| Error::InvalidField {
                field: name.into(),
                reason: format!(
                    "needs field {input:?}, which schema {}@{} lacks",
                    schema.id, schema.version
                ),
            })?;
            let f = &schema.fields[index];
            if f.ty == FieldType::Bool {
                return Err(Error::InvalidField {
                    field: name.into(),
                    reason: format!("input {input:?} must be an integer field"),
                });
            }
            inputs.push(index);
            max = max.saturating_add(f.max);
        }
        if derived == Derived::MoodChange {
            for &i in &inputs {
                if schema.fields[i].ty != FieldType::U4 {
                    return Err(Error::InvalidField {
                        field: name.into(),
                        reason: "mood_before and mood_after must be u4 fields".into(),
                    });
                }
            }
            max = schema.fields[inputs[0]].max + MOOD_CHANGE_OFFSET;
        }
        Ok(FeatureRef::Derived {
            derived,
            inputs,
            max,
        })
    }

    /// The largest value its encrypted form can take.
    pub fn max_value(&self) -> u32 {
        match self {
            FeatureRef::Field { max, .. } | FeatureRef::Derived { max, .. } => *max,
        }
    }

    /// What is subtracted from the encrypted value to get the true one.
    pub fn offset(&self) -> u32 {
        match self {
            FeatureRef::Field { .. } => 0,
            FeatureRef::Derived { derived, .. } => derived.offset(),
        }
    }

    /// Radix blocks of its encrypted value.
    pub fn blocks(&self) -> usize {
        match self {
            FeatureRef::Field { ty, .. } => ty.blocks() as usize,
            FeatureRef::Derived { max, .. } => blocks_for(u64::from(*max)),
        }
    }

    /// Its encrypted value computed in clear from a record's values (schema order): what
    /// the server's computation must match.
    pub fn clear_value(&self, values: &[Value]) -> u32 {
        let v = |i: usize| match values[i] {
            Value::Bool(b) => u32::from(b),
            Value::Uint(u) => u,
        };
        match self {
            FeatureRef::Field { index, .. } => v(*index),
            FeatureRef::Derived {
                derived: Derived::MoodChange,
                inputs,
                ..
            } => v(inputs[0]) + MOOD_CHANGE_OFFSET - v(inputs[1]),
            FeatureRef::Derived { inputs, .. } => inputs.iter().map(|&i| v(i)).sum(),
        }
    }
}

/// Radix blocks (of 2 bits) needed to hold `max`; at least one.
pub fn blocks_for(max: u64) -> usize {
    let bits = 64 - max.leading_zeros();
    (bits.div_ceil(crate::params::BITS_PER_BLOCK) as usize).max(1)
}

/// The narrowest result type holding `max` (the unsigned types tfhe's high-level API has).
pub fn result_type_for(max: u64) -> FieldType {
    if max > u64::from(u32::MAX) {
        // Callers bound their sums well below this; widest type we can name.
        return FieldType::U32;
    }
    FieldType::narrowest_for(max as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schemas::session_v1;

    #[test]
    fn derived_fields_resolve_against_the_session_schema() {
        let s = session_v1();
        let phq = FeatureRef::resolve(&s, "phq9_total").unwrap();
        assert_eq!((phq.max_value(), phq.blocks()), (27, 3));
        let gad = FeatureRef::resolve(&s, "gad7_total").unwrap();
        assert_eq!((gad.max_value(), gad.blocks()), (21, 3));
        let mood = FeatureRef::resolve(&s, "mood_change").unwrap();
        assert_eq!(
            (mood.max_value(), mood.blocks(), mood.offset()),
            (25, 3, 15)
        );
        let item = FeatureRef::resolve(&s, "phq9_9").unwrap();
        assert_eq!((item.max_value(), item.blocks()), (3, 1));
        let err = FeatureRef::resolve(&s, "phq9_10").unwrap_err().to_string();
        assert!(err.contains("phq9_10") && err.contains("derived"), "{err}");
        // Training's derived fields need training's fields.
        let err = FeatureRef::resolve(&s, "bias_total")
            .unwrap_err()
            .to_string();
        assert!(err.contains("bias_stigma_label"), "{err}");
    }

    #[test]
    fn derived_fields_resolve_against_the_training_schema() {
        let s = crate::schemas::training_v1();
        let q = FeatureRef::resolve(&s, "questions").unwrap();
        assert_eq!((q.max_value(), q.blocks()), (126, 4));
        let r = FeatureRef::resolve(&s, "reflections").unwrap();
        assert_eq!(r.max_value(), 126);
        let b = FeatureRef::resolve(&s, "bias_total").unwrap();
        assert_eq!((b.max_value(), b.blocks(), b.offset()), (90, 4, 0));
        assert!(FeatureRef::resolve(&s, "phq9_total").is_err());
    }

    #[test]
    fn block_counts() {
        assert_eq!(blocks_for(0), 1);
        assert_eq!(blocks_for(3), 1);
        assert_eq!(blocks_for(4), 2);
        assert_eq!(blocks_for(255), 4);
        assert_eq!(blocks_for(256), 5);
        assert_eq!(result_type_for(27), FieldType::U6);
        assert_eq!(result_type_for(70_000), FieldType::U32);
    }
}
