//! Causality: which finding explains which, for which targets, and the order of the report.
//!
//! Every finding names the registered targets it concerns (`Finding::targets`). A few are
//! *group-level* (`Finding::group_level`: the target group as a whole, such as the controller
//! that keeps its registrations); a finding with no targets that is not group-level concerns
//! no target (a side warning: one crash-looping replica of three behind instance targets).
//! The rule:
//!
//! 1. **Explanation, per target.** A finding F explains a finding G *at target t* when F's
//!    check is listed as an explanation of G's check ([`EXPLAINED_BY`]), F is critical or
//!    warning, and F concerns t (t is one of F's targets) or F is group-level. A G with no
//!    targets is explained by any listed critical or warning F that is group-level or has
//!    no targets either. Informational findings explain nothing.
//! 2. **`explainedBy`.** G is placed under the explainer that explains it at the most of its
//!    targets (the deepest in [`DEPTH`] on a tie), and only when every one of G's targets is
//!    explained by something. A symptom on targets no cause covers stays a root itself.
//! 3. **Roots per failing target.** For each failing target (unhealthy, not failing by
//!    design) the explanation chain of every finding that concerns it is followed upwards;
//!    the findings at the top are that target's roots. A symptom ([`SYMPTOMS`]) is a root of
//!    a target only when no cause is. A target whose only roots are symptoms, or that no
//!    finding concerns, is *unexplained*.
//! 4. **Order.** Root findings are ordered by how many failing targets they cover (most
//!    first; on a tie a cause before an unexplained symptom), then severity, then how many
//!    targets they concern, then [`DEPTH`]; each is
//!    followed by the findings it explains (informational findings come last). The first root is the root cause when it is a fault; a side
//!    warning that covers no failing target therefore never ranks above a cause that does.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::finding::{Finding, Severity};

/// Check IDs from the deepest cause to the most superficial symptom.
pub const DEPTH: &[&str] = &[
    "target-instance-not-running",
    "target-in-disabled-az",
    "load-balancer-internal-error",
    "target-ip-family-mismatch",
    "fargate-instance-target",
    "service-handled-by-legacy-provider",
    "cluster-security-group-tag-ambiguous",
    "lb-controller-errors",
    "target-registration-drift",
    "route-table-missing-local-route",
    "network-acl-blocks-traffic",
    "security-group-blocks-health-check",
    "network-policy-blocks-load-balancer",
    "node-security-groups-mismatch",
    "kube-proxy-replacement-nodeport-broken",
    "kube-proxy-unhealthy",
    "ingress-annotation-invalid",
    "service-annotation-invalid",
    "selector-matches-no-pods",
    "target-port-mismatch",
    "pod-not-ready",
    "app-listens-on-loopback",
    "external-traffic-policy-local",
    "endpoints-missing",
    "health-check-protocol-version-mismatch",
    "readiness-gate-not-injected",
    "health-check-response-mismatch",
    "nlb-hairpin-client-ip-preservation",
    "health-check-unreachable",
];

/// Checks that report the failure itself rather than a reason for it: a root only where
/// nothing else explains the target.
pub const SYMPTOMS: &[&str] = &["health-check-unreachable"];

/// For each check, the checks whose findings explain it. Every explainer is deeper in
/// [`DEPTH`] than what it explains, so explanation never cycles.
pub const EXPLAINED_BY: &[(&str, &[&str])] = &[
    ("pod-not-ready", &["target-instance-not-running"]),
    ("kube-proxy-unhealthy", &["target-instance-not-running"]),
    ("lb-controller-errors", &["cluster-security-group-tag-ambiguous"]),
    (
        "target-registration-drift",
        &[
            "target-ip-family-mismatch",
            "fargate-instance-target",
            "lb-controller-errors",
        ],
    ),
    (
        "security-group-blocks-health-check",
        &["cluster-security-group-tag-ambiguous", "lb-controller-errors"],
    ),
    ("service-annotation-invalid", &["service-handled-by-legacy-provider"]),
    (
        "external-traffic-policy-local",
        &["fargate-instance-target", "selector-matches-no-pods", "pod-not-ready"],
    ),
    ("endpoints-missing", &["selector-matches-no-pods", "pod-not-ready"]),
    (
        "health-check-response-mismatch",
        &[
            "ingress-annotation-invalid",
            "service-annotation-invalid",
            "pod-not-ready",
            "health-check-protocol-version-mismatch",
        ],
    ),
    (
        "health-check-unreachable",
        &[
            "target-instance-not-running",
            "target-ip-family-mismatch",
            "fargate-instance-target",
            "cluster-security-group-tag-ambiguous",
            "network-policy-blocks-load-balancer",
            "kube-proxy-replacement-nodeport-broken",
            "app-listens-on-loopback",
            "health-check-protocol-version-mismatch",
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

/// What the tool cannot see from the APIs it reads: named when targets stay unexplained.
pub const NOT_CHECKED: &[&str] = &[
    "an application bound to 127.0.0.1 that its arguments, environment or the replay do not reveal",
    "a host firewall or security agent on the node (iptables / nftables rules outside kube-proxy's)",
    "the application's own behaviour under the health check (slow responses, connection limits)",
];

pub fn depth(check: &str) -> usize {
    DEPTH.iter().position(|c| *c == check).unwrap_or(DEPTH.len())
}

fn explainers(check: &str) -> &'static [&'static str] {
    EXPLAINED_BY.iter().find(|(c, _)| *c == check).map_or(&[], |(_, e)| e)
}

fn is_symptom(check: &str) -> bool {
    SYMPTOMS.contains(&check)
}

/// One root of the report: a finding that nothing explains, and the failing targets it
/// accounts for.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RootCause {
    pub check: &'static str,
    pub severity: Severity,
    pub resource: String,
    /// The failing targets this root accounts for (empty for a fault that touches none).
    pub failing_targets: Vec<String>,
    /// A symptom standing in for a cause nothing found (see `unexplained`).
    pub unexplained: bool,
}

/// A failing target no cause accounts for.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UnexplainedTarget {
    pub id: String,
    pub state: String,
    pub reason: Option<String>,
}

/// The outcome of causality: findings in report order with `explained_by` set, the roots,
/// and the failing targets left unexplained.
#[derive(Debug, Clone, Default)]
pub struct Causality {
    pub findings: Vec<Finding>,
    pub roots: Vec<RootCause>,
    pub unexplained: Vec<UnexplainedTarget>,
}

/// A failing target as causality needs it.
#[derive(Debug, Clone)]
pub struct FailingTarget {
    pub id: String,
    pub state: String,
    pub reason: Option<String>,
}

/// Whether `f` explains `g` at target `t` (rule 1).
fn explains_at(f: &Finding, g: &Finding, t: &str) -> bool {
    may_explain(f, g) && (f.group_level || f.targets.iter().any(|x| x == t))
}

/// F's check is listed for G's, F is a fault, and F does not narrow its claim elsewhere.
fn may_explain(f: &Finding, g: &Finding) -> bool {
    f.severity != Severity::Info
        && explainers(g.check).contains(&f.check)
        && (f.explains.is_empty() || f.explains.contains(&g.check))
}

/// The deepest finding explaining `g` at `t`, by index.
fn explainer_at(findings: &[Finding], g: usize, t: &str) -> Option<usize> {
    (0..findings.len())
        .filter(|&f| f != g && explains_at(&findings[f], &findings[g], t))
        .min_by_key(|&f| (depth(findings[f].check), f))
}

/// Applies the rule (see the module docs) to the checks' findings.
pub fn rank(mut findings: Vec<Finding>, failing: &[FailingTarget]) -> Causality {
    for f in &mut findings {
        f.targets.sort();
        f.targets.dedup();
    }
    // Stable base order: severity, depth, resource, message.
    findings.sort_by(|a, b| {
        (a.severity, depth(a.check), &a.resource, &a.message).cmp(&(
            b.severity,
            depth(b.check),
            &b.resource,
            &b.message,
        ))
    });
    let n = findings.len();

    // Rule 2: explainedBy.
    let mut parent: Vec<Option<usize>> = vec![None; n];
    for g in 0..n {
        if findings[g].targets.is_empty() {
            parent[g] = (0..n)
                .filter(|&f| {
                    f != g
                        && (findings[f].group_level || findings[f].targets.is_empty())
                        && may_explain(&findings[f], &findings[g])
                })
                .min_by_key(|&f| (depth(findings[f].check), f));
            continue;
        }
        let per_target: Vec<Option<usize>> = findings[g]
            .targets
            .iter()
            .map(|t| explainer_at(&findings, g, t))
            .collect();
        if per_target.iter().all(Option::is_some) {
            let mut counts: BTreeMap<usize, usize> = BTreeMap::new();
            for f in per_target.into_iter().flatten() {
                *counts.entry(f).or_default() += 1;
            }
            parent[g] = counts
                .into_iter()
                .max_by_key(|&(f, c)| (c, std::cmp::Reverse((depth(findings[f].check), f))))
                .map(|(f, _)| f);
        }
    }
    for g in 0..n {
        findings[g].explained_by = parent[g].map(|p| findings[p].check);
    }

    // Rule 3: roots per failing target.
    let mut covers: BTreeMap<usize, BTreeSet<String>> = BTreeMap::new();
    let mut unexplained = Vec::new();
    for t in failing {
        let mut roots: BTreeSet<usize> = BTreeSet::new();
        for g in 0..n {
            if findings[g].severity == Severity::Info || !findings[g].targets.contains(&t.id) {
                continue;
            }
            // Follow the per-target explanation upwards (bounded: explanation is acyclic).
            let mut top = g;
            for _ in 0..=n {
                match explainer_at(&findings, top, &t.id) {
                    Some(up) => top = up,
                    None => break,
                }
            }
            roots.insert(top);
        }
        if roots.iter().any(|&r| !is_symptom(findings[r].check)) {
            roots.retain(|&r| !is_symptom(findings[r].check));
        } else {
            unexplained.push(UnexplainedTarget {
                id: t.id.clone(),
                state: t.state.clone(),
                reason: t.reason.clone(),
            });
        }
        for r in roots {
            covers.entry(r).or_default().insert(t.id.clone());
        }
    }

    // Rule 4: order.
    let root_indices: Vec<usize> = (0..n).filter(|&i| parent[i].is_none()).collect();
    let mut ordered_roots = root_indices.clone();
    ordered_roots.sort_by_key(|&i| {
        let covered = covers.get(&i).map_or(0, BTreeSet::len);
        (
            findings[i].severity == Severity::Info,
            std::cmp::Reverse(covered),
            is_symptom(findings[i].check),
            findings[i].severity,
            std::cmp::Reverse(findings[i].targets.len()),
            depth(findings[i].check),
            i,
        )
    });
    let mut order = Vec::with_capacity(n);
    let mut placed = vec![false; n];
    fn place(i: usize, parent: &[Option<usize>], placed: &mut [bool], out: &mut Vec<usize>) {
        if placed[i] {
            return;
        }
        placed[i] = true;
        out.push(i);
        for j in 0..parent.len() {
            if parent[j] == Some(i) {
                place(j, parent, placed, out);
            }
        }
    }
    for &i in &ordered_roots {
        place(i, &parent, &mut placed, &mut order);
    }
    // Only reachable if explanation formed a cycle: keep the base order.
    order.extend((0..n).filter(|&i| !placed[i]));

    let roots = ordered_roots
        .iter()
        .filter(|&&i| findings[i].severity != Severity::Info)
        .map(|&i| RootCause {
            check: findings[i].check,
            severity: findings[i].severity,
            resource: findings[i].resource.clone(),
            failing_targets: covers.get(&i).map(|s| s.iter().cloned().collect()).unwrap_or_default(),
            unexplained: is_symptom(findings[i].check),
        })
        .collect();
    let mut slots: Vec<Option<Finding>> = findings.into_iter().map(Some).collect();
    Causality {
        findings: order.into_iter().filter_map(|i| slots[i].take()).collect(),
        roots,
        unexplained,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::registry;

    fn f(check: &'static str, severity: Severity, targets: &[&str]) -> Finding {
        Finding::new(check, severity, "r", "m").with_targets(targets.iter().map(|t| t.to_string()))
    }

    fn failing(ids: &[&str]) -> Vec<FailingTarget> {
        ids.iter()
            .map(|id| FailingTarget {
                id: id.to_string(),
                state: "unhealthy".into(),
                reason: Some("Target.Timeout".into()),
            })
            .collect()
    }

    fn order(c: &Causality) -> Vec<(&'static str, Option<&'static str>)> {
        c.findings.iter().map(|f| (f.check, f.explained_by)).collect()
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
    fn symptoms_rank_under_their_cause_for_the_targets_both_concern() {
        let c = rank(
            vec![
                f("health-check-unreachable", Severity::Critical, &["a", "b"]),
                f("endpoints-missing", Severity::Critical, &["a", "b"]),
                f("selector-matches-no-pods", Severity::Critical, &["a", "b"]),
                f("target-in-disabled-az", Severity::Warning, &["c"]),
            ],
            &failing(&["a", "b"]),
        );
        assert_eq!(
            order(&c),
            vec![
                ("selector-matches-no-pods", None),
                ("endpoints-missing", Some("selector-matches-no-pods")),
                ("health-check-unreachable", Some("selector-matches-no-pods")),
                ("target-in-disabled-az", None),
            ]
        );
        assert_eq!(c.roots[0].failing_targets, vec!["a", "b"]);
        assert!(c.roots[1].failing_targets.is_empty());
        assert!(c.unexplained.is_empty());
    }

    #[test]
    fn a_warning_on_other_targets_explains_nothing() {
        // One crash-looping replica's target (c) is not among the failing ones.
        let c = rank(
            vec![
                f("pod-not-ready", Severity::Warning, &["c"]),
                f("health-check-unreachable", Severity::Critical, &["a", "b"]),
            ],
            &failing(&["a", "b"]),
        );
        assert_eq!(
            order(&c),
            vec![("health-check-unreachable", None), ("pod-not-ready", None)]
        );
        assert_eq!(c.roots[0].check, "health-check-unreachable");
        assert!(c.roots[0].unexplained);
        assert_eq!(
            c.unexplained.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
    }

    #[test]
    fn two_causes_on_different_targets_are_two_roots_most_covering_first() {
        let c = rank(
            vec![
                f("health-check-unreachable", Severity::Critical, &["a", "b", "c"]),
                f("pod-not-ready", Severity::Warning, &["c"]),
                f("security-group-blocks-health-check", Severity::Critical, &["a", "b"]),
            ],
            &failing(&["a", "b", "c"]),
        );
        assert_eq!(c.roots[0].check, "security-group-blocks-health-check");
        assert_eq!(c.roots[0].failing_targets, vec!["a", "b"]);
        assert_eq!(c.roots[1].check, "pod-not-ready");
        assert_eq!(c.roots[1].failing_targets, vec!["c"]);
        // Jointly explained: the symptom sits under the cause covering most of it.
        assert_eq!(
            c.findings
                .iter()
                .find(|f| f.check == "health-check-unreachable")
                .unwrap()
                .explained_by,
            Some("security-group-blocks-health-check")
        );
        assert!(c.unexplained.is_empty());
    }

    #[test]
    fn a_partly_explained_symptom_stays_a_root_for_the_rest() {
        let c = rank(
            vec![
                f("health-check-unreachable", Severity::Critical, &["a", "b", "c"]),
                f("security-group-blocks-health-check", Severity::Critical, &["a"]),
            ],
            &failing(&["a", "b", "c"]),
        );
        assert_eq!(c.roots[0].check, "health-check-unreachable");
        assert_eq!(c.roots[0].failing_targets, vec!["b", "c"]);
        assert_eq!(c.roots[1].failing_targets, vec!["a"]);
        assert_eq!(c.unexplained.len(), 2);
    }

    #[test]
    fn a_group_level_cause_explains_through_its_consequences() {
        let c = rank(
            vec![
                f("health-check-unreachable", Severity::Critical, &["a", "b"]),
                f("target-registration-drift", Severity::Critical, &["a"]),
                f("lb-controller-errors", Severity::Critical, &[]).group_level(),
            ],
            &failing(&["a", "b"]),
        );
        // The controller covers a through the stale registration, not b.
        let controller = c.roots.iter().find(|r| r.check == "lb-controller-errors").unwrap();
        assert_eq!(controller.failing_targets, vec!["a"]);
        assert_eq!(c.roots[0].check, "lb-controller-errors");
        assert_eq!(c.unexplained.len(), 1);
        assert_eq!(
            c.findings
                .iter()
                .find(|f| f.check == "target-registration-drift")
                .unwrap()
                .explained_by,
            Some("lb-controller-errors")
        );
    }

    #[test]
    fn a_finding_with_no_targets_is_a_side_warning_not_a_group_level_cause() {
        let c = rank(
            vec![
                f("pod-not-ready", Severity::Warning, &[]),
                f("health-check-unreachable", Severity::Critical, &["a", "b"]),
            ],
            &failing(&["a", "b"]),
        );
        assert_eq!(c.findings[0].check, "health-check-unreachable");
        assert_eq!(c.findings[0].explained_by, None);
        assert_eq!(c.unexplained.len(), 2);
    }

    #[test]
    fn a_narrowed_claim_explains_only_what_it_names() {
        let controller = f("lb-controller-errors", Severity::Critical, &[])
            .group_level()
            .explaining(&["security-group-blocks-health-check"]);
        let c = rank(
            vec![
                controller,
                f("target-registration-drift", Severity::Warning, &["a"]),
                f("security-group-blocks-health-check", Severity::Critical, &["b"]),
            ],
            &failing(&["a", "b"]),
        );
        let by = |check: &str| c.findings.iter().find(|f| f.check == check).unwrap().explained_by;
        assert_eq!(by("security-group-blocks-health-check"), Some("lb-controller-errors"));
        assert_eq!(by("target-registration-drift"), None);
    }

    #[test]
    fn info_findings_explain_nothing_and_are_no_root_cause() {
        let c = rank(
            vec![
                f("external-traffic-policy-local", Severity::Info, &["a"]),
                f("health-check-unreachable", Severity::Critical, &["a"]),
            ],
            &failing(&["a"]),
        );
        assert_eq!(c.findings[0].check, "health-check-unreachable");
        assert_eq!(c.findings[0].explained_by, None);
        assert!(c.roots.iter().all(|r| r.severity != Severity::Info));
    }

    #[test]
    fn without_failing_targets_severity_and_depth_order() {
        let c = rank(
            vec![
                f("pod-not-ready", Severity::Warning, &[]),
                f("target-in-disabled-az", Severity::Warning, &["c"]),
                f("kube-proxy-unhealthy", Severity::Critical, &[]),
            ],
            &[],
        );
        assert_eq!(
            c.findings.iter().map(|f| f.check).collect::<Vec<_>>(),
            ["kube-proxy-unhealthy", "target-in-disabled-az", "pod-not-ready"]
        );
    }
}
