//! Runs every check over [`Evidence`] and gathers the [`Report`].

use crate::checks::{
    check_chains, check_cohorts, check_manifests, check_privacy, check_proofs, check_receipts,
    check_reexecution, check_rollups, check_storage,
};
use crate::context::Bundles;
use crate::evidence::Evidence;
use crate::report::{Options, Progress, Report};

/// Runs every check over `evidence`.
pub fn verify(
    evidence: &Evidence,
    options: &Options,
    progress: &(dyn Fn(Progress<'_>) + Sync),
) -> Report {
    let bundles = Bundles::decode(evidence);
    let (receipts, verified) = check_receipts(evidence, &bundles);
    let checks = vec![
        check_chains(evidence),
        check_proofs(evidence, &bundles, progress),
        receipts,
        check_reexecution(&bundles, &verified, options, progress),
        check_storage(evidence, progress),
        check_rollups(evidence),
        check_manifests(evidence, &bundles),
        check_cohorts(evidence),
        check_privacy(evidence),
    ];
    let first_failure = checks.iter().find_map(|c| c.failures.first().cloned());
    Report {
        source: evidence.source.clone(),
        passed: checks.iter().all(|c| c.passed),
        first_failure,
        checks,
    }
}
