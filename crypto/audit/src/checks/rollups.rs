use std::collections::HashMap;

use blindsight_crypto::LaneSum;
use blindsight_crypto::compute::stored_lane_body;
use blindsight_crypto::params::LANE_ROLLUP_PART_RECORDS;
use rayon::prelude::*;

use crate::context::{RollupGroup, rollup_members, schema_for};
use crate::evidence::{Evidence, RollupEvidence, TenantEvidence};
use crate::report::{Check, Tally, plural};

/// Recomputes every stored lane rollup part from the stored records: the part's records are
/// its cohort-and-day's records by position, their lists summed must give the stored bytes,
/// and every rolled-up record must be in a stored part.
pub(crate) fn check_rollups(evidence: &Evidence) -> Check {
    let mut t = Tally::new("rollups");
    let mut not_served = 0usize;
    for tenant in &evidence.tenants {
        let Some(stored) = &tenant.rollups else {
            not_served += 1;
            continue;
        };
        let members = rollup_members(tenant);
        let outcomes: Vec<Result<(), String>> = stored
            .par_iter()
            .map(|part| recompute(tenant, &members, part))
            .collect();
        for outcome in outcomes {
            t.count(outcome.map_err(|e| format!("tenant {:?}: {e}", tenant.tenant_id)));
        }
        // Records in no stored part (a part deleted, or a count lowered).
        let mut held: HashMap<RollupGroup<'_>, u64> = HashMap::new();
        for p in stored {
            *held
                .entry((
                    p.key_id.as_str(),
                    p.schema_id.as_str(),
                    p.schema_version,
                    p.part.cohort.as_deref(),
                    p.part.day,
                ))
                .or_default() += p.part.records;
        }
        for (group, records) in &members {
            let counted = held.get(group).copied().unwrap_or(0);
            if counted != records.len() as u64 {
                t.fail(format!(
                    "tenant {:?}: cohort {:?} day {} (key set {}, schema {}@{}): {} records are \
                     rolled up but its stored parts hold {counted}",
                    tenant.tenant_id,
                    group.3,
                    group.4,
                    group.0,
                    group.1,
                    group.2,
                    records.len()
                ));
            }
        }
    }
    if not_served > 0 {
        t.notes.push(format!(
            "{} not served by this source (the API does not serve rollup sums; `audit verify --db` recomputes them)",
            plural(not_served as u64, "tenant's rollups", "tenants' rollups")
        ));
    }
    let summary = format!(
        "{} recomputed from the stored records",
        plural(t.checked, "rollup part", "rollup parts")
    );
    t.finish(summary)
}

fn recompute(
    tenant: &TenantEvidence,
    members: &HashMap<RollupGroup<'_>, Vec<&crate::evidence::RecordEvidence>>,
    stored: &RollupEvidence,
) -> Result<(), String> {
    let p = &stored.part;
    let what = format!(
        "rollup part {} of cohort {:?} day {} (key set {}, schema {}@{})",
        p.part, p.cohort, p.day, stored.key_id, stored.schema_id, stored.schema_version
    );
    let schema = schema_for(tenant, &stored.schema_id, stored.schema_version)
        .map_err(|e| format!("{what}: {e}"))?;
    let group = members
        .get(&(
            stored.key_id.as_str(),
            stored.schema_id.as_str(),
            stored.schema_version,
            p.cohort.as_deref(),
            p.day,
        ))
        .map_or(&[][..], Vec::as_slice);
    let first = usize::try_from(u64::from(p.part) * LANE_ROLLUP_PART_RECORDS).unwrap_or(usize::MAX);
    let records = group.get(first..).unwrap_or_default();
    let records = &records[..records.len().min(LANE_ROLLUP_PART_RECORDS as usize)];
    if records.len() as u64 != p.records {
        return Err(format!(
            "{what} says it holds {} records; the stored records give {}",
            p.records,
            records.len()
        ));
    }
    let slots = usize::try_from(stored.slots).unwrap_or(usize::MAX);
    let mut sum = LaneSum::new(slots).map_err(|e| format!("{what}: {e}"))?;
    for r in records {
        let list = stored_lane_body(&r.metadata.record_id, &r.proven_list, &schema)
            .map_err(|e| format!("{what}: {e}"))?;
        sum.add(&list).map_err(|e| format!("{what}: {e}"))?;
    }
    let stored_sum = LaneSum::from_bytes(&stored.lane_sum, slots, p.records)
        .map_err(|e| format!("{what}: {e}"))?;
    if sum != stored_sum {
        return Err(format!(
            "{what}: the stored sum is not the sum of its records' lane lists"
        ));
    }
    Ok(())
}
