//! Criterion benchmarks of computation on ciphertext: risk scoring per record (ours and the
//! straightforward tfhe version), each aggregate at cohorts of 10, 100 and 1,000, and result
//! compression (the job output the key holder downloads) at 1, 24 and 100 scored records.
//! Records are encrypted once with the client key; keys are generated once per run. PBS counts
//! and output sizes are printed before timing.
//!
//! Run with `cargo bench -p blindsight-benches --bench compute`; a part of it with a filter,
//! e.g. `-- compress`, `-- aggregate/sum` or `-- /100$`. An aggregate over 1,000 records takes
//! 1–3 minutes per iteration on 2 cores and criterion runs it about 12 times (a PBS count,
//! warm-up, 10 samples), so the `/1000` benchmarks take 1.5–2 hours together; the comparison
//! harness (`compare`) measures the same evaluations once each. `cargo test` runs every
//! benchmark once, at a cohort of 10 only (criterion's test mode).
#![forbid(unsafe_code)]

use std::time::Duration;

use blindsight_benches::{
    aggregate_workloads, criterion_test_mode, pbs_count, reset_pbs_count, session_record,
};
use blindsight_crypto::compute::{crisis_v1, risk_output, score_record, score_record_reference};
use blindsight_crypto::schemas::session_v1;
use blindsight_crypto::tfhe::set_server_key;
use blindsight_crypto::{KeySet, encoded_size, encrypt_values};
use criterion::{BatchSize, Criterion, SamplingMode, criterion_group, criterion_main};
use rayon::prelude::*;

fn compute(c: &mut Criterion) {
    let test_mode = criterion_test_mode();
    let cohorts: &[usize] = if test_mode { &[10] } else { &[10, 100, 1000] };
    let (secret, public) = KeySet::generate().unwrap().into_parts();
    let key = public.server_key().unwrap().decompress();
    set_server_key(key.clone());
    let schema = session_v1();
    let largest = *cohorts.last().unwrap();
    let records: Vec<_> = (0..largest as u32)
        .into_par_iter()
        .map(|i| encrypt_values(secret.client_key(), &schema, &session_record(i)).unwrap())
        .collect();
    let model = crisis_v1().compile(&schema).unwrap();

    let mut group = c.benchmark_group("compute");
    // Flat sampling: every sample runs the same number of iterations, so a benchmark whose
    // one iteration outlasts the measurement time runs 10 times, not criterion's linear
    // 1 + 2 + … + 10.
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .measurement_time(Duration::from_secs(20));
    // Each benchmark's PBS count is printed the first time criterion runs it, so a filter
    // (`-- /1000`) skips the work of the benchmarks it leaves out.
    let counted = |group: &mut criterion::BenchmarkGroup<'_, _>, id: &str, f: &dyn Fn()| {
        let mut printed = false;
        group.bench_function(id, |b| {
            if !printed {
                printed = true;
                reset_pbs_count();
                f();
                if let Some(n) = pbs_count() {
                    println!("{id}: {n} PBS");
                }
            }
            b.iter(f)
        });
    };
    counted(&mut group, "risk_score/crisis-v1/1", &|| {
        score_record(&key, &model, &records[0]).unwrap();
    });
    counted(
        &mut group,
        "risk_score_straightforward/crisis-v1/1",
        &|| {
            score_record_reference(&model, &records[0]).unwrap();
        },
    );
    for (name, query) in aggregate_workloads() {
        for &n in cohorts {
            let compiled = query.compile(&schema, n).unwrap();
            counted(&mut group, &format!("aggregate/{name}/{n}"), &|| {
                compiled.evaluate(&key, &records[..n]).unwrap();
            });
        }
    }

    // Result compression: a risk job's scores and tiers packed into one compressed list (a
    // keyswitch per block, no PBS), as the worker stores it and the key holder downloads it.
    let scored = score_record(&key, &model, &records[0]).unwrap();
    for n in [1usize, 24, 100] {
        let ids: Vec<String> = (0..n).map(|i| format!("rec-{i:04}")).collect();
        let batch = vec![scored.clone(); n];
        let plain: u64 = batch
            .iter()
            .map(|s| encoded_size(&s.score) + encoded_size(&s.tier))
            .sum();
        let output = risk_output(&model, &ids, batch.clone()).unwrap();
        let envelope = output.encode("bench-key").unwrap().len();
        println!(
            "compress/risk_output/{n}: {plain} bytes uncompressed, {envelope} bytes as the output envelope ({:.1}× smaller)",
            plain as f64 / envelope as f64
        );
        group.bench_function(format!("compress/risk_output/{n}"), |b| {
            b.iter_batched(
                || batch.clone(),
                |batch| risk_output(&model, &ids, batch).unwrap(),
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, compute);
criterion_main!(benches);
