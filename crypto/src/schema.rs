//! Record schemas: ordered, typed fields with inclusive ranges, and the values that fill them.
//!
//! Each field is encrypted as the narrowest FHE type its declaration names: every extra 2-bit
//! block costs a bootstrap at expansion and in every later computation on the server.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::params::BITS_PER_BLOCK;
use crate::{Error, Result};

/// The most fields one schema may have.
pub const MAX_FIELDS: usize = 256;

/// The FHE type of a field. Unsigned widths are those tfhe has a high-level type for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    /// `FheBool` (one block).
    Bool,
    /// `FheUint2`.
    U2,
    /// `FheUint4`.
    U4,
    /// `FheUint6`.
    U6,
    /// `FheUint8`.
    U8,
    /// `FheUint10`.
    U10,
    /// `FheUint12`.
    U12,
    /// `FheUint14`.
    U14,
    /// `FheUint16`.
    U16,
    /// `FheUint32`.
    U32,
}

impl FieldType {
    /// Plaintext bits this type occupies in a compact list (a boolean takes a whole block).
    pub fn bits(self) -> u32 {
        match self {
            FieldType::Bool => BITS_PER_BLOCK,
            FieldType::U2 => 2,
            FieldType::U4 => 4,
            FieldType::U6 => 6,
            FieldType::U8 => 8,
            FieldType::U10 => 10,
            FieldType::U12 => 12,
            FieldType::U14 => 14,
            FieldType::U16 => 16,
            FieldType::U32 => 32,
        }
    }

    /// Radix blocks (and so bootstraps at expansion) this type costs.
    pub fn blocks(self) -> u32 {
        self.bits() / BITS_PER_BLOCK
    }

    /// The largest value the type can hold.
    pub fn max_value(self) -> u32 {
        match self {
            FieldType::Bool => 1,
            FieldType::U32 => u32::MAX,
            other => (1u32 << other.bits()) - 1,
        }
    }

    /// The narrowest unsigned type that holds `max` (booleans are declared explicitly).
    pub fn narrowest_for(max: u32) -> FieldType {
        let bits = 32 - max.leading_zeros();
        [
            FieldType::U2,
            FieldType::U4,
            FieldType::U6,
            FieldType::U8,
            FieldType::U10,
            FieldType::U12,
            FieldType::U14,
            FieldType::U16,
        ]
        .into_iter()
        .find(|t| t.bits() >= bits)
        .unwrap_or(FieldType::U32)
    }

    pub(crate) fn to_fhe_type(self) -> tfhe::FheTypes {
        match self {
            FieldType::Bool => tfhe::FheTypes::Bool,
            FieldType::U2 => tfhe::FheTypes::Uint2,
            FieldType::U4 => tfhe::FheTypes::Uint4,
            FieldType::U6 => tfhe::FheTypes::Uint6,
            FieldType::U8 => tfhe::FheTypes::Uint8,
            FieldType::U10 => tfhe::FheTypes::Uint10,
            FieldType::U12 => tfhe::FheTypes::Uint12,
            FieldType::U14 => tfhe::FheTypes::Uint14,
            FieldType::U16 => tfhe::FheTypes::Uint16,
            FieldType::U32 => tfhe::FheTypes::Uint32,
        }
    }
}

/// One field of a schema.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldSpec {
    /// The field's name, unique within the schema (`[a-z0-9_]`, at most 64 characters).
    pub name: String,
    /// Its FHE type.
    #[serde(rename = "type")]
    pub ty: FieldType,
    /// Smallest accepted value (inclusive; ignored for booleans).
    #[serde(default)]
    pub min: u32,
    /// Largest accepted value (inclusive; ignored for booleans).
    #[serde(default = "default_max")]
    pub max: u32,
}

fn default_max() -> u32 {
    1
}

impl FieldSpec {
    /// A boolean field.
    pub fn boolean(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            ty: FieldType::Bool,
            min: 0,
            max: 1,
        }
    }

    /// An unsigned field holding `min..=max`, in the narrowest type that fits `max`.
    pub fn uint(name: &str, min: u32, max: u32) -> Self {
        Self {
            name: name.to_owned(),
            ty: FieldType::narrowest_for(max),
            min,
            max,
        }
    }
}

/// An ordered, versioned list of typed fields. The order is the order of values in the
/// encrypted list, so a schema version, once used, never changes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordSchema {
    /// The schema's id (`[a-z0-9_-]`, at most 64 characters), e.g. `session`.
    pub id: String,
    /// Its version, starting at 1.
    pub version: u32,
    /// The fields, in encryption order.
    pub fields: Vec<FieldSpec>,
    /// What the record's lane list carries beyond the fields' bits (histograms, indicators).
    #[serde(default, skip_serializing_if = "LaneLayout::is_empty")]
    pub lane: LaneLayout,
}

/// What a schema declares for the lane beyond its fields' bits.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LaneLayout {
    /// One-hot histograms, one slot per bucket.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub histograms: Vec<LaneHistogram>,
    /// Indicators, each with the fields it gates for conditional sums.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub indicators: Vec<LaneIndicator>,
}

impl LaneLayout {
    /// True when nothing beyond the fields' bits is declared.
    pub fn is_empty(&self) -> bool {
        self.histograms.is_empty() && self.indicators.is_empty()
    }
}

/// A histogram over a field or derived field, with increasing bucket edges in the feature's
/// true units: buckets `[min, e1)`, `[e1, e2)`, …, `[en, max]`. Edges at every value
/// (`min + 1 ..= max`) make it full-domain, which also answers `min` and `max`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LaneHistogram {
    /// The field or derived field.
    pub feature: String,
    /// Increasing edges, each the first value of a bucket.
    pub edges: Vec<i64>,
}

/// An indicator `feature >= at_least`, and the schema fields summed where it holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LaneIndicator {
    /// The field or derived field tested.
    pub feature: String,
    /// The threshold, in the feature's true units.
    pub at_least: i64,
    /// Integer schema fields whose bits are also carried gated by the indicator.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sums: Vec<String>,
}

/// One clear value of a record field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    /// A boolean.
    Bool(bool),
    /// An unsigned integer.
    Uint(u32),
}

/// The clear values of a record, by field name.
pub type RecordValues = BTreeMap<String, Value>;

fn is_identifier(s: &str, extra: &[u8]) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || extra.contains(&b)
        })
}

impl RecordSchema {
    /// Checks identifiers, unique names and sane ranges; [`RecordSchema::validate`] adds the
    /// lane layout.
    pub(crate) fn validate_fields(&self) -> Result<()> {
        let invalid = |reason: String| Error::InvalidSchema {
            schema: self.id.chars().take(64).collect(),
            reason,
        };
        if !is_identifier(&self.id, b"-") {
            return Err(invalid(
                "the id must be 1-64 characters of a-z, 0-9, '_' and '-'".into(),
            ));
        }
        if self.version == 0 {
            return Err(invalid("versions start at 1".into()));
        }
        if self.fields.is_empty() || self.fields.len() > MAX_FIELDS {
            return Err(invalid(format!("a schema has 1 to {MAX_FIELDS} fields")));
        }
        let mut seen = HashSet::new();
        for field in &self.fields {
            if !is_identifier(&field.name, b"") {
                return Err(invalid(format!(
                    "field name {:?} must be 1-64 characters of a-z, 0-9 and '_'",
                    field.name.chars().take(64).collect::<String>()
                )));
            }
            if !seen.insert(field.name.as_str()) {
                return Err(invalid(format!("field {:?} appears twice", field.name)));
            }
            if field.ty != FieldType::Bool {
                if field.min > field.max {
                    return Err(invalid(format!("field {:?}: min > max", field.name)));
                }
                if field.max > field.ty.max_value() {
                    return Err(invalid(format!(
                        "field {:?}: max {} does not fit in {:?}",
                        field.name, field.max, field.ty
                    )));
                }
            }
        }
        Ok(())
    }

    /// Plaintext bits of one record.
    pub fn total_bits(&self) -> u32 {
        self.fields.iter().map(|f| f.ty.bits()).sum()
    }

    /// Radix blocks of one record (a lower bound on the bootstraps needed to expand it).
    pub fn total_blocks(&self) -> u32 {
        self.fields.iter().map(|f| f.ty.blocks()).sum()
    }

    /// Checks `values` against the schema and returns them in field order. Every field must be
    /// present, no unknown field may be given, and every value must be in range; the error
    /// names the first offending field.
    pub fn order_values(&self, values: &RecordValues) -> Result<Vec<Value>> {
        let known: HashSet<&str> = self.fields.iter().map(|f| f.name.as_str()).collect();
        if let Some(unknown) = values.keys().find(|k| !known.contains(k.as_str())) {
            return Err(Error::InvalidField {
                field: unknown.chars().take(64).collect(),
                reason: format!("not a field of schema {}@{}", self.id, self.version),
            });
        }
        self.fields
            .iter()
            .map(|field| {
                let err = |reason: String| Error::InvalidField {
                    field: field.name.clone(),
                    reason,
                };
                match (field.ty, values.get(&field.name)) {
                    (_, None) => Err(err("missing".into())),
                    (FieldType::Bool, Some(v @ Value::Bool(_))) => Ok(*v),
                    (FieldType::Bool, Some(Value::Uint(_))) => {
                        Err(err("expected true or false".into()))
                    }
                    (_, Some(Value::Bool(_))) => Err(err(format!(
                        "expected an integer in {}..={}",
                        field.min, field.max
                    ))),
                    (_, Some(Value::Uint(v))) if *v < field.min || *v > field.max => Err(err(
                        format!("{v} is out of range {}..={}", field.min, field.max),
                    )),
                    (_, Some(v)) => Ok(*v),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn narrowest_type_holds_the_maximum() {
        assert_eq!(FieldType::narrowest_for(3), FieldType::U2);
        assert_eq!(FieldType::narrowest_for(4), FieldType::U4);
        assert_eq!(FieldType::narrowest_for(10), FieldType::U4);
        assert_eq!(FieldType::narrowest_for(255), FieldType::U8);
        assert_eq!(FieldType::narrowest_for(256), FieldType::U10);
        assert_eq!(FieldType::narrowest_for(65_535), FieldType::U16);
        assert_eq!(FieldType::narrowest_for(65_536), FieldType::U32);
        for t in [FieldType::U2, FieldType::U6, FieldType::U14, FieldType::U32] {
            assert_eq!(FieldType::narrowest_for(t.max_value()), t);
        }
    }

    #[test]
    fn schema_json_refuses_unknown_fields() {
        let ok = r#"{"id":"s","version":1,"fields":[{"name":"a","type":"u4","max":10}]}"#;
        let s: RecordSchema = serde_json::from_str(ok).unwrap();
        s.validate().unwrap();
        assert_eq!(s.fields[0].min, 0);
        let bad = r#"{"id":"s","version":1,"fields":[{"name":"a","type":"u4","max":10,"x":1}]}"#;
        assert!(serde_json::from_str::<RecordSchema>(bad).is_err());
    }
}
