//! `readiness-gate-not-injected`: IP targets in a namespace without the controller's pod
//! readiness gate, failing during a rollout.
//!
//! # What it checks
//! IP targets whose namespace lacks the label `elbv2.k8s.aws/pod-readiness-gate-inject:
//! enabled` (so pods get no `target-health.elbv2.k8s.aws/...` readiness gate), during or
//! right after a rollout (a ReplicaSet of the backend created in the last hour): targets still
//! `initial` or `unhealthy` for pods Kubernetes already calls Ready, and targets `draining`
//! or failing for pods that are gone or terminating. A warning: the rollout outpaces the load
//! balancer.
//!
//! # Why it matters
//! Without the gate a new pod counts as available once its own readiness probe passes, and
//! the Deployment terminates old pods while the new targets are still `initial`: for a while
//! no target is healthy, and the alarm fires on every rollout.
//!
//! # Example
//! Bad: namespace `shop` without the label, `maxUnavailable: 25%`, targets `initial` for
//! Ready pods while old ones drain. Good: `kubectl label namespace shop
//! elbv2.k8s.aws/pod-readiness-gate-inject=enabled` and pods carrying the gate.
//!
//! # Fix safety
//! Manual: the label takes effect for pods created afterwards (a rollout restart). The report
//! gives both commands.
//!
//! # References
//! - <https://kubernetes-sigs.github.io/aws-load-balancer-controller/latest/deploy/pod_readiness_gate/>
//! - <https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#pod-readiness-gate>

use std::collections::BTreeSet;

use serde_json::json;

use super::{shell_quote, Check, CheckContext, CheckMeta, FixSafety, Inconclusive};
use crate::controller::LOG_WINDOW;
use crate::finding::{Finding, Severity};
use crate::kubernetes::{is_being_deleted, is_pod_ready, workload_of};

pub struct ReadinessGateNotInjected;

static META: CheckMeta = CheckMeta {
    id: "readiness-gate-not-injected",
    title: "Pod readiness gate not injected for IP targets",
    runbook_step: "(beyond)",
    fix: FixSafety::Manual,
};

pub const INJECT_LABEL: &str = "elbv2.k8s.aws/pod-readiness-gate-inject";

impl Check for ReadinessGateNotInjected {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    fn run(&self, cx: &CheckContext<'_>) -> Result<Vec<Finding>, Inconclusive> {
        if cx.target_type()? != "ip" {
            return Ok(vec![]);
        }
        let ns = cx.backend()?.namespace.clone();
        let namespaces = cx
            .snapshot
            .kube
            .namespaces
            .items()
            .map_err(|why| Inconclusive(format!("namespaces not collected: {why}")))?;
        let Some(namespace) = namespaces
            .iter()
            .find(|n| n.metadata.name.as_deref() == Some(ns.as_str()))
        else {
            return Err(Inconclusive(format!("namespace {ns} not collected")));
        };
        let labelled = namespace
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(INJECT_LABEL))
            .is_some_and(|v| v == "enabled");
        if labelled {
            return Ok(vec![]);
        }
        // A rollout in the last hour: a ReplicaSet of the backend's workload that new.
        let pods = cx.selected_pods()?;
        let replica_sets = cx.snapshot.kube.replica_sets.items().unwrap_or_default();
        let workloads: BTreeSet<(String, String)> = pods.iter().filter_map(|p| workload_of(p, replica_sets)).collect();
        let now = cx.now();
        let mut recent_rs: Vec<&str> = replica_sets
            .iter()
            .filter(|rs| {
                rs.metadata
                    .owner_references
                    .iter()
                    .flatten()
                    .any(|o| workloads.contains(&(o.kind.clone(), o.name.clone())))
            })
            .filter(|rs| {
                let created = rs.metadata.creation_timestamp.as_ref().map(|t| t.0);
                matches!((created, now), (Some(c), Some(n)) if n.duration_since(c) <= LOG_WINDOW && n >= c)
            })
            .filter_map(|rs| rs.metadata.name.as_deref())
            .collect();
        recent_rs.sort_unstable();
        if recent_rs.is_empty() {
            return Ok(vec![]);
        }
        let mut affected = Vec::new();
        let mut why = Vec::new();
        for t in cx.targets()? {
            let state = t.state();
            match t.pod {
                // Only a rollout's transient states: a Ready pod whose target is still in its
                // first checks, and targets draining for pods already gone or going.
                Some(pod) if is_pod_ready(pod) && state == "initial" => {
                    affected.push(t.id().to_string());
                    why.push(format!(
                        "{} is {state} while pod {} is already Ready",
                        t.id(),
                        pod.metadata.name.as_deref().unwrap_or_default()
                    ));
                }
                Some(pod) if is_being_deleted(pod) && matches!(state, "draining" | "unhealthy.draining") => {
                    affected.push(t.id().to_string());
                    why.push(format!(
                        "{} is {state}: pod {} is terminating",
                        t.id(),
                        pod.metadata.name.as_deref().unwrap_or_default()
                    ));
                }
                None if matches!(state, "draining" | "unhealthy.draining") => {
                    affected.push(t.id().to_string());
                    why.push(format!("{} is {state}: its pod is gone", t.id()));
                }
                _ => {}
            }
        }
        if affected.is_empty() {
            return Ok(vec![]);
        }
        let workload = workloads.iter().next().cloned();
        let mut fix = format!(
            "kubectl label namespace {} {} --overwrite",
            shell_quote(&ns),
            shell_quote(&format!("{INJECT_LABEL}=enabled"))
        );
        if let Some((kind, name)) = &workload {
            fix.push_str(&format!(
                " && kubectl -n {} rollout restart {}/{}",
                shell_quote(&ns),
                kind.to_ascii_lowercase(),
                shell_quote(name)
            ));
        }
        Ok(vec![Finding::new(
            META.id,
            Severity::Warning,
            format!("Namespace/{ns}"),
            format!(
                "namespace {ns} lacks {INJECT_LABEL}: enabled, so pods become Ready before their targets are healthy and a rollout ({}) removes old pods first: {}",
                recent_rs.join(", "),
                why.join("; ")
            ),
        )
        .with_targets(affected)
        .with_evidence(json!({
            "namespaceLabels": namespace.metadata.labels,
            "recentReplicaSets": recent_rs,
            "targets": why,
        }))
        .with_fix(fix, None)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixtures::{fires, quiet, scenario};

    #[test]
    fn fires_during_a_rollout_without_the_gate() {
        let findings = fires(&ReadinessGateNotInjected, &scenario("readiness-gate-not-injected"));
        assert_eq!(findings[0].severity, Severity::Warning);
        assert!(findings[0]
            .fix
            .as_ref()
            .unwrap()
            .command
            .starts_with("kubectl label namespace 'default'"));
    }

    #[test]
    fn quiet_with_the_gate_or_no_rollout() {
        quiet(
            &ReadinessGateNotInjected,
            &scenario("healthy-rollout-ip-readiness-gates"),
        );
        quiet(
            &ReadinessGateNotInjected,
            &scenario("controller-default-target-type-ip"),
        );
    }
}
