//! Jobs cut into tasks: computed task by task and merged, a job decrypts to what one piece
//! gives (and to the clear reference); workers computing the tasks separately produce the
//! bytes an auditor's re-execution does; the merge refuses partial results that are not the
//! job's.

use std::sync::atomic::{AtomicI64, Ordering};

use blindsight_crypto::compute::{
    AggregateQuery, JobFunction, JobInput, JobOutput, JobWork, MergeWork, crisis_v1, merge_tasks,
    run_job, run_task, task_ranges,
};
use blindsight_crypto::schemas::session_v1;
use blindsight_crypto::{RecordMetadata, Verifier, encrypt_record};

use crate::common::keys;
use crate::lane::{session_meta, session_values};

/// `n` proven session records (metadata, encoded proven list).
fn proven(n: usize) -> Vec<(RecordMetadata, Vec<u8>)> {
    let app = keys().public.app_bundle();
    let schema = session_v1();
    crate::compute::records(n)
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let m = session_meta(i);
            let list = encrypt_record(app, &schema, &m, &session_values(v), None).unwrap();
            (m, list.encode().unwrap())
        })
        .collect()
}

fn inputs(lists: &[(RecordMetadata, Vec<u8>)]) -> Vec<JobInput<'_>> {
    lists
        .iter()
        .map(|(m, l)| JobInput {
            metadata: m,
            proven_list: l,
            transcript: None,
        })
        .collect()
}

/// Runs `work`'s tasks one by one as separate workers would (each on its own pool), then the
/// merge: the partial results and the output.
fn as_workers(work: &JobWork<'_>, per_task: u64) -> (Vec<Vec<u8>>, Vec<u8>) {
    let k = keys();
    let schema = session_v1();
    let verifier = Verifier::new(k.public.app_bundle().clone());
    let total = work.records.len() as u64;
    let progress = AtomicI64::new(0);
    let partials: Vec<Vec<u8>> = task_ranges(total, per_task)
        .into_iter()
        .map(|r| {
            let share = JobWork {
                records: &work.records[r.start as usize..r.end as usize],
                ..work.clone()
            };
            run_task(
                &k.compute, &verifier, &schema, share, r.start, total, 1, &progress,
            )
            .unwrap()
        })
        .collect();
    assert_eq!(progress.load(Ordering::Relaxed), 2 * total as i64);
    let ids: Vec<String> = work
        .records
        .iter()
        .map(|r| r.metadata.record_id.clone())
        .collect();
    let merge = MergeWork {
        key_id: work.key_id,
        function: work.function,
        record_ids: &ids,
        shards: work.shards.clone(),
        noise_seed: None,
        task_records: per_task,
    };
    let output = merge_tasks(&k.compute, &schema, merge, &partials, 2).unwrap();
    (partials, output)
}

/// A job over `inputs` in tasks of 2, computed by `run_job` (as an auditor re-executes it)
/// and by separate workers (`as_workers`): the two give the same bytes, and every record is
/// counted twice in the progress. Returns the output and the workers' partial results.
fn in_tasks_both_ways(
    inputs: &[JobInput<'_>],
    function: JobFunction<'_>,
) -> (Vec<u8>, Vec<Vec<u8>>) {
    let k = keys();
    let app = k.public.app_bundle();
    let work = JobWork {
        key_id: app.key_id(),
        function,
        records: inputs,
        shards: None,
        noise_seed: None,
        task_records: Some(2),
    };
    let verifier = Verifier::new(app.clone());
    let progress = AtomicI64::new(0);
    let tasked = run_job(
        &k.compute,
        &verifier,
        &session_v1(),
        work.clone(),
        2,
        &progress,
    )
    .unwrap();
    assert_eq!(progress.load(Ordering::Relaxed), 2 * inputs.len() as i64);
    // Workers computing the tasks apart give the bytes re-execution gives.
    let (partials, merged) = as_workers(&work, 2);
    assert!(
        merged == tasked,
        "the workers' merge differs from run_job's"
    );
    (tasked, partials)
}

#[test]
fn risk_jobs_in_tasks_score_like_one_piece() {
    let k = keys();
    let schema = session_v1();
    let app = k.public.app_bundle();
    let lists = proven(3);
    let inputs = inputs(&lists);
    let model = crisis_v1();
    let (tasked, partials) = in_tasks_both_ways(&inputs, JobFunction::RiskScore(&model));
    assert_eq!(partials.len(), 2);

    let out = JobOutput::decode(&tasked, app.key_id()).unwrap();
    assert_eq!(out.manifest.lists, [4, 2]);
    assert_eq!(out.lists.len(), 2);
    let decrypted = out.decrypt(k.secret.client_key()).unwrap();
    let compiled = model.compile(&schema).unwrap();
    for (i, values) in crate::compute::records(3).iter().enumerate() {
        let (score, tier) = compiled.evaluate_clear(values);
        assert_eq!(decrypted[2 * i], score, "record {i} score");
        assert_eq!(decrypted[2 * i + 1], tier as u64, "record {i} tier");
        assert_eq!(out.manifest.outputs[2 * i].label, format!("lane-{i}/score"));
    }

    // The merge refuses partial results that are not this job's, in this order.
    let merge = |partials: &[Vec<u8>]| {
        let ids: Vec<String> = (0..3).map(|i| format!("lane-{i}")).collect();
        merge_tasks(
            &k.compute,
            &schema,
            MergeWork {
                key_id: app.key_id(),
                function: JobFunction::RiskScore(&model),
                record_ids: &ids,
                shards: None,
                noise_seed: None,
                task_records: 2,
            },
            partials,
            1,
        )
    };
    let swapped = [partials[1].clone(), partials[0].clone()];
    let e = merge(&swapped).unwrap_err().to_string();
    assert!(e.contains("task 0"), "{e}");
    assert!(merge(&partials[..1]).is_err(), "a missing task");
    for cut in [0, 1, 10, partials[0].len() / 2, partials[0].len() - 1] {
        let cut_short = [partials[0][..cut].to_vec(), partials[1].clone()];
        assert!(merge(&cut_short).is_err(), "a partial cut at {cut}");
    }
    let mut flipped = partials.clone();
    let at = flipped[1].len() - 40;
    flipped[1][at] ^= 0x40;
    // A flipped bit in a ciphertext may still decode; the framing and header never panic.
    let _ = merge(&flipped);
}

#[test]
fn aggregates_in_tasks_merge_sums_extrema_and_lane_sums() {
    let k = keys();
    let schema = session_v1();
    let app = k.public.app_bundle();
    let lists = proven(5);
    let inputs = inputs(&lists);
    // Lane aggregates, and FHE ones: a minimum and a maximum the lane cannot read, and a
    // conditional sum (a sum and a count).
    let query: AggregateQuery = serde_json::from_str(
        r#"{"aggregates":[
            {"op":"count"},
            {"op":"mean","field":"phq9_total"},
            {"op":"histogram","field":"phq9_total","edges":[5,10,15,20]},
            {"op":"sum","field":"lex_hopelessness"},
            {"op":"min","field":"lex_absolutist"},
            {"op":"max","field":"lex_hopelessness"},
            {"op":"sum_where","field":"lex_hopelessness","where_field":"lex_absolutist","at_least":1}
        ]}"#,
    )
    .unwrap();
    let (tasked, partials) = in_tasks_both_ways(&inputs, JobFunction::Aggregate(&query));
    assert_eq!(partials.len(), 3);

    let out = JobOutput::decode(&tasked, app.key_id()).unwrap();
    let clear = crate::compute::records(5);
    let compiled = query.compile(&schema, clear.len()).unwrap();
    let plan = compiled.lane_plan(&schema.slot_map().unwrap());
    let fhe_labels: Vec<&str> = out
        .manifest
        .outputs
        .iter()
        .map(|o| o.label.as_str())
        .collect();
    assert_eq!(fhe_labels, ["4:min", "5:max", "6:sum", "6:count"]);
    let fhe = out.decrypt(k.secret.client_key()).unwrap();
    let lane = plan
        .manifest
        .decrypt(&k.secret.lane_secret().unwrap(), &out.lane)
        .unwrap();
    assert_eq!(
        compiled.interpret_split(&plan, &fhe, &lane).unwrap(),
        query.evaluate_clear(&schema, &clear).unwrap()
    );
}

#[test]
fn a_stopped_computation_ends_between_records() {
    let k = keys();
    let app = k.public.app_bundle();
    let lists = proven(4);
    let inputs = inputs(&lists);
    let model = crisis_v1();
    let work = JobWork {
        key_id: app.key_id(),
        function: JobFunction::RiskScore(&model),
        records: &inputs,
        shards: None,
        noise_seed: None,
        task_records: None,
    };
    let verifier = Verifier::new(app.clone());
    // Stopped before it starts: nothing is computed.
    let progress = AtomicI64::new(0);
    blindsight_crypto::compute::stop(&progress);
    let err = run_job(
        &k.compute,
        &verifier,
        &session_v1(),
        work.clone(),
        1,
        &progress,
    )
    .unwrap_err();
    assert!(matches!(err, blindsight_crypto::Error::Stopped), "{err}");
    // Stopped once the first record is verified (on one thread, records go one at a time):
    // the records after it are never started.
    let progress = AtomicI64::new(0);
    let stopped = std::thread::scope(|s| {
        s.spawn(|| {
            while progress.load(Ordering::Relaxed) < 1 {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            blindsight_crypto::compute::stop(&progress);
        });
        run_job(&k.compute, &verifier, &session_v1(), work, 1, &progress)
    });
    assert!(matches!(stopped, Err(blindsight_crypto::Error::Stopped)));
    assert!(blindsight_crypto::compute::is_stopped(&progress));
}
