//! What a run of the checks found: one [`Check`] per check, and the [`Report`] over all.

use serde::Serialize;

/// How to verify.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// How many succeeded jobs to re-execute (sampled at random); 0 skips the check.
    pub reexecute: usize,
}

/// What a long check is doing, for a progress bar: `done` of `total` in `check`.
#[derive(Clone, Copy, Debug)]
pub struct Progress<'a> {
    /// The check's name.
    pub check: &'a str,
    /// Steps done.
    pub done: u64,
    /// Steps in all.
    pub total: u64,
}

/// One check's outcome.
#[derive(Clone, Debug, Serialize)]
pub struct Check {
    /// `chain`, `proofs`, `receipts`, `reexecute`, `storage`, `manifests` or `cohorts`.
    pub name: &'static str,
    /// No failure (a check with nothing to check passes).
    pub passed: bool,
    /// Objects checked.
    pub checked: u64,
    /// Objects that failed.
    pub failed: u64,
    /// One line on what was checked, e.g. `1,234 entries in 3 chains`.
    pub summary: String,
    /// The failures, first first (at most [`MAX_LISTED`]).
    pub failures: Vec<String>,
    /// What could not be checked from this source, and why.
    pub notes: Vec<String>,
}

/// The most failures listed per check.
pub const MAX_LISTED: usize = 50;

/// The outcome of a run.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Where the evidence came from.
    pub source: String,
    /// Every check passed.
    pub passed: bool,
    /// The first failure of the first failing check.
    pub first_failure: Option<String>,
    /// The checks, in order.
    pub checks: Vec<Check>,
}

/// Collects one check's outcome.
pub(crate) struct Tally {
    pub(crate) name: &'static str,
    pub(crate) checked: u64,
    pub(crate) failures: Vec<String>,
    pub(crate) failed: u64,
    pub(crate) notes: Vec<String>,
}

impl Tally {
    pub(crate) fn new(name: &'static str) -> Self {
        Self {
            name,
            checked: 0,
            failures: Vec::new(),
            failed: 0,
            notes: Vec::new(),
        }
    }

    /// Counts one object, failed when `outcome` is an error.
    pub(crate) fn count(&mut self, outcome: Result<(), String>) {
        self.checked += 1;
        if let Err(e) = outcome {
            self.fail(e);
        }
    }

    pub(crate) fn fail(&mut self, failure: String) {
        self.failed += 1;
        if self.failures.len() < MAX_LISTED {
            self.failures.push(failure);
        }
    }

    pub(crate) fn finish(self, summary: String) -> Check {
        Check {
            name: self.name,
            passed: self.failed == 0,
            checked: self.checked,
            failed: self.failed,
            summary,
            failures: self.failures,
            notes: self.notes,
        }
    }
}

pub(crate) fn chain_label(tenant: Option<&str>) -> String {
    match tenant {
        Some(t) => format!("tenant {t:?}"),
        None => "server-wide chain".into(),
    }
}

/// `n` with thousands separators, for summaries.
pub(crate) fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub(crate) fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", count(n), if n == 1 { one } else { many })
}

impl Report {
    /// The report as text: one line per check, then its failures and notes, then the verdict.
    pub fn render(&self) -> String {
        let mut out = format!("audit of {}\n", self.source);
        for c in &self.checks {
            let verdict = if c.passed { "pass" } else { "FAIL" };
            out.push_str(&format!("  {verdict}  {:<10} {}\n", c.name, c.summary));
            for f in &c.failures {
                out.push_str(&format!("          - {f}\n"));
            }
            if c.failed as usize > c.failures.len() {
                out.push_str(&format!(
                    "          … and {} more\n",
                    count(c.failed - c.failures.len() as u64)
                ));
            }
            for n in &c.notes {
                out.push_str(&format!("          note: {n}\n"));
            }
        }
        match &self.first_failure {
            None if self.passed => out.push_str("result: every check passed\n"),
            None => out.push_str("result: FAILED\n"),
            Some(f) => out.push_str(&format!("result: FAILED (first failure: {f})\n")),
        }
        out
    }
}
