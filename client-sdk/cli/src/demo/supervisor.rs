//! The demo's training step: the synthetic training group ([`super::training`]) recorded as a
//! training platform would (technique and bias counts extracted on the device from the
//! trainee's own messages, encrypted, proven, the conversation sealed), then the supervising
//! clinic's report on ciphertext ([`blindsight_client::supervisor`]: one `bias` v1 job over
//! every session and one aggregate job per view), printed, and every decrypted value checked
//! against the same computation in clear.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use blindsight_client::api::Client;
use blindsight_client::results;
use blindsight_client::supervisor::{self, SupervisorReport, Window, supervisor_query};
use blindsight_client::training::TrainingSession;
use blindsight_crypto::compute::{BIAS_MODEL_ID, Tier, bias_v1};
use blindsight_crypto::schemas::training_v1;
use blindsight_crypto::{AppBundle, SecretKeys, Value};

use super::training::{SESSIONS_PER_TRAINEE, Skill, TRAINEES, WINDOW, group_with_skills};
use super::{Demo, JOB_TIMEOUT, Result, say, secs};

/// What the training step did: sessions uploaded, bias scores and views decrypted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct TrainingCounts {
    pub sessions: usize,
    pub scored: usize,
    pub views: usize,
}

/// The clear record values of a practice session, in schema order.
fn clear_values(session: &TrainingSession) -> Result<Vec<Value>> {
    Ok(training_v1().order_values(&session.values()?)?)
}

impl Demo<'_> {
    /// Records the training group as a platform would, runs the supervisor report on
    /// ciphertext, prints it and checks every decrypted value.
    pub(super) fn training(
        &mut self,
        app: &Client,
        keyholder: &Client,
        bundle: &AppBundle,
        tenant: &str,
        key_id: &str,
        secret: &SecretKeys,
    ) -> Result<TrainingCounts> {
        let group = group_with_skills(TRAINEES, SESSIONS_PER_TRAINEE, self.options.seed);
        let n = group.len();
        let t = Instant::now();
        let bytes = self.upload_each(
            app,
            bundle,
            tenant,
            "training sessions: encrypt + prove + upload",
            &group,
            |(_, _, session)| session,
        )?;
        let trainees: BTreeSet<&str> = group.iter().map(|(_, _, s)| s.trainee.as_str()).collect();
        say!(
            self.out,
            "[8/9] training platform: {n} practice session(s) of {} trainee(s) ({}) encrypted, proven and uploaded in {} ({} KiB each on average; technique and bias counts extracted on the device from the trainee's own messages, conversations sealed)",
            trainees.len(),
            trainees.iter().copied().collect::<Vec<_>>().join(", "),
            secs(t),
            bytes / n.max(1) / 1024
        );

        let t = Instant::now();
        let plan = supervisor::plan_from_server(keyholder, key_id, &[], WINDOW)?;
        let report = supervisor::run(
            keyholder,
            key_id,
            secret,
            &plan,
            &mut *self.progress,
            JOB_TIMEOUT,
        )?;
        say!(
            self.out,
            "      supervisor: {BIAS_MODEL_ID} v1 job {} over {n} session(s) and {} aggregate view(s) ({} aggregates each: the group, and per trainee all, first {WINDOW} and last {WINDOW} sessions) computed on ciphertext and decrypted in {}",
            report.bias_job_id,
            report.views.len(),
            supervisor_query().aggregates.len(),
            secs(t)
        );
        let sessions: Vec<TrainingSession> = group.iter().map(|(_, _, s)| s.clone()).collect();
        let scored = self.check_training(&report, &sessions)?;

        say!(self.out);
        let _ = self.out.write_all(report.table().as_bytes());
        say!(self.out);
        // The chart of the trainee who improves most visibly: the first biased one.
        let improving = group
            .iter()
            .find(|(skill, _, _)| *skill == Skill::Biased)
            .or(group.last())
            .map(|(_, _, s)| s.trainee.as_str());
        if let Some(chart) = improving.and_then(|t| report.chart(t)) {
            let _ = self.out.write_all(chart.as_bytes());
            say!(self.out);
        }
        Ok(TrainingCounts {
            sessions: n,
            scored,
            views: report.views.len(),
        })
    }

    /// Compares every decrypted view and bias score of `report` with the same computation in
    /// clear over `sessions` (the sessions uploaded), and checks the views cover exactly
    /// those sessions. Prints the per-session scores; returns how many were decrypted.
    pub(super) fn check_training(
        &mut self,
        report: &SupervisorReport,
        sessions: &[TrainingSession],
    ) -> Result<usize> {
        let schema = training_v1();
        let model = bias_v1().compile(&schema)?;
        let query = supervisor_query();
        let by_id: BTreeMap<&str, (&TrainingSession, Vec<Value>)> = sessions
            .iter()
            .map(|s| Ok((s.record_id.as_str(), (s, clear_values(s)?))))
            .collect::<Result<_>>()?;
        let mut problems = Vec::new();

        // (c) The views cover exactly the uploaded sessions: the group all of them, each
        // trainee's all, first and last windows theirs, in the order recorded.
        let mut per_trainee: BTreeMap<&str, Vec<&TrainingSession>> = BTreeMap::new();
        for s in sessions {
            per_trainee.entry(s.trainee.as_str()).or_default().push(s);
        }
        for list in per_trainee.values_mut() {
            list.sort_by_key(|s| s.recorded_at);
        }
        let mut expected_views: Vec<(Option<&str>, Window, Vec<&str>)> = Vec::new();
        let mut all: Vec<&TrainingSession> = sessions.iter().collect();
        all.sort_by_key(|s| s.recorded_at);
        expected_views.push((
            None,
            Window::All,
            all.iter().map(|s| s.record_id.as_str()).collect(),
        ));
        for (trainee, list) in &per_trainee {
            let ids: Vec<&str> = list.iter().map(|s| s.record_id.as_str()).collect();
            let w = WINDOW.min(ids.len());
            expected_views.push((Some(trainee), Window::All, ids.clone()));
            expected_views.push((Some(trainee), Window::First(w), ids[..w].to_vec()));
            expected_views.push((
                Some(trainee),
                Window::Last(w),
                ids[ids.len() - w..].to_vec(),
            ));
        }
        let got_views: Vec<(Option<&str>, Window, Vec<&str>)> = report
            .views
            .iter()
            .map(|v| {
                (
                    v.plan.trainee.as_deref(),
                    v.plan.window,
                    v.plan.records.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        if got_views.len() != expected_views.len() {
            problems.push(format!(
                "the report has {} view(s), the uploaded sessions call for {}",
                got_views.len(),
                expected_views.len()
            ));
        }
        for (got, want) in got_views.iter().zip(&expected_views) {
            if got != want {
                problems.push(format!(
                    "a view covers {got:?}, the uploaded sessions call for {want:?}"
                ));
            }
        }

        // (a) Every view's decrypted aggregates equal the query in clear over its records.
        for view in &report.views {
            let label = view.label();
            let Some(records) = view
                .plan
                .records
                .iter()
                .map(|id| by_id.get(id.as_str()).map(|(_, v)| v.clone()))
                .collect::<Option<Vec<_>>>()
            else {
                problems.push(format!(
                    "{label}: reads a record the platform never uploaded"
                ));
                continue;
            };
            let want = query.evaluate_clear(&schema, &records)?;
            let got = view.stats.values();
            if got.len() != want.len() {
                problems.push(format!(
                    "{label}: {} aggregate(s) decrypted, {} asked for",
                    got.len(),
                    want.len()
                ));
            }
            for ((aggregate, g), w) in query.aggregates.iter().zip(got).zip(&want) {
                if g != w {
                    problems.push(format!(
                        "{label}: {} decrypted {g}, plaintext {w}",
                        aggregate.describe()
                    ));
                }
            }
        }

        // (b) Every session's decrypted bias v1 score and tier equal the model in clear.
        let mut cells = Vec::new();
        let mut scored = BTreeSet::new();
        let mut tiers = [0usize; 4];
        for (trainee, scores) in &report.scores {
            for s in scores {
                tiers[s.tier as usize] += 1;
                let check = match by_id.get(s.record_id.as_str()) {
                    Some((session, _)) if session.trainee != *trainee => {
                        problems.push(format!(
                            "{}: reported under {trainee}, recorded by {}",
                            s.record_id, session.trainee
                        ));
                        "MISMATCH: trainee".to_owned()
                    }
                    Some((_, values)) => {
                        let (score, tier) = model.evaluate_clear(values);
                        if (score, tier) == (s.score, s.tier) {
                            "ok".to_owned()
                        } else {
                            problems.push(format!(
                                "{}: decrypted bias score {} ({}), plaintext {score} ({tier})",
                                s.record_id, s.score, s.tier
                            ));
                            format!("MISMATCH: plaintext {score} {tier}")
                        }
                    }
                    None => {
                        problems.push(format!(
                            "{}: scored, but the platform never uploaded it",
                            s.record_id
                        ));
                        "MISMATCH: unknown record".to_owned()
                    }
                };
                if !scored.insert(s.record_id.as_str()) {
                    problems.push(format!("{}: scored twice", s.record_id));
                }
                let scenario = by_id
                    .get(s.record_id.as_str())
                    .map_or("?", |(session, _)| session.scenario.as_str());
                cells.push(vec![
                    s.record_id.clone(),
                    scenario.to_owned(),
                    s.score.to_string(),
                    s.tier.name().to_owned(),
                    check,
                ]);
            }
        }
        for id in by_id.keys() {
            if !scored.contains(id) {
                problems.push(format!("{id}: uploaded, but no bias score came back"));
            }
        }
        say!(self.out);
        say!(
            self.out,
            "Bias scores per practice session (bias v1; tiers from 2 low, 6 moderate, 12 high; any slur or dehumanizing label: high):"
        );
        say!(self.out);
        let table = results::columns(&["session", "scenario", "score", "tier", "check"], &cells);
        let _ = self.out.write_all(table.as_bytes());
        say!(
            self.out,
            "bias tiers: high {}, moderate {}, low {}, none {}",
            tiers[Tier::High as usize],
            tiers[Tier::Moderate as usize],
            tiers[Tier::Low as usize],
            tiers[Tier::None as usize]
        );
        for p in problems {
            self.mismatch(p);
        }
        Ok(report.scores.values().map(Vec::len).sum())
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use blindsight_client::api::RecordSummary;
    use blindsight_client::progress::Quiet;
    use blindsight_client::supervisor::{SessionScore, View, ViewStats};
    use blindsight_crypto::compute::AggregateValue;

    use super::super::Options;
    use super::super::training::synthetic_training_group;
    use super::*;

    /// The report the server would compute, in clear: every view and score exact.
    fn clear_report(sessions: &[TrainingSession]) -> SupervisorReport {
        let listing: Vec<RecordSummary> = sessions
            .iter()
            .enumerate()
            .map(|(i, s)| RecordSummary {
                seq: i as i64 + 1,
                record_id: s.record_id.clone(),
                key_id: "k1".into(),
                schema_id: "training".into(),
                schema_version: 1,
                cohort: Some(s.trainee.clone()),
                lexicon_version: Some("train-lex-1".into()),
                recorded_at: s.recorded_at.map(|t| t as i64),
                received_at: 0,
                proven_list_digest: String::new(),
                has_transcript: true,
                sealed_transcript_digest: None,
                rollup_day: None,
            })
            .collect();
        let plan = supervisor::plan(&listing, "k1", &[], WINDOW).unwrap();
        let values =
            |id: &str| clear_values(sessions.iter().find(|s| s.record_id == id).unwrap()).unwrap();
        let model = bias_v1().compile(&training_v1()).unwrap();
        SupervisorReport {
            views: plan
                .views
                .iter()
                .map(|v| View {
                    plan: v.clone(),
                    job_id: "job-1".into(),
                    stats: ViewStats::new(
                        supervisor_query()
                            .evaluate_clear(
                                &training_v1(),
                                &v.records.iter().map(|id| values(id)).collect::<Vec<_>>(),
                            )
                            .unwrap(),
                    )
                    .unwrap(),
                })
                .collect(),
            scores: plan
                .sessions
                .iter()
                .map(|(t, list)| {
                    let scores = list
                        .iter()
                        .map(|(id, at)| {
                            let (score, tier) = model.evaluate_clear(&values(id));
                            SessionScore {
                                record_id: id.clone(),
                                at: *at,
                                score,
                                tier,
                            }
                        })
                        .collect();
                    (t.clone(), scores)
                })
                .collect(),
            bias_job_id: "job-0".into(),
        }
    }

    fn mismatches(report: &SupervisorReport, sessions: &[TrainingSession]) -> Vec<String> {
        let (mut out, mut progress) = (Vec::new(), Quiet);
        let options = Options::default();
        let mut demo = Demo {
            out: &mut out,
            progress: &mut progress,
            options: &options,
            dir: Path::new("."),
            started: Instant::now(),
            mismatches: Vec::new(),
        };
        let scored = demo.check_training(report, sessions).unwrap();
        assert_eq!(scored, report.scores.values().map(Vec::len).sum::<usize>());
        demo.mismatches
    }

    #[test]
    fn the_checks_pass_the_clear_report_and_catch_every_difference() {
        let sessions = synthetic_training_group(TRAINEES, SESSIONS_PER_TRAINEE, 7);
        let report = clear_report(&sessions);
        assert_eq!(report.views.len(), 1 + 3 * TRAINEES);
        assert_eq!(mismatches(&report, &sessions), Vec::<String>::new());

        // A decrypted aggregate that differs.
        let mut bad = report.clone();
        let mut values = bad.views[2].stats.values().to_vec();
        values[0] = AggregateValue::Count { count: 99 };
        bad.views[2].stats = ViewStats::new(values).unwrap();
        let found = mismatches(&bad, &sessions);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("count decrypted 99"), "{found:?}");

        // A score, a missing score, and a view over other records.
        let mut bad = report.clone();
        let first = bad.scores.values_mut().next().unwrap();
        first[0].score += 1;
        first.pop();
        let found = mismatches(&bad, &sessions);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found.iter().any(|m| m.contains("no bias score came back")));

        let mut bad = report.clone();
        bad.views[1].plan.records.pop();
        let found = mismatches(&bad, &sessions);
        assert!(
            found.iter().any(|m| m.contains("a view covers")),
            "{found:?}"
        );
        let mut bad = report;
        bad.views.pop();
        let found = mismatches(&bad, &sessions);
        assert!(found[0].contains("the report has 9 view(s)"), "{found:?}");
    }
}
