//! Differential privacy for lane outputs: the server adds discrete Gaussian noise to every lane
//! ciphertext a job sends, under encryption (a multiple of Δ added to the ciphertext's body:
//! no key needed, no noise budget spent), so that the key holder decrypts noisy sums.
//!
//! - **Neighbouring cohorts** differ in one record's values (replace-one): the cohort size is
//!   public (results state it), as are the job's selection and query. A record moves one lane
//!   term `Σ weight × slot` (slots are proven bits) by at most `Σ|weight|`, its sensitivity, and
//!   lies in one shard only, so shards compose in parallel.
//! - **Accounting** is zero-concentrated DP (Bun and Steinke 2016): discrete Gaussian noise of
//!   variance σ² on a term of sensitivity Δ is (Δ² / 2σ²)-zCDP (Canonne, Kamath and Steinke
//!   2020), zCDP adds up across terms and jobs, and ρ-zCDP gives (ρ + 2√(ρ ln 1/δ), δ)-DP. A job
//!   asking for (ε, δ) spends the largest ρ with that guarantee, split evenly over the terms of a
//!   shard: term i gets σᵢ² = ⌈Δᵢ² × T / 2ρ⌉. ρ is kept in millionths (`rho_micro`) so budgets and
//!   variances are exact integers on every machine.
//! - **Sampling** follows Canonne, Kamath and Steinke's exact algorithm (Bernoulli(exp(−γ)) from
//!   rational γ, discrete Laplace, then rejection) with integer arithmetic only, over a
//!   ChaCha20 stream seeded with 32 random bytes the server draws per job. Noise beyond
//!   `12 σ` is redrawn (probability below 2⁻¹⁰³ per term, added to δ) so that a noisy term
//!   still decodes unambiguously: its range widened by the bound on each side must fit the
//!   lane's plaintext space. The seed's SHA-256 (with [`DP_SEED_DOMAIN`]) is committed in the
//!   job's receipt and the seed is kept with the result, so an auditor with the database
//!   re-executes the job to the same bytes; the key holder never sees it.

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::params::LANE_PLAINTEXT_MODULUS;
use crate::{Error, Result};

/// Domain separation for the commitment to a job's noise seed.
pub const DP_SEED_DOMAIN: &[u8] = b"blindsight/dp-seed/v1";

/// Noise is drawn within this many standard deviations.
pub const NOISE_TAIL_SIGMAS: u64 = 12;

/// The privacy a key holder asks of one aggregate job: (ε, δ)-differential privacy for the
/// results, under replace-one neighbouring.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Privacy {
    /// ε, in (0, 100].
    pub epsilon: f64,
    /// δ, in [1e-15, 1e-3].
    pub delta: f64,
}

impl Eq for Privacy {}

impl Privacy {
    /// Checks the parameters' ranges.
    pub fn validate(&self) -> Result<()> {
        if !(self.epsilon > 0.0 && self.epsilon <= 100.0) {
            return Err(Error::InvalidQuery(format!(
                "privacy.epsilon must be in (0, 100], not {}",
                self.epsilon
            )));
        }
        if !(1e-15..=1e-3).contains(&self.delta) {
            return Err(Error::InvalidQuery(format!(
                "privacy.delta must be in [1e-15, 1e-3], not {}",
                self.delta
            )));
        }
        Ok(())
    }

    /// The zCDP parameter ρ (in millionths, rounded down) that gives this (ε, δ):
    /// ρ = (√(ln(1/δ) + ε) − √(ln(1/δ)))².
    pub fn rho_micro(&self) -> Result<u64> {
        self.validate()?;
        let l = (1.0 / self.delta).ln();
        let rho = ((l + self.epsilon).sqrt() - l.sqrt()).powi(2);
        let micro = (rho * 1e6).floor();
        if micro < 1.0 {
            return Err(Error::InvalidQuery(format!(
                "privacy (ε = {}, δ = {}) is stronger than this service accounts for (ρ below \
                 one millionth); ask for a larger ε",
                self.epsilon, self.delta
            )));
        }
        Ok(micro as u64)
    }
}

/// The ε a spent ρ (millionths) amounts to at `delta`: ρ + 2√(ρ ln 1/δ).
pub fn epsilon_of(rho_micro: u64, delta: f64) -> f64 {
    let rho = rho_micro as f64 / 1e6;
    rho + 2.0 * (rho * (1.0 / delta).ln()).sqrt()
}

/// The noise on one lane term: the discrete Gaussian's variance and the bound it is drawn
/// within.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TermNoise {
    /// σ².
    pub sigma2: u64,
    /// |noise| ≤ bound (`⌈12 σ⌉`).
    pub bound: u64,
}

impl TermNoise {
    /// Noise for a term of sensitivity `sensitivity`, one of `terms` terms in its shard that
    /// share `rho_micro` (a variance beyond `u64` saturates: no lane term could carry it, and
    /// [`Self::fits`] says so).
    pub fn for_term(sensitivity: u64, terms: u64, rho_micro: u64) -> Self {
        let num = u128::from(sensitivity).pow(2) * u128::from(terms) * 1_000_000;
        let den = 2 * u128::from(rho_micro.max(1));
        let sigma2 = u64::try_from(num.div_ceil(den).max(1)).unwrap_or(u64::MAX);
        // ⌈12 σ⌉ = ⌈√(144 σ²)⌉.
        let bound = ceil_sqrt(u128::from(sigma2) * u128::from(NOISE_TAIL_SIGMAS).pow(2));
        Self {
            sigma2,
            bound: u64::try_from(bound).unwrap_or(u64::MAX),
        }
    }

    /// Whether a term whose values span `width` still decodes with this noise on it.
    pub fn fits(&self, width: u128) -> bool {
        width + 2 * u128::from(self.bound) < u128::from(LANE_PLAINTEXT_MODULUS)
    }
}

/// The noise a job with privacy adds to its lane terms (`crate::dp`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LaneNoise {
    /// The zCDP ρ the results are released under, in millionths.
    pub rho_micro: u64,
    /// Per term, in term order: the discrete Gaussian's variance and its bound.
    pub terms: Vec<TermNoise>,
}

/// ⌊√x⌋: the floating-point root, corrected to the exact integer.
fn floor_sqrt(x: u128) -> u128 {
    let mut r = (x as f64).sqrt() as u128;
    while r * r > x {
        r -= 1;
    }
    while (r + 1) * (r + 1) <= x {
        r += 1;
    }
    r
}

/// ⌈√x⌉.
fn ceil_sqrt(x: u128) -> u128 {
    let r = floor_sqrt(x);
    if r * r == x { r } else { r + 1 }
}

/// The commitment to a noise seed a receipt carries: SHA-256(domain ‖ seed), hex.
pub fn seed_commitment(seed: &[u8; 32]) -> String {
    crate::sha256_hex(&[DP_SEED_DOMAIN, seed.as_slice()].concat())
}

/// The largest variance [`draw`] samples: far beyond any noise a lane term can carry (a
/// term's noise bound must stay below 2^17), and small enough that the sampler's integer
/// arithmetic cannot overflow.
pub const MAX_SIGMA2: u64 = 1 << 32;

/// Draws noise for each term in order from the seed's ChaCha20 stream.
pub fn draw(seed: &[u8; 32], terms: &[TermNoise]) -> Result<Vec<i64>> {
    if let Some(t) = terms.iter().find(|t| t.sigma2 > MAX_SIGMA2) {
        return Err(Error::InvalidQuery(format!(
            "noise of variance {} is beyond what a lane result can carry",
            t.sigma2
        )));
    }
    let mut rng = ChaCha20Rng::from_seed(*seed);
    Ok(terms
        .iter()
        .map(|t| {
            loop {
                let z = discrete_gaussian(&mut rng, t.sigma2);
                if z.unsigned_abs() <= t.bound {
                    break z;
                }
            }
        })
        .collect())
}

/// A uniform integer in `[0, n)` (`n > 0`), by rejection.
fn uniform(rng: &mut ChaCha20Rng, n: u128) -> u128 {
    let bits = 128 - (n - 1).leading_zeros();
    loop {
        let mut v = (u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64());
        if bits < 128 {
            v &= (1u128 << bits) - 1;
        }
        if v < n {
            return v;
        }
    }
}

/// Bernoulli(num / den), `num ≤ den`.
fn bernoulli(rng: &mut ChaCha20Rng, num: u128, den: u128) -> bool {
    uniform(rng, den) < num
}

/// Bernoulli(exp(−num / den)), exactly (CKS 2020, algorithm 1).
fn bernoulli_exp(rng: &mut ChaCha20Rng, num: u128, den: u128) -> bool {
    let mut num = num;
    // exp(−γ) = exp(−1)^⌊γ⌋ × exp(−(γ − ⌊γ⌋)).
    while num > den {
        if !bernoulli_exp_unit(rng, 1, 1) {
            return false;
        }
        num -= den;
    }
    bernoulli_exp_unit(rng, num, den)
}

/// Bernoulli(exp(−γ)) for γ = num / den in [0, 1].
fn bernoulli_exp_unit(rng: &mut ChaCha20Rng, num: u128, den: u128) -> bool {
    let mut k: u128 = 1;
    loop {
        // Bernoulli(γ / k).
        if !bernoulli(rng, num, den * k) {
            return k % 2 == 1;
        }
        k += 1;
    }
}

/// Discrete Laplace with scale `t` (CKS 2020, algorithm 2).
fn discrete_laplace(rng: &mut ChaCha20Rng, t: u128) -> i128 {
    loop {
        let u = uniform(rng, t);
        if !bernoulli_exp(rng, u, t) {
            continue;
        }
        let mut v: u128 = 0;
        while bernoulli_exp(rng, 1, 1) {
            v += 1;
        }
        let negative = bernoulli(rng, 1, 2);
        if negative && u == 0 && v == 0 {
            continue;
        }
        let magnitude = (u + t * v) as i128;
        return if negative { -magnitude } else { magnitude };
    }
}

/// Discrete Gaussian of variance parameter `sigma2` (an integer), centred on 0 (CKS 2020,
/// algorithm 3).
fn discrete_gaussian(rng: &mut ChaCha20Rng, sigma2: u64) -> i64 {
    let s2 = u128::from(sigma2);
    // t = ⌊σ⌋ + 1.
    let t = floor_sqrt(s2) + 1;
    loop {
        let y = discrete_laplace(rng, t);
        // γ = (|y| − σ²/t)² / 2σ² = (|y| t − σ²)² / (2 σ² t²).
        let diff = (y.unsigned_abs() * t).abs_diff(s2);
        if bernoulli_exp(rng, diff * diff, 2 * s2 * t * t) {
            return i64::try_from(y).unwrap_or(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rho_matches_the_conversion_both_ways() {
        let p = Privacy {
            epsilon: 1.0,
            delta: 1e-6,
        };
        let rho = p.rho_micro().unwrap();
        assert!((17_460..=17_480).contains(&rho), "{rho}");
        let eps = epsilon_of(rho, 1e-6);
        assert!(eps <= 1.0 && eps > 0.999, "{eps}");
        assert!(
            Privacy {
                epsilon: 0.0,
                delta: 1e-6
            }
            .validate()
            .is_err()
        );
        assert!(
            Privacy {
                epsilon: 1.0,
                delta: 0.5
            }
            .validate()
            .is_err()
        );
        assert!(
            Privacy {
                epsilon: f64::NAN,
                delta: 1e-6
            }
            .validate()
            .is_err()
        );
    }

    #[test]
    fn noise_variance_follows_sensitivity_terms_and_rho() {
        // Δ = 1, one term, ρ = 0.5: σ² = 1.
        assert_eq!(
            TermNoise::for_term(1, 1, 500_000),
            TermNoise {
                sigma2: 1,
                bound: 12
            }
        );
        // Δ = 3, four terms, ρ = 0.01: σ² = 9 × 4 / 0.02 = 1,800; 12σ = 509.1…
        assert_eq!(
            TermNoise::for_term(3, 4, 10_000),
            TermNoise {
                sigma2: 1_800,
                bound: 510
            }
        );
        assert!(TermNoise::for_term(1, 1, 500_000).fits(100_000));
        // ρ = 10⁻⁶: σ ≈ 707, bound 8,486: beside a range of 120,000 it no longer fits 2^17.
        assert!(TermNoise::for_term(1, 1, 1).fits(100_000));
        assert!(!TermNoise::for_term(1, 1, 1).fits(120_000));
    }

    #[test]
    fn draws_are_deterministic_centred_and_of_the_stated_variance() {
        let seed = [7u8; 32];
        let terms = vec![
            TermNoise {
                sigma2: 400,
                bound: 240
            };
            20_000
        ];
        let a = draw(&seed, &terms).unwrap();
        assert_eq!(
            a,
            draw(&seed, &terms).unwrap(),
            "the same seed gives the same noise"
        );
        assert_ne!(a, draw(&[8u8; 32], &terms).unwrap());
        assert!(draw(&seed, &[TermNoise::for_term(1, 1, 1); 2]).is_ok());
        assert!(draw(&seed, &[TermNoise::for_term(1_000, 100, 1)]).is_err());
        let n = a.len() as f64;
        let mean = a.iter().map(|&z| z as f64).sum::<f64>() / n;
        let var = a.iter().map(|&z| (z as f64 - mean).powi(2)).sum::<f64>() / n;
        // Standard errors: mean 20/√n ≈ 0.14, variance ≈ 400 × √(2/n) ≈ 4.
        assert!(mean.abs() < 0.6, "mean {mean}");
        assert!((var - 400.0).abs() < 20.0, "variance {var}");
        assert!(a.iter().all(|z| z.unsigned_abs() <= 240));
        // Tiny variance: mostly 0, sometimes ±1, ±2.
        let small = draw(
            &seed,
            &[TermNoise {
                sigma2: 1,
                bound: 12,
            }; 5_000],
        )
        .unwrap();
        let zeros = small.iter().filter(|&&z| z == 0).count() as f64 / 5_000.0;
        // P(0) for the discrete Gaussian with σ² = 1 is about 0.399.
        assert!((zeros - 0.399).abs() < 0.03, "P(0) ≈ {zeros}");
    }

    #[test]
    fn seed_commitments_are_domain_separated() {
        let c = seed_commitment(&[1u8; 32]);
        assert_eq!(c.len(), 64);
        assert_ne!(c, crate::sha256_hex(&[1u8; 32]));
        assert_ne!(c, seed_commitment(&[2u8; 32]));
    }
}
