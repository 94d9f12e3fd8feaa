//! How a lane job's records are cut into shards: each shard's sums must stay within the exact
//! bound, and no shard may be small enough to single out a few records. Jobs that list their
//! records use equal shards; jobs over rollup parts pack whole parts.

use crate::params::{LANE_EXACT_WEIGHT, LANE_MIN_SHARD, LANE_ROLLUP_PART_RECORDS};
use crate::{Error, Result};

/// `n` records cut into shards of equal size (±1), each at most [`LANE_EXACT_WEIGHT`]: never
/// a small last shard, whose sums would say more about its few records than the minimum
/// cohort allows. No shard for no records.
pub fn equal_shards(n: u64) -> Vec<u64> {
    if n == 0 {
        return Vec::new();
    }
    let count = n.div_ceil(LANE_EXACT_WEIGHT);
    (0..count)
        .map(|s| n / count + u64::from(s < n % count))
        .collect()
}

/// Rollup parts (their record counts, in the job's order, each at most
/// [`LANE_ROLLUP_PART_RECORDS`]) packed into shards of whole, consecutive parts: the index
/// range of each shard's parts. Every shard holds at most [`LANE_EXACT_WEIGHT`] records and,
/// when there is more than one, at least [`LANE_MIN_SHARD`]: parts fill a shard in order
/// until the next would overflow it (so a full shard holds more than three quarters of the
/// bound), and a short last shard takes parts from the end of the one before.
pub fn pack_rollup_shards(parts: &[u64]) -> Result<Vec<std::ops::Range<usize>>> {
    if let Some(p) = parts
        .iter()
        .find(|&&p| p == 0 || p > LANE_ROLLUP_PART_RECORDS)
    {
        return Err(Error::ShapeMismatch(format!(
            "a rollup part of {p} records (parts hold 1 to {LANE_ROLLUP_PART_RECORDS})"
        )));
    }
    let mut shards: Vec<std::ops::Range<usize>> = Vec::new();
    let (mut start, mut filled) = (0, 0u64);
    for (i, &p) in parts.iter().enumerate() {
        if filled + p > LANE_EXACT_WEIGHT {
            shards.push(start..i);
            (start, filled) = (i, 0);
        }
        filled += p;
    }
    if start < parts.len() {
        shards.push(start..parts.len());
    }
    let size = |r: &std::ops::Range<usize>| parts[r.clone()].iter().sum::<u64>();
    if let [.., before, last] = shards.as_mut_slice() {
        while size(last) < LANE_MIN_SHARD {
            before.end -= 1;
            last.start -= 1;
        }
    }
    Ok(shards)
}

/// Checks shard sizes an output states for `n` records: they add up to `n`, none is empty or
/// above [`LANE_EXACT_WEIGHT`], and when there are several none is below [`LANE_MIN_SHARD`]
/// (so no shard's sums single out a small group of records).
pub fn check_shards(n: u64, shards: &[u64]) -> Result<()> {
    let total: u64 = shards.iter().sum();
    let bad = shards
        .iter()
        .find(|&&s| s == 0 || s > LANE_EXACT_WEIGHT || (shards.len() > 1 && s < LANE_MIN_SHARD));
    if total != n || bad.is_some() || (n > 0 && shards.is_empty()) {
        return Err(Error::ShapeMismatch(format!(
            "lane shards of {shards:?} records for {n} records (each must hold 1 to \
             {LANE_EXACT_WEIGHT} records, and at least {LANE_MIN_SHARD} when there are several)"
        )));
    }
    Ok(())
}
