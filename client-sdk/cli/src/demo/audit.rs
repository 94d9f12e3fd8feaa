//! The demo's last step: the tenant's auditor, holding nothing secret, runs `audit verify`'s
//! checks over the API.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use blindsight_client::api::Client;

use super::{Demo, Result, say, secs};

impl Demo<'_> {
    /// Runs `audit verify`'s checks as the tenant's auditor (no re-execution: that is
    /// `blindsight audit verify --reexecute N`); each failure is a mismatch.
    pub(super) fn audit(&mut self, auditor: &Client) -> Result<()> {
        let t = Instant::now();
        let key = auditor.audit_key()?;
        let gathered = blindsight_client::audit::fetch_evidence(
            auditor,
            &Default::default(),
            &mut *self.progress,
        );
        let mut evidence = match gathered {
            Ok(e) => e,
            Err(e) => {
                self.mismatches
                    .push(format!("audit: couldn't gather the evidence: {e:#}"));
                return Ok(());
            }
        };
        evidence.trusted_keys = vec![hex::decode(&key.public_key).unwrap_or_default()];
        // The checks run on their own thread; this one draws their progress.
        let (done, total) = (AtomicU64::new(0), AtomicU64::new(0));
        self.progress.begin("audit", 0);
        let report = std::thread::scope(|scope| {
            let checks = scope.spawn(|| {
                blindsight_audit::verify(&evidence, &blindsight_audit::Options::default(), &|p| {
                    done.store(p.done, Ordering::Relaxed);
                    total.store(p.total, Ordering::Relaxed);
                })
            });
            while !checks.is_finished() {
                let (d, n) = (done.load(Ordering::Relaxed), total.load(Ordering::Relaxed));
                self.progress.update(d, n, "checks");
                std::thread::sleep(Duration::from_millis(100));
            }
            checks.join()
        });
        let Ok(report) = report else {
            self.progress.end();
            self.mismatches
                .push("audit: the checks stopped unexpectedly".into());
            return Ok(());
        };
        self.progress.end();
        let passed: Vec<String> = report
            .checks
            .iter()
            .filter(|c| c.passed && c.name != "reexecute")
            .map(|c| format!("{} ({})", c.name, c.checked))
            .collect();
        say!(
            self.out,
            "[9/9] auditor: {} in {} with public material only: {}",
            if report.passed {
                "every claim checked"
            } else {
                "claims checked, some FAILED"
            },
            secs(t),
            passed.join(", ")
        );
        for check in report.checks.iter().filter(|c| !c.passed) {
            for failure in &check.failures {
                self.mismatches
                    .push(format!("audit {}: {failure}", check.name));
            }
        }
        Ok(())
    }
}
