//! The demo's checks: every decrypted score and aggregate against the same computation in
//! clear, and one high-tier record's transcript opened for follow-up.

use std::collections::BTreeMap;

use blindsight_client::api::Client;
use blindsight_client::results::{self, AggregateRow, JobResults, RiskRow, Rows};
use blindsight_client::session::Session;
use blindsight_client::transcript;
use blindsight_crypto::Value;
use blindsight_crypto::compute::{AggregateQuery, AggregateValue, Tier, crisis_v1};
use blindsight_crypto::schemas::session_v1;

use super::{Demo, Result, first_sentence, say};

impl Demo<'_> {
    /// Prints the per-record table and compares each score and tier with `crisis` v1 in clear.
    /// Returns the records scored, the tier counts and the decrypted rows.
    pub(super) fn check_scores(
        &mut self,
        scores: &JobResults,
        sessions: &[Session],
        clear: &[Vec<Value>],
    ) -> Result<(usize, [usize; 4], Vec<RiskRow>)> {
        let Rows::Risk(rows) = &scores.rows else {
            self.mismatch(format!("job {} returned no risk scores", scores.job_id));
            return Ok((0, [0; 4], Vec::new()));
        };
        let model = crisis_v1().compile(&session_v1())?;
        let expected: BTreeMap<&str, (u64, Tier, Option<&str>)> = sessions
            .iter()
            .zip(clear)
            .map(|(s, v)| {
                let (score, tier) = model.evaluate_clear(v);
                (s.record_id.as_str(), (score, tier, s.cohort.as_deref()))
            })
            .collect();
        let mut tiers = [0; 4];
        let mut cells = Vec::new();
        let mut problems = Vec::new();
        for row in rows {
            tiers[row.tier as usize] += 1;
            let (cohort, check) = match expected.get(row.record_id.as_str()) {
                Some(&(score, tier, cohort)) if (score, tier) == (row.score, row.tier) => {
                    (cohort.unwrap_or("-"), "ok".to_owned())
                }
                Some(&(score, tier, cohort)) => {
                    problems.push(format!(
                        "{}: decrypted score {} ({}), plaintext {score} ({tier})",
                        row.record_id, row.score, row.tier
                    ));
                    (
                        cohort.unwrap_or("-"),
                        format!("MISMATCH: plaintext {score} {tier}"),
                    )
                }
                None => {
                    problems.push(format!(
                        "{}: scored, but the app never recorded it",
                        row.record_id
                    ));
                    ("?", "MISMATCH: unknown record".to_owned())
                }
            };
            cells.push(vec![
                row.record_id.clone(),
                cohort.to_owned(),
                row.score.to_string(),
                row.tier.name().to_owned(),
                check,
            ]);
        }
        for id in expected.keys() {
            if !rows.iter().any(|r| r.record_id == *id) {
                problems.push(format!("{id}: recorded, but no score came back"));
            }
        }
        say!(self.out);
        say!(
            self.out,
            "Risk scores (crisis v1; tiers from 10 low, 25 moderate, 45 high; PHQ-9 item 9 or C-SSRS intent, plan or behaviour: high):"
        );
        say!(self.out);
        let table = results::columns(&["record", "cohort", "score", "tier", "check"], &cells);
        let _ = self.out.write_all(table.as_bytes());
        say!(
            self.out,
            "tiers: high {}, moderate {}, low {}, none {}",
            tiers[Tier::High as usize],
            tiers[Tier::Moderate as usize],
            tiers[Tier::Low as usize],
            tiers[Tier::None as usize]
        );
        say!(self.out);
        for p in problems {
            self.mismatch(p);
        }
        Ok((rows.len(), tiers, rows.clone()))
    }

    /// Prints the aggregate table and compares each aggregate with the clear computation.
    /// Returns the number of aggregates decrypted.
    pub(super) fn check_aggregates(
        &mut self,
        job: &JobResults,
        query: &AggregateQuery,
        clear: &[Vec<Value>],
    ) -> Result<usize> {
        let Rows::Aggregate(rows) = &job.rows else {
            self.mismatch(format!("job {} returned no aggregates", job.job_id));
            return Ok(0);
        };
        let reference = query.evaluate_clear(&session_v1(), clear)?;
        let mut cells = Vec::new();
        let mut problems = Vec::new();
        for (i, row) in rows.iter().enumerate() {
            let want: Option<&AggregateValue> = reference.get(i);
            let check = match want {
                Some(w) if *w == row.value && query.aggregates.get(i) == Some(&row.aggregate) => {
                    "ok".to_owned()
                }
                Some(w) => {
                    problems.push(format!(
                        "{}: decrypted {}, plaintext {w}",
                        row.aggregate.describe(),
                        row.value
                    ));
                    format!("MISMATCH: plaintext {w}")
                }
                None => {
                    problems.push(format!("{}: not asked for", row.aggregate.describe()));
                    "MISMATCH: not asked for".to_owned()
                }
            };
            aggregate_cells(row, check, &mut cells);
        }
        if rows.len() < reference.len() {
            problems.push(format!(
                "{} aggregate(s) asked for, {} came back",
                reference.len(),
                rows.len()
            ));
        }
        say!(
            self.out,
            "Aggregates over the whole cohort ({} record(s), one job):",
            job.records
        );
        say!(self.out);
        let table = results::columns(&["aggregate", "result", "computed by", "check"], &cells);
        let _ = self.out.write_all(table.as_bytes());
        say!(self.out);
        for p in problems {
            self.mismatch(p);
        }
        Ok(rows.len())
    }

    /// Opens the sealed transcript of the first high-tier record (or the highest-scored one)
    /// as the key holder would, and checks it is the text the app sealed.
    pub(super) fn open_transcript(
        &mut self,
        keyholder: &Client,
        tenant: &str,
        secret: &blindsight_crypto::SecretKeys,
        rows: &[RiskRow],
        sessions: &[Session],
    ) -> Result<()> {
        let Some(row) = rows
            .iter()
            .find(|r| r.tier == Tier::High)
            .or_else(|| rows.iter().max_by_key(|r| (r.tier, r.score)))
        else {
            return Ok(());
        };
        let Some(fetched) = transcript::fetch(keyholder, tenant, &row.record_id)? else {
            self.mismatch(format!("{}: the server does not list it", row.record_id));
            return Ok(());
        };
        let text = fetched.open(secret)?;
        say!(
            self.out,
            "[7/9] key holder: opened the sealed transcript of {} (tier {}, {} bytes) for clinical follow-up:",
            row.record_id,
            row.tier,
            text.len()
        );
        say!(self.out, "      \"{}\"", first_sentence(&text));
        let sealed_text = sessions
            .iter()
            .find(|s| s.record_id == row.record_id)
            .and_then(|s| s.transcript.as_deref());
        if sealed_text != Some(&*text) {
            self.mismatch(format!(
                "{}: the transcript opened to other text than the app sealed",
                row.record_id
            ));
        }
        Ok(())
    }
}

/// One row per aggregate (with the path that computed it: the additive lane, the FHE path, or
/// the clear count), and one per bucket of a histogram.
fn aggregate_cells(row: &AggregateRow, check: String, cells: &mut Vec<Vec<String>>) {
    let by = row.computed_by.name().to_owned();
    match &row.value {
        AggregateValue::Histogram { .. } => {
            cells.push(vec![row.aggregate.describe(), String::new(), by, check]);
            for (label, value) in results::statistics(row) {
                cells.push(vec![
                    format!("  {label}"),
                    value,
                    String::new(),
                    String::new(),
                ]);
            }
        }
        value => cells.push(vec![row.aggregate.describe(), value.to_string(), by, check]),
    }
}
