//! The key holder's side of the lane: decrypting lane outputs exactly.
//!
//! Decrypting a sum of N lists leaves the message at Δ = 2^47 plus the summed noise. The
//! noise is centred everywhere but in one term: the encryption randomness r is a uniform
//! binary vector (E[r] = ½), so the public key's own error e contributes a key-fixed mean
//! β_j = ½ (e ⊛ 𝟙)_j to slot j of every list. It is computed once per key, from the public key
//! and the secret (a list made with r = 𝟙 and no noise or message decrypts to 2β_j), and
//! N × Σ w_j β_j is subtracted before rounding.

use tfhe::core_crypto::algorithms::slice_algorithms::slice_semi_reverse_negacyclic_convolution;
use tfhe::core_crypto::commons::traits::ContiguousEntityContainer;
use tfhe::core_crypto::prelude::{
    CiphertextModulus, LweCiphertext, LweCiphertextCount, LweCiphertextListOwned,
    LweCompactCiphertextList, LweSecretKey, decrypt_lwe_ciphertext,
    expand_lwe_compact_ciphertext_list,
};
use zeroize::Zeroizing;

use super::list::LanePublicKey;
use super::sum::LaneCiphertext;
use crate::params::{
    self, LANE_DELTA_LOG, LANE_EXACT_WEIGHT, LANE_LWE_DIMENSION, LANE_MAX_SLOTS,
    LANE_PLAINTEXT_MODULUS,
};
use crate::{Error, Result};

/// How a lane output was formed, which the key holder needs to decode it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LaneTerm<'a> {
    /// Records summed into it.
    pub records: u64,
    /// The `(slot, weight)` pairs combined.
    pub weights: &'a [(usize, i64)],
}

impl LaneTerm<'_> {
    /// The smallest and largest value the term can take if every slot holds a bit.
    pub fn range(&self) -> (i128, i128) {
        let n = i128::from(self.records);
        let neg: i128 = self
            .weights
            .iter()
            .map(|&(_, w)| i128::from(w.min(0)))
            .sum();
        let pos: i128 = self
            .weights
            .iter()
            .map(|&(_, w)| i128::from(w.max(0)))
            .sum();
        (n * neg, n * pos)
    }

    /// `records × Σ|w|`: what [`LANE_EXACT_WEIGHT`] bounds.
    pub fn weight(&self) -> u128 {
        let w: u128 = self
            .weights
            .iter()
            .map(|&(_, w)| u128::from(w.unsigned_abs()))
            .sum();
        u128::from(self.records) * w
    }

    /// True when the term decodes exactly whatever noise accepted lists carry: its weight is
    /// within [`LANE_EXACT_WEIGHT`] and its range fits the plaintext space.
    pub fn is_exact(&self) -> bool {
        let (lo, hi) = self.range();
        self.weight() <= u128::from(LANE_EXACT_WEIGHT)
            && hi - lo < i128::from(LANE_PLAINTEXT_MODULUS)
    }
}

/// The compact secret key and the key's per-slot bias. Zeroized on drop; `Debug` redacts.
pub struct LaneSecret {
    key: Zeroizing<Vec<u64>>,
    /// 2β_j for every slot a list can have.
    twice_bias: Zeroizing<Vec<i64>>,
}

impl std::fmt::Debug for LaneSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LaneSecret").finish_non_exhaustive()
    }
}

impl LaneSecret {
    /// The lane secret from the compact secret key's words and the key's bias table (2β_j
    /// for every slot, see [`compute_bias`]).
    pub(crate) fn from_parts(key: Zeroizing<Vec<u64>>, twice_bias: &[i64]) -> Result<Self> {
        if key.len() != LANE_LWE_DIMENSION || twice_bias.len() != LANE_MAX_SLOTS {
            return Err(Error::Fhe(format!(
                "the lane secret has {} key words and {} bias entries, expected \
                 {LANE_LWE_DIMENSION} and {LANE_MAX_SLOTS}",
                key.len(),
                twice_bias.len()
            )));
        }
        Ok(Self {
            key,
            twice_bias: Zeroizing::new(twice_bias.to_vec()),
        })
    }

    /// The key-fixed mean noise of slot `slot` of one list, β_slot (for tests and reports).
    pub fn bias(&self, slot: usize) -> Option<f64> {
        self.twice_bias.get(slot).map(|b| *b as f64 / 2.0)
    }

    /// Decrypts a lane output formed as `term`: removes the bias, rounds, and refuses a value
    /// outside what `term` can hold (a wrong manifest, a wrong key, or a sum too large to be
    /// exact).
    pub fn decrypt(&self, ct: &LaneCiphertext, term: &LaneTerm<'_>) -> Result<i64> {
        self.decrypt_within(ct, term, 0)
    }

    /// [`Self::decrypt`] for a term carrying privacy noise of at most `±bound`: the value is
    /// read in the term's range widened by `bound` on each side, then clamped to the range
    /// (post-processing, which differential privacy allows).
    pub fn decrypt_noisy(
        &self,
        ct: &LaneCiphertext,
        term: &LaneTerm<'_>,
        bound: u64,
    ) -> Result<i64> {
        let (lo, hi) = term.range();
        let value = i128::from(self.decrypt_within(ct, term, bound)?);
        Ok(i64::try_from(value.clamp(lo, hi)).unwrap_or(0))
    }

    fn decrypt_within(&self, ct: &LaneCiphertext, term: &LaneTerm<'_>, slack: u64) -> Result<i64> {
        let mut twice_bias: i128 = 0;
        for &(slot, w) in term.weights {
            let b = self.twice_bias.get(slot).ok_or_else(|| {
                Error::ShapeMismatch(format!("lane slot {slot} is beyond {LANE_MAX_SLOTS}"))
            })?;
            twice_bias += i128::from(*b) * i128::from(w);
        }
        let bias = (i128::from(term.records) * twice_bias).div_euclid(2);
        let lwe =
            LweCiphertext::from_container(ct.words.as_slice(), CiphertextModulus::new_native());
        let secret = LweSecretKey::from_container(self.key.as_slice());
        let phase = decrypt_lwe_ciphertext(&secret, &lwe).0;
        let centred = phase.wrapping_sub(bias as u64);
        let t = LANE_PLAINTEXT_MODULUS;
        let rounded = centred.wrapping_add(1 << (LANE_DELTA_LOG - 1)) >> LANE_DELTA_LOG;
        let residue = i128::from(rounded % t);
        let (lo, hi) = term.range();
        let (lo, hi) = (lo - i128::from(slack), hi + i128::from(slack));
        if hi - lo >= i128::from(t) {
            return Err(Error::ShapeMismatch(format!(
                "a lane term spanning {lo}..={hi} does not decode unambiguously"
            )));
        }
        // The one value congruent to the residue modulo t inside [lo, lo + t).
        let value = lo + (residue - lo).rem_euclid(i128::from(t));
        if value > hi {
            return Err(Error::Malformed {
                what: "lane output",
                reason: format!(
                    "decrypts to a value outside {lo}..={hi}; wrong key, or a manifest that does \
                     not describe this ciphertext"
                ),
            });
        }
        i64::try_from(value).map_err(|_| Error::Malformed {
            what: "lane output",
            reason: "value out of range".into(),
        })
    }
}

/// The key's bias table: 2β_j for every slot a lane list can have, from the compact secret
/// key's words and the matching public key. Computed once, at key generation, and kept with
/// the secrets (it is derived from the public key's secret error).
pub(crate) fn compute_bias(key: &[u64], public: &LanePublicKey) -> Result<Zeroizing<Vec<i64>>> {
    if key.len() != LANE_LWE_DIMENSION {
        return Err(Error::Fhe(format!(
            "the compact secret key has {} words, expected {LANE_LWE_DIMENSION}",
            key.len()
        )));
    }
    let pk = public.lwe();
    let ones = vec![1u64; LANE_LWE_DIMENSION];
    let mut words = vec![0u64; LANE_LWE_DIMENSION + LANE_MAX_SLOTS];
    let (mask, bodies) = words.split_at_mut(LANE_LWE_DIMENSION);
    slice_semi_reverse_negacyclic_convolution(mask, pk.get_mask().as_ref(), &ones);
    let mut body_conv = vec![0u64; LANE_LWE_DIMENSION];
    slice_semi_reverse_negacyclic_convolution(&mut body_conv, pk.get_body().as_ref(), &ones);
    for (dst, src) in bodies.iter_mut().zip(body_conv.iter().rev()) {
        *dst = *src;
    }
    let size = params::PKE_PARAMS.encryption_lwe_dimension.to_lwe_size();
    let compact = LweCompactCiphertextList::from_container(
        words.as_slice(),
        size,
        LweCiphertextCount(LANE_MAX_SLOTS),
        CiphertextModulus::new_native(),
    );
    let mut expanded = LweCiphertextListOwned::new(
        0u64,
        size,
        LweCiphertextCount(LANE_MAX_SLOTS),
        CiphertextModulus::new_native(),
    );
    expand_lwe_compact_ciphertext_list(&mut expanded, &compact);
    let secret = LweSecretKey::from_container(key);
    Ok(Zeroizing::new(
        expanded
            .iter()
            .map(|ct| decrypt_lwe_ciphertext(&secret, &ct).0 as i64)
            .collect(),
    ))
}
