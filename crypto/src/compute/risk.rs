//! Risk scoring on ciphertext: the optimised evaluation (what jobs run) and the
//! straightforward one (tfhe's high-level API: widen, multiply, `+`, compare) that tests and
//! the comparison harness hold it against.
//!
//! Optimised, per record: one weighted multi-operand sum (weights folded per field when the
//! model was compiled; booleans packed in pairs; powers of 4 as free shifts), three
//! comparisons of the score with clear thresholds, one bootstrap per rule on a 2-bit field
//! (none on a boolean), and nested ORs for the tier: `high = any(score ≥ high, high rules)`,
//! `moderate = any(high, score ≥ moderate, moderate rules)`, and so on, so each level costs
//! one bootstrap. The tier is `low + moderate + high` refreshed once.

use rayon::prelude::*;
use tfhe::integer::{IntegerCiphertext, RadixCiphertext};
use tfhe::prelude::*;
use tfhe::shortint::Ciphertext;
use tfhe::{FheBool, FheUint8, FheUint16};

use super::eval::{Eval, to_radix};
use super::features::FeatureRef;
use super::model::{CompiledModel, Tier};
use crate::record::EncryptedValue;
use crate::schema::FieldType;
use crate::{Error, Result};

/// One record's encrypted score and tier (integer-level ciphertexts; see
/// [`super::output::OutputBuilder`] to compress them for the key holder).
#[derive(Clone)]
pub struct ScoredRecord {
    /// The score, `model.score_type` wide.
    pub score: RadixCiphertext,
    /// The tier, one block (0 none … 3 high).
    pub tier: Ciphertext,
}

impl std::fmt::Debug for ScoredRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ScoredRecord(..)")
    }
}

fn check_shape(model: &CompiledModel, values: &[EncryptedValue]) -> Result<()> {
    if values.len() != model.field_types.len() {
        return Err(Error::ShapeMismatch(format!(
            "the record has {} values, the model's schema {}",
            values.len(),
            model.field_types.len()
        )));
    }
    Ok(())
}

/// Scores one record with the optimised evaluation. `key` is the tenant's server key (passed
/// explicitly: no thread-local key is needed).
pub fn score_record(
    key: &tfhe::ServerKey,
    model: &CompiledModel,
    values: &[EncryptedValue],
) -> Result<ScoredRecord> {
    check_shape(model, values)?;
    let ev = Eval::new(key.as_ref());
    let radix: Vec<Option<RadixCiphertext>> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let used = model.field_weights[i] > 0 || model.rules.iter().any(|r| r.index == i);
            used.then(|| to_radix(v))
        })
        .collect();
    let mut columns = super::eval::Columns::default();
    let mut bools = Vec::new();
    for (i, &w) in model.field_weights.iter().enumerate() {
        let Some(value) = radix[i].as_ref().filter(|_| w > 0) else {
            continue;
        };
        let (ty, max) = model.field_types[i];
        if ty == FieldType::Bool {
            bools.push((&value.blocks()[0], u64::from(w)));
            continue;
        }
        for (j, block) in value.blocks().iter().enumerate() {
            let block_max = (u64::from(max) >> (2 * j)).min(3);
            ev.push_weighted(&mut columns, j, block, block_max, u64::from(w));
        }
    }
    ev.push_weighted_bools(&mut columns, &bools);
    let score = ev.sum(columns, model.score_type.blocks() as usize);

    let t = model.thresholds;
    let (at_low, (at_moderate, at_high)) = rayon::join(
        || ev.at_least(&score, model.max_score, u64::from(t.low)),
        || {
            rayon::join(
                || ev.at_least(&score, model.max_score, u64::from(t.moderate)),
                || ev.at_least(&score, model.max_score, u64::from(t.high)),
            )
        },
    );
    let fired: Vec<(Tier, Ciphertext)> = model
        .rules
        .par_iter()
        .map(|r| {
            // Every rule's field is in `radix` (see `used` above).
            let value = radix[r.index]
                .as_ref()
                .map_or_else(|| ev.key().create_trivial_zero_radix(1), Clone::clone);
            (
                r.tier,
                ev.at_least(&value, u64::from(r.max), u64::from(r.at_least)),
            )
        })
        .collect();
    let rules_at = |tier: Tier| -> Vec<Ciphertext> {
        fired
            .iter()
            .filter(|(t, _)| *t == tier)
            .map(|(_, f)| f.clone())
            .collect()
    };
    let mut level_high = rules_at(Tier::High);
    level_high.push(at_high);
    let high = ev.any(level_high);
    let mut level_moderate = rules_at(Tier::Moderate);
    level_moderate.extend([at_moderate, high.clone()]);
    let moderate = ev.any(level_moderate);
    let mut level_low = rules_at(Tier::Low);
    level_low.extend([at_low, moderate.clone()]);
    let low = ev.any(level_low);
    let tier = ev.add_flags(&[low, moderate, high]);
    Ok(ScoredRecord { score, tier })
}

/// Scores many records in parallel on the rayon pool.
pub fn score_records(
    key: &tfhe::ServerKey,
    model: &CompiledModel,
    records: &[Vec<EncryptedValue>],
) -> Result<Vec<ScoredRecord>> {
    records
        .par_iter()
        .map(|values| score_record(key, model, values))
        .collect()
}

/// A record value widened to 16 bits with tfhe's high-level cast.
pub(crate) fn widen16(value: &EncryptedValue) -> FheUint16 {
    match value {
        EncryptedValue::Bool(b) => FheUint16::cast_from(b.clone()),
        EncryptedValue::U2(v) => FheUint16::cast_from(v.clone()),
        EncryptedValue::U4(v) => FheUint16::cast_from(v.clone()),
        EncryptedValue::U6(v) => FheUint16::cast_from(v.clone()),
        EncryptedValue::U8(v) => FheUint16::cast_from(v.clone()),
        EncryptedValue::U10(v) => FheUint16::cast_from(v.clone()),
        EncryptedValue::U12(v) => FheUint16::cast_from(v.clone()),
        EncryptedValue::U14(v) => FheUint16::cast_from(v.clone()),
        EncryptedValue::U16(v) => v.clone(),
        EncryptedValue::U32(v) => FheUint16::cast_from(v.clone()),
    }
}

/// A feature as written in the model, with the high-level API: derived totals are the
/// items added with `+`.
pub(crate) fn feature16(feature: &FeatureRef, values: &[EncryptedValue]) -> FheUint16 {
    match feature {
        FeatureRef::Field { index, .. } => widen16(&values[*index]),
        FeatureRef::Derived {
            derived, inputs, ..
        } => {
            if derived.is_linear() {
                let mut total = widen16(&values[inputs[0]]);
                for &i in &inputs[1..] {
                    total += widen16(&values[i]);
                }
                total
            } else {
                // mood_change: after + 15 - before
                widen16(&values[inputs[0]]) + derived.offset() as u16 - widen16(&values[inputs[1]])
            }
        }
    }
}

/// The straightforward evaluation with tfhe's high-level API (the thread's server key must be
/// set): each feature widened to 16 bits, multiplied by its weight, added with `+`; the tier
/// from three comparisons, each rule's lift with `if_then_else` and `max`. Returns the score
/// and the tier. The reference the optimised evaluation is tested and measured against.
pub fn score_record_reference(
    model: &CompiledModel,
    values: &[EncryptedValue],
) -> Result<(FheUint16, FheUint8)> {
    check_shape(model, values)?;
    let mut score: Option<FheUint16> = None;
    for (feature, weight) in &model.features {
        let term = feature16(feature, values) * (*weight as u16);
        score = Some(match score {
            Some(s) => s + term,
            None => term,
        });
    }
    let score = score.ok_or_else(|| Error::Fhe("the model has no weights".into()))?;
    let t = model.thresholds;
    let mut tier = FheUint8::cast_from(score.ge(t.low as u16))
        + FheUint8::cast_from(score.ge(t.moderate as u16))
        + FheUint8::cast_from(score.ge(t.high as u16));
    let zero = FheUint8::encrypt_trivial(0u8);
    for rule in &model.rules {
        let fired: FheBool = widen16(&values[rule.index]).ge(rule.at_least as u16);
        let lift = fired.if_then_else(&FheUint8::encrypt_trivial(rule.tier as u8), &zero);
        tier = tier.max(&lift);
    }
    Ok((score, tier))
}
