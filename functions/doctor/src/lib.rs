//! eks-lb-doctor: diagnoses unhealthy ALB / NLB targets in front of Amazon EKS workloads.
//!
//! Stages (DESIGN.md): a [`snapshot::Snapshot`] is gathered (here: loaded from a dump by
//! [`dump::load`]); [`resolve::resolve`] finds the Kubernetes backend; every check in
//! [`checks::registry`] runs on it; [`causality::rank`] explains findings per target and
//! puts the root cause first; the
//! [`report::Report`] renders as JSON or text. Analysis is pure: no I/O after gathering.

pub mod arn;
pub mod aws;
pub mod causality;
pub mod checks;
pub mod collect;
pub mod controller;
pub mod dataplane;
pub mod dump;
pub mod error;
pub mod finding;
pub mod fix;
pub mod gather;
pub mod kubernetes;
pub mod network_path;
pub mod notify;
pub mod report;
pub mod resolve;
pub mod snapshot;
pub mod target_state;
pub mod trigger;

use std::panic::{catch_unwind, AssertUnwindSafe};

pub use error::{Error, Result};
pub use report::Report;
pub use snapshot::Snapshot;

use checks::{registry, CheckContext};
use report::InconclusiveCheck;

/// Runs every check on the snapshot and returns the ranked report. Never fails: what a
/// check cannot decide is reported as inconclusive, and a check that panics (a bug) is
/// reported as inconclusive too rather than losing the rest of the diagnosis.
pub fn diagnose(snapshot: &Snapshot) -> Report {
    let resolution = resolve::resolve(snapshot);
    let cx = CheckContext::new(snapshot, &resolution);
    let mut findings = Vec::new();
    let mut inconclusive = Vec::new();
    for check in registry() {
        let id = check.meta().id;
        match catch_unwind(AssertUnwindSafe(|| check.run(&cx))) {
            Ok(Ok(found)) => {
                tracing::debug!(check = id, findings = found.len(), "check decided");
                findings.extend(found);
            }
            Ok(Err(why)) => {
                tracing::debug!(check = id, reason = %why, "check inconclusive");
                inconclusive.push(InconclusiveCheck {
                    check: id,
                    reason: why.0,
                });
            }
            Err(_) => {
                tracing::error!(check = id, "check panicked");
                inconclusive.push(InconclusiveCheck {
                    check: id,
                    reason: "internal error in the check (please report it)".into(),
                });
            }
        }
    }
    let failing: Vec<causality::FailingTarget> = cx
        .failing_targets()
        .unwrap_or_default()
        .iter()
        .map(|t| causality::FailingTarget {
            id: t.id().to_string(),
            state: t.state().to_string(),
            reason: t.reason().map(str::to_string),
        })
        .collect();
    let ranked = causality::rank(findings, &failing);
    tracing::info!(
        root_cause = ranked.findings.first().map(|f| f.check),
        roots = ranked.roots.len(),
        unexplained = ranked.unexplained.len(),
        findings = ranked.findings.len(),
        inconclusive = inconclusive.len(),
        "diagnosis complete"
    );
    Report::build(snapshot, &resolution, ranked, inconclusive)
}
