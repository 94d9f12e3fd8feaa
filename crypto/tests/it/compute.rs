//! Computation on ciphertext: the optimised and the straightforward evaluations decrypt to
//! exactly the clear reference, for risk scoring and for every aggregate.

use blindsight_crypto::compute::{
    AggregateQuery, JobOutput, LanePlan, Tier, aggregate_output, crisis_v1, risk_output,
    score_record_reference, score_records,
};
use blindsight_crypto::schemas::session_v1;
use blindsight_crypto::tfhe::prelude::*;
use blindsight_crypto::tfhe::{ServerKey, with_server_key_as_context};
use blindsight_crypto::{EncryptedValue, FieldType, RecordSchema, Value, encrypt_values};

use crate::common::keys;

/// Deterministic session-v1 records spanning the tiers.
pub(crate) fn records(n: usize) -> Vec<Vec<Value>> {
    let schema = session_v1();
    (0..n)
        .map(|r| {
            schema
                .fields
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    let x = (r * 7 + i * 3 + r * i) as u32;
                    match f.ty {
                        FieldType::Bool => Value::Bool((x + r as u32).is_multiple_of(5)),
                        _ => Value::Uint(x % (f.max + 1)),
                    }
                })
                .collect()
        })
        .collect()
}

fn encrypt(schema: &RecordSchema, values: &[Value]) -> Vec<EncryptedValue> {
    encrypt_values(keys().secret.client_key(), schema, values).unwrap()
}

fn server_key() -> ServerKey {
    keys().server_key.clone()
}

#[test]
fn risk_scores_decrypt_to_the_clear_reference_both_ways() {
    let schema = session_v1();
    let model = crisis_v1().compile(&schema).unwrap();
    let mut clear = records(3);
    // Make sure both a rule-lifted and a plain record are present.
    clear[0][schema
        .fields
        .iter()
        .position(|f| f.name == "phq9_9")
        .unwrap()] = Value::Uint(0);
    let encrypted: Vec<_> = clear.iter().map(|v| encrypt(&schema, v)).collect();
    let ids: Vec<String> = (0..clear.len()).map(|i| format!("rec-{i}")).collect();
    let key = server_key();
    let output = with_server_key_as_context(key.clone(), || {
        let scored = score_records(&key, &model, &encrypted).unwrap();
        risk_output(&model, &ids, scored).unwrap()
    });
    // The output survives its envelope and decrypts in manifest order.
    let key_id = keys().public.key_id();
    let decoded = JobOutput::decode(&output.encode(key_id).unwrap(), key_id).unwrap();
    assert_eq!(decoded.manifest.function, "risk_score/crisis-v1");
    assert_eq!(decoded.digest().unwrap(), output.digest().unwrap());
    let decrypted = decoded.decrypt(keys().secret.client_key()).unwrap();
    let mut tiers = Vec::new();
    for (i, values) in clear.iter().enumerate() {
        let (score, tier) = model.evaluate_clear(values);
        assert_eq!(decrypted[2 * i], score, "record {i} score");
        assert_eq!(decrypted[2 * i + 1], tier as u64, "record {i} tier");
        tiers.push(tier);
    }
    assert!(tiers.contains(&Tier::High), "{tiers:?}");
    // The straightforward version agrees, on one record.
    let (score, tier) = with_server_key_as_context(key, || {
        score_record_reference(&model, &encrypted[0]).unwrap()
    });
    let ck = keys().secret.client_key();
    let (s, t): (u16, u8) = (score.decrypt(ck), tier.decrypt(ck));
    assert_eq!((u64::from(s), u64::from(t)), (decrypted[0], decrypted[1]));
}

#[test]
fn aggregates_decrypt_to_the_clear_reference_both_ways() {
    let schema = session_v1();
    let query: AggregateQuery = serde_json::from_str(
        r#"{"aggregates":[
            {"op":"count"},
            {"op":"mean","field":"mood_change"},
            {"op":"sum","field":"phq9_total"},
            {"op":"min","field":"mood_change"},
            {"op":"max","field":"lex_absolutist"},
            {"op":"histogram","field":"phq9_total","edges":[5,10,15,20]},
            {"op":"count_at_least","field":"cssrs_thoughts","threshold":1},
            {"op":"sum_where","field":"mood_after","where_field":"phq9_total","at_least":10}
        ]}"#,
    )
    .unwrap();
    let clear = records(4);
    let expected = query.evaluate_clear(&schema, &clear).unwrap();
    let compiled = query.compile(&schema, clear.len()).unwrap();
    let encrypted: Vec<_> = clear.iter().map(|v| encrypt(&schema, v)).collect();
    let key = server_key();
    let output = with_server_key_as_context(key.clone(), || {
        let results = compiled.evaluate(&key, &encrypted).unwrap();
        aggregate_output(
            &compiled,
            &LanePlan::fhe_only(&compiled),
            results,
            Vec::new(),
        )
        .unwrap()
    });
    let key_id = keys().public.key_id();
    let decoded = JobOutput::decode(&output.encode(key_id).unwrap(), key_id).unwrap();
    let decrypted = decoded.decrypt(keys().secret.client_key()).unwrap();
    assert_eq!(compiled.interpret(&decrypted).unwrap(), expected);

    // The straightforward version gives the same outputs.
    let reference =
        with_server_key_as_context(key, || compiled.evaluate_reference(&encrypted).unwrap());
    let ck = keys().secret.client_key();
    let reference: Vec<u64> = reference
        .iter()
        .map(|v| {
            let x: u32 = v.decrypt(ck);
            u64::from(x)
        })
        .collect();
    assert_eq!(reference, decrypted);
}

/// Receipts promise that anyone can re-execute a job and get the same output bytes: the
/// evaluation must not depend on how many threads run it (no reduction shaped by work
/// stealing, no randomness).
#[test]
fn outputs_are_byte_identical_whatever_the_thread_count() {
    use blindsight_crypto::compute::pool_with_key;

    let schema = session_v1();
    let model = crisis_v1().compile(&schema).unwrap();
    let encrypted: Vec<_> = records(3).iter().map(|v| encrypt(&schema, v)).collect();
    let ids: Vec<String> = (0..3).map(|i| format!("rec-{i}")).collect();
    let query: AggregateQuery = serde_json::from_str(
        r#"{"aggregates": [{"op": "count"}, {"op": "min", "field": "mood_after"},
            {"op": "mean", "field": "phq9_total"}]}"#,
    )
    .unwrap();
    let compiled = query.compile(&schema, encrypted.len()).unwrap();
    let key = server_key();
    let run = |threads: usize| {
        pool_with_key(&key, threads).unwrap().install(|| {
            let scored = score_records(&key, &model, &encrypted).unwrap();
            let risk = risk_output(&model, &ids, scored)
                .unwrap()
                .encode("ks")
                .unwrap();
            let aggregates = aggregate_output(
                &compiled,
                &LanePlan::fhe_only(&compiled),
                compiled.evaluate(&key, &encrypted).unwrap(),
                Vec::new(),
            )
            .unwrap()
            .encode("ks")
            .unwrap();
            (risk, aggregates)
        })
    };
    let (one_risk, one_agg) = run(1);
    let (many_risk, many_agg) = run(3);
    assert!(
        one_risk == many_risk,
        "risk output differs between 1 and 3 threads"
    );
    assert!(
        one_agg == many_agg,
        "aggregate output differs between 1 and 3 threads"
    );
}
