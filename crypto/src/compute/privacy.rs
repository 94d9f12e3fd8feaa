//! Differential privacy in a lane plan: the noise each term carries (`crate::dp` for the
//! mechanism and its accounting), and the checks that a query with privacy can run.

use super::aggregate::CompiledQuery;
use super::lane::{LaneManifest, LanePlan};
use crate::dp::{LaneNoise, TermNoise};
use crate::lane::LaneTerm;
use crate::{Error, Result};

impl LaneManifest {
    /// The noise giving `rho_micro`-zCDP: each term's sensitivity is `Σ|weight|` (what one
    /// record's bits can move it by), and the terms of a shard share ρ evenly (a record is in
    /// one shard, so shards compose in parallel).
    pub(super) fn noise_for(&self, rho_micro: u64) -> LaneNoise {
        let per_shard = |s: usize| self.terms.iter().filter(|t| t.shard == s).count() as u64;
        LaneNoise {
            rho_micro,
            terms: self
                .terms
                .iter()
                .map(|t| {
                    let sensitivity: u64 = t.weights.iter().map(|(_, w)| w.unsigned_abs()).sum();
                    TermNoise::for_term(sensitivity, per_shard(t.shard), rho_micro)
                })
                .collect(),
        }
    }

    /// Checks that every noisy term still decodes: its range widened by its noise bound on
    /// both sides fits the lane's plaintext space. `Err` says which term and what to change.
    pub fn check_noise(&self) -> Result<()> {
        let Some(noise) = &self.noise else {
            return Ok(());
        };
        for (t, n) in self.terms.iter().zip(&noise.terms) {
            let records = self.shards.get(t.shard).copied().unwrap_or(0);
            let (lo, hi) = LaneTerm {
                records,
                weights: &t.weights,
            }
            .range();
            if !n.fits((hi - lo).unsigned_abs()) {
                return Err(Error::InvalidQuery(format!(
                    "the noise this privacy needs (up to ±{} on a sum over {records} records) \
                     does not fit the lane's plaintext space; ask for a larger epsilon, fewer \
                     aggregates, or a smaller cohort",
                    n.bound
                )));
            }
        }
        Ok(())
    }
}

impl CompiledQuery {
    /// Checks a plan for a query that asks for privacy: the lane must answer every aggregate
    /// (noise is added to lane ciphertexts only) and every noisy term must still decode.
    pub fn check_privacy(&self, query: &super::AggregateQuery, plan: &LanePlan) -> Result<()> {
        if self.privacy.is_none() {
            return Ok(());
        }
        let (fhe, _) = self.fhe_part(query, plan);
        if let Some(a) = fhe.aggregates.first() {
            return Err(Error::InvalidQuery(format!(
                "{}: privacy applies to aggregates the lane answers, and this one needs the FHE \
                 path (declare the field in the schema's lane layout, or drop privacy)",
                a.describe()
            )));
        }
        plan.manifest.check_noise()
    }
}
