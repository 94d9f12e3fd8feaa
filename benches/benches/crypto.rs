//! Criterion benchmarks of the crypto core: key generation, encrypt + prove of a 40-field u8
//! record and of a `session` v1 record (both lane lists), proof verification, verify + expand
//! (radix blocks derived from the lane list), and the lane's sum of 10,000 session lists. Keys
//! are generated once per run; inputs are fixed. Run with
//! `cargo bench -p blindsight-benches --bench crypto`.
#![forbid(unsafe_code)]

use std::time::Duration;

use blindsight_benches::{
    bench_meta, forty_u8_schema, forty_u8_values, pbs_count, reset_pbs_count,
};
use blindsight_crypto::tfhe::set_server_key;
use blindsight_crypto::{ComputeKey, KeySet, Verifier, encrypt_record};
use criterion::{Criterion, criterion_group, criterion_main};

fn crypto(c: &mut Criterion) {
    let mut group = c.benchmark_group("crypto");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(30));

    group.bench_function("keygen/full/1", |b| b.iter(|| KeySet::generate().unwrap()));

    let (_secret, public) = KeySet::generate().unwrap().into_parts();
    let app = public.app_bundle().clone();
    let schema = forty_u8_schema();
    let values = forty_u8_values();
    let meta = bench_meta(app.key_id(), "bench-record");

    group.bench_function("encrypt_prove/u8/40", |b| {
        b.iter(|| encrypt_record(&app, &schema, &meta, &values, None).unwrap())
    });

    let list = encrypt_record(&app, &schema, &meta, &values, None).unwrap();
    let bytes = list.encode().unwrap();
    let verifier = Verifier::new(app.clone());
    group.bench_function("verify/u8/40", |b| {
        b.iter(|| {
            verifier
                .verify_record(&bytes, &schema, &meta, None)
                .unwrap()
        })
    });

    let key = ComputeKey::from_compressed(&public.server_key().unwrap()).unwrap();
    set_server_key(key.server_key().clone());
    reset_pbs_count();
    verifier
        .verify_and_expand(&key, &bytes, &schema, &meta, None)
        .unwrap();
    if let Some(n) = pbs_count() {
        println!("verify_expand/u8/40: {n} PBS per record");
    }
    group.bench_function("verify_expand/u8/40", |b| {
        b.iter(|| {
            verifier
                .verify_and_expand(&key, &bytes, &schema, &meta, None)
                .unwrap()
        })
    });

    // The built-in session schema: 148 lane slots (126 field bits, histograms, an indicator).
    let session = blindsight_crypto::schemas::session_v1();
    let session_values = blindsight_benches::session_values(3);
    let session_meta = blindsight_crypto::RecordMetadata {
        schema_id: "session".into(),
        ..bench_meta(app.key_id(), "bench-session")
    };
    group.bench_function("encrypt_prove/session/148", |b| {
        b.iter(|| encrypt_record(&app, &session, &session_meta, &session_values, None).unwrap())
    });
    let list = encrypt_record(&app, &session, &session_meta, &session_values, None).unwrap();
    let bytes = list.encode().unwrap();
    group.bench_function("verify/session/148", |b| {
        b.iter(|| {
            verifier
                .verify_record(&bytes, &session, &session_meta, None)
                .unwrap()
        })
    });
    let lists = vec![list; 10_000];
    group.bench_function("lane_sum/session/10000", |b| {
        b.iter(|| {
            let mut sum = blindsight_crypto::lane::LaneSum::new(lists[0].slots()).unwrap();
            for l in &lists {
                sum.add(l).unwrap();
            }
            sum.expand()
        })
    });
    group.finish();
}

criterion_group!(benches, crypto);
criterion_main!(benches);
