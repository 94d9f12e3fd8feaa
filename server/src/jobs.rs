//! Creating a job: every check that can refuse it, the minimum cohort among them, comes before
//! anything is written; then the request is frozen into a spec (the selected records in
//! ingest order, the exact model) and queued. Used by `POST /v1/jobs`; the queue itself
//! (leases, fencing, attempts) is `store::jobs`.

use blindsight_proto::{JobCreated, JobRequest, JobSpec, JobStatus, Problem};

use crate::api::check_id;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::jobs::{self, NewJob};
use crate::store::{self, MAX_JOB_RECORDS, Selection};

/// Leases a job may take before it fails for good.
pub const MAX_ATTEMPTS: u32 = 3;

/// Checks `request` for `tenant` and queues it, or says why not: an unknown key set, schema,
/// model or record, an invalid model or query, no records, too many, or (aggregates) fewer
/// than the tenant's minimum cohort.
pub async fn create(
    state: &AppState,
    tenant: &str,
    request: JobRequest,
) -> Result<JobCreated, ApiError> {
    let key_id = request.key_id();
    check_id("key id", key_id)?;
    let select = request.select().clone();
    if let Some(c) = &select.cohort {
        check_id("cohort", c)?;
    }
    if store::keyset_digest(state.db(), tenant, key_id)
        .await?
        .is_none()
    {
        return Err(ApiError::new(
            Problem::UnknownKeySetRef,
            format!("this tenant has no key set {key_id:?}"),
        ));
    }
    let schema = crate::registry::schema(state, tenant, &select.schema_id, select.schema_version)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                Problem::UnknownSchema,
                format!(
                    "schema {}@{} is neither built in nor registered",
                    select.schema_id, select.schema_version
                ),
            )
        })?;
    // Everything about the computation is checked before the records are selected.
    let model = match &request {
        JobRequest::RiskScore { model, .. } => {
            let m = crate::registry::model(state, tenant, &model.id, model.version)
                .await?
                .ok_or_else(|| {
                    ApiError::new(
                        Problem::UnknownModel,
                        format!(
                            "model {}@{} is neither built in nor registered (POST /v1/models)",
                            model.id, model.version
                        ),
                    )
                })?;
            m.compile(&schema)?;
            Some(m)
        }
        JobRequest::Aggregate { query, .. } => {
            query.compile(&schema, 1)?;
            None
        }
    };
    let selection = Selection {
        key_id,
        schema_id: &schema.id,
        schema_version: schema.version,
        cohort: select.cohort.as_deref(),
        since: select.since,
        until: select.until,
    };
    // An aggregate the lane answers entirely, over whole days, reads the rollups kept at
    // ingest (no cap on its size); everything else lists its records.
    let rollup = match &request {
        JobRequest::Aggregate { query, .. } if select.record_ids.is_none() => {
            rollup_parts(state, tenant, &schema, query, &selection).await?
        }
        _ => None,
    };
    if let Some((parts, count)) = rollup {
        return queue(
            state,
            tenant,
            &schema,
            &request,
            JobSpec {
                request: request.clone(),
                model,
                records: Vec::new(),
                rollup: parts,
                task_records: None,
            },
            count,
        )
        .await;
    }
    let mut records = store::select_records(state.db(), tenant, &selection).await?;
    if let Some(wanted) = &select.record_ids {
        let selected: std::collections::HashSet<&String> = records.iter().collect();
        if let Some(missing) = wanted.iter().find(|id| !selected.contains(id)) {
            return Err(ApiError::new(
                Problem::UnknownRecordRef,
                format!(
                    "record {missing:?} is not stored under key set {key_id:?} and schema {}@{} (or is outside the selection)",
                    schema.id, schema.version
                ),
            ));
        }
        let wanted: std::collections::HashSet<&String> = wanted.iter().collect();
        records.retain(|id| wanted.contains(id));
    }
    if records.len() as i64 > MAX_JOB_RECORDS {
        return Err(ApiError::new(
            Problem::TooManyRecords,
            format!("a job reads at most {MAX_JOB_RECORDS} records; narrow the selection"),
        ));
    }
    let count = records.len() as u64;
    // FHE work is cut into tasks that any worker may take; an aggregate the lane answers
    // entirely is streamed in one piece (it does no FHE work).
    let lane_only = match &request {
        JobRequest::Aggregate { query, .. } => {
            blindsight_crypto::compute::lane_only(query, &schema, count as usize, None)?.is_some()
        }
        JobRequest::RiskScore { .. } => false,
    };
    // Never more tasks than an output may carry lists (one per task).
    let per_task = match state.config().task_records {
        0 => 0,
        n => n.max(count.div_ceil(blindsight_crypto::compute::MAX_OUTPUT_LISTS as u64)),
    };
    let task_records = (!lane_only && per_task > 0 && count > per_task).then_some(per_task);
    let spec = JobSpec {
        request: request.clone(),
        model,
        records,
        rollup: Vec::new(),
        task_records,
    };
    queue(state, tenant, &schema, &request, spec, count).await
}

/// The refusal of a job with privacy the tenant's budget cannot cover, with the budget, what
/// is spent and what the job needs (as ρ in millionths, and as ε at the job's δ).
async fn over_budget(state: &AppState, tenant: &str, spec: &JobSpec) -> Result<ApiError, ApiError> {
    let (budget, spent) = store::tenant_privacy(state.db(), tenant)
        .await?
        .unwrap_or((None, 0));
    let need = spec.privacy_rho_micro().unwrap_or(0);
    let delta = match &spec.request {
        JobRequest::Aggregate { query, .. } => query.privacy.map_or(1e-6, |p| p.delta),
        JobRequest::RiskScore { .. } => 1e-6,
    };
    let eps = |rho: u64| blindsight_crypto::dp::epsilon_of(rho, delta);
    let detail = match budget {
        None => "this tenant has no privacy budget, so it runs no job with privacy; create the \
                 tenant with `privacy_budget`, or drop `privacy` from the query"
            .to_owned(),
        Some(b) => format!(
            "the job spends ρ = {:.6} (ε = {:.3} at δ = {delta:e}), and the tenant has ρ = {:.6} \
             of {:.6} left (ε = {:.3} at that δ); ask for a larger epsilon (less noise) only if \
             the results can bear it, or fewer queries",
            need as f64 / 1e6,
            eps(need),
            b.saturating_sub(spent) as f64 / 1e6,
            b as f64 / 1e6,
            eps(b.saturating_sub(spent)),
        ),
    };
    let mut e = ApiError::new(Problem::PrivacyBudgetExhausted, detail)
        .with_extension("rho_micro", need.into())
        .with_extension("spent_rho_micro", spent.into());
    if let Some(b) = budget {
        e = e.with_extension("budget_rho_micro", b.into());
    }
    Ok(e)
}

/// The rollup parts a lane-only aggregate over whole days reads, and the records they hold;
/// `None` when the job must list its records instead (the lane does not answer every
/// aggregate, the selection cuts a day, or some selected record predates rollups).
async fn rollup_parts(
    state: &AppState,
    tenant: &str,
    schema: &blindsight_crypto::RecordSchema,
    query: &blindsight_crypto::compute::AggregateQuery,
    selection: &Selection<'_>,
) -> Result<Option<(Vec<blindsight_proto::RollupPart>, u64)>, ApiError> {
    let whole_day = |t: Option<i64>| t.is_none_or(|t| t % store::rollups::DAY_SECONDS == 0);
    if !whole_day(selection.since) || !whole_day(selection.until) {
        return Ok(None);
    }
    if blindsight_crypto::compute::lane_only(query, schema, 1, None)?.is_none() {
        return Ok(None);
    }
    // Parts first, then the count: a record stored in between makes the two differ (a
    // record and its rollup are written in one transaction), and the job lists records.
    let parts = store::rollups::parts(state.db(), tenant, selection).await?;
    let (total, rolled) = store::rollups::count_selected(state.db(), tenant, selection).await?;
    let in_parts: u64 = parts.iter().map(|p| p.records).sum();
    Ok((total > 0 && total == rolled && rolled == in_parts).then_some((parts, total)))
}

/// The checks that need the record count (none, or fewer than the minimum cohort), then the
/// job is queued.
async fn queue(
    state: &AppState,
    tenant: &str,
    schema: &blindsight_crypto::RecordSchema,
    request: &JobRequest,
    spec: JobSpec,
    count: u64,
) -> Result<JobCreated, ApiError> {
    let key_id = request.key_id();
    if count == 0 {
        return Err(ApiError::new(
            Problem::NoRecords,
            "no stored record matches the selection",
        ));
    }
    // A query with privacy: the lane must answer all of it, and its noise must decode, at
    // this cohort size and in these shards.
    if let JobRequest::Aggregate { query, .. } = request
        && query.privacy.is_some()
    {
        let shards = spec.lane_shards().map_err(ApiError::Internal)?;
        let compiled = query.compile(schema, count as usize)?;
        let map = schema.slot_map()?;
        let plan = match shards {
            Some(shards) => compiled.lane_plan_for_shards(&map, shards),
            None => compiled.lane_plan(&map),
        };
        compiled.check_privacy(query, &plan)?;
    }
    if let JobRequest::Aggregate { .. } = request {
        let tenant_minimum = store::tenant_min_cohort(state.db(), tenant)
            .await?
            .unwrap_or(i64::from(state.config().default_min_cohort));
        let minimum = blindsight_crypto::schemas::minimum_cohort(
            &schema.id,
            schema.version,
            u64::try_from(tenant_minimum).unwrap_or(0),
        ) as i64;
        if (count as i64) < minimum {
            return Err(ApiError::new(Problem::CohortTooSmall, format!(
                    "the selection holds {count} record{}; aggregates need at least {minimum}, so that no individual can be singled out",
                    if count == 1 { "" } else { "s" }
                ),
            )
            .with_extension("records", count.into())
            .with_extension("minimum", minimum.into()));
        }
    }
    // Milliseconds first, so ids sort (and workers take jobs) in creation order; random
    // bits after, so ids cannot be guessed.
    let job_id = format!(
        "job-{:012x}{}",
        jobs::now_ms(),
        hex::encode(
            blindsight_crypto::random_bytes::<8>()
                .map_err(|e| ApiError::Internal(e.to_string()))?
        )
    );
    let spec_json =
        serde_json::to_string(&spec).map_err(|e| ApiError::Internal(format!("job spec: {e}")))?;
    let queued = jobs::create(
        state.audit_log(),
        &NewJob {
            job_id: &job_id,
            tenant_id: tenant,
            key_id,
            kind: request.kind(),
            spec: &spec_json,
            max_attempts: MAX_ATTEMPTS,
        },
    )
    .await?;
    if !queued {
        return Err(over_budget(state, tenant, &spec).await?);
    }
    tracing::info!(tenant = %tenant, job = %job_id, kind = request.kind(), records = count, rollup_parts = spec.rollup.len(), "job queued");
    Ok(JobCreated {
        job_id,
        kind: request.kind().into(),
        records: count,
        status: JobStatus::Queued,
    })
}
