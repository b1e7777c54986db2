//! Test fixtures: the scenario dumps under `tests/scenarios/` loaded as Snapshots, and
//! helpers to run one check on them.

use std::path::PathBuf;

use super::{Check, CheckContext, Inconclusive};
use crate::finding::Finding;
use crate::resolve::resolve;
use crate::snapshot::Snapshot;

pub fn scenarios_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/scenarios")
}

pub fn scenario(name: &str) -> Snapshot {
    let dir = scenarios_dir().join(name);
    crate::dump::load(&dir).unwrap_or_else(|e| panic!("scenario {name}: {e}"))
}

pub fn run(check: &dyn Check, snapshot: &Snapshot) -> Result<Vec<Finding>, Inconclusive> {
    let resolution = resolve(snapshot);
    check.run(&CheckContext::new(snapshot, &resolution))
}

/// Runs the check and asserts it reported at least one finding, all with its own ID.
pub fn fires(check: &dyn Check, snapshot: &Snapshot) -> Vec<Finding> {
    let findings = run(check, snapshot).unwrap_or_else(|e| panic!("{} inconclusive: {e}", check.meta().id));
    assert!(!findings.is_empty(), "{} did not fire", check.meta().id);
    assert!(findings.iter().all(|f| f.check == check.meta().id));
    findings
}

/// Runs the check and asserts it decided and found nothing.
pub fn quiet(check: &dyn Check, snapshot: &Snapshot) {
    match run(check, snapshot) {
        Ok(findings) => assert!(findings.is_empty(), "{} fired: {findings:#?}", check.meta().id),
        Err(e) => panic!("{} inconclusive where it should decide: {e}", check.meta().id),
    }
}

/// The first pod of the namespace, mutable, for tests that break one thing.
pub fn pods_mut(snapshot: &mut Snapshot) -> &mut Vec<k8s_openapi::api::core::v1::Pod> {
    match &mut snapshot.kube.pods {
        crate::snapshot::Collected::Present(p) => p,
        _ => panic!("pods not collected"),
    }
}

pub fn services_mut(snapshot: &mut Snapshot) -> &mut Vec<k8s_openapi::api::core::v1::Service> {
    match &mut snapshot.kube.services {
        crate::snapshot::Collected::Present(s) => s,
        _ => panic!("services not collected"),
    }
}
