//! `pod-not-ready`: the pods behind the Service are not Running and Ready.
//!
//! # What it checks
//! Every pod the Service selects: phase, the Ready condition, and for each container the
//! waiting / terminated reason (CrashLoopBackOff, ImagePullBackOff, OOMKilled, ...),
//! restarts, and the pod's recent Warning events. Pods being deleted are left out (a rollout
//! replacing them is normal).
//!
//! # Why it matters
//! A pod that is not Ready is removed from the Service's endpoints, so nothing answers the
//! load balancer's health check: in IP mode its target fails, in instance mode kube-proxy has
//! nowhere to forward the NodePort traffic.
//!
//! # Example
//! Bad: `alb-instance-7d9c6b5f4-abcde  0/1  CrashLoopBackOff  7`. Good: `1/1 Running`.
//!
//! # Fix safety
//! Manual. The report names the pod and the commands that show why it fails
//! (`kubectl describe pod`, `kubectl logs --previous`); the fix is in the workload.
//!
//! # References
//! - <https://repost.aws/knowledge-center/eks-resolve-failed-health-check-alb-nlb> (check the pod status)
//! - <https://kubernetes.io/docs/tasks/debug/debug-application/debug-pods/>

use k8s_openapi::api::core::v1::Pod;
use serde_json::{json, Value};

use super::{is_pod_ready, pod_name, pod_node, Check, CheckContext, CheckMeta, FixSafety, Inconclusive};
use crate::finding::{k8s_resource, Finding, Severity};

pub struct PodNotReady;

static META: CheckMeta = CheckMeta {
    id: "pod-not-ready",
    title: "Selected pods are not Running and Ready",
    runbook_step: "pod status",
    fix: FixSafety::Manual,
};

impl Check for PodNotReady {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    fn run(&self, cx: &CheckContext<'_>) -> Result<Vec<Finding>, Inconclusive> {
        let backend = cx.backend()?;
        let pods = cx.selected_pods()?;
        let not_ready: Vec<&Pod> = pods.iter().copied().filter(|p| !is_pod_ready(p)).collect();
        if not_ready.is_empty() {
            return Ok(vec![]);
        }
        let events = cx.snapshot.kube.events.items().unwrap_or_default();
        let details: Vec<Value> = not_ready
            .iter()
            .map(|pod| {
                let warnings: Vec<String> = events
                    .iter()
                    .filter(|e| {
                        e.type_.as_deref() == Some("Warning")
                            && e.involved_object.kind.as_deref() == Some("Pod")
                            && e.involved_object.name.as_deref() == pod.metadata.name.as_deref()
                            && e.involved_object.namespace.as_deref() == pod.metadata.namespace.as_deref()
                    })
                    .map(|e| {
                        format!(
                            "{}: {}",
                            e.reason.as_deref().unwrap_or("?"),
                            e.message.as_deref().unwrap_or("")
                        )
                    })
                    .collect();
                json!({
                    "pod": pod_name(pod),
                    "node": pod_node(pod),
                    "phase": pod.status.as_ref().and_then(|s| s.phase.as_deref()),
                    "reason": not_ready_reason(pod),
                    "restarts": restarts(pod),
                    "warningEvents": warnings.iter().rev().take(3).rev().collect::<Vec<_>>(),
                })
            })
            .collect();
        let ready = pods.len() - not_ready.len();
        let reasons: Vec<String> = {
            let mut r: Vec<String> = not_ready.iter().map(|p| not_ready_reason(p)).collect();
            r.sort();
            r.dedup();
            r
        };
        let severity = if ready == 0 {
            Severity::Critical
        } else {
            Severity::Warning
        };
        let first = pod_name(not_ready[0]);
        let ns = &backend.namespace;
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
        .with_evidence(json!({ "readyPods": ready, "selectedPods": pods.len(), "notReady": details }))
        .with_fix(
            format!("kubectl -n {ns} describe pod {first} && kubectl -n {ns} logs {first} --all-containers --previous"),
            None,
        )])
    }
}

fn restarts(pod: &Pod) -> i32 {
    pod.status
        .iter()
        .flat_map(|s| s.container_statuses.iter().flatten())
        .map(|c| c.restart_count)
        .sum()
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
        quiet(&PodNotReady, &scenario("healthy"));
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
