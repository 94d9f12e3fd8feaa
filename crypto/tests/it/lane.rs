//! The additive lane's primitives: proving, the wire format, sums, exact decoding with the
//! key's bias removed, and radix blocks derived from a lane list for the FHE path.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicI64, Ordering};

use blindsight_crypto::compute::{
    AggregateQuery, ComputedBy, JobFunction, JobInput, JobOutput, JobWork, LaneAggregator,
    check_shards, pack_rollup_shards, run_job,
};
use blindsight_crypto::dp::Privacy;
use blindsight_crypto::lane::{
    ComputeKey, LaneCiphertext, LaneHistogram, LaneList, LanePublicKey, LaneSum, LaneTerm,
    generate_lane_crs,
};
use blindsight_crypto::params::{LANE_EXACT_WEIGHT, LANE_ROLLUP_PART_RECORDS};
use blindsight_crypto::schemas::session_v1;
use blindsight_crypto::tfhe::integer::{ClientKey as IntegerClientKey, RadixCiphertext};
use blindsight_crypto::tfhe::zk::CompactPkeCrs;
use blindsight_crypto::{
    Error, LaneSecret, RecordMetadata, RecordValues, Value, Verifier, encrypt_record,
};

use crate::common::{bit_flips, keys, meta, truncations};

struct Lane {
    crs: CompactPkeCrs,
    public: LanePublicKey,
    secret: LaneSecret,
}

fn lane() -> &'static Lane {
    static LANE: OnceLock<Lane> = OnceLock::new();
    LANE.get_or_init(|| {
        let k = keys();
        Lane {
            crs: generate_lane_crs().unwrap(),
            secret: k.secret.lane_secret().unwrap(),
            public: k.public.app_bundle().lane_key().clone(),
        }
    })
}

fn prove(slots: &[u64], metadata: &[u8]) -> LaneList {
    let l = lane();
    l.public.encrypt_and_prove(slots, &l.crs, metadata).unwrap()
}

const SLOTS: [u64; 12] = [1, 0, 1, 1, 0, 0, 1, 0, 1, 1, 1, 0];

#[test]
fn a_lane_list_round_trips_verifies_and_is_bound_to_its_metadata() {
    let l = lane();
    let list = prove(&SLOTS, b"record-1");
    let bytes = list.encode().unwrap();
    let decoded = LaneList::decode(&bytes).unwrap();
    assert_eq!(decoded.slots(), SLOTS.len());
    assert_eq!(decoded.encode().unwrap(), bytes);
    decoded.verify(&l.crs, &l.public, b"record-1").unwrap();
    assert!(matches!(
        decoded.verify(&l.crs, &l.public, b"record-2"),
        Err(Error::ProofInvalid)
    ));
    assert!(!decoded.has_zero_mask());
    // A flipped body bit fails the proof (or the decoder); nothing panics.
    for flipped in bit_flips(&bytes, 300) {
        if let Ok(list) = LaneList::decode(&flipped) {
            assert!(list.verify(&l.crs, &l.public, b"record-1").is_err() || flipped == bytes);
        }
    }
    for prefix in truncations(&bytes, 200) {
        assert!(LaneList::decode(prefix).is_err());
    }
}

#[test]
fn slots_that_are_not_bits_are_refused_before_proving() {
    let l = lane();
    let err = l
        .public
        .encrypt_and_prove(&[0, 1, 2], &l.crs, b"m")
        .unwrap_err();
    assert!(err.to_string().contains("slot 2 holds 2"), "{err}");
    assert!(l.public.encrypt_and_prove(&[], &l.crs, b"m").is_err());
}

#[test]
fn sums_decode_exactly_with_weights_and_the_bias_removed() {
    let l = lane();
    let lists: Vec<LaneList> = (0..3)
        .map(|i| {
            let slots: Vec<u64> = SLOTS.iter().map(|b| (b + i) % 2).collect();
            prove(&slots, format!("r{i}").as_bytes())
        })
        .collect();
    let mut sum = LaneSum::new(SLOTS.len()).unwrap();
    // 30,000 records: each list added 10,000 times, its noise multiplied as many times.
    for list in &lists {
        for _ in 0..10_000 {
            sum.add(list).unwrap();
        }
    }
    let clear: Vec<i64> = (0..SLOTS.len())
        .map(|j| (0..3).map(|i| ((SLOTS[j] + i) % 2) as i64 * 10_000).sum())
        .collect();
    let slots = sum.expand();
    for (j, expected) in clear.iter().enumerate() {
        let w = [(j, 1)];
        let term = LaneTerm {
            records: sum.records(),
            weights: &w,
        };
        assert!(term.is_exact());
        let ct = slots.combine(&w).unwrap();
        let ct = LaneCiphertext::decode(&ct.encode()).unwrap();
        assert_eq!(l.secret.decrypt(&ct, &term).unwrap(), *expected, "slot {j}");
    }
    // A signed combination over fewer records: 2·s0 + s2 − 3·s5.
    let mut small = LaneSum::new(SLOTS.len()).unwrap();
    for list in &lists {
        small.add(list).unwrap();
    }
    let w = [(0, 2), (2, 1), (5, -3)];
    let term = LaneTerm {
        records: 3,
        weights: &w,
    };
    let expected: i64 = (0..3)
        .map(|i| {
            let b = |j: usize| ((SLOTS[j] + i) % 2) as i64;
            2 * b(0) + b(2) - 3 * b(5)
        })
        .sum();
    let ct = small.expand().combine(&w).unwrap();
    assert_eq!(l.secret.decrypt(&ct, &term).unwrap(), expected);
    // The bias is real and per slot.
    assert!(l.secret.bias(0).unwrap().abs() > 1.0);
}

#[test]
fn lists_of_another_width_do_not_add() {
    let list = prove(&[1, 0, 1], b"w");
    let mut sum = LaneSum::new(4).unwrap();
    assert!(sum.add(&list).is_err());
    assert!(LaneSum::new(0).is_err());
}

#[test]
fn radix_blocks_derived_from_a_lane_list_decrypt_to_the_fields() {
    let k = keys();
    let compute = ComputeKey::from_compressed(&k.public.server_key().unwrap()).unwrap();
    // A u4 = 11 (LSB first: 1,1,0,1), a boolean = 1, a u2 = 2 (0,1).
    let slots = [1, 1, 0, 1, 1, 0, 1];
    let list = prove(&slots, b"derive");
    let fields = compute.derive(&list, &[4, 1, 2]).unwrap();
    let ck = k.secret.client_key();
    let integer: &IntegerClientKey = ck.as_ref();
    let clear: Vec<u64> = fields
        .iter()
        .map(|r: &RadixCiphertext| integer.decrypt_radix::<u64>(r))
        .collect();
    assert_eq!(clear, vec![11, 1, 2]);
    assert!(compute.derive(&list, &[4, 4]).is_err());
}

pub(crate) fn session_values(clear: &[Value]) -> RecordValues {
    session_v1()
        .fields
        .iter()
        .zip(clear)
        .map(|(f, v)| (f.name.clone(), *v))
        .collect()
}

pub(crate) fn session_meta(i: usize) -> RecordMetadata {
    RecordMetadata {
        schema_id: "session".into(),
        ..meta(&format!("lane-{i}"))
    }
}

/// The demo's seven aggregates, every other kind of lane op (a minimum, a plain sum, a count
/// from an indicator, a histogram coarser than the declared one), and a maximum the lane
/// cannot read (no full-domain histogram of that field), last.
fn demo_query() -> AggregateQuery {
    serde_json::from_str(
        r#"{"aggregates":[
            {"op":"count"},
            {"op":"mean","field":"mood_change"},
            {"op":"mean","field":"phq9_total"},
            {"op":"histogram","field":"phq9_total","edges":[5,10,15,20]},
            {"op":"count_at_least","field":"gad7_total","threshold":10},
            {"op":"max","field":"phq9_9"},
            {"op":"sum_where","field":"mood_after","where_field":"phq9_total","at_least":10},
            {"op":"min","field":"phq9_9"},
            {"op":"sum","field":"gad7_total"},
            {"op":"count_at_least","field":"phq9_total","threshold":10},
            {"op":"histogram","field":"phq9_total","edges":[10,20]},
            {"op":"max","field":"lex_hopelessness"}
        ]}"#,
    )
    .unwrap()
}

#[test]
fn aggregate_jobs_use_the_lane_where_declared_and_match_the_clear_reference() {
    let k = keys();
    let schema = session_v1();
    let app = k.public.app_bundle();
    let clear = crate::compute::records(5);
    let lists: Vec<(RecordMetadata, Vec<u8>)> = clear
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let m = session_meta(i);
            let list = encrypt_record(app, &schema, &m, &session_values(v), None).unwrap();
            (m, list.encode().unwrap())
        })
        .collect();
    let inputs: Vec<JobInput<'_>> = lists
        .iter()
        .map(|(m, l)| JobInput {
            metadata: m,
            proven_list: l,
            transcript: None,
        })
        .collect();
    let query = demo_query();
    let work = JobWork {
        key_id: app.key_id(),
        function: JobFunction::Aggregate(&query),
        records: &inputs,
        shards: None,
        noise_seed: None,
        task_records: None,
    };
    let progress = AtomicI64::new(0);
    let verifier = Verifier::new(app.clone());
    let bytes = run_job(&k.compute, &verifier, &schema, work.clone(), 2, &progress).unwrap();
    assert_eq!(progress.load(Ordering::Relaxed), 10);
    // Deterministic: the same inputs give the same bytes (receipts, re-execution).
    let again = run_job(&k.compute, &verifier, &schema, work, 1, &progress).unwrap();
    assert!(bytes == again, "re-running the job gave other bytes");

    let out = JobOutput::decode(&bytes, app.key_id()).unwrap();
    let compiled = query.compile(&schema, clear.len()).unwrap();
    let plan = compiled.lane_plan(&schema.slot_map().unwrap());
    assert_eq!(out.manifest.lane.as_ref(), Some(&plan.manifest));
    use ComputedBy::{Clear, Fhe, Lane as L};
    assert_eq!(
        plan.computed_by(&query),
        [Clear, L, L, L, L, L, L, L, L, L, L, Fhe]
    );
    // Only the lexicon maximum runs on the FHE path.
    assert_eq!(
        out.manifest
            .outputs
            .iter()
            .map(|o| o.label.as_str())
            .collect::<Vec<_>>(),
        ["11:max"]
    );
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
fn a_cohort_larger_than_the_exact_bound_is_summed_in_shards() {
    let k = keys();
    let schema = session_v1();
    let app = k.public.app_bundle();
    let distinct = crate::compute::records(3);
    let lists: Vec<LaneList> = distinct
        .iter()
        .enumerate()
        .map(|(i, v)| {
            encrypt_record(app, &schema, &session_meta(i), &session_values(v), None).unwrap()
        })
        .collect();
    let n = 130_000;
    let mut query = demo_query();
    query.aggregates.pop(); // the lexicon maximum: the FHE path, not what this test is about
    let compiled = query.compile(&schema, n).unwrap();
    let plan = compiled.lane_plan(&schema.slot_map().unwrap());
    assert_eq!(plan.manifest.shards, [65_000, 65_000]);
    assert!(plan.by_lane[1..].iter().all(|&b| b));
    assert_eq!(plan.by_lane.len(), 11);
    let mut sum = LaneAggregator::new(&plan.manifest, lists[0].slots()).unwrap();
    for i in 0..n {
        sum.push(&lists[i % 3]).unwrap();
    }
    assert!(sum.push(&lists[0]).is_err(), "more records than planned");
    let cts = {
        let mut sum = LaneAggregator::new(&plan.manifest, lists[0].slots()).unwrap();
        for i in 0..n {
            sum.push(&lists[i % 3]).unwrap();
        }
        sum.finish().unwrap()
    };
    let lane = plan
        .manifest
        .decrypt(&k.secret.lane_secret().unwrap(), &cts)
        .unwrap();
    let clear: Vec<Vec<Value>> = (0..n).map(|i| distinct[i % 3].clone()).collect();
    assert_eq!(
        compiled.interpret_split(&plan, &[], &lane).unwrap(),
        query.evaluate_clear(&schema, &clear).unwrap()
    );
}

#[test]
fn rollup_parts_pack_into_shards_within_the_bound_and_no_shard_is_small() {
    let p = LANE_ROLLUP_PART_RECORDS;
    // Eight full parts overflow one shard; the short last shard takes a part from the first.
    let shards = pack_rollup_shards(&[p; 8]).unwrap();
    assert_eq!(shards, [0..6, 6..8]);
    // Every shape: contiguous, whole parts, each shard within [LANE_MIN_SHARD, bound].
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..2_000 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let count = 1 + (state % 40) as usize;
        let parts: Vec<u64> = (0..count)
            .map(|i| 1 + (state.rotate_left(i as u32 * 7) % p))
            .collect();
        let shards = pack_rollup_shards(&parts).unwrap();
        let sizes: Vec<u64> = shards
            .iter()
            .map(|r| parts[r.clone()].iter().sum())
            .collect();
        assert_eq!(shards.first().map(|r| r.start), Some(0));
        assert_eq!(shards.last().map(|r| r.end), Some(parts.len()));
        assert!(shards.windows(2).all(|w| w[0].end == w[1].start));
        let n = parts.iter().sum();
        check_shards(n, &sizes).unwrap_or_else(|e| panic!("{parts:?} → {sizes:?}: {e}"));
    }
    assert!(pack_rollup_shards(&[0]).is_err());
    assert!(pack_rollup_shards(&[p + 1]).is_err());
    // What a key holder refuses in an output: sums that differ, a shard over the bound, a
    // small shard beside others.
    check_shards(10, &[10]).unwrap();
    assert!(check_shards(10, &[9]).is_err());
    assert!(
        check_shards(
            200_000,
            &[LANE_EXACT_WEIGHT + 1, 200_000 - LANE_EXACT_WEIGHT - 1]
        )
        .is_err()
    );
    assert!(check_shards(130_000, &[129_000, 1_000]).is_err());
    assert!(check_shards(0, &[]).is_ok());
    assert!(check_shards(5, &[]).is_err());
}

#[test]
fn a_cohort_summed_from_rollup_parts_decodes_exactly() {
    let k = keys();
    let schema = session_v1();
    let app = k.public.app_bundle();
    let distinct = crate::compute::records(3);
    let lists: Vec<LaneList> = distinct
        .iter()
        .enumerate()
        .map(|(i, v)| {
            encrypt_record(app, &schema, &session_meta(i), &session_values(v), None).unwrap()
        })
        .collect();
    // A part's sum survives storage, and a late record subtracts back out.
    let slots = lists[0].slots();
    let mut sum = LaneSum::new(slots).unwrap();
    for l in &lists {
        sum.add(l.body()).unwrap();
    }
    let stored = LaneSum::from_bytes(&sum.to_bytes(), slots, 3).unwrap();
    assert_eq!(stored, sum);
    assert!(LaneSum::from_bytes(&sum.to_bytes()[1..], slots, 3).is_err());
    let mut two = LaneSum::new(slots).unwrap();
    two.add(lists[0].body()).unwrap();
    two.add(lists[1].body()).unwrap();
    let mut back = stored.clone();
    back.subtract(lists[2].body()).unwrap();
    assert_eq!(back, two);
    let mut merged = two.clone();
    let mut one = LaneSum::new(slots).unwrap();
    one.add(lists[2].body()).unwrap();
    merged.merge(&one).unwrap();
    assert_eq!(merged, sum);

    // 130,000 records in eight parts: shards of whole parts, not of equal size.
    let p = LANE_ROLLUP_PART_RECORDS;
    let mut parts = vec![p; 7];
    parts.push(130_000 - 7 * p);
    let ranges = pack_rollup_shards(&parts).unwrap();
    let shards: Vec<u64> = ranges
        .iter()
        .map(|r| parts[r.clone()].iter().sum())
        .collect();
    assert_eq!(shards, [6 * p, 130_000 - 6 * p]);
    let n = 130_000usize;
    let mut query = demo_query();
    query.aggregates.pop(); // the lexicon maximum: the FHE path
    let compiled = query.compile(&schema, n).unwrap();
    let plan = compiled.lane_plan_for_shards(&schema.slot_map().unwrap(), shards.clone());
    let mut agg = LaneAggregator::new(&plan.manifest, slots).unwrap();
    let mut next = 0usize;
    for (s, range) in ranges.iter().enumerate() {
        for &records in &parts[range.clone()] {
            let mut part = LaneSum::new(slots).unwrap();
            for i in next..next + records as usize {
                part.add(lists[i % 3].body()).unwrap();
            }
            next += records as usize;
            agg.add_sum(s, &part).unwrap();
        }
    }
    let cts = agg.finish().unwrap();
    assert_eq!(plan.manifest.shards, shards);
    let lane = plan
        .manifest
        .decrypt(&k.secret.lane_secret().unwrap(), &cts)
        .unwrap();
    let clear: Vec<Vec<Value>> = (0..n).map(|i| distinct[i % 3].clone()).collect();
    assert_eq!(
        compiled.interpret_split(&plan, &[], &lane).unwrap(),
        query.evaluate_clear(&schema, &clear).unwrap()
    );
}

#[test]
fn lane_layouts_are_checked_when_a_schema_is() {
    let mut s = session_v1();
    s.lane.histograms[0].edges = vec![10, 5];
    assert!(
        s.validate()
            .unwrap_err()
            .to_string()
            .contains("edges must increase")
    );
    let mut s = session_v1();
    s.lane.indicators[0].sums = vec!["cssrs_plan".into()];
    assert!(s.validate().unwrap_err().to_string().contains("boolean"));
    let mut s = session_v1();
    s.lane.histograms[0].feature = "nope".into();
    assert!(s.validate().is_err());
    let mut s = session_v1();
    // 148 slots + 7 × 61 buckets: beyond the CRS.
    for _ in 0..7 {
        s.lane.histograms.push(LaneHistogram {
            feature: "lex_absolutist".into(),
            edges: (1..61).collect(),
        });
    }
    assert!(s.validate().unwrap_err().to_string().contains("exceed"));
}

#[test]
fn private_queries_add_bounded_noise_to_every_term_and_decode_clamped() {
    let k = keys();
    let schema = session_v1();
    let app = k.public.app_bundle();
    let clear = crate::compute::records(4);
    let lists: Vec<LaneList> = clear
        .iter()
        .enumerate()
        .map(|(i, v)| {
            encrypt_record(app, &schema, &session_meta(i), &session_values(v), None).unwrap()
        })
        .collect();
    let mut query = demo_query();
    query.aggregates.retain(|a| {
        !matches!(
            a,
            blindsight_crypto::compute::Aggregate::Max { .. }
                | blindsight_crypto::compute::Aggregate::Min { .. }
        )
    });
    query.privacy = Some(Privacy {
        epsilon: 1.0,
        delta: 1e-6,
    });
    let compiled = query.compile(&schema, lists.len()).unwrap();
    let plan = compiled.lane_plan(&schema.slot_map().unwrap());
    compiled.check_privacy(&query, &plan).unwrap();
    let noise = plan.manifest.noise.clone().expect("noise on every term");
    assert_eq!(noise.terms.len(), plan.manifest.terms.len());
    let rho = query.privacy.unwrap().rho_micro().unwrap();
    assert_eq!(noise.rho_micro, rho);
    // A term of sensitivity 1 among T: σ² = ⌈T / 2ρ⌉.
    let t = plan.manifest.terms.len() as u64;
    let count_term = plan
        .manifest
        .terms
        .iter()
        .position(|term| term.weights.len() == 1 && term.weights[0].1 == 1)
        .unwrap();
    assert_eq!(
        noise.terms[count_term].sigma2,
        (t * 1_000_000).div_ceil(2 * rho)
    );

    let sum = |seed: Option<&[u8; 32]>| {
        let mut agg = LaneAggregator::new(&plan.manifest, lists[0].slots()).unwrap();
        for l in &lists {
            agg.push(l).unwrap();
        }
        agg.finish_with_noise(seed)
    };
    assert!(sum(None).is_err(), "a plan with noise needs a seed");
    let seed = [42u8; 32];
    let noisy = sum(Some(&seed)).unwrap();
    assert_eq!(noisy, sum(Some(&seed)).unwrap(), "the seed fixes the noise");
    assert_ne!(noisy, sum(Some(&[43u8; 32])).unwrap());
    // Each term decodes to its exact value plus the noise drawn for it, clamped to its range.
    let exact_plan = {
        let mut q = query.clone();
        q.privacy = None;
        q.compile(&schema, lists.len())
            .unwrap()
            .lane_plan(&schema.slot_map().unwrap())
    };
    let secret = k.secret.lane_secret().unwrap();
    let mut agg = LaneAggregator::new(&exact_plan.manifest, lists[0].slots()).unwrap();
    for l in &lists {
        agg.push(l).unwrap();
    }
    let exact_cts = agg.finish().unwrap();
    let draws = blindsight_crypto::dp::draw(&seed, &noise.terms).unwrap();
    for (i, term) in plan.manifest.terms.iter().enumerate() {
        let lane_term = LaneTerm {
            records: plan.manifest.shards[term.shard],
            weights: &term.weights,
        };
        let exact = secret.decrypt(&exact_cts[i], &lane_term).unwrap();
        let got = secret
            .decrypt_noisy(&noisy[i], &lane_term, noise.terms[i].bound)
            .unwrap();
        let (lo, hi) = lane_term.range();
        let expected = (i128::from(exact) + i128::from(draws[i])).clamp(lo, hi);
        assert_eq!(i128::from(got), expected, "term {i}");
    }
    // The whole query interprets; the count is exact.
    let lane = plan.manifest.decrypt(&secret, &noisy).unwrap();
    let values = compiled.interpret_split(&plan, &[], &lane).unwrap();
    assert_eq!(values[0], query.evaluate_clear(&schema, &clear).unwrap()[0]);

    // Refused: a maximum, noise that cannot fit beside a term's range, and privacy on a query
    // that needs the FHE path.
    let mut with_max = query.clone();
    with_max.aggregates = demo_query().aggregates;
    assert!(with_max.compile(&schema, 4).is_err());
    let mut tiny = query.clone();
    tiny.privacy = Some(Privacy {
        epsilon: 0.02,
        delta: 1e-6,
    });
    let big = tiny.compile(&schema, 100_000).unwrap();
    let plan = big.lane_plan(&schema.slot_map().unwrap());
    let err = big.check_privacy(&tiny, &plan).unwrap_err().to_string();
    assert!(err.contains("larger epsilon"), "{err}");
}
