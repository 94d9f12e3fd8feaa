//! Risk models: clear integer weights over features, tier thresholds, and rules that lift the
//! tier. A model is data (JSON), registered with the server and versioned; its digest goes
//! into every receipt of a job that ran it.
//!
//! Scoring is linear: `score = Σ weight × feature`. Weights name schema fields or the linear
//! derived fields `phq9_total` and `gad7_total`; a derived weight is folded into its items'
//! weights once, when the model is compiled, so no total is ever computed per record. The
//! tier is the number of thresholds the score reaches (none / low / moderate / high), lifted
//! by any rule that fires (a field at or above a value), and is never lowered by one.
//!
//! Size: one concern: the model format, its compilation against a schema, its evaluation in
//! clear, and the built-in models with their documented weights; about 220 lines are tests.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::features::{FeatureRef, result_type_for};
use crate::schema::{FieldType, RecordSchema, RecordValues, Value};
use crate::schemas::{
    SESSION_SCHEMA_ID, SESSION_SCHEMA_VERSION, TRAINING_SCHEMA_ID, TRAINING_SCHEMA_VERSION,
};
use crate::{Error, Result};

/// The largest weight a model may give a feature.
pub const MAX_WEIGHT: u32 = 1000;
/// The largest score a model may be able to reach (it is encrypted as at most a u16).
pub const MAX_SCORE: u64 = u16::MAX as u64;
/// The most rules a model may have.
pub const MAX_RULES: usize = 64;

/// A risk tier. Encrypted as a 2-bit value: none 0, low 1, moderate 2, high 3.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// Below every threshold, no rule fired.
    None = 0,
    /// At least the low threshold.
    Low = 1,
    /// At least the moderate threshold.
    Moderate = 2,
    /// At least the high threshold, or a high rule fired.
    High = 3,
}

impl Tier {
    /// The tier with this encrypted value.
    pub fn from_value(v: u64) -> Option<Self> {
        Some(match v {
            0 => Tier::None,
            1 => Tier::Low,
            2 => Tier::Moderate,
            3 => Tier::High,
            _ => return None,
        })
    }

    /// Its lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Tier::None => "none",
            Tier::Low => "low",
            Tier::Moderate => "moderate",
            Tier::High => "high",
        }
    }
}

impl std::fmt::Display for Tier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Scores at which the tiers begin (each strictly above the one before).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    /// Lowest score of tier low.
    pub low: u32,
    /// Lowest score of tier moderate.
    pub moderate: u32,
    /// Lowest score of tier high.
    pub high: u32,
}

/// A rule: when `field` is at least `at_least`, the tier is at least `tier`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// A schema field (for a boolean field, `at_least: 1` means "answered yes").
    pub field: String,
    /// The value from which the rule fires (at least 1).
    pub at_least: u32,
    /// The tier it lifts to.
    pub tier: Tier,
}

/// A versioned risk model over one record schema.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RiskModel {
    /// The model's id (`[a-z0-9_-]`, 1–64 characters), e.g. `crisis`.
    pub id: String,
    /// Its version, from 1. A registered version never changes.
    pub version: u32,
    /// The schema it reads.
    pub schema_id: String,
    /// The schema version it reads.
    pub schema_version: u32,
    /// Weight per feature: schema fields, `phq9_total`, `gad7_total`.
    pub weights: BTreeMap<String, u32>,
    /// Where the tiers begin.
    pub thresholds: Thresholds,
    /// Rules that lift the tier.
    #[serde(default)]
    pub rules: Vec<Rule>,
}

/// The id of the default model.
pub const CRISIS_MODEL_ID: &str = "crisis";

/// `crisis` version 1, the documented default model over `session` v1 (sources and
/// rationale in docs/MODELS.md):
///
/// - PHQ-9 total × 2 and GAD-7 total × 1 (Kroenke et al. 2001; Spitzer et al. 2006), PHQ-9
///   item 9 × 4 on top of its share of the total (Simon et al. 2013);
/// - C-SSRS screener answers weighted by the screener's own triage (Posner et al. 2011);
/// - lexicon counts: suicidal ideation × 4, self-harm × 4, hopelessness × 2, absolutist
///   words × 1 (Al-Mosaiwi & Johnstone 2018);
/// - tiers from 10 (low), 25 (moderate) and 45 (high): a PHQ-9 of 10 with no other signal
///   scores 20, low; a PHQ-9 of 20 with a GAD-7 of 15 scores 55, high;
/// - rules: PHQ-9 item 9 > 0, or a C-SSRS "yes" on intent, plan or recent behaviour, lift to
///   high; a "yes" on method lifts to moderate; a wish to be dead or suicidal thoughts, to low.
pub fn crisis_v1() -> RiskModel {
    let weights = [
        ("phq9_total", 2),
        ("gad7_total", 1),
        ("phq9_9", 4),
        ("cssrs_wish_dead", 3),
        ("cssrs_thoughts", 5),
        ("cssrs_method", 8),
        ("cssrs_intent", 10),
        ("cssrs_plan", 10),
        ("cssrs_behavior", 10),
        ("lex_suicidal_ideation", 4),
        ("lex_self_harm", 4),
        ("lex_hopelessness", 2),
        ("lex_absolutist", 1),
    ];
    let rule = |field: &str, tier| Rule {
        field: field.into(),
        at_least: 1,
        tier,
    };
    RiskModel {
        id: CRISIS_MODEL_ID.into(),
        version: 1,
        schema_id: SESSION_SCHEMA_ID.into(),
        schema_version: SESSION_SCHEMA_VERSION,
        weights: weights
            .into_iter()
            .map(|(k, w)| (k.to_owned(), w))
            .collect(),
        thresholds: Thresholds {
            low: 10,
            moderate: 25,
            high: 45,
        },
        rules: vec![
            rule("phq9_9", Tier::High),
            rule("cssrs_intent", Tier::High),
            rule("cssrs_plan", Tier::High),
            rule("cssrs_behavior", Tier::High),
            rule("cssrs_method", Tier::Moderate),
            rule("cssrs_wish_dead", Tier::Low),
            rule("cssrs_thoughts", Tier::Low),
        ],
    }
}

/// The id of the built-in bias model over `training` records.
pub const BIAS_MODEL_ID: &str = "bias";

/// `bias` version 1, the documented per-session bias and stigma score over `training` v1
/// (sources and rationale in docs/MODELS.md):
///
/// - stereotyping × 4 (a generalisation about a whole group steers care for every member of
///   it); stigmatizing labels × 3 and blaming × 3 (labels such as "addict" measurably shift
///   clinicians towards punitive judgements: Kelly & Westerhoff 2010); dismissive or
///   minimizing responses × 2 and pathologizing a normal reaction × 2 (they fail one person,
///   in one moment); an explicit slur or dehumanizing label × 10;
/// - tiers from 2 (low: one minor incident), 6 (moderate: a stigmatizing label and a
///   dismissive remark, or two labels) and 12 (high: three stereotypes, or several kinds of
///   incident in one session);
/// - rule: any slur or dehumanizing label lifts the tier to high on its own.
pub fn bias_v1() -> RiskModel {
    let weights = [
        ("bias_stigma_label", 3),
        ("bias_dismissive", 2),
        ("bias_blaming", 3),
        ("bias_stereotype", 4),
        ("bias_pathologizing", 2),
        ("bias_slur", 10),
    ];
    RiskModel {
        id: BIAS_MODEL_ID.into(),
        version: 1,
        schema_id: TRAINING_SCHEMA_ID.into(),
        schema_version: TRAINING_SCHEMA_VERSION,
        weights: weights
            .into_iter()
            .map(|(k, w)| (k.to_owned(), w))
            .collect(),
        thresholds: Thresholds {
            low: 2,
            moderate: 6,
            high: 12,
        },
        rules: vec![Rule {
            field: "bias_slur".into(),
            at_least: 1,
            tier: Tier::High,
        }],
    }
}

/// Every built-in model, in the order they are listed.
pub fn builtin_models() -> Vec<RiskModel> {
    vec![crisis_v1(), bias_v1()]
}

/// The built-in model `id` at `version`, if there is one.
pub fn builtin_model(id: &str, version: u32) -> Option<RiskModel> {
    builtin_models()
        .into_iter()
        .find(|m| m.id == id && m.version == version)
}

/// A compiled rule: schema position, type, threshold, tier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompiledRule {
    /// Position of the field in the schema.
    pub index: usize,
    /// Its type.
    pub ty: FieldType,
    /// The field's largest value.
    pub max: u32,
    /// Fires at this value or above.
    pub at_least: u32,
    /// The tier it lifts to.
    pub tier: Tier,
}

/// A model checked against its schema, with derived weights folded into per-field weights:
/// the work done once per job rather than once per record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompiledModel {
    /// `risk_score/<id>-v<version>`.
    pub function_id: String,
    /// Weight per schema field (0 for fields the model does not read).
    pub field_weights: Vec<u32>,
    /// Per schema field: (type, largest value).
    pub field_types: Vec<(FieldType, u32)>,
    /// The straightforward reading of the model: weight per feature as written.
    pub features: Vec<(FeatureRef, u32)>,
    /// Where the tiers begin.
    pub thresholds: Thresholds,
    /// Rules.
    pub rules: Vec<CompiledRule>,
    /// The largest score any record can reach.
    pub max_score: u64,
    /// The type the score is encrypted as.
    pub score_type: FieldType,
}

fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

impl RiskModel {
    /// `risk_score/<id>-v<version>`: the function id in receipts and results.
    pub fn function_id(&self) -> String {
        format!("risk_score/{}-v{}", self.id, self.version)
    }

    /// Checks the model against `schema` and folds its weights per field.
    pub fn compile(&self, schema: &RecordSchema) -> Result<CompiledModel> {
        let invalid = |reason: String| Error::InvalidModel {
            model: self.id.chars().take(64).collect(),
            reason,
        };
        if !is_identifier(&self.id) {
            return Err(invalid(
                "the id must be 1-64 characters of a-z, 0-9, '_' and '-'".into(),
            ));
        }
        if self.version == 0 {
            return Err(invalid("versions start at 1".into()));
        }
        if self.schema_id != schema.id || self.schema_version != schema.version {
            return Err(invalid(format!(
                "the model reads schema {}@{}, not {}@{}",
                self.schema_id, self.schema_version, schema.id, schema.version
            )));
        }
        if self.weights.is_empty() {
            return Err(invalid("a model needs at least one weight".into()));
        }
        let mut field_weights = vec![0u32; schema.fields.len()];
        let mut features = Vec::new();
        let mut max_score = 0u64;
        for (name, &weight) in &self.weights {
            if weight > MAX_WEIGHT {
                return Err(invalid(format!(
                    "weight {weight} for {name:?} is above the maximum {MAX_WEIGHT}"
                )));
            }
            let feature = FeatureRef::resolve(schema, name)
                .map_err(|e| invalid(format!("weight {name:?}: {e}")))?;
            match &feature {
                FeatureRef::Field { index, .. } => field_weights[*index] += weight,
                FeatureRef::Derived {
                    derived, inputs, ..
                } => {
                    if !derived.is_linear() {
                        return Err(invalid(format!(
                            "{name:?} cannot be weighted: only schema fields, phq9_total and gad7_total can"
                        )));
                    }
                    for &i in inputs {
                        field_weights[i] += weight;
                    }
                }
            }
            max_score += u64::from(weight) * u64::from(feature.max_value());
            features.push((feature, weight));
        }
        if max_score > MAX_SCORE {
            return Err(invalid(format!(
                "the largest reachable score is {max_score}, above {MAX_SCORE}; lower the weights"
            )));
        }
        let t = self.thresholds;
        if !(1 <= t.low && t.low < t.moderate && t.moderate < t.high) {
            return Err(invalid(
                "thresholds must satisfy 1 <= low < moderate < high".into(),
            ));
        }
        if u64::from(t.high) > max_score {
            return Err(invalid(format!(
                "the high threshold {} is above the largest reachable score {max_score}",
                t.high
            )));
        }
        if self.rules.len() > MAX_RULES {
            return Err(invalid(format!("at most {MAX_RULES} rules")));
        }
        let mut rules = Vec::new();
        for rule in &self.rules {
            let Some(index) = schema.fields.iter().position(|f| f.name == rule.field) else {
                return Err(invalid(format!(
                    "rule field {:?} is not a field of schema {}@{}",
                    rule.field, schema.id, schema.version
                )));
            };
            let field = &schema.fields[index];
            let max = if field.ty == FieldType::Bool {
                1
            } else {
                field.max
            };
            if rule.at_least == 0 || rule.at_least > max {
                return Err(invalid(format!(
                    "rule on {:?}: at_least must be in 1..={max}",
                    rule.field
                )));
            }
            if rule.tier == Tier::None {
                return Err(invalid(format!(
                    "rule on {:?} lifts to tier none, which does nothing",
                    rule.field
                )));
            }
            rules.push(CompiledRule {
                index,
                ty: field.ty,
                max,
                at_least: rule.at_least,
                tier: rule.tier,
            });
        }
        Ok(CompiledModel {
            function_id: self.function_id(),
            field_weights,
            field_types: schema
                .fields
                .iter()
                .map(|f| (f.ty, if f.ty == FieldType::Bool { 1 } else { f.max }))
                .collect(),
            features,
            thresholds: t,
            rules,
            max_score,
            score_type: result_type_for(max_score),
        })
    }

    /// SHA-256 of the model's canonical JSON (what receipts name).
    pub fn digest(&self) -> String {
        // Serializing a struct of strings, integers and a BTreeMap cannot fail.
        let json = serde_json::to_vec(self).unwrap_or_default();
        crate::sha256_hex(&json)
    }
}

impl CompiledModel {
    /// The score and tier computed in clear: the reference every encrypted result must match.
    pub fn evaluate_clear(&self, values: &[Value]) -> (u64, Tier) {
        let v = |i: usize| match values[i] {
            Value::Bool(b) => u64::from(b),
            Value::Uint(u) => u64::from(u),
        };
        let score: u64 = self
            .field_weights
            .iter()
            .enumerate()
            .map(|(i, &w)| u64::from(w) * v(i))
            .sum();
        let t = self.thresholds;
        let mut tier = [t.low, t.moderate, t.high]
            .iter()
            .filter(|&&thr| score >= u64::from(thr))
            .count() as u64;
        for rule in &self.rules {
            if v(rule.index) >= u64::from(rule.at_least) {
                tier = tier.max(rule.tier as u64);
            }
        }
        // `tier` is at most 3 by construction.
        (score, Tier::from_value(tier).unwrap_or(Tier::High))
    }

    /// [`Self::evaluate_clear`] from values by name (checked against the schema).
    pub fn evaluate_values(
        &self,
        schema: &RecordSchema,
        values: &RecordValues,
    ) -> Result<(u64, Tier)> {
        Ok(self.evaluate_clear(&schema.order_values(values)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schemas::session_v1;

    fn session(overrides: &[(&str, Value)]) -> Vec<Value> {
        let schema = session_v1();
        schema
            .fields
            .iter()
            .map(|f| {
                overrides
                    .iter()
                    .find(|(n, _)| *n == f.name)
                    .map(|(_, v)| *v)
                    .unwrap_or(if f.ty == FieldType::Bool {
                        Value::Bool(false)
                    } else {
                        Value::Uint(f.min)
                    })
            })
            .collect()
    }

    #[test]
    fn crisis_v1_compiles_and_folds_derived_weights() {
        let schema = session_v1();
        let m = crisis_v1().compile(&schema).unwrap();
        let w = |name: &str| {
            m.field_weights[schema.fields.iter().position(|f| f.name == name).unwrap()]
        };
        assert_eq!(w("phq9_1"), 2);
        assert_eq!(w("phq9_9"), 6);
        assert_eq!(w("gad7_3"), 1);
        assert_eq!(w("mood_before"), 0);
        assert_eq!(m.max_score, 54 + 21 + 12 + 46 + 255 * 11);
        assert_eq!(m.score_type, FieldType::U12);
        assert_eq!(m.function_id, "risk_score/crisis-v1");
    }

    #[test]
    fn tiers_follow_thresholds_and_rules_only_lift() {
        let m = crisis_v1().compile(&session_v1()).unwrap();
        assert_eq!(m.evaluate_clear(&session(&[])), (0, Tier::None));
        // PHQ-9 of 10 (items 1-5 at 2), nothing else: 20 points, low.
        let items: Vec<_> = ["phq9_1", "phq9_2", "phq9_3", "phq9_4", "phq9_5"]
            .into_iter()
            .map(|n| (n, Value::Uint(2)))
            .collect();
        assert_eq!(m.evaluate_clear(&session(&items)), (20, Tier::Low));
        // Item 9 at 1: 6 points, but the rule lifts to high.
        assert_eq!(
            m.evaluate_clear(&session(&[("phq9_9", Value::Uint(1))])),
            (6, Tier::High)
        );
        // Method alone: 8 points (none by score), lifted to moderate.
        assert_eq!(
            m.evaluate_clear(&session(&[("cssrs_method", Value::Bool(true))])),
            (8, Tier::Moderate)
        );
        // A wish to be dead with a high score stays high: rules never lower.
        let mut high: Vec<_> = ["lex_suicidal_ideation"]
            .into_iter()
            .map(|n| (n, Value::Uint(20)))
            .collect();
        high.push(("cssrs_wish_dead", Value::Bool(true)));
        assert_eq!(m.evaluate_clear(&session(&high)), (83, Tier::High));
    }

    #[test]
    fn bias_v1_scores_incidents_and_a_slur_lifts_to_high() {
        let schema = crate::schemas::training_v1();
        let m = bias_v1().compile(&schema).unwrap();
        assert_eq!(m.function_id, "risk_score/bias-v1");
        assert_eq!(m.max_score, 15 * (3 + 2 + 3 + 4 + 2 + 10));
        assert_eq!(m.score_type, FieldType::U10);
        let session = |overrides: &[(&str, u32)]| -> Vec<Value> {
            schema
                .fields
                .iter()
                .map(|f| {
                    let v = overrides.iter().find(|(n, _)| *n == f.name);
                    Value::Uint(v.map_or(f.min, |(_, v)| *v))
                })
                .collect()
        };
        // Technique counts weigh nothing.
        let skilled = session(&[("mi_complex_reflections", 20), ("mi_open_questions", 15)]);
        assert_eq!(m.evaluate_clear(&skilled), (0, Tier::None));
        assert_eq!(
            m.evaluate_clear(&session(&[("bias_dismissive", 1)])),
            (2, Tier::Low)
        );
        assert_eq!(
            m.evaluate_clear(&session(&[
                ("bias_stigma_label", 1),
                ("bias_dismissive", 1)
            ])),
            (5, Tier::Low)
        );
        assert_eq!(
            m.evaluate_clear(&session(&[("bias_stigma_label", 2)])),
            (6, Tier::Moderate)
        );
        assert_eq!(
            m.evaluate_clear(&session(&[("bias_stereotype", 3)])),
            (12, Tier::High)
        );
        // One slur: 10 points, moderate by score, lifted to high by the rule.
        assert_eq!(
            m.evaluate_clear(&session(&[("bias_slur", 1)])),
            (10, Tier::High)
        );
        assert_eq!(builtin_model("bias", 1), Some(bias_v1()));
        assert_eq!(builtin_model("crisis", 1), Some(crisis_v1()));
        assert_eq!(builtin_model("bias", 2), None);
        // Over the wrong schema it is refused.
        assert!(bias_v1().compile(&session_v1()).is_err());
    }

    #[test]
    fn bad_models_are_refused_with_the_reason() {
        let schema = session_v1();
        let check = |edit: &dyn Fn(&mut RiskModel), needle: &str| {
            let mut m = crisis_v1();
            edit(&mut m);
            let err = m.compile(&schema).unwrap_err().to_string();
            assert!(err.contains(needle), "{err:?} should mention {needle:?}");
        };
        check(
            &|m| {
                m.weights.insert("nope".into(), 1);
            },
            "nope",
        );
        check(
            &|m| {
                m.weights.insert("mood_change".into(), 1);
            },
            "cannot be weighted",
        );
        check(
            &|m| {
                m.weights.insert("lex_isolation".into(), 1000);
            },
            "largest reachable score",
        );
        check(&|m| m.thresholds.moderate = 5, "low < moderate");
        check(&|m| m.thresholds.high = 60_000, "above the largest");
        check(&|m| m.rules[0].at_least = 4, "at_least");
        check(&|m| m.rules[0].tier = Tier::None, "does nothing");
        check(&|m| m.schema_version = 2, "session@2");
        check(&|m| m.id = "Crisis".into(), "the id");
        let json = r#"{"id":"m","version":1,"schema_id":"session","schema_version":1,"weights":{"phq9_1":1},"thresholds":{"low":1,"moderate":2,"high":3},"extra":1}"#;
        assert!(serde_json::from_str::<RiskModel>(json).is_err());
    }
}
