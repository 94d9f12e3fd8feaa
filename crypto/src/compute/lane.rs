//! Aggregates through the additive lane: which aggregates of a query the lane answers, how
//! their results are formed from slot sums, and the server's streaming evaluation.
//!
//! A lane result ("output") is `per_record × N + Σ coefficient × term`, where each term is one
//! ciphertext the server sends: the sum over one shard of records of `Σ weight × slot`. The
//! plan is a pure function of the query, the schema's lane layout and the cohort size, so the
//! key holder recomputes it and refuses an output whose layout differs.
//!
//! Where `records × Σ|weight|` of an output stays within [`LANE_EXACT_WEIGHT`] the server sends
//! that one combination and the key holder learns only the output. Otherwise it sends the sums
//! of the slots involved, one term per slot, which the key holder combines in clear: it then
//! learns those slot sums (e.g. how many records have bit 3 of a field set), not only the
//! output. Cohorts larger than [`LANE_EXACT_WEIGHT`] records are cut into shards of equal size
//! (each at most that many, so at least half of it), in record order, summed separately and
//! added by the key holder.

use serde::{Deserialize, Serialize};

use super::aggregate::{CompiledQuery, Plan};
use super::shards::{check_shards, equal_shards};
use crate::dp::LaneNoise;
use crate::lane::{LaneBody, LaneCiphertext, LaneSecret, LaneSum, LaneTerm, SlotForm, SlotMap};
use crate::{Error, Result};

/// The most lane ciphertexts one output may carry (each is 16,392 bytes).
pub const MAX_LANE_TERMS: usize = 8_192;

/// One lane ciphertext: `Σ weight × slot` summed over one shard.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LaneTermSpec {
    /// The shard (index into [`LaneManifest::shards`]).
    pub shard: usize,
    /// `(slot, weight)` pairs.
    pub weights: Vec<(usize, i64)>,
}

/// One lane result: `per_record × records + Σ coefficient × term`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LaneOutputSpec {
    /// The result's label, as in [`CompiledQuery::outputs`] (e.g. `3:ge:10`).
    pub label: String,
    /// Added once per record (e.g. the offset of `mood_change`).
    pub per_record: i64,
    /// `(term, coefficient)` pairs.
    pub terms: Vec<(usize, i64)>,
}

/// The lane part of an aggregate job's output.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LaneManifest {
    /// Records per shard, in record order.
    pub shards: Vec<u64>,
    /// The ciphertexts, in the order they travel.
    pub terms: Vec<LaneTermSpec>,
    /// The results formed from them.
    pub outputs: Vec<LaneOutputSpec>,
    /// The differential-privacy noise on each term, when the query asked for privacy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noise: Option<LaneNoise>,
}

impl LaneManifest {
    /// Records covered.
    pub fn records(&self) -> u64 {
        self.shards.iter().sum()
    }

    /// Decrypts every term and forms every output: `(label, value)` in manifest order, values
    /// in the encoding [`CompiledQuery::interpret`] reads (offsets included).
    pub fn decrypt(
        &self,
        secret: &LaneSecret,
        ciphertexts: &[LaneCiphertext],
    ) -> Result<Vec<(String, i64)>> {
        if ciphertexts.len() != self.terms.len() {
            return Err(Error::ShapeMismatch(format!(
                "{} lane ciphertexts for {} terms",
                ciphertexts.len(),
                self.terms.len()
            )));
        }
        if let Some(noise) = &self.noise
            && noise.terms.len() != self.terms.len()
        {
            return Err(Error::ShapeMismatch(format!(
                "noise for {} lane terms, the manifest has {}",
                noise.terms.len(),
                self.terms.len()
            )));
        }
        let values = self
            .terms
            .iter()
            .zip(ciphertexts)
            .enumerate()
            .map(|(i, (t, ct))| {
                let records = *self.shards.get(t.shard).ok_or_else(|| {
                    Error::ShapeMismatch(format!("lane term names shard {}", t.shard))
                })?;
                let term = LaneTerm {
                    records,
                    weights: &t.weights,
                };
                match &self.noise {
                    None => secret.decrypt(ct, &term),
                    Some(noise) => secret.decrypt_noisy(ct, &term, noise.terms[i].bound),
                }
            })
            .collect::<Result<Vec<i64>>>()?;
        let n = i64::try_from(self.records()).unwrap_or(i64::MAX);
        self.outputs
            .iter()
            .map(|o| {
                let mut v = o.per_record.saturating_mul(n);
                for &(t, c) in &o.terms {
                    let term = values.get(t).ok_or_else(|| {
                        Error::ShapeMismatch(format!("lane output {} names term {t}", o.label))
                    })?;
                    v = v.saturating_add(term.saturating_mul(c));
                }
                Ok((o.label.clone(), v))
            })
            .collect()
    }
}

/// Which aggregates of a query the lane answers, and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LanePlan {
    /// Per aggregate: answered by the lane. `count` needs neither lane (the record count is
    /// clear) and is `false`.
    pub by_lane: Vec<bool>,
    /// What the server sends for them.
    pub manifest: LaneManifest,
}

/// The lane forms of plan `plan`'s raw outputs, or `None` when the lane cannot answer it.
fn forms(q: &CompiledQuery, map: &SlotMap, i: usize) -> Option<Vec<(String, SlotForm)>> {
    let feature = |f: usize| &q.features[f];
    let flag = |k: usize| {
        let (f, encoded) = q.flags[k];
        (feature(f), encoded - i64::from(feature(f).offset()))
    };
    match &q.plans[i] {
        Plan::Count => None,
        // One count per value: the key holder reads the extremum off the histogram.
        Plan::Extremum { f, max } => Some(
            map.full_domain(feature(*f))?
                .into_iter()
                .enumerate()
                .map(|(b, slot)| {
                    let which = if *max { "max" } else { "min" };
                    (
                        format!("{i}:{which}@{b}"),
                        SlotForm {
                            weights: vec![(slot, 1)],
                            constant: 0,
                        },
                    )
                })
                .collect(),
        ),
        Plan::Sum { f, .. } => Some(vec![(format!("{i}:sum"), map.linear(feature(*f))?)]),
        Plan::AtLeast { flags, edges, .. } => flags
            .iter()
            .zip(edges)
            .map(|(&k, e)| {
                let (f, threshold) = flag(k);
                Some((format!("{i}:ge:{e}"), map.count_at_least(f, threshold)?))
            })
            .collect(),
        Plan::SumWhere { f, flag: k } => {
            let (condition, threshold) = flag(*k);
            let (sum, count) = map.sum_where(feature(*f), condition, threshold)?;
            Some(vec![
                (format!("{i}:sum"), sum),
                (format!("{i}:count"), count),
            ])
        }
    }
}

impl CompiledQuery {
    /// Plans the lane part of this query over `map`'s layout for its cohort size, in shards of
    /// equal size.
    pub fn lane_plan(&self, map: &SlotMap) -> LanePlan {
        self.lane_plan_for_shards(map, equal_shards(self.records() as u64))
    }

    /// Plans the lane part of this query over `map`'s layout for records summed in shards of
    /// the given sizes (checked with [`check_shards`] by whoever takes them from elsewhere).
    pub fn lane_plan_for_shards(&self, map: &SlotMap, shards: Vec<u64>) -> LanePlan {
        let mut plan = self.lane_plan_without_noise(map, shards);
        if let Some(rho_micro) = self.privacy {
            plan.manifest.noise = Some(plan.manifest.noise_for(rho_micro));
        }
        plan
    }

    fn lane_plan_without_noise(&self, map: &SlotMap, shards: Vec<u64>) -> LanePlan {
        let mut by_lane = Vec::with_capacity(self.plans.len());
        let mut manifest = LaneManifest {
            shards: shards.clone(),
            ..LaneManifest::default()
        };
        for i in 0..self.plans.len() {
            let Some(forms) = forms(self, map, i) else {
                by_lane.push(false);
                continue;
            };
            by_lane.push(true);
            for (label, form) in forms {
                let mut terms = Vec::new();
                for (s, &records) in shards.iter().enumerate() {
                    let combined = LaneTerm {
                        records,
                        weights: &form.weights,
                    };
                    if combined.is_exact() {
                        terms.push((intern(&mut manifest.terms, s, form.weights.clone()), 1));
                    } else {
                        for &(slot, w) in &form.weights {
                            terms.push((intern(&mut manifest.terms, s, vec![(slot, 1)]), w));
                        }
                    }
                }
                manifest.outputs.push(LaneOutputSpec {
                    label,
                    per_record: form.constant,
                    terms,
                });
            }
        }
        LanePlan { by_lane, manifest }
    }
}

/// The index of term `(shard, weights)`, added if new (slot sums shared by several outputs are
/// sent once).
fn intern(terms: &mut Vec<LaneTermSpec>, shard: usize, weights: Vec<(usize, i64)>) -> usize {
    if let Some(i) = terms
        .iter()
        .position(|t| t.shard == shard && t.weights == weights)
    {
        return i;
    }
    terms.push(LaneTermSpec { shard, weights });
    terms.len() - 1
}

/// The server's side of a lane plan: each record's list is added into its shard's running sum
/// (memory: one list per shard, whatever the cohort size). Adds are wrapping, so the order in
/// which a shard's records arrive does not change its sum; which shard a record belongs to
/// follows from its position in the job's selection.
#[derive(Debug)]
pub struct LaneAggregator<'a> {
    manifest: &'a LaneManifest,
    /// The first position of each shard, and one past the last.
    bounds: Vec<u64>,
    sums: Vec<LaneSum>,
    next: u64,
}

impl<'a> LaneAggregator<'a> {
    /// An aggregator for `manifest` over lists of `slots` slots.
    pub fn new(manifest: &'a LaneManifest, slots: usize) -> Result<Self> {
        let mut bounds = vec![0u64];
        for s in &manifest.shards {
            bounds.push(bounds.last().copied().unwrap_or(0) + s);
        }
        Ok(Self {
            manifest,
            bounds,
            sums: (0..manifest.shards.len().max(1))
                .map(|_| LaneSum::new(slots))
                .collect::<Result<_>>()?,
            next: 0,
        })
    }

    /// Adds the list of the record at `position` in the job's selection.
    pub fn add(&mut self, position: u64, list: &LaneBody) -> Result<()> {
        let shard = self.bounds.partition_point(|&b| b <= position);
        if shard == 0 || shard >= self.bounds.len() {
            return Err(Error::ShapeMismatch(format!(
                "record {position} is beyond the {} the plan covers",
                self.manifest.records()
            )));
        }
        self.sums[shard - 1].add(list)
    }

    /// Adds a sum of lists (a rollup part) into shard `shard`.
    pub fn add_sum(&mut self, shard: usize, sum: &LaneSum) -> Result<()> {
        let slot = self.sums.get_mut(shard).ok_or_else(|| {
            Error::ShapeMismatch(format!("shard {shard} is beyond the plan's shards"))
        })?;
        slot.merge(sum)
    }

    /// Adds the next record's list, in selection order.
    pub fn push(&mut self, list: &LaneBody) -> Result<()> {
        self.add(self.next, list)?;
        self.next += 1;
        Ok(())
    }

    /// The running sum of each shard as it stands: a task's share of a job, which the merge
    /// adds back in with [`Self::add_sum`] (adds wrap, so the sums are those one pass gives).
    pub fn into_sums(self) -> Vec<LaneSum> {
        self.sums
    }

    /// Forms every term once all records are in, adding the plan's privacy noise drawn from
    /// `seed` (required exactly when the plan has noise).
    pub fn finish_with_noise(self, seed: Option<&[u8; 32]>) -> Result<Vec<LaneCiphertext>> {
        let noise = self.manifest.noise.clone();
        let mut terms = self.finish_exact()?;
        match (&noise, seed) {
            (None, None) => {}
            (Some(noise), Some(seed)) => {
                for (ct, z) in terms.iter_mut().zip(crate::dp::draw(seed, &noise.terms)?) {
                    ct.add_plaintext(z);
                }
            }
            (Some(_), None) => {
                return Err(Error::ShapeMismatch(
                    "the plan adds privacy noise but no noise seed was given".into(),
                ));
            }
            (None, Some(_)) => {
                return Err(Error::ShapeMismatch(
                    "a noise seed was given for a plan without privacy".into(),
                ));
            }
        }
        Ok(terms)
    }

    /// Forms every term once all records are in (a plan without privacy noise).
    pub fn finish(self) -> Result<Vec<LaneCiphertext>> {
        self.finish_with_noise(None)
    }

    fn finish_exact(self) -> Result<Vec<LaneCiphertext>> {
        let counts: Vec<u64> = self.sums.iter().map(LaneSum::records).collect();
        let expected = if self.manifest.shards.is_empty() {
            vec![0]
        } else {
            self.manifest.shards.clone()
        };
        if counts != expected {
            return Err(Error::ShapeMismatch(format!(
                "summed {counts:?} records per shard, the plan says {expected:?}"
            )));
        }
        let expanded: Vec<_> = self.sums.iter().map(LaneSum::expand).collect();
        self.manifest
            .terms
            .iter()
            .map(|t| expanded[t.shard].combine(&t.weights))
            .collect()
    }
}

impl CompiledQuery {
    /// The results the FHE path computes under `plan`: [`Self::outputs`] without the lane's
    /// (a lane `min`/`max` travels as one count per value, labelled `<label>@<value>`).
    pub fn fhe_outputs(&self, plan: &LanePlan) -> Vec<super::OutputSpec> {
        let lane: std::collections::HashSet<&str> = plan
            .manifest
            .outputs
            .iter()
            .map(|o| o.label.split_once('@').map_or(o.label.as_str(), |(l, _)| l))
            .collect();
        self.outputs()
            .into_iter()
            .filter(|o| !lane.contains(o.label.as_str()))
            .collect()
    }

    /// The aggregates the FHE path computes under `plan`, as a query of their own, with the
    /// index each has in this query. `count` needs no ciphertext and is left out.
    pub fn fhe_part(
        &self,
        query: &super::AggregateQuery,
        plan: &LanePlan,
    ) -> (super::AggregateQuery, Vec<usize>) {
        let (aggregates, indices) = query
            .aggregates
            .iter()
            .enumerate()
            .filter(|(i, a)| {
                !plan.by_lane.get(*i).copied().unwrap_or(false)
                    && !matches!(a, super::Aggregate::Count)
            })
            .map(|(i, a)| (a.clone(), i))
            .unzip();
        (
            super::AggregateQuery {
                aggregates,
                privacy: None,
            },
            indices,
        )
    }

    /// Interprets the FHE path's values (in [`Self::fhe_outputs`] order) and the lane's
    /// `(label, value)` pairs together.
    pub fn interpret_split(
        &self,
        plan: &LanePlan,
        fhe: &[u64],
        lane: &[(String, i64)],
    ) -> Result<Vec<super::AggregateValue>> {
        let fhe_specs = self.fhe_outputs(plan);
        if fhe.len() != fhe_specs.len() {
            return Err(Error::ShapeMismatch(format!(
                "{} FHE results where the query has {}",
                fhe.len(),
                fhe_specs.len()
            )));
        }
        let mut fhe_it = fhe.iter();
        let mut raw = Vec::new();
        for spec in self.outputs() {
            let counts: Vec<i64> = (0..)
                .map_while(|b| {
                    let label = format!("{}@{b}", spec.label);
                    lane.iter().find(|(l, _)| *l == label).map(|(_, v)| *v)
                })
                .collect();
            let value = match lane.iter().find(|(label, _)| *label == spec.label) {
                Some((_, v)) => *v,
                // A minimum or maximum read off a full-domain histogram: bucket b holds the
                // records whose encrypted value is b.
                None if !counts.is_empty() => {
                    let mut present = counts.iter().enumerate().filter(|(_, c)| **c > 0);
                    let b = if spec.label.ends_with(":max") {
                        present.next_back()
                    } else {
                        present.next()
                    };
                    b.map_or(0, |(b, _)| b as i64)
                }
                None => {
                    raw.push(*fhe_it.next().ok_or_else(|| {
                        Error::ShapeMismatch(format!("no result for {}", spec.label))
                    })?);
                    continue;
                }
            };
            raw.push(u64::try_from(value).map_err(|_| Error::Malformed {
                what: "lane output",
                reason: format!(
                    "{} decrypts to {value}, below its smallest value",
                    spec.label
                ),
            })?);
        }
        self.interpret(&raw)
    }
}

/// `j:rest` → `indices[j]:rest`: an FHE sub-query's labels in the full query's numbering.
pub(super) fn relabel(label: &str, indices: &[usize]) -> Result<String> {
    let (j, rest) = label
        .split_once(':')
        .ok_or_else(|| Error::ShapeMismatch(format!("unlabelled result {label:?}")))?;
    let i = j
        .parse::<usize>()
        .ok()
        .and_then(|j| indices.get(j))
        .ok_or_else(|| Error::ShapeMismatch(format!("result {label:?} of no aggregate")))?;
    Ok(format!("{i}:{rest}"))
}

/// Which path computed an aggregate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ComputedBy {
    /// Nothing encrypted: the record count the server selected.
    Clear,
    /// The additive lane (sums of proven bit slots, no bootstrapping).
    Lane,
    /// The FHE path (bootstrapped integer arithmetic on ciphertext).
    Fhe,
}

impl ComputedBy {
    /// `clear`, `lane` or `fhe`.
    pub fn name(self) -> &'static str {
        match self {
            ComputedBy::Clear => "clear",
            ComputedBy::Lane => "lane",
            ComputedBy::Fhe => "fhe",
        }
    }
}

impl std::fmt::Display for ComputedBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl LanePlan {
    /// A plan that leaves every aggregate to the FHE path (for evaluating a whole query on
    /// ciphertext, as the benchmarks and the FHE path's own tests do).
    pub fn fhe_only(query: &CompiledQuery) -> Self {
        Self {
            by_lane: vec![false; query.plans.len()],
            manifest: LaneManifest::default(),
        }
    }

    /// Which path computes each aggregate of `query` (the query this plan was made for).
    pub fn computed_by(&self, query: &super::AggregateQuery) -> Vec<ComputedBy> {
        query
            .aggregates
            .iter()
            .enumerate()
            .map(|(i, a)| match a {
                super::Aggregate::Count => ComputedBy::Clear,
                _ if self.by_lane.get(i).copied().unwrap_or(false) => ComputedBy::Lane,
                _ => ComputedBy::Fhe,
            })
            .collect()
    }
}

/// An aggregate job the lane answers entirely (every aggregate by the lane, or the clear
/// count): its compiled query and plan. Such a job needs no key, no bootstrap and no record in
/// memory beyond the one being added, so servers stream it; `None` when any aggregate needs
/// the FHE path.
/// `shards`: the shard sizes when the records are summed from rollup parts (see
/// [`pack_rollup_shards`]); `None` for equal shards.
pub fn lane_only(
    query: &super::AggregateQuery,
    schema: &crate::RecordSchema,
    records: usize,
    shards: Option<Vec<u64>>,
) -> Result<Option<(CompiledQuery, LanePlan)>> {
    let compiled = query.compile(schema, records)?;
    let map = schema.slot_map()?;
    let plan = match shards {
        Some(shards) => {
            check_shards(records as u64, &shards)?;
            compiled.lane_plan_for_shards(&map, shards)
        }
        None => compiled.lane_plan(&map),
    };
    // A query with privacy the lane cannot answer entirely, or whose noise does not decode,
    // runs nowhere.
    compiled.check_privacy(query, &plan)?;
    let (fhe, _) = compiled.fhe_part(query, &plan);
    Ok(fhe.aggregates.is_empty().then_some((compiled, plan)))
}
