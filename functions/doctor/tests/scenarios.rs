//! Every bundled scenario dump: the intended root cause ranks first, the healthy controls
//! yield no critical finding, and the JSON and text reports match their snapshots.

use std::fs;
use std::path::{Path, PathBuf};

use doctor::finding::Severity;
use serde_json::Value;

fn scenarios() -> Vec<(String, PathBuf)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/scenarios");
    let mut out: Vec<(String, PathBuf)> = fs::read_dir(&dir)
        .expect("tests/scenarios exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("expected.json").exists())
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), p))
        .collect();
    out.sort();
    assert!(out.len() >= 19, "expected every scenario, found {}", out.len());
    out
}

fn expected(path: &Path) -> Value {
    serde_json::from_str(&fs::read_to_string(path.join("expected.json")).unwrap()).unwrap()
}

#[test]
fn each_scenario_ranks_its_root_cause_first() {
    let mut failures = Vec::new();
    for (name, path) in scenarios() {
        let snapshot = doctor::dump::load(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        let report = doctor::diagnose(&snapshot);
        let want = expected(&path);
        let want_root = want["rootCause"].as_str();
        if report.root_cause != want_root {
            failures.push(format!(
                "{name}: root cause {:?}, expected {want_root:?}; findings: {:?}",
                report.root_cause,
                report
                    .findings
                    .iter()
                    .map(|f| (f.check, f.severity))
                    .collect::<Vec<_>>()
            ));
        }
        if want_root.is_none() && report.findings.iter().any(|f| f.severity != Severity::Info) {
            failures.push(format!(
                "{name}: a healthy variant produced a fault: {:?}",
                report
                    .findings
                    .iter()
                    .filter(|f| f.severity != Severity::Info)
                    .map(|f| (f.check, &f.message))
                    .collect::<Vec<_>>()
            ));
        }
        for check in want["inconclusive"].as_array().into_iter().flatten() {
            let check = check.as_str().unwrap_or_default();
            if !report.inconclusive.iter().any(|i| i.check == check) {
                failures.push(format!(
                    "{name}: {check} should be inconclusive; inconclusive: {:?}",
                    report.inconclusive
                ));
            }
        }
        if want["noFix"] == true
            && report
                .findings
                .iter()
                .any(|f| f.fix.as_ref().is_some_and(|x| x.fix_id.is_some()))
        {
            failures.push(format!("{name}: a catalogue fix was offered where none may be"));
        }
        if let Some(first) = want["firstFinding"].as_str() {
            if report.findings.first().map(|f| f.check) != Some(first) {
                failures.push(format!("{name}: first finding should be {first}"));
            }
        }
        // The root cause explains the rest of what fired for its sake.
        if let Some(root) = report.findings.first() {
            assert_eq!(root.explained_by, None, "{name}");
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_catalogue_check_fires_as_root_cause_of_some_scenario() {
    let roots: Vec<String> = scenarios()
        .iter()
        .filter_map(|(_, p)| expected(p)["rootCause"].as_str().map(str::to_string))
        .collect();
    for check in doctor::checks::registry() {
        assert!(
            roots.iter().any(|r| r == check.meta().id),
            "no scenario for {}",
            check.meta().id
        );
    }
}

#[test]
fn healthy_control_decides_every_check() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/scenarios/healthy");
    let report = doctor::diagnose(&doctor::dump::load(&path).unwrap());
    // The controller's errors about other namespaces are context: informational only.
    assert!(
        report.findings.iter().all(|f| f.severity == Severity::Info),
        "{:#?}",
        report.findings
    );
    assert_eq!(report.root_cause, None);
    assert!(report.unexplained.is_none());
    assert!(report.inconclusive.is_empty(), "{:#?}", report.inconclusive);
    assert!(!report.target_health.fail_open);
}

#[test]
fn every_check_stays_quiet_on_the_realistic_healthy_variants() {
    // Each healthy variant exercises shapes real clusters have (sidecars, undeclared and named
    // ports, readiness gates, evicted pods, draining targets, Fargate, controller noise):
    // no check may report a fault there.
    let healthy: Vec<_> = scenarios()
        .into_iter()
        .filter(|(_, p)| expected(p)["rootCause"].is_null())
        .collect();
    assert!(healthy.len() >= 7, "{}", healthy.len());
    for (name, path) in healthy {
        let report = doctor::diagnose(&doctor::dump::load(&path).unwrap());
        for f in &report.findings {
            assert_eq!(f.severity, Severity::Info, "{name}: {} fired: {}", f.check, f.message);
        }
        assert!(report.fixes.is_empty() && report.root_causes.is_empty(), "{name}");
    }
}

#[test]
fn fail_open_is_reported_when_every_target_is_unhealthy() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/scenarios/selector-matches-no-pods");
    let report = doctor::diagnose(&doctor::dump::load(&path).unwrap());
    assert!(report.target_health.fail_open);
    assert!(report.notes.iter().any(|n| n.contains("fails open")));
}

#[test]
fn reports_match_snapshots() {
    for (name, path) in scenarios() {
        let report = doctor::diagnose(&doctor::dump::load(&path).unwrap());
        insta::assert_snapshot!(format!("{name}.json"), report.to_json());
        insta::assert_snapshot!(format!("{name}.txt"), report.to_text());
    }
}
