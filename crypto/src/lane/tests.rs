//! Lists an app could send at the edge of what the proof accepts: noise chosen by the caller
//! (not sampled) right at the proof's ℓ2 bound, and the key's bias doubled (r = 𝟙). Sums of
//! as many of them as the lane allows must still decode exactly.

use std::sync::OnceLock;

use tfhe::core_crypto::algorithms::slice_algorithms::slice_semi_reverse_negacyclic_convolution;
use tfhe::core_crypto::prelude::{
    CiphertextModulus, LweCiphertextCount, LweCompactCiphertextListOwned,
};
use tfhe::zk::{CompactPkeCrs, ZkComputeLoad};

use super::list::{LaneList, LanePublicKey, generate_lane_crs};
use super::secret::{LaneSecret, LaneTerm, compute_bias};
use super::sum::LaneSum;
use crate::params::{self, LANE_DELTA_LOG, LANE_EXACT_WEIGHT, LANE_LWE_DIMENSION};
use crate::{Error, Result};

struct Setup {
    public: LanePublicKey,
    crs: CompactPkeCrs,
    secret: LaneSecret,
    secret_words: zeroize::Zeroizing<Vec<u64>>,
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let ck = tfhe::ClientKey::generate(params::config());
        let pk = tfhe::CompactPublicKey::try_new(&ck).unwrap();
        let public = LanePublicKey::from_compact_public_key(&pk);
        let words = crate::keys::compact_secret_words(&ck).unwrap();
        let bias = compute_bias(&words, &public).unwrap();
        Setup {
            secret: LaneSecret::from_parts(words.clone(), &bias).unwrap(),
            secret_words: words,
            crs: generate_lane_crs().unwrap(),
            public,
        }
    })
}

/// The proof's bound on the whole noise vector: ‖(e1, e2)‖² ≤ (2^17)² × (2048 + k).
fn bound(k: usize) -> u64 {
    (((1u128 << 34) * (LANE_LWE_DIMENSION + k) as u128) as f64).sqrt() as u64
}

/// Encrypts `slots` with caller-chosen randomness `r` and noise `e1` (mask), `e2` (bodies),
/// and proves it, as a malicious app with a modified prover could.
fn crafted(slots: &[u64], r: &[u64], e1: &[i64], e2: &[i64], metadata: &[u8]) -> Result<LaneList> {
    let s = setup();
    let pk = s.public.lwe();
    let d = LANE_LWE_DIMENSION;
    let k = slots.len();
    let mut words = vec![0u64; d + k];
    let (mask, bodies) = words.split_at_mut(d);
    slice_semi_reverse_negacyclic_convolution(mask, pk.get_mask().as_ref(), r);
    for (m, e) in mask.iter_mut().zip(e1) {
        *m = m.wrapping_add(*e as u64);
    }
    let mut conv = vec![0u64; d];
    slice_semi_reverse_negacyclic_convolution(&mut conv, pk.get_body().as_ref(), r);
    for (j, body) in bodies.iter_mut().enumerate() {
        *body = conv[d - 1 - j]
            .wrapping_add(e2[j] as u64)
            .wrapping_add(slots[j] << LANE_DELTA_LOG);
    }
    let ct = LweCompactCiphertextListOwned::from_container(
        words,
        params::PKE_PARAMS.encryption_lwe_dimension.to_lwe_size(),
        LweCiphertextCount(k),
        CiphertextModulus::new_native(),
    );
    let e1: Vec<u64> = e1.iter().map(|&e| e as u64).collect();
    let e2: Vec<u64> = e2.iter().map(|&e| e as u64).collect();
    let proof = s.crs.prove(
        pk,
        &slots.to_vec(),
        &ct,
        r,
        &e1,
        &e2,
        metadata,
        ZkComputeLoad::Proof,
        [7; 16],
    );
    let list = LaneList::from_parts(ct, proof);
    list.verify(&s.crs, &s.public, metadata)?;
    Ok(list)
}

const SLOTS: [u64; 8] = [1, 0, 1, 1, 0, 1, 0, 1];

/// Worst-case lists: r = 𝟙 (twice the key's mean bias in every slot) and the whole noise
/// budget in one place, positive: on slot 0's body, or on one mask coefficient (which reaches
/// every slot through the secret key).
fn worst_case() -> Vec<LaneList> {
    let k = SLOTS.len();
    let b = (bound(k) as f64 * 0.999) as i64;
    let ones = vec![1u64; LANE_LWE_DIMENSION];
    let mut on_body = vec![0i64; k];
    on_body[0] = b;
    let mut on_mask = vec![0i64; LANE_LWE_DIMENSION];
    on_mask[0] = b;
    vec![
        crafted(&SLOTS, &ones, &vec![0; LANE_LWE_DIMENSION], &on_body, b"w").unwrap(),
        crafted(&SLOTS, &ones, &on_mask, &vec![0; k], b"w").unwrap(),
    ]
}

#[test]
fn noise_at_the_bound_is_accepted_and_beyond_it_refused() {
    let s = setup();
    let mut lists = worst_case();
    assert_eq!(lists.len(), 2);
    // tfhe's prover refuses to prove noise beyond the bound; the same proof over a body with
    // twice the noise (what an app would have to send to go beyond it) does not verify.
    let b = (bound(SLOTS.len()) as f64 * 0.999) as u64;
    let list = &mut lists[0];
    let body = &mut list.ct_mut().as_mut()[LANE_LWE_DIMENSION];
    *body = body.wrapping_add(b);
    assert!(matches!(
        list.verify(&s.crs, &s.public, b"w"),
        Err(Error::ProofInvalid)
    ));
}

#[test]
fn sums_of_worst_case_lists_at_the_exact_bound_decode_exactly() {
    let s = setup();
    for list in worst_case() {
        let mut sum = LaneSum::new(SLOTS.len()).unwrap();
        for _ in 0..LANE_EXACT_WEIGHT {
            sum.add(&list).unwrap();
        }
        let slots = sum.expand();
        for (j, &bit) in SLOTS.iter().enumerate() {
            let w = [(j, 1)];
            let term = LaneTerm {
                records: LANE_EXACT_WEIGHT,
                weights: &w,
            };
            let value = s
                .secret
                .decrypt(&slots.combine(&w).unwrap(), &term)
                .unwrap();
            assert_eq!(value as u64, bit * LANE_EXACT_WEIGHT, "slot {j}");
        }
    }
}

#[test]
fn a_term_that_does_not_describe_the_ciphertext_is_refused() {
    let s = setup();
    let list = worst_case().remove(0);
    let mut sum = LaneSum::new(SLOTS.len()).unwrap();
    sum.add(&list).unwrap();
    // One record whose slot 0 is 1, decoded as if it covered none: out of range.
    let w = [(0, 1)];
    let term = LaneTerm {
        records: 0,
        weights: &w,
    };
    assert!(
        s.secret
            .decrypt(&sum.expand().combine(&w).unwrap(), &term)
            .is_err()
    );
}

/// A public key whose error has a large all-ones component (b + c for every coefficient): its
/// bias β is far larger than a sampled key's, so sums are wrong unless it is removed. The key
/// holder's bias table, computed from the key, removes it.
#[test]
fn a_key_with_a_large_bias_still_decodes_exactly() {
    let s = setup();
    let mut pk = s.public.lwe().clone();
    let c = 1u64 << 20;
    for b in pk.get_mut_body().as_mut() {
        *b = b.wrapping_add(c);
    }
    let public = LanePublicKey::from_lwe(pk);
    let words = s.secret_words.clone();
    let bias = compute_bias(&words, &public).unwrap();
    let secret = LaneSecret::from_parts(words, &bias).unwrap();
    let beta = secret.bias(0).unwrap().abs();
    assert!(beta > 1e8, "the bias is not large: {beta}");
    let list = public.encrypt_and_prove(&SLOTS, &s.crs, b"big").unwrap();
    let n = 100_000u64;
    let mut sum = LaneSum::new(SLOTS.len()).unwrap();
    for _ in 0..n {
        sum.add(&list).unwrap();
    }
    let slots = sum.expand();
    for (j, &bit) in SLOTS.iter().enumerate() {
        let w = [(j, 1)];
        let term = LaneTerm {
            records: n,
            weights: &w,
        };
        let ct = slots.combine(&w).unwrap();
        assert_eq!(
            secret.decrypt(&ct, &term).unwrap() as u64,
            bit * n,
            "slot {j}"
        );
    }
    // Without the bias removed the same sums would be off by n·β ≫ Δ/2.
    assert!(n as f64 * beta > (1u64 << 46) as f64);
}
