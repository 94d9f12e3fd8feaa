//! A supervisor report as people and programs read it: tables, CSV (one line per view), JSON,
//! and a terminal chart of one trainee's progress.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use blindsight_crypto::schemas::{TRAINING_BIAS, TRAINING_TECHNIQUES};
use serde_json::json;

use super::{INCIDENT_BUCKETS, SupervisorReport, View, Window};
use crate::results::columns;

const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// One character per value, from `▁` (0) to `█` (the largest value; all `▁` when every
/// value is 0).
pub fn sparkline(values: &[u64]) -> String {
    let max = values.iter().copied().max().unwrap_or(0);
    values
        .iter()
        .map(|&v| BARS[(v * 7 + max / 2).checked_div(max).unwrap_or(0) as usize])
        .collect()
}

/// A horizontal bar `width` characters at most, for `value` against `max`.
fn bar(value: f64, max: f64, width: usize) -> String {
    if max <= 0.0 || value <= 0.0 {
        return String::new();
    }
    let cells = ((value / max) * width as f64).round() as usize;
    "█".repeat(cells.clamp(1, width))
}

fn fixed(v: Option<f64>, digits: usize) -> String {
    v.map_or(String::new(), |v| format!("{v:.digits$}"))
}

/// A view's summary, one cell each: sessions, reflections per question, % complex
/// reflections, % open questions, bias per session, sessions with a slur, mean confidence,
/// mean rating, rated sessions, mean talk share; `digits` for the seven that are fractions.
fn summary_cells(s: &super::ViewStats, digits: [usize; 7]) -> Vec<String> {
    let (rating, rated) = s.mean_rating();
    vec![
        s.sessions().to_string(),
        fixed(s.reflection_to_question(), digits[0]),
        fixed(s.complex_reflection_pct(), digits[1]),
        fixed(s.open_question_pct(), digits[2]),
        fixed(s.bias_per_session(), digits[3]),
        s.sessions_with_slur().to_string(),
        fixed(s.mean_confidence(), digits[4]),
        fixed(rating, digits[5]),
        rated.to_string(),
        fixed(s.mean_talk_share(), digits[6]),
    ]
}

fn short(field: &str) -> &str {
    field
        .trim_start_matches("mi_")
        .trim_start_matches("bias_")
        .trim_end_matches("_statements")
}

impl View {
    /// `training group` or `<trainee> (<window>)`.
    pub fn label(&self) -> String {
        match &self.plan.trainee {
            None => "training group".into(),
            Some(t) => format!("{t} ({})", self.plan.window),
        }
    }
}

impl SupervisorReport {
    /// The report as tables: the summary per view, the mean technique counts per session, and
    /// the bias incidents per category and sessions by incidents.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let summary: Vec<Vec<String>> = self
            .views
            .iter()
            .map(|v| {
                let mut row = vec![v.label()];
                row.extend(summary_cells(&v.stats, [2, 0, 0, 2, 1, 1, 0]));
                row
            })
            .collect();
        let _ = writeln!(
            out,
            "Supervisor report (training v1, decrypted by the key holder)"
        );
        out.push_str(&columns(
            &[
                "view",
                "sessions",
                "refl/question",
                "complex refl %",
                "open question %",
                "bias/session",
                "slur sessions",
                "confidence",
                "rating",
                "rated",
                "talk %",
            ],
            &summary,
        ));
        let _ = writeln!(out, "\nMean technique counts per session");
        let mut header = vec!["view"];
        header.extend(TRAINING_TECHNIQUES.iter().map(|f| short(f)));
        let rows: Vec<Vec<String>> = self
            .views
            .iter()
            .map(|v| {
                let mut row = vec![v.label()];
                row.extend(
                    v.stats
                        .technique_means()
                        .into_iter()
                        .map(|(_, m)| fixed(m, 2)),
                );
                row
            })
            .collect();
        out.push_str(&columns(&header, &rows));
        let _ = writeln!(
            out,
            "\nBias and stigma incidents per category, and sessions by incidents"
        );
        let mut header = vec!["view"];
        header.extend(TRAINING_BIAS.iter().map(|f| short(f)));
        let buckets: Vec<String> = INCIDENT_BUCKETS
            .iter()
            .map(|b| format!("{b} incidents"))
            .collect();
        header.extend(buckets.iter().map(String::as_str));
        let rows: Vec<Vec<String>> = self
            .views
            .iter()
            .map(|v| {
                let mut row = vec![v.label()];
                row.extend(
                    v.stats
                        .bias_categories()
                        .into_iter()
                        .map(|(_, n)| n.to_string()),
                );
                row.extend(
                    v.stats
                        .sessions_by_incidents()
                        .into_iter()
                        .map(|n| n.to_string()),
                );
                row
            })
            .collect();
        out.push_str(&columns(&header, &rows));
        out
    }

    /// One CSV line per view: the view, its job, then every statistic.
    pub fn to_csv(&self) -> String {
        let mut header = vec![
            "trainee".to_owned(),
            "window".into(),
            "job_id".into(),
            "sessions".into(),
            "reflection_to_question".into(),
            "complex_reflection_pct".into(),
            "open_question_pct".into(),
            "bias_per_session".into(),
            "sessions_with_slur".into(),
            "mean_confidence".into(),
            "mean_rating".into(),
            "rated_sessions".into(),
            "mean_talk_share_pct".into(),
        ];
        header.extend(
            TRAINING_TECHNIQUES
                .iter()
                .map(|f| format!("{f}_per_session")),
        );
        header.extend(TRAINING_BIAS.iter().map(|f| (*f).to_owned()));
        header.extend(
            INCIDENT_BUCKETS
                .iter()
                .map(|b| format!("sessions_{}_incidents", b.replace('+', "_or_more"))),
        );
        let mut out = header.join(",") + "\n";
        for v in &self.views {
            let s = &v.stats;
            let mut row = vec![
                v.plan.trainee.clone().unwrap_or_default(),
                v.plan.window.to_string(),
                v.job_id.clone(),
            ];
            row.extend(summary_cells(s, [4, 2, 2, 4, 4, 4, 2]));
            row.extend(s.technique_means().into_iter().map(|(_, m)| fixed(m, 4)));
            row.extend(s.bias_categories().into_iter().map(|(_, n)| n.to_string()));
            row.extend(s.sessions_by_incidents().into_iter().map(|n| n.to_string()));
            out += &(row.join(",") + "\n");
        }
        out
    }

    /// The report as JSON: every view's statistics, and each trainee's session scores.
    pub fn to_json(&self) -> serde_json::Value {
        let views: Vec<serde_json::Value> = self
            .views
            .iter()
            .map(|v| {
                let s = &v.stats;
                let (rating, rated) = s.mean_rating();
                let window = match v.plan.window {
                    Window::All => json!({ "kind": "all" }),
                    Window::First(n) => json!({ "kind": "first", "sessions": n }),
                    Window::Last(n) => json!({ "kind": "last", "sessions": n }),
                };
                json!({
                    "trainee": v.plan.trainee,
                    "window": window,
                    "job_id": v.job_id,
                    "records": v.plan.records,
                    "sessions": s.sessions(),
                    "reflection_to_question": s.reflection_to_question(),
                    "complex_reflection_pct": s.complex_reflection_pct(),
                    "open_question_pct": s.open_question_pct(),
                    "technique_means": s.technique_means().into_iter().map(|(f, m)| (f.to_owned(), m)).collect::<BTreeMap<_, _>>(),
                    "bias_per_session": s.bias_per_session(),
                    "bias_categories": s.bias_categories().into_iter().map(|(f, n)| (f.to_owned(), n)).collect::<BTreeMap<_, _>>(),
                    "sessions_by_incidents": INCIDENT_BUCKETS.iter().map(|b| (*b).to_owned()).zip(s.sessions_by_incidents()).collect::<BTreeMap<_, _>>(),
                    "sessions_with_slur": s.sessions_with_slur(),
                    "mean_confidence": s.mean_confidence(),
                    "mean_rating": rating,
                    "rated_sessions": rated,
                    "mean_talk_share_pct": s.mean_talk_share(),
                })
            })
            .collect();
        json!({
            "schema": "training@1",
            "bias_job_id": self.bias_job_id,
            "views": views,
            "session_scores": self.scores,
        })
    }

    /// A terminal chart of one trainee's progress: a sparkline of each session's `bias` v1
    /// score, and bars comparing the first and last windows. `None` for a trainee the report
    /// does not cover.
    pub fn chart(&self, trainee: &str) -> Option<String> {
        let scores = self.scores.get(trainee)?;
        let view = |w: fn(&Window) -> bool| {
            self.views
                .iter()
                .find(|v| v.plan.trainee.as_deref() == Some(trainee) && w(&v.plan.window))
        };
        let first = view(|w| matches!(w, Window::First(_)))?;
        let last = view(|w| matches!(w, Window::Last(_)))?;
        let mut out = String::new();
        let values: Vec<u64> = scores.iter().map(|s| s.score).collect();
        let _ = writeln!(
            out,
            "{trainee}: bias v1 score per session, first to last ({} sessions)",
            scores.len()
        );
        let _ = writeln!(out, "  {}", sparkline(&values));
        let _ = writeln!(
            out,
            "  scores {}",
            values
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(" ")
        );
        let _ = writeln!(
            out,
            "  tiers  {}",
            scores
                .iter()
                .map(|s| s.tier.name())
                .collect::<Vec<_>>()
                .join(" ")
        );
        let _ = writeln!(
            out,
            "{trainee}: {} vs {} sessions",
            first.plan.window, last.plan.window
        );
        type Metric = fn(&super::ViewStats) -> Option<f64>;
        let metrics: [(&str, Metric); 5] = [
            ("reflections per question", |s| s.reflection_to_question()),
            ("complex reflections %", |s| s.complex_reflection_pct()),
            ("open questions %", |s| s.open_question_pct()),
            ("empathy per session", |s| s.technique_means()[8].1),
            ("bias incidents per session", |s| s.bias_per_session()),
        ];
        for (name, metric) in metrics {
            let (a, b) = (metric(&first.stats), metric(&last.stats));
            let max = a.unwrap_or(0.0).max(b.unwrap_or(0.0));
            // No value (e.g. no reflection to take a share of) reads as a dash.
            let shown = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.2}"));
            let _ = writeln!(
                out,
                "  {name:<27} {:>7} {:<20} -> {:>7} {}",
                shown(a),
                bar(a.unwrap_or(0.0), max, 20),
                shown(b),
                bar(b.unwrap_or(0.0), max, 20)
            );
        }
        Some(out)
    }
}
