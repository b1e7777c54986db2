//! Ranking: the most likely root cause first.
//!
//! The rule, in three steps:
//! 1. **Explanation.** A finding is *explained by* another when the other's check is listed
//!    in [`EXPLAINED_BY`] for it and the other fired with severity critical or warning: no
//!    endpoints is explained by a selector matching nothing or by pods not ready; a failing
//!    health check by any of the configuration, network, node or controller causes; and so on.
//!    The deepest present explainer (first in [`DEPTH`]) is recorded in `explainedBy`.
//! 2. **Roots.** Findings nothing explains are ordered by severity (critical, warning,
//!    info), then by [`DEPTH`] (causes that break every target and sit lower in the stack
//!    first: instance, zone, controller, routing, ACLs, security groups, kube-proxy,
//!    annotations, selector, ports, pods, traffic policy; symptoms last), then by resource.
//! 3. **Tree.** Each root is followed by the findings it explains, recursively, in the same
//!    order. The first finding is the root cause.

use crate::finding::{Finding, Severity};

/// Check IDs from the deepest cause to the most superficial symptom.
pub const DEPTH: &[&str] = &[
    "target-instance-not-running",
    "target-in-disabled-az",
    "lb-controller-errors",
    "target-registration-drift",
    "route-table-missing-local-route",
    "network-acl-blocks-traffic",
    "security-group-blocks-health-check",
    "node-security-groups-mismatch",
    "kube-proxy-unhealthy",
    "ingress-annotation-invalid",
    "service-annotation-invalid",
    "selector-matches-no-pods",
    "target-port-mismatch",
    "pod-not-ready",
    "external-traffic-policy-local",
    "endpoints-missing",
    "health-check-response-mismatch",
    "health-check-unreachable",
];

/// For each check, the checks whose findings explain it. Every explainer is deeper in
/// [`DEPTH`] than what it explains, so explanation never cycles.
pub const EXPLAINED_BY: &[(&str, &[&str])] = &[
    ("pod-not-ready", &["target-instance-not-running"]),
    ("kube-proxy-unhealthy", &["target-instance-not-running"]),
    ("target-registration-drift", &["lb-controller-errors"]),
    (
        "external-traffic-policy-local",
        &["selector-matches-no-pods", "pod-not-ready"],
    ),
    ("endpoints-missing", &["selector-matches-no-pods", "pod-not-ready"]),
    (
        "health-check-response-mismatch",
        &[
            "ingress-annotation-invalid",
            "service-annotation-invalid",
            "pod-not-ready",
        ],
    ),
    (
        "health-check-unreachable",
        &[
            "target-instance-not-running",
            "lb-controller-errors",
            "target-registration-drift",
            "route-table-missing-local-route",
            "network-acl-blocks-traffic",
            "security-group-blocks-health-check",
            "node-security-groups-mismatch",
            "kube-proxy-unhealthy",
            "ingress-annotation-invalid",
            "service-annotation-invalid",
            "selector-matches-no-pods",
            "target-port-mismatch",
            "pod-not-ready",
            "external-traffic-policy-local",
            "endpoints-missing",
        ],
    ),
];

pub fn depth(check: &str) -> usize {
    DEPTH.iter().position(|c| *c == check).unwrap_or(DEPTH.len())
}

fn explainers(check: &str) -> &'static [&'static str] {
    EXPLAINED_BY.iter().find(|(c, _)| *c == check).map_or(&[], |(_, e)| e)
}

/// Orders findings root cause first and fills in `explained_by`.
pub fn rank(mut findings: Vec<Finding>) -> Vec<Finding> {
    let present: Vec<(&'static str, Severity)> = findings.iter().map(|f| (f.check, f.severity)).collect();
    for f in &mut findings {
        f.explained_by = explainers(f.check)
            .iter()
            .copied()
            .filter(|e| present.iter().any(|(c, s)| c == e && *s != Severity::Info))
            .min_by_key(|e| depth(e));
    }
    let key = |f: &Finding| (f.severity, depth(f.check), f.resource.clone(), f.message.clone());
    findings.sort_by_key(key);
    let mut ordered = Vec::with_capacity(findings.len());
    let mut placed = vec![false; findings.len()];
    fn place(i: usize, findings: &[Finding], placed: &mut [bool], out: &mut Vec<usize>) {
        if placed[i] {
            return;
        }
        placed[i] = true;
        out.push(i);
        let check = findings[i].check;
        for j in 0..findings.len() {
            if !placed[j] && findings[j].explained_by == Some(check) {
                place(j, findings, placed, out);
            }
        }
    }
    let roots: Vec<usize> = (0..findings.len())
        .filter(|&i| findings[i].explained_by.is_none())
        .collect();
    for i in roots {
        place(i, &findings, &mut placed, &mut ordered);
    }
    // Anything left (only possible if explanation formed a cycle) keeps its sorted place.
    let rest: Vec<usize> = (0..findings.len()).filter(|&i| !placed[i]).collect();
    ordered.extend(rest);
    let mut slots: Vec<Option<Finding>> = findings.into_iter().map(Some).collect();
    ordered.into_iter().filter_map(|i| slots[i].take()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::registry;

    fn f(check: &'static str, severity: Severity) -> Finding {
        Finding::new(check, severity, "r", "m")
    }

    #[test]
    fn depth_lists_every_registered_check_once() {
        let mut ids: Vec<&str> = registry().iter().map(|c| c.meta().id).collect();
        let mut depth_ids = DEPTH.to_vec();
        ids.sort();
        depth_ids.sort();
        assert_eq!(ids, depth_ids);
    }

    #[test]
    fn explainers_are_deeper_than_what_they_explain() {
        for (check, explainers) in EXPLAINED_BY {
            assert!(registry().iter().any(|c| c.meta().id == *check), "{check}");
            for e in *explainers {
                assert!(depth(e) < depth(check), "{e} must be deeper than {check}");
            }
        }
    }

    #[test]
    fn symptoms_rank_under_their_cause() {
        let ranked = rank(vec![
            f("health-check-unreachable", Severity::Critical),
            f("endpoints-missing", Severity::Critical),
            f("selector-matches-no-pods", Severity::Critical),
            f("target-in-disabled-az", Severity::Warning),
        ]);
        let order: Vec<_> = ranked.iter().map(|f| (f.check, f.explained_by)).collect();
        assert_eq!(
            order,
            vec![
                ("selector-matches-no-pods", None),
                ("endpoints-missing", Some("selector-matches-no-pods")),
                ("health-check-unreachable", Some("selector-matches-no-pods")),
                ("target-in-disabled-az", None),
            ]
        );
    }

    #[test]
    fn info_findings_explain_nothing() {
        let ranked = rank(vec![
            f("external-traffic-policy-local", Severity::Info),
            f("health-check-unreachable", Severity::Critical),
        ]);
        assert_eq!(ranked[0].check, "health-check-unreachable");
        assert_eq!(ranked[0].explained_by, None);
    }
}
