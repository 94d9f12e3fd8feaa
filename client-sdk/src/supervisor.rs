//! Supervisor analytics over `training` records: per trainee (the record's cohort label is the
//! trainee's pseudonym) and over the whole training group, on ciphertext, decrypted by the
//! supervising clinic.
//!
//! Every view is one `aggregate` job of [`supervisor_query`] (24 aggregates, all answered by
//! the additive lane): technique counts per session, the reflection-to-question ratio, bias
//! incidents per session and per category, sessions by incidents, confidence and ratings.
//! Progress compares a trainee's first and last `window` sessions (in the order they were
//! recorded); each session's `bias` v1 score comes from one `risk_score` job over the group.
//! [`plan`] decides the jobs from the record listing (pure, so tests and the demo can compute
//! the same views in clear); [`run`] queues them, waits and decrypts.
//!
//! Aggregates over `training` records need one session, not the tenant's minimum cohort: their
//! subject is the trainee, enrolled in assessment (`docs/CLAIMS.md`, "Minimum cohorts").

use std::collections::BTreeMap;
use std::time::Duration;

use blindsight_crypto::SecretKeys;
use blindsight_crypto::compute::{Aggregate, AggregateQuery, AggregateValue, BIAS_MODEL_ID, Tier};
use blindsight_crypto::schemas::{
    TRAINING_BIAS, TRAINING_SCHEMA_ID, TRAINING_SCHEMA_VERSION, TRAINING_TECHNIQUES,
};
use serde::Serialize;

use crate::api::{Client, JobRequest, ModelRef, RecordListQuery, RecordSummary, Selection};
use crate::progress::Progress;
use crate::results::{self, Rows};
use crate::{Error, Result};

/// Sessions in each progress window unless asked otherwise.
pub const DEFAULT_WINDOW: usize = 3;

/// The bucket labels of the sessions-by-incidents histogram (`bias_total` edges 1, 2, 4).
pub const INCIDENT_BUCKETS: [&str; 4] = ["0", "1", "2-3", "4+"];

// Positions in `supervisor_query`.
const TECHNIQUES_AT: usize = 1;
const QUESTIONS_AT: usize = TECHNIQUES_AT + TRAINING_TECHNIQUES.len();
const REFLECTIONS_AT: usize = QUESTIONS_AT + 1;
const BIAS_AT: usize = REFLECTIONS_AT + 1;
const BIAS_TOTAL_AT: usize = BIAS_AT + TRAINING_BIAS.len();
const INCIDENTS_AT: usize = BIAS_TOTAL_AT + 1;
const SLUR_SESSIONS_AT: usize = INCIDENTS_AT + 1;
const CONFIDENCE_AT: usize = SLUR_SESSIONS_AT + 1;
const RATING_AT: usize = CONFIDENCE_AT + 1;
const TALK_SHARE_AT: usize = RATING_AT + 1;

/// The aggregates of every supervisor view, in this order: the session count; the sum of each
/// technique count; of `questions` and `reflections`; of each bias category and of
/// `bias_total`; sessions by incidents (0, 1, 2–3, 4+); sessions with a slur; mean
/// confidence; the sum and number of supervisor ratings (rated sessions only); mean talk share.
pub fn supervisor_query() -> AggregateQuery {
    let sum = |f: &str| Aggregate::Sum { field: f.into() };
    let mut aggregates = vec![Aggregate::Count];
    aggregates.extend(TRAINING_TECHNIQUES.iter().map(|f| sum(f)));
    aggregates.push(sum("questions"));
    aggregates.push(sum("reflections"));
    aggregates.extend(TRAINING_BIAS.iter().map(|f| sum(f)));
    aggregates.push(sum("bias_total"));
    aggregates.push(Aggregate::Histogram {
        field: "bias_total".into(),
        edges: vec![1, 2, 4],
    });
    aggregates.push(Aggregate::CountAtLeast {
        field: "bias_slur".into(),
        threshold: 1,
    });
    aggregates.push(Aggregate::Mean {
        field: "self_confidence".into(),
    });
    aggregates.push(Aggregate::SumWhere {
        field: "supervisor_rating".into(),
        where_field: "supervisor_rating".into(),
        at_least: 1,
    });
    aggregates.push(Aggregate::Mean {
        field: "talk_share_pct".into(),
    });
    AggregateQuery {
        aggregates,
        privacy: None,
    }
}

/// Which sessions a view covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Window {
    /// Every session.
    All,
    /// The first `n` sessions, in the order they were recorded.
    First(usize),
    /// The last `n` sessions.
    Last(usize),
}

impl std::fmt::Display for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Window::All => f.write_str("all"),
            Window::First(n) => write!(f, "first {n}"),
            Window::Last(n) => write!(f, "last {n}"),
        }
    }
}

/// One view the report computes: whose sessions, which of them, and the records that are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ViewPlan {
    /// The trainee, or `None` for the whole training group.
    pub trainee: Option<String>,
    /// Which sessions.
    pub window: Window,
    /// The records it reads, in the order they were recorded.
    pub records: Vec<String>,
    /// The selection its job names.
    pub select: Selection,
}

/// The jobs a report needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportPlan {
    /// The views: the group, then per trainee all sessions, the first and the last window.
    pub views: Vec<ViewPlan>,
    /// Each session's trainee and time, in the order recorded, per trainee.
    pub sessions: BTreeMap<String, Vec<(String, i64)>>,
}

/// Plans a report from the key holder's record listing: the `training` v1 records under
/// `key_id`, grouped by trainee (cohort label) and ordered by when they were recorded (or,
/// when undeclared, received). `trainees` narrows the report (empty: every trainee); `window`
/// is the size of the first and last windows (at least 1; a trainee with fewer sessions has
/// windows of all of them).
pub fn plan(
    listing: &[RecordSummary],
    key_id: &str,
    trainees: &[String],
    window: usize,
) -> Result<ReportPlan> {
    if window == 0 {
        return Err(invalid("the window must hold at least one session"));
    }
    let mut sessions: BTreeMap<String, Vec<(String, i64, i64)>> = BTreeMap::new();
    for r in listing.iter().filter(|r| {
        r.key_id == key_id
            && r.schema_id == TRAINING_SCHEMA_ID
            && r.schema_version == i64::from(TRAINING_SCHEMA_VERSION)
    }) {
        let Some(trainee) = &r.cohort else { continue };
        if !trainees.is_empty() && !trainees.contains(trainee) {
            continue;
        }
        let at = r.recorded_at.unwrap_or(r.received_at);
        sessions
            .entry(trainee.clone())
            .or_default()
            .push((r.record_id.clone(), at, r.seq));
    }
    if let Some(missing) = trainees.iter().find(|t| !sessions.contains_key(*t)) {
        return Err(invalid(&format!(
            "no training session of trainee {missing:?} is stored under key set {key_id}"
        )));
    }
    if sessions.is_empty() {
        return Err(invalid(&format!(
            "no training session is stored under key set {key_id}; record some with `blindsight record --training`"
        )));
    }
    let selection = |cohort: Option<&str>, records: Option<Vec<String>>| Selection {
        schema_id: TRAINING_SCHEMA_ID.into(),
        schema_version: TRAINING_SCHEMA_VERSION,
        cohort: cohort.map(str::to_owned),
        record_ids: records,
        ..Selection::default()
    };
    let mut all: Vec<(String, i64, i64)> = sessions.values().flatten().cloned().collect();
    all.sort_by_key(|(_, at, seq)| (*at, *seq));
    let ids = |s: &[(String, i64, i64)]| s.iter().map(|(id, _, _)| id.clone()).collect();
    let mut views = vec![ViewPlan {
        trainee: None,
        window: Window::All,
        records: ids(&all),
        select: selection(None, Some(ids(&all))),
    }];
    for (trainee, list) in &mut sessions {
        list.sort_by_key(|(_, at, seq)| (*at, *seq));
        let n = window.min(list.len());
        for (window, part) in [
            (Window::All, &list[..]),
            (Window::First(n), &list[..n]),
            (Window::Last(n), &list[list.len() - n..]),
        ] {
            let records: Vec<String> = ids(part);
            views.push(ViewPlan {
                trainee: Some(trainee.clone()),
                window,
                select: selection(Some(trainee), Some(records.clone())),
                records,
            });
        }
    }
    let sessions = sessions
        .into_iter()
        .map(|(t, list)| (t, list.into_iter().map(|(id, at, _)| (id, at)).collect()))
        .collect();
    Ok(ReportPlan { views, sessions })
}

fn invalid(reason: &str) -> Error {
    Error::Crypto(blindsight_crypto::Error::InvalidField {
        field: "training".into(),
        reason: reason.to_owned(),
    })
}

/// The statistics of one view, read from the values of [`supervisor_query`] (decrypted, or
/// computed in clear).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ViewStats {
    values: Vec<AggregateValue>,
}

fn ratio(num: i64, den: i64) -> Option<f64> {
    (den != 0).then(|| num as f64 / den as f64)
}

impl ViewStats {
    /// Statistics from the values of [`supervisor_query`], in query order.
    pub fn new(values: Vec<AggregateValue>) -> Result<Self> {
        let expected = supervisor_query().aggregates.len();
        if values.len() != expected {
            return Err(invalid(&format!(
                "a supervisor view has {expected} aggregates, these values {}",
                values.len()
            )));
        }
        Ok(Self { values })
    }

    /// The values, in query order.
    pub fn values(&self) -> &[AggregateValue] {
        &self.values
    }

    fn sum(&self, at: usize) -> i64 {
        match &self.values[at] {
            AggregateValue::Sum { sum } | AggregateValue::Mean { sum, .. } => *sum,
            AggregateValue::Count { count } | AggregateValue::CountAtLeast { count } => {
                *count as i64
            }
            _ => 0,
        }
    }

    /// Sessions in the view.
    pub fn sessions(&self) -> u64 {
        self.sum(0) as u64
    }

    fn per_session(&self, at: usize) -> Option<f64> {
        ratio(self.sum(at), self.sessions() as i64)
    }

    /// Mean count per session of each technique, by field.
    pub fn technique_means(&self) -> Vec<(&'static str, Option<f64>)> {
        TRAINING_TECHNIQUES
            .iter()
            .enumerate()
            .map(|(i, f)| (*f, self.per_session(TECHNIQUES_AT + i)))
            .collect()
    }

    /// Reflections per question (MITI's reflection-to-question ratio; ≥ 1 is the manual's
    /// "fair", ≥ 2 its "good" threshold).
    pub fn reflection_to_question(&self) -> Option<f64> {
        ratio(self.sum(REFLECTIONS_AT), self.sum(QUESTIONS_AT))
    }

    /// Complex reflections as a share of all reflections, in percent.
    pub fn complex_reflection_pct(&self) -> Option<f64> {
        ratio(self.sum(TECHNIQUES_AT + 3) * 100, self.sum(REFLECTIONS_AT))
    }

    /// Open questions as a share of all questions, in percent.
    pub fn open_question_pct(&self) -> Option<f64> {
        ratio(self.sum(TECHNIQUES_AT) * 100, self.sum(QUESTIONS_AT))
    }

    /// Bias and stigma incidents per session.
    pub fn bias_per_session(&self) -> Option<f64> {
        self.per_session(BIAS_TOTAL_AT)
    }

    /// Incidents per bias category over the view, by field (the categories' histogram).
    pub fn bias_categories(&self) -> Vec<(&'static str, i64)> {
        TRAINING_BIAS
            .iter()
            .enumerate()
            .map(|(i, f)| (*f, self.sum(BIAS_AT + i)))
            .collect()
    }

    /// Sessions by incidents: 0, 1, 2–3, 4 or more ([`INCIDENT_BUCKETS`]).
    pub fn sessions_by_incidents(&self) -> Vec<u64> {
        match &self.values[INCIDENTS_AT] {
            AggregateValue::Histogram { buckets } => buckets.clone(),
            _ => Vec::new(),
        }
    }

    /// Sessions with at least one slur or dehumanizing label.
    pub fn sessions_with_slur(&self) -> u64 {
        self.sum(SLUR_SESSIONS_AT) as u64
    }

    /// Mean self-rated confidence.
    pub fn mean_confidence(&self) -> Option<f64> {
        self.per_session(CONFIDENCE_AT)
    }

    /// Mean supervisor rating over the rated sessions, and how many were rated.
    pub fn mean_rating(&self) -> (Option<f64>, u64) {
        match &self.values[RATING_AT] {
            AggregateValue::SumWhere { sum, count } => (ratio(*sum, *count as i64), *count),
            _ => (None, 0),
        }
    }

    /// Mean talk share of the trainee, in percent.
    pub fn mean_talk_share(&self) -> Option<f64> {
        self.per_session(TALK_SHARE_AT)
    }
}

/// One computed view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct View {
    /// What was computed over which records.
    pub plan: ViewPlan,
    /// The job that computed it.
    pub job_id: String,
    /// Its statistics.
    pub stats: ViewStats,
}

/// One session's decrypted `bias` v1 score.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SessionScore {
    /// The record.
    pub record_id: String,
    /// When it was recorded (or received), seconds since the epoch.
    pub at: i64,
    /// Its score.
    pub score: u64,
    /// Its tier.
    pub tier: Tier,
}

/// A supervisor report: the group's view, each trainee's views, and each trainee's sessions'
/// bias scores in the order recorded.
#[derive(Clone, Debug, PartialEq)]
pub struct SupervisorReport {
    /// The views, in plan order.
    pub views: Vec<View>,
    /// Per trainee, each session's `bias` v1 score, in the order recorded.
    pub scores: BTreeMap<String, Vec<SessionScore>>,
    /// The `bias` v1 job.
    pub bias_job_id: String,
}

/// Queues every job of `plan` (the views' aggregates and one `bias` v1 job over the group's
/// sessions) under `key_id`, waits for them with progress, and decrypts them with `secret`.
pub fn run(
    client: &Client,
    key_id: &str,
    secret: &SecretKeys,
    plan: &ReportPlan,
    progress: &mut dyn Progress,
    timeout: Duration,
) -> Result<SupervisorReport> {
    let query = supervisor_query();
    let group = &plan.views[0].select;
    let bias = client.create_job(&JobRequest::risk_score(
        key_id,
        ModelRef::new(BIAS_MODEL_ID, 1),
        group.clone(),
    ))?;
    let mut created = Vec::new();
    for view in &plan.views {
        let job = client.create_job(&JobRequest::aggregate(
            key_id,
            query.clone(),
            view.select.clone(),
        ))?;
        created.push(job.job_id);
    }
    let finished = |job_id: &str, what: &str, progress: &mut dyn Progress| -> Result<_> {
        client.wait_with_progress(job_id, what, progress, timeout)?;
        results::fetch(client, job_id, secret)
    };
    let scored = finished(&bias.job_id, "risk_score job: bias v1", progress)?;
    let mut views = Vec::new();
    for (view, job_id) in plan.views.iter().zip(created) {
        let what = match &view.trainee {
            Some(t) => format!("aggregate job: {t}, {} sessions", view.window),
            None => "aggregate job: the training group".into(),
        };
        let decrypted = finished(&job_id, &what, progress)?;
        let Rows::Aggregate(rows) = decrypted.rows else {
            return Err(unexpected(&job_id, "not an aggregate job's output"));
        };
        // Statistics are read by position: every row must be the aggregate asked for there.
        if rows.len() != query.aggregates.len()
            || rows
                .iter()
                .zip(&query.aggregates)
                .any(|(row, asked)| &row.aggregate != asked)
        {
            return Err(unexpected(
                &job_id,
                "its aggregates are not the supervisor query's",
            ));
        }
        views.push(View {
            plan: view.clone(),
            stats: ViewStats::new(rows.into_iter().map(|r| r.value).collect())?,
            job_id,
        });
    }
    let Rows::Risk(rows) = scored.rows else {
        return Err(unexpected(&bias.job_id, "not a risk job's output"));
    };
    let by_record: BTreeMap<&str, (u64, Tier)> = rows
        .iter()
        .map(|r| (r.record_id.as_str(), (r.score, r.tier)))
        .collect();
    let mut scores = BTreeMap::new();
    for (trainee, sessions) in &plan.sessions {
        let mut list = Vec::new();
        for (record_id, at) in sessions {
            let (score, tier) = *by_record
                .get(record_id.as_str())
                .ok_or_else(|| unexpected(&bias.job_id, "a session has no score"))?;
            list.push(SessionScore {
                record_id: record_id.clone(),
                at: *at,
                score,
                tier,
            });
        }
        scores.insert(trainee.clone(), list);
    }
    Ok(SupervisorReport {
        views,
        scores,
        bias_job_id: bias.job_id,
    })
}

fn unexpected(job_id: &str, reason: &str) -> Error {
    Error::UnexpectedOutput {
        job_id: job_id.to_owned(),
        reason: reason.to_owned(),
    }
}

/// Lists the key holder's records (keyholder token) and plans a report over them.
pub fn plan_from_server(
    client: &Client,
    key_id: &str,
    trainees: &[String],
    window: usize,
) -> Result<ReportPlan> {
    let listing = client.records(&RecordListQuery::default())?;
    plan(&listing, key_id, trainees, window)
}

mod render;
pub use render::sparkline;

#[cfg(test)]
mod tests;
