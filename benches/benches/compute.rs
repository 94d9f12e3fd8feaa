//! Criterion benchmarks of computation on ciphertext: risk scoring per record (ours and the
//! straightforward tfhe version) and each aggregate at cohorts of 10 and 100. Records are
//! encrypted once with the client key; keys are generated once per run. PBS counts are printed
//! before timing. Run with `cargo bench -p blindsight-benches --bench compute`.
#![forbid(unsafe_code)]

use std::time::Duration;

use blindsight_benches::{aggregate_workloads, pbs_count, reset_pbs_count, session_record};
use blindsight_crypto::compute::{crisis_v1, score_record, score_record_reference};
use blindsight_crypto::schemas::session_v1;
use blindsight_crypto::tfhe::set_server_key;
use blindsight_crypto::{KeySet, encrypt_values};
use criterion::{Criterion, criterion_group, criterion_main};

fn compute(c: &mut Criterion) {
    let (secret, public) = KeySet::generate().unwrap().into_parts();
    let key = public.server_key().unwrap().decompress();
    set_server_key(key.clone());
    let schema = session_v1();
    let records: Vec<_> = (0..100)
        .map(|i| encrypt_values(secret.client_key(), &schema, &session_record(i)).unwrap())
        .collect();
    let model = crisis_v1().compile(&schema).unwrap();

    let mut group = c.benchmark_group("compute");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    let counted = |name: &str, f: &dyn Fn()| {
        reset_pbs_count();
        f();
        if let Some(n) = pbs_count() {
            println!("{name}: {n} PBS");
        }
    };
    counted("risk_score/crisis-v1/1", &|| {
        score_record(&key, &model, &records[0]).unwrap();
    });
    group.bench_function("risk_score/crisis-v1/1", |b| {
        b.iter(|| score_record(&key, &model, &records[0]).unwrap())
    });
    counted("risk_score_straightforward/crisis-v1/1", &|| {
        score_record_reference(&model, &records[0]).unwrap();
    });
    group.bench_function("risk_score_straightforward/crisis-v1/1", |b| {
        b.iter(|| score_record_reference(&model, &records[0]).unwrap())
    });
    for (name, query) in aggregate_workloads() {
        for n in [10usize, 100] {
            let compiled = query.compile(&schema, n).unwrap();
            let id = format!("aggregate/{name}/{n}");
            counted(&id, &|| {
                compiled.evaluate(&key, &records[..n]).unwrap();
            });
            group.bench_function(&id, |b| {
                b.iter(|| compiled.evaluate(&key, &records[..n]).unwrap())
            });
        }
    }
    group.finish();
}

criterion_group!(benches, compute);
criterion_main!(benches);
