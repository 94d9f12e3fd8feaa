use blindsight_proto::JobSpec;

use crate::evidence::Evidence;
use crate::report::{Check, Tally, plural};

pub(crate) fn check_cohorts(evidence: &Evidence) -> Check {
    let mut t = Tally::new("cohorts");
    for tenant in &evidence.tenants {
        let minimum = evidence
            .chains
            .iter()
            .find(|c| c.tenant_id.as_deref() == Some(tenant.tenant_id.as_str()))
            .and_then(|c| c.entries.iter().find(|e| e.kind == "tenant.created"))
            .and_then(|e| serde_json::from_str::<serde_json::Value>(&e.body).ok())
            .and_then(|b| b.get("min_cohort_size").and_then(serde_json::Value::as_u64));
        for job in tenant.jobs.iter().filter(|j| j.kind == "aggregate") {
            let outcome = match (minimum, serde_json::from_str::<JobSpec>(&job.spec)) {
                (None, _) => Err("no tenant.created entry names the minimum cohort".to_owned()),
                (_, Err(e)) => Err(format!("stored spec does not parse: {e}")),
                (Some(min), Ok(spec)) if spec.record_count() < min => Err(format!(
                    "aggregate over {} records, below the minimum cohort of {min}",
                    spec.record_count()
                )),
                (Some(_), Ok(_)) => Ok(()),
            };
            t.count(
                outcome
                    .map_err(|e| format!("tenant {:?}: job {}: {e}", tenant.tenant_id, job.job_id)),
            );
        }
    }
    let summary = format!(
        "{} read at least the minimum cohort",
        plural(t.checked, "aggregate job", "aggregate jobs")
    );
    t.finish(summary)
}
