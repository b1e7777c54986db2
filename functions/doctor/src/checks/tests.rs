//! Registry-wide tests: IDs unique and exactly the public catalogue, one documented file per
//! check, fix IDs from the safe-fix catalogue.

use std::collections::BTreeSet;
use std::path::PathBuf;

use super::{registry, FixSafety};

/// The catalogue of DESIGN.md: a public contract, never renamed.
const CATALOGUE: &[&str] = &[
    "pod-not-ready",
    "selector-matches-no-pods",
    "endpoints-missing",
    "external-traffic-policy-local",
    "node-security-groups-mismatch",
    "target-port-mismatch",
    "lb-controller-errors",
    "ingress-annotation-invalid",
    "service-annotation-invalid",
    "health-check-response-mismatch",
    "health-check-unreachable",
    "security-group-blocks-health-check",
    "network-acl-blocks-traffic",
    "route-table-missing-local-route",
    "kube-proxy-unhealthy",
    "target-registration-drift",
    "target-in-disabled-az",
    "target-instance-not-running",
    "load-balancer-internal-error",
    "network-policy-blocks-load-balancer",
    "app-listens-on-loopback",
    "target-ip-family-mismatch",
    "health-check-protocol-version-mismatch",
    "kube-proxy-replacement-nodeport-broken",
    "cluster-security-group-tag-ambiguous",
    "fargate-instance-target",
    "service-handled-by-legacy-provider",
    "readiness-gate-not-injected",
    "nlb-hairpin-client-ip-preservation",
];

/// The safe-fix catalogue of DESIGN.md: (fix ID, the check it answers, may run unattended).
const FIXES: &[(&str, &str, bool)] = &[
    (
        "set-external-traffic-policy-cluster",
        "external-traffic-policy-local",
        true,
    ),
    ("set-target-port", "target-port-mismatch", true),
    ("restart-kube-proxy", "kube-proxy-unhealthy", true),
    ("set-alb-health-check", "health-check-response-mismatch", false),
    (
        "authorize-health-check-ingress",
        "security-group-blocks-health-check",
        false,
    ),
];

#[test]
fn ids_are_unique_and_exactly_the_catalogue() {
    let ids: Vec<&str> = registry().iter().map(|c| c.meta().id).collect();
    let unique: BTreeSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "duplicate check IDs: {ids:?}");
    assert_eq!(ids, CATALOGUE);
}

#[test]
fn ids_are_kebab_case() {
    for c in registry() {
        let id = c.meta().id;
        assert!(
            id.bytes().all(|b| b.is_ascii_lowercase() || b == b'-') && !id.starts_with('-') && !id.ends_with('-'),
            "{id}"
        );
        assert!(!c.meta().title.is_empty() && !c.meta().runbook_step.is_empty(), "{id}");
    }
}

#[test]
fn fix_ids_come_from_the_safe_catalogue() {
    for (fix, answers, unattended) in FIXES {
        let check = super::find(answers).unwrap_or_else(|| panic!("{answers} not registered"));
        let expected = if *unattended {
            FixSafety::Unattended(fix)
        } else {
            FixSafety::ApprovalOnly(fix)
        };
        assert_eq!(check.meta().fix, expected, "{answers}");
    }
    for c in registry() {
        if let Some(id) = c.meta().fix.fix_id() {
            assert!(
                FIXES.iter().any(|(f, a, _)| *f == id && *a == c.meta().id),
                "{} claims unknown fix {id}",
                c.meta().id
            );
        }
    }
}

#[test]
fn every_check_has_its_own_documented_file() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/checks");
    for c in registry() {
        let id = c.meta().id;
        let path = dir.join(format!("{}.rs", id.replace('-', "_")));
        let source = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{id}: {}: {e}", path.display()));
        let doc: String = source
            .lines()
            .take_while(|l| l.starts_with("//!"))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(
            doc.starts_with(&format!("//! `{id}`:")),
            "{id}: doc must open with the ID"
        );
        for section in [
            "# What it checks",
            "# Why it matters",
            "# Example",
            "# Fix safety",
            "# References",
        ] {
            assert!(
                doc.contains(&format!("//! {section}")),
                "{id}: missing doc section {section:?}"
            );
        }
        assert!(doc.contains("<https://"), "{id}: references need a link");
        assert!(
            source.contains(&format!("id: \"{id}\"")),
            "{id}: the file must define the check"
        );
        assert!(
            source.contains("#[cfg(test)]") && source.contains("fn quiet_"),
            "{id}: needs a quiet test"
        );
        assert!(source.contains("fires("), "{id}: needs a firing test");
    }
}
