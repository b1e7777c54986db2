//! `pod-not-ready`: the pods behind the Service are not Running and Ready, or the workload
//! cannot create them.
//!
//! # What it checks
//! Every live pod the Service selects: phase, the Ready condition, and for each container
//! the waiting / terminated reason (CrashLoopBackOff, ImagePullBackOff, OOMKilled, ...),
//! restarts, and the pod's recent Warning events. Decided as Kubernetes decides:
//! - terminal pods (Failed, Evicted, Succeeded) are not backends: listed as evidence only;
//! - a pod whose containers are ready and that waits only on the load balancer's readiness
//!   gate (`target-health.elbv2.k8s.aws/...`) is not a cause: the controller registers it
//!   and the gate turns True when the load balancer's health check passes;
//! - when the selector matches no live pod but a ReplicaSet whose pod template it matches
//!   wants replicas, the ReplicaSet's `FailedCreate` events (quota, admission webhook,
//!   PodSecurity) or its scale of 0 are the finding, not the selector.
//!
//! Targets concerned: IP targets of the not-ready pods; instance targets all of them when no
//! selected pod is ready (kube-proxy has nowhere to send), else none (with
//! `externalTrafficPolicy: Cluster` the other pods answer).
//!
//! # Why it matters
//! A pod that is not Ready is removed from the Service's endpoints, so nothing answers the
//! load balancer's health check: in IP mode its target fails, in instance mode kube-proxy has
//! nowhere to forward the NodePort traffic once no pod is ready.
//!
//! # Example
//! Bad: `web-7d9c6b5f4-abcde  0/1  CrashLoopBackOff  7`, or `ReplicaSet web-7d9c6b5f4:
//! FailedCreate: pods "web-7d9c6b5f4-x" is forbidden: exceeded quota`. Good: `1/1 Running`,
//! or `2/2 Running` with `READINESS GATES 0/1` while the target's first checks run.
//!
//! # Fix safety
//! Manual. The report names the pod and the commands that show why it fails
//! (`kubectl describe pod`, `kubectl logs --previous`); the fix is in the workload.
//!
//! # References
//! - <https://repost.aws/knowledge-center/eks-resolve-failed-health-check-alb-nlb> (check the pod status)
//! - <https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#pod-readiness-gate>
//! - <https://kubernetes-sigs.github.io/aws-load-balancer-controller/latest/deploy/pod_readiness_gate/>
//! - <https://kubernetes.io/docs/tasks/debug/debug-application/debug-pods/>

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use serde_json::{json, Value};

use super::{
    is_pod_ready, labels_match, pod_ips, pod_name, pod_node, shell_quote, Check, CheckContext, CheckMeta, FixSafety,
    Inconclusive,
};
use crate::finding::{k8s_resource, Finding, Severity};
use crate::kubernetes;

pub struct PodNotReady;

static META: CheckMeta = CheckMeta {
    id: "pod-not-ready",
    title: "Selected pods are not Running and Ready",
    runbook_step: "pod status",
    fix: FixSafety::Manual,
};

fn warning_events<'a>(cx: &CheckContext<'a>, kind: &str, namespace: &str, name: &str) -> Vec<String> {
    cx.snapshot
        .kube
        .events
        .items()
        .unwrap_or_default()
        .iter()
        .filter(|e| {
            e.type_.as_deref() == Some("Warning")
                && e.involved_object.kind.as_deref() == Some(kind)
                && e.involved_object.name.as_deref() == Some(name)
                && e.involved_object.namespace.as_deref() == Some(namespace)
        })
        .map(|e| {
            format!(
                "{}: {}",
                e.reason.as_deref().unwrap_or("?"),
                e.message.as_deref().unwrap_or("")
            )
        })
        .collect()
}

/// No live pod is selected: a ReplicaSet whose template the selector matches and that
/// wants pods, and why it has none (its FailedCreate events, or a scale of 0).
fn workload_without_pods(cx: &CheckContext<'_>) -> Result<Vec<Finding>, Inconclusive> {
    let backend = cx.backend()?;
    let ns = &backend.namespace;
    let Some(selector) = cx.selector()? else {
        return Ok(vec![]);
    };
    let Ok(sets) = cx.scoped("ReplicaSet", &cx.snapshot.kube.replica_sets, ns, &[]) else {
        return Ok(vec![]); // selector-matches-no-pods speaks; without ReplicaSets nothing more is known
    };
    let matching: Vec<&ReplicaSet> = sets
        .iter()
        .filter(|rs| rs.metadata.namespace.as_deref() == Some(ns.as_str()))
        .filter(|rs| {
            let template = rs
                .spec
                .as_ref()
                .and_then(|s| s.template.as_ref())
                .and_then(|t| t.metadata.as_ref());
            labels_match(selector, template.and_then(|m| m.labels.as_ref()))
        })
        .collect();
    // The newest ReplicaSet wanting pods is the one that should have made them.
    let Some(rs) = matching
        .iter()
        .copied()
        .filter(|rs| rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1) > 0)
        .max_by_key(|rs| rs.metadata.creation_timestamp.as_ref().map(|t| t.0))
    else {
        if let Some(rs) = matching.first() {
            let name = rs.metadata.name.as_deref().unwrap_or("?");
            let owner = rs
                .metadata
                .owner_references
                .iter()
                .flatten()
                .find(|o| o.controller == Some(true))
                .map(|o| format!("{} {}", o.kind, o.name));
            let what = owner.clone().unwrap_or_else(|| format!("ReplicaSet {name}"));
            let scale = owner.map_or(
                format!("kubectl -n {ns} scale replicaset {} --replicas=2", shell_quote(name)),
                |o| {
                    let (kind, n) = o.split_once(' ').unwrap_or(("deployment", &o));
                    format!(
                        "kubectl -n {ns} scale {} {} --replicas=2",
                        kind.to_ascii_lowercase(),
                        shell_quote(n)
                    )
                },
            );
            return Ok(vec![Finding::new(
                META.id,
                Severity::Critical,
                k8s_resource(ns, "Service", &backend.service),
                format!("Service {ns}/{} selects the pods of {what}, which is scaled to 0 replicas: no pod backs the target group", backend.service),
            )
            .with_targets(cx.all_target_ids())
            .with_evidence(json!({ "replicaSet": name, "replicas": 0, "selectedPods": 0 }))
            .with_fix(format!("{scale}  # choose the replica count"), None)]);
        }
        return Ok(vec![]);
    };
    let name = rs.metadata.name.as_deref().unwrap_or("?");
    let desired = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let events = warning_events(cx, "ReplicaSet", ns, name);
    let failed: Vec<&String> = events.iter().filter(|e| e.starts_with("FailedCreate")).collect();
    if failed.is_empty() {
        return Ok(vec![]);
    }
    let last = failed.last().map(|s| s.as_str()).unwrap_or("");
    Ok(vec![Finding::new(
        META.id,
        Severity::Critical,
        k8s_resource(ns, "ReplicaSet", name),
        format!(
            "ReplicaSet {ns}/{name} wants {desired} pod(s) for Service {ns}/{} but cannot create them: {}",
            backend.service,
            super::truncate(last, 300)
        ),
    )
    .with_targets(cx.all_target_ids())
    .with_evidence(json!({
        "replicaSet": name,
        "desiredReplicas": desired,
        "readyReplicas": rs.status.as_ref().and_then(|s| s.ready_replicas).unwrap_or(0),
        "failedCreateEvents": failed.iter().rev().take(3).rev().collect::<Vec<_>>(),
    }))
    .with_fix(
        format!(
            "kubectl -n {ns} describe replicaset {}  # quota, admission webhook or PodSecurity refused the pods",
            shell_quote(name)
        ),
        None,
    )])
}

impl Check for PodNotReady {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    fn run(&self, cx: &CheckContext<'_>) -> Result<Vec<Finding>, Inconclusive> {
        let backend = cx.backend()?;
        let pods = cx.selected_pods()?;
        if pods.is_empty() {
            return workload_without_pods(cx);
        }
        let gated: Vec<&Pod> = pods
            .iter()
            .copied()
            .filter(|p| kubernetes::waits_only_on_lb_gate(p))
            .collect();
        let not_ready: Vec<&Pod> = pods
            .iter()
            .copied()
            .filter(|p| !is_pod_ready(p) && !kubernetes::waits_only_on_lb_gate(p))
            .collect();
        if not_ready.is_empty() {
            return Ok(vec![]);
        }
        let ns = &backend.namespace;
        let details: Vec<Value> = not_ready
            .iter()
            .map(|pod| {
                let warnings = warning_events(cx, "Pod", ns, pod_name(pod));
                json!({
                    "pod": pod_name(pod),
                    "node": pod_node(pod),
                    "phase": kubernetes::phase(pod),
                    "reason": not_ready_reason(pod),
                    "restarts": kubernetes::restarts(pod),
                    "warningEvents": warnings.iter().rev().take(3).rev().collect::<Vec<_>>(),
                })
            })
            .collect();
        let ready = pods.len() - not_ready.len() - gated.len();
        let reasons: Vec<String> = {
            let mut r: Vec<String> = not_ready.iter().map(|p| not_ready_reason(p)).collect();
            r.sort();
            r.dedup();
            r
        };
        let none_serving = ready + gated.len() == 0;
        let severity = if none_serving {
            Severity::Critical
        } else {
            Severity::Warning
        };
        let targets: Vec<String> = if cx.target_type()? == "ip" {
            let registered = cx.all_target_ids();
            not_ready
                .iter()
                .flat_map(|p| pod_ips(p))
                .filter(|ip| registered.iter().any(|r| r == ip))
                .map(str::to_string)
                .collect()
        } else if none_serving {
            cx.all_target_ids()
        } else {
            Vec::new()
        };
        let terminal: Vec<Value> = cx
            .terminal_selected_pods()
            .iter()
            .map(|p| json!({ "pod": pod_name(p), "phase": kubernetes::phase(p), "reason": p.status.as_ref().and_then(|s| s.reason.clone()) }))
            .collect();
        let first = pod_name(not_ready[0]);
        Ok(vec![Finding::new(
            META.id,
            severity,
            k8s_resource(ns, "Service", &backend.service),
            format!(
                "{} of {} pods selected by Service {}/{} are not ready: {}",
                not_ready.len(),
                pods.len(),
                ns,
                backend.service,
                reasons.join(", ")
            ),
        )
        .with_targets(targets)
        .with_evidence(json!({
            "readyPods": ready,
            "selectedPods": pods.len(),
            "waitingOnLoadBalancerReadinessGate": gated.iter().map(|p| pod_name(p)).collect::<Vec<_>>(),
            "terminalPodsIgnored": terminal,
            "notReady": details,
        }))
        .with_fix(
            format!(
                "kubectl -n {ns} describe pod {first} && kubectl -n {ns} logs {first} --all-containers --previous",
                first = shell_quote(first)
            ),
            None,
        )])
    }
}

/// The most telling reason a pod is not ready.
pub(crate) fn not_ready_reason(pod: &Pod) -> String {
    let Some(status) = pod.status.as_ref() else {
        return "no status".into();
    };
    for cs in status.container_statuses.iter().flatten() {
        if cs.ready {
            continue;
        }
        let state = cs.state.as_ref();
        if let Some(waiting) = state.and_then(|s| s.waiting.as_ref()) {
            let reason = waiting.reason.clone().unwrap_or_else(|| "Waiting".into());
            let last = cs.last_state.as_ref().and_then(|l| l.terminated.as_ref());
            return match last {
                Some(t) => format!(
                    "{reason} (last exit: {} code {})",
                    t.reason.as_deref().unwrap_or("terminated"),
                    t.exit_code
                ),
                None => reason,
            };
        }
        if let Some(t) = state.and_then(|s| s.terminated.as_ref()) {
            return format!(
                "{} (exit code {})",
                t.reason.as_deref().unwrap_or("Terminated"),
                t.exit_code
            );
        }
        if state.and_then(|s| s.running.as_ref()).is_some() {
            return "readiness probe failing".into();
        }
    }
    let phase = status.phase.as_deref().unwrap_or("Unknown");
    if phase == "Running" {
        // Containers look fine but the pod is not Ready: say what the condition says.
        if let Some(c) = status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "Ready" && c.status != "True")
        {
            return format!(
                "not Ready: {}",
                c.reason
                    .as_deref()
                    .or(c.message.as_deref())
                    .unwrap_or("Ready condition is not True")
            );
        }
    }
    if phase == "Pending" {
        if let Some(c) = status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "PodScheduled" && c.status == "False")
        {
            return format!("Pending: {}", c.reason.as_deref().unwrap_or("not scheduled"));
        }
    }
    phase.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixtures::{fires, pods_mut, quiet, scenario};

    #[test]
    fn fires_on_crash_looping_pods() {
        let findings = fires(&PodNotReady, &scenario("pod-not-ready"));
        assert_eq!(findings[0].severity, Severity::Critical);
        assert!(findings[0].message.contains("2 of 2"), "{}", findings[0].message);
        assert!(
            findings[0].message.contains("CrashLoopBackOff"),
            "{}",
            findings[0].message
        );
    }

    #[test]
    fn quiet_when_pods_are_ready() {
        // The realistic base carries an evicted pod of the same ReplicaSet: not a backend.
        quiet(&PodNotReady, &scenario("healthy"));
    }

    #[test]
    fn quiet_while_a_pod_waits_on_the_load_balancer_readiness_gate() {
        quiet(&PodNotReady, &scenario("healthy-rollout-ip-readiness-gates"));
    }

    #[test]
    fn a_replicaset_that_cannot_create_pods_is_the_finding() {
        let f = &fires(&PodNotReady, &scenario("replicaset-failed-create"))[0];
        assert_eq!(f.severity, Severity::Critical);
        assert!(f.message.contains("exceeded quota"), "{}", f.message);
        assert_eq!(f.resource, "default/ReplicaSet/alb-instance-7d9c6b5f4");
    }

    #[test]
    fn one_replica_of_three_behind_instance_targets_concerns_no_target() {
        let f = &fires(&PodNotReady, &scenario("unexplained-with-side-warnings"))[0];
        assert_eq!(f.severity, Severity::Warning);
        assert!(f.targets.is_empty() && !f.group_level);
    }

    #[test]
    fn one_pod_down_of_two_is_a_warning_naming_oom() {
        let mut snap = scenario("healthy");
        let pod = &mut pods_mut(&mut snap)
            .iter_mut()
            .find(|p| {
                p.metadata
                    .labels
                    .as_ref()
                    .is_some_and(|l| l.get("app").is_some_and(|a| a == "alb-instance"))
            })
            .unwrap();
        let status = pod.status.as_mut().unwrap();
        for c in status.conditions.iter_mut().flatten() {
            if c.type_ == "Ready" {
                c.status = "False".into();
            }
        }
        let cs = &mut status.container_statuses.as_mut().unwrap()[0];
        cs.ready = false;
        cs.state = Some(k8s_openapi::api::core::v1::ContainerState {
            waiting: Some(k8s_openapi::api::core::v1::ContainerStateWaiting {
                reason: Some("CrashLoopBackOff".into()),
                message: None,
            }),
            ..Default::default()
        });
        cs.last_state = Some(k8s_openapi::api::core::v1::ContainerState {
            terminated: Some(k8s_openapi::api::core::v1::ContainerStateTerminated {
                reason: Some("OOMKilled".into()),
                exit_code: 137,
                ..Default::default()
            }),
            ..Default::default()
        });
        let findings = fires(&PodNotReady, &snap);
        assert_eq!(findings[0].severity, Severity::Warning);
        assert!(findings[0].message.contains("OOMKilled"), "{}", findings[0].message);
    }
}
