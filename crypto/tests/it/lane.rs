//! The additive lane's primitives: proving, the wire format, sums, exact decoding with the
//! key's bias removed, and radix blocks derived from a lane list for the FHE path.

use std::sync::OnceLock;

use blindsight_crypto::lane::{
    ComputeKey, LaneCiphertext, LaneList, LanePublicKey, LaneSum, LaneTerm, generate_lane_crs,
};
use blindsight_crypto::tfhe::integer::{ClientKey as IntegerClientKey, RadixCiphertext};
use blindsight_crypto::tfhe::zk::CompactPkeCrs;
use blindsight_crypto::{Error, LaneSecret};

use crate::common::{bit_flips, keys, truncations};

struct Lane {
    crs: CompactPkeCrs,
    public: LanePublicKey,
    secret: LaneSecret,
}

fn lane() -> &'static Lane {
    static LANE: OnceLock<Lane> = OnceLock::new();
    LANE.get_or_init(|| {
        let k = keys();
        let public = LanePublicKey::from_compact_public_key(k.public.app_bundle().public_key());
        Lane {
            crs: generate_lane_crs().unwrap(),
            secret: k.secret.lane_secret(&public).unwrap(),
            public,
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
