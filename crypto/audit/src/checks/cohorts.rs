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
                (Some(min), Ok(spec)) if spec.record_count() < spec.minimum_cohort(min) => {
                    Err(format!(
                        "aggregate over {} records, below the minimum cohort of {}",
                        spec.record_count(),
                        spec.minimum_cohort(min)
                    ))
                }
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

/// Every tenant's jobs with privacy spent no more than its budget: the ρ each `job.created`
/// entry logs, added up, against the budget its `tenant.created` entry logs; and each such
/// job's spec asks for the ρ its entry logs.
pub(crate) fn check_privacy(evidence: &Evidence) -> Check {
    let mut t = Tally::new("privacy");
    for tenant in &evidence.tenants {
        let entries = evidence
            .chains
            .iter()
            .find(|c| c.tenant_id.as_deref() == Some(tenant.tenant_id.as_str()))
            .map_or(&[][..], |c| c.entries.as_slice());
        let body = |e: &blindsight_proto::Entry| {
            serde_json::from_str::<serde_json::Value>(&e.body).unwrap_or_default()
        };
        let budget = entries
            .iter()
            .find(|e| e.kind == "tenant.created")
            .and_then(|e| body(e).get("privacy_budget_rho_micro")?.as_u64());
        let mut spent = 0u64;
        for e in entries.iter().filter(|e| e.kind == "job.created") {
            let b = body(e);
            let Some(rho) = b
                .get("privacy_rho_micro")
                .and_then(serde_json::Value::as_u64)
            else {
                continue;
            };
            spent = spent.saturating_add(rho);
            let job_id = b.get("job_id").and_then(|v| v.as_str()).unwrap_or_default();
            let spec_rho = tenant
                .jobs
                .iter()
                .find(|j| j.job_id == job_id)
                .and_then(|j| serde_json::from_str::<JobSpec>(&j.spec).ok())
                .and_then(|s| s.privacy_rho_micro());
            t.count(match (spec_rho, budget) {
                (_, None) => Err(format!(
                    "tenant {:?}: job {job_id} spent privacy, but the tenant has no budget",
                    tenant.tenant_id
                )),
                (Some(r), Some(b)) if r == rho && spent <= b => Ok(()),
                (Some(r), Some(_)) if r == rho => Err(format!(
                    "tenant {:?}: job {job_id} brings the privacy spent to ρ = {spent} millionths, \
                     over the budget",
                    tenant.tenant_id
                )),
                _ => Err(format!(
                    "tenant {:?}: job {job_id}: the audit log's ρ is not its stored spec's",
                    tenant.tenant_id
                )),
            });
        }
    }
    let summary = format!(
        "{} within their tenant's privacy budget",
        plural(t.checked, "job with privacy", "jobs with privacy")
    );
    t.finish(summary)
}

#[cfg(test)]
mod tests {
    use blindsight_crypto::compute::AggregateQuery;
    use blindsight_proto::{Entry, JobRequest, Selection};

    use super::*;
    use crate::evidence::{ChainEvidence, JobEvidence, TenantEvidence};

    fn aggregate(job_id: &str, schema_id: &str, records: usize) -> JobEvidence {
        let query: AggregateQuery =
            serde_json::from_value(serde_json::json!({"aggregates": [{"op": "count"}]})).unwrap();
        let spec = JobSpec {
            request: JobRequest::aggregate(
                "k1",
                query,
                Selection {
                    schema_id: schema_id.into(),
                    ..Selection::default()
                },
            ),
            model: None,
            records: (0..records).map(|i| format!("r-{i}")).collect(),
            rollup: Vec::new(),
            task_records: None,
        };
        JobEvidence {
            job_id: job_id.into(),
            kind: "aggregate".into(),
            key_id: "k1".into(),
            status: "succeeded".into(),
            spec: serde_json::to_string(&spec).unwrap(),
            result: None,
            result_digest: None,
            receipt: None,
            noise_seed: None,
        }
    }

    #[test]
    fn patient_aggregates_need_the_minimum_and_training_ones_one_session() {
        let created = Entry {
            seq: 1,
            tenant_id: Some("t".into()),
            at: 0,
            kind: "tenant.created".into(),
            body: r#"{"min_cohort_size":10}"#.into(),
            prev_hash: String::new(),
            hash: String::new(),
        };
        let evidence = |jobs: Vec<JobEvidence>| Evidence {
            chains: vec![ChainEvidence {
                tenant_id: Some("t".into()),
                entries: vec![created.clone()],
                head: None,
            }],
            tenants: vec![TenantEvidence {
                tenant_id: "t".into(),
                jobs,
                ..TenantEvidence::default()
            }],
            ..Evidence::default()
        };
        let ok = check_cohorts(&evidence(vec![
            aggregate("job-1", "session", 10),
            aggregate("job-2", "training", 1),
        ]));
        assert!(ok.passed, "{:?}", ok.failures);
        assert_eq!(ok.checked, 2);
        let bad = check_cohorts(&evidence(vec![
            aggregate("job-3", "session", 9),
            aggregate("job-4", "my-schema", 1),
        ]));
        assert_eq!(bad.failed, 2, "{:?}", bad.failures);
        assert!(
            bad.failures[0].contains("job-3") && bad.failures[0].contains("minimum cohort of 10")
        );
    }
}
