//! `selector-matches-no-pods`: the Service selector matches no pod in its namespace.
//!
//! # What it checks
//! The Service's `spec.selector` against the labels of every pod in the namespace. When
//! nothing matches it looks for near misses: pods whose labels differ from the selector in
//! exactly one value (or lack exactly one key), and names the label to change. Terminal
//! pods (evicted, completed) are not counted. When a ReplicaSet's pod template carries the
//! selected labels the selector is right and stays quiet: the pods are missing for another
//! reason (quota, admission, a scale of 0), which `pod-not-ready` reports. The finding
//! concerns every target.
//!
//! # Why it matters
//! A selector that matches nothing leaves the Service with no endpoints (`Endpoints:
//! <none>`), so every target fails its health check. It is the most common cause of
//! a brand-new Ingress or Service never turning healthy, usually a typo or a renamed label.
//!
//! # Example
//! Bad: selector `app=alb-instance-1`, pods labelled `app=alb-instance`.
//! Good: selector `app=alb-instance` and the pods labelled `app=alb-instance`.
//!
//! # Fix safety
//! Manual. Which side is wrong (selector or labels) is a human decision; the report gives
//! the `kubectl patch` of the selector that the near miss suggests.
//!
//! # References
//! - <https://repost.aws/knowledge-center/eks-resolve-failed-health-check-alb-nlb> (selector vs pod labels)
//! - <https://kubernetes.io/docs/concepts/services-networking/service/#defining-a-service>

use std::collections::BTreeMap;

use serde_json::json;

use super::{labels_match, pod_name, shell_quote, Check, CheckContext, CheckMeta, FixSafety, Inconclusive};
use crate::finding::{k8s_resource, Finding, Severity};

pub struct SelectorMatchesNoPods;

static META: CheckMeta = CheckMeta {
    id: "selector-matches-no-pods",
    title: "Service selector matches no pod",
    runbook_step: "selector vs labels",
    fix: FixSafety::Manual,
};

/// A pod that would match if one label were different.
#[derive(Debug, PartialEq)]
struct NearMiss<'a> {
    pod: &'a str,
    key: &'a str,
    wanted: &'a str,
    actual: Option<&'a str>,
}

fn near_miss<'a>(
    pod: &'a str,
    selector: &'a BTreeMap<String, String>,
    labels: Option<&'a BTreeMap<String, String>>,
) -> Option<NearMiss<'a>> {
    let mut misses = selector
        .iter()
        .filter(|(k, v)| labels.and_then(|l| l.get(*k)) != Some(v));
    let (key, wanted) = misses.next()?;
    if misses.next().is_some() {
        return None;
    }
    Some(NearMiss {
        pod,
        key,
        wanted,
        actual: labels.and_then(|l| l.get(key)).map(String::as_str),
    })
}

impl Check for SelectorMatchesNoPods {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    fn run(&self, cx: &CheckContext<'_>) -> Result<Vec<Finding>, Inconclusive> {
        let backend = cx.backend()?;
        let Some(selector) = cx.selector()? else {
            return Ok(vec![]); // no selector: Endpoints are managed by hand (endpoints-missing covers it)
        };
        if !cx.selected_pods()?.is_empty() {
            return Ok(vec![]);
        }
        // A workload whose pod template the selector matches: the selector is right and the
        // pods are missing for another reason (pod-not-ready reads the ReplicaSet's events).
        let ns = &backend.namespace;
        if let Ok(sets) = cx.scoped("ReplicaSet", &cx.snapshot.kube.replica_sets, ns, &[]) {
            let matches_template = sets.iter().any(|rs| {
                rs.metadata.namespace.as_deref() == Some(ns.as_str())
                    && labels_match(
                        selector,
                        rs.spec
                            .as_ref()
                            .and_then(|s| s.template.as_ref())
                            .and_then(|t| t.metadata.as_ref())
                            .and_then(|m| m.labels.as_ref()),
                    )
            });
            if matches_template {
                return Ok(vec![]);
            }
        }
        let pods = cx.namespace_pods()?;
        let misses: Vec<NearMiss> = pods
            .iter()
            .filter(|p| crate::kubernetes::is_live(p))
            .filter_map(|p| near_miss(pod_name(p), selector, p.metadata.labels.as_ref()))
            .collect();
        let selector_text = selector
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut message = format!(
            "Service {ns}/{} selects {selector_text} but no pod in namespace {ns} has those labels",
            backend.service
        );
        let mut finding_fix = format!("kubectl -n {ns} get pods --show-labels");
        // One label, one value, shared by every near miss: that is the likely intended selector.
        let mut suggestions: Vec<(&str, &str)> = misses.iter().filter_map(|m| Some((m.key, m.actual?))).collect();
        suggestions.sort();
        suggestions.dedup();
        if let [(key, value)] = suggestions.as_slice() {
            let pods: Vec<&str> = misses.iter().map(|m| m.pod).collect();
            message.push_str(&format!(
                "; {} pod(s) are labelled {key}={value} instead ({})",
                pods.len(),
                pods.join(", ")
            ));
            let patch = json!({ "spec": { "selector": { *key: value } } }).to_string();
            finding_fix = format!(
                "kubectl -n {ns} patch service {} -p {}",
                shell_quote(&backend.service),
                shell_quote(&patch)
            );
        }
        let near: Vec<_> = misses
            .iter()
            .map(|m| json!({ "pod": m.pod, "label": m.key, "selectorWants": m.wanted, "podHas": m.actual }))
            .collect();
        Ok(vec![Finding::new(
            META.id,
            Severity::Critical,
            k8s_resource(ns, "Service", &backend.service),
            message,
        )
        .with_targets(cx.all_target_ids())
        .with_evidence(json!({
            "selector": selector,
            "podsInNamespace": pods.len(),
            "nearMisses": near,
        }))
        .with_fix(finding_fix, None)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixtures::{fires, quiet, scenario};

    #[test]
    fn fires_on_the_seed_typo_with_a_near_miss_hint() {
        let findings = fires(&SelectorMatchesNoPods, &scenario("selector-matches-no-pods"));
        let f = &findings[0];
        assert_eq!(f.severity, Severity::Critical);
        assert!(f.message.contains("app=alb-instance-1"), "{}", f.message);
        assert!(f.message.contains("labelled app=alb-instance instead"), "{}", f.message);
        let near = f.evidence["nearMisses"].as_array().unwrap();
        assert_eq!(near.len(), 2);
        assert_eq!(near[0]["selectorWants"], "alb-instance-1");
        assert_eq!(near[0]["podHas"], "alb-instance");
        let fix = f.fix.as_ref().unwrap();
        assert_eq!(
            fix.command,
            r#"kubectl -n default patch service 'alb-instance' -p '{"spec":{"selector":{"app":"alb-instance"}}}'"#
        );
    }

    #[test]
    fn quiet_when_the_selector_matches() {
        quiet(&SelectorMatchesNoPods, &scenario("healthy"));
    }

    #[test]
    fn quiet_when_a_workload_matches_but_cannot_create_its_pods() {
        quiet(&SelectorMatchesNoPods, &scenario("replicaset-failed-create"));
    }

    #[test]
    fn near_miss_needs_exactly_one_differing_label() {
        let sel: BTreeMap<String, String> = [("app".into(), "web".into()), ("tier".into(), "fe".into())].into();
        let one_off: BTreeMap<String, String> = [("app".into(), "web".into()), ("tier".into(), "be".into())].into();
        let two_off: BTreeMap<String, String> = [("app".into(), "api".into()), ("tier".into(), "be".into())].into();
        let missing_key: BTreeMap<String, String> = [("app".into(), "web".into())].into();
        assert_eq!(
            near_miss("p", &sel, Some(&one_off)),
            Some(NearMiss {
                pod: "p",
                key: "tier",
                wanted: "fe",
                actual: Some("be")
            })
        );
        assert_eq!(near_miss("p", &sel, Some(&two_off)), None);
        assert_eq!(near_miss("p", &sel, Some(&missing_key)).map(|m| m.actual), Some(None));
    }
}
