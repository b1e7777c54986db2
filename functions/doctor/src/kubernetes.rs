//! Pods, nodes and workloads as Kubernetes itself judges them, shared by the checks.
//!
//! Each rule follows the upstream behaviour it names:
//! - terminal pods (`Failed`, which includes `Evicted`, and `Succeeded`) are never
//!   endpoints: the EndpointSlice controller skips them
//!   (<https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#pod-phase>);
//! - a pod is Ready only when its containers are ready *and* every readiness gate's
//!   condition is True (<https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#pod-readiness-gate>);
//!   the AWS Load Balancer Controller's gates (`target-health.elbv2.k8s.aws/<binding>`)
//!   turn True only once the load balancer reports the target healthy, so a pod waiting on
//!   one is a consequence of the health check, not its cause;
//! - a named `targetPort` resolves per pod, against every container's declared ports
//!   (`podutil.FindPort`); a numeric one needs no declaration (container ports are
//!   informational: <https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/pod-v1/#ports>);
//! - a DaemonSet pod is expected on a node when the node matches the pod template's
//!   `nodeSelector` and required node affinity and tolerates the node's NoSchedule /
//!   NoExecute taints (<https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/#how-daemon-pods-are-scheduled>);
//!   Fargate and EKS Auto Mode nodes run no DaemonSet pods at all (kube-proxy is built in);
//! - restart loops are judged on when the container last terminated, not on the lifetime
//!   `restartCount`.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Container, Node, NodeSelectorRequirement, Pod, PodSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

/// The prefix of the AWS Load Balancer Controller's pod readiness gates.
pub const LB_READINESS_GATE_PREFIX: &str = "target-health.elbv2.k8s.aws/";

/// `eks.amazonaws.com/compute-type`: `fargate` on Fargate nodes, `auto` on EKS Auto Mode.
pub const COMPUTE_TYPE_LABEL: &str = "eks.amazonaws.com/compute-type";

/// Containers that are sidecars of a mesh or agent, not the application: their ports are
/// never what a Service means to reach.
const SIDECAR_NAMES: &[&str] = &[
    "istio-proxy",
    "linkerd-proxy",
    "envoy",
    "envoy-sidecar",
    "aws-appmesh-envoy",
    "cloudwatch-agent",
    "datadog-agent",
    "log-router",
    "fluent-bit",
];

pub fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Unknown")
}

/// `Failed` (evicted pods included) or `Succeeded`: the pod will never run again.
pub fn is_terminal(pod: &Pod) -> bool {
    matches!(phase(pod), "Failed" | "Succeeded")
}

pub fn is_evicted(pod: &Pod) -> bool {
    pod.status.as_ref().and_then(|s| s.reason.as_deref()) == Some("Evicted")
}

pub fn is_being_deleted(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

/// A pod that may be an endpoint: not terminal, not being deleted.
pub fn is_live(pod: &Pod) -> bool {
    !is_terminal(pod) && !is_being_deleted(pod)
}

fn condition_true(pod: &Pod, kind: &str) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == kind && c.status == "True"))
}

pub fn is_pod_ready(pod: &Pod) -> bool {
    phase(pod) == "Running" && condition_true(pod, "Ready")
}

pub fn containers_ready(pod: &Pod) -> bool {
    phase(pod) == "Running" && condition_true(pod, "ContainersReady")
}

/// The load balancer readiness gates of the pod that are not True yet.
pub fn pending_lb_gates(pod: &Pod) -> Vec<&str> {
    pod.spec
        .iter()
        .flat_map(|s| s.readiness_gates.iter().flatten())
        .map(|g| g.condition_type.as_str())
        .filter(|g| g.starts_with(LB_READINESS_GATE_PREFIX))
        .filter(|g| !condition_true(pod, g))
        .collect()
}

/// Containers ready, pod not Ready only because a load balancer readiness gate waits for
/// the target to pass its health check: the pod is registered and its health is the
/// load balancer's verdict, not a reason for it.
pub fn waits_only_on_lb_gate(pod: &Pod) -> bool {
    containers_ready(pod) && !is_pod_ready(pod) && !pending_lb_gates(pod).is_empty()
}

pub fn is_sidecar(container: &Container) -> bool {
    SIDECAR_NAMES.contains(&container.name.as_str())
        || [
            "istio/proxyv2",
            "linkerd2-proxy",
            "/envoy:",
            "appmesh-envoy",
            "fluent-bit",
        ]
        .iter()
        .any(|m| container.image.as_deref().unwrap_or("").contains(m))
}

/// The application containers of a pod (sidecars left out, unless nothing else is left).
pub fn app_containers(spec: &PodSpec) -> Vec<&Container> {
    let apps: Vec<&Container> = spec.containers.iter().filter(|c| !is_sidecar(c)).collect();
    if apps.is_empty() {
        spec.containers.iter().collect()
    } else {
        apps
    }
}

/// Resolves a Service `targetPort` for one pod as kube-proxy and the EndpointSlice
/// controller do: a number is itself; a name is the first container port with that name.
pub fn resolve_target_port(pod: &Pod, target: &IntOrString) -> Option<i32> {
    match target {
        IntOrString::Int(n) => Some(*n),
        IntOrString::String(name) => pod
            .spec
            .iter()
            .flat_map(|s| &s.containers)
            .flat_map(|c| c.ports.iter().flatten())
            .find(|p| p.name.as_deref() == Some(name.as_str()))
            .map(|p| p.container_port),
    }
}

/// Ports the application containers answer on by their own declaration: declared
/// container ports and the ports of their HTTP / TCP / gRPC readiness and liveness probes.
pub fn app_ports(pod: &Pod) -> Vec<i32> {
    let mut out = Vec::new();
    let Some(spec) = pod.spec.as_ref() else { return out };
    for c in app_containers(spec) {
        out.extend(c.ports.iter().flatten().map(|p| p.container_port));
        for probe in [&c.readiness_probe, &c.liveness_probe].into_iter().flatten() {
            let port = probe
                .http_get
                .as_ref()
                .map(|h| &h.port)
                .or(probe.tcp_socket.as_ref().map(|t| &t.port));
            match port {
                Some(IntOrString::Int(n)) => out.push(*n),
                Some(IntOrString::String(name)) => out.extend(
                    c.ports
                        .iter()
                        .flatten()
                        .filter(|p| p.name.as_deref() == Some(name.as_str()))
                        .map(|p| p.container_port),
                ),
                None => {}
            }
            if let Some(grpc) = &probe.grpc {
                out.push(grpc.port);
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// The port a passing readiness probe of an application container checks, if any: the
/// kubelet reaches it on the pod's address, so a Ready pod answers there.
pub fn readiness_probe_port(pod: &Pod) -> Option<i32> {
    let spec = pod.spec.as_ref()?;
    app_containers(spec).into_iter().find_map(|c| {
        let probe = c.readiness_probe.as_ref()?;
        let port = probe
            .http_get
            .as_ref()
            .map(|h| &h.port)
            .or(probe.tcp_socket.as_ref().map(|t| &t.port))?;
        match port {
            IntOrString::Int(n) => Some(*n),
            IntOrString::String(name) => c
                .ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(name.as_str()))
                .map(|p| p.container_port),
        }
    })
}

/// Sum of container restarts, saturating (a hostile or corrupt count cannot overflow).
pub fn restarts(pod: &Pod) -> i64 {
    pod.status
        .iter()
        .flat_map(|s| s.container_statuses.iter().flatten())
        .fold(0i64, |acc, c| acc.saturating_add(i64::from(c.restart_count.max(0))))
}

/// When a container of the pod last terminated (its previous run ended), if ever.
pub fn last_termination(pod: &Pod) -> Option<Timestamp> {
    pod.status
        .iter()
        .flat_map(|s| s.container_statuses.iter().flatten())
        .filter_map(|c| {
            let last = c.last_state.as_ref()?.terminated.as_ref()?;
            last.finished_at.as_ref().map(|t| t.0)
        })
        .max()
}

/// A container is restarting now: waiting in CrashLoopBackOff, or it terminated within
/// `window` before `now`. Without `now` only the current state counts.
pub fn restarting_recently(pod: &Pod, now: Option<Timestamp>, window: SignedDuration) -> bool {
    let crash_looping = pod
        .status
        .iter()
        .flat_map(|s| s.container_statuses.iter().flatten())
        .any(|c| {
            c.state
                .as_ref()
                .and_then(|s| s.waiting.as_ref())
                .and_then(|w| w.reason.as_deref())
                == Some("CrashLoopBackOff")
        });
    if crash_looping {
        return true;
    }
    match (now, last_termination(pod)) {
        (Some(now), Some(ended)) => now.duration_since(ended) <= window,
        _ => false,
    }
}

pub fn labels(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> BTreeMap<String, String> {
    meta.labels.clone().unwrap_or_default()
}

fn requirement_matches(req: &NodeSelectorRequirement, labels: &BTreeMap<String, String>) -> bool {
    let values = req.values.as_deref().unwrap_or_default();
    let value = labels.get(&req.key);
    match req.operator.as_str() {
        "In" => value.is_some_and(|v| values.contains(v)),
        "NotIn" => value.is_none_or(|v| !values.contains(v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(v), Some(bound)) = (
                value.and_then(|v| v.parse::<i64>().ok()),
                values.first().and_then(|b| b.parse::<i64>().ok()),
            ) else {
                return false;
            };
            if req.operator == "Gt" {
                v > bound
            } else {
                v < bound
            }
        }
        _ => false,
    }
}

/// Why a DaemonSet places no pod on the node, or `None` when it should run one there.
pub fn daemon_set_skips_node(ds: &DaemonSet, node: &Node) -> Option<String> {
    let node_labels = labels(&node.metadata);
    match node_labels.get(COMPUTE_TYPE_LABEL).map(String::as_str) {
        Some("fargate") => return Some("a Fargate node runs no DaemonSet pods".into()),
        Some("auto") => return Some("an EKS Auto Mode node runs kube-proxy as part of the node, not as a pod".into()),
        _ => {}
    }
    let spec = ds.spec.as_ref().and_then(|s| s.template.spec.as_ref())?;
    if let Some(selector) = &spec.node_selector {
        if let Some((k, v)) = selector.iter().find(|(k, v)| node_labels.get(*k) != Some(*v)) {
            return Some(format!("the DaemonSet's nodeSelector {k}={v} excludes the node"));
        }
    }
    let required = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|a| a.required_during_scheduling_ignored_during_execution.as_ref());
    if let Some(required) = required {
        // Terms are ORed; the expressions of one term are ANDed.
        let fits = required.node_selector_terms.iter().any(|term| {
            term.match_expressions
                .iter()
                .flatten()
                .all(|r| requirement_matches(r, &node_labels))
        });
        if !fits {
            return Some("the DaemonSet's required node affinity excludes the node".into());
        }
    }
    let tolerations = spec.tolerations.as_deref().unwrap_or_default();
    for taint in node.spec.iter().flat_map(|s| s.taints.iter().flatten()) {
        if !matches!(taint.effect.as_str(), "NoSchedule" | "NoExecute") {
            continue;
        }
        let tolerated = tolerations.iter().any(|t| {
            let key_ok = match t.operator.as_deref() {
                Some("Exists") => t.key.as_deref().is_none_or(|k| k.is_empty() || k == taint.key),
                _ => t.key.as_deref() == Some(taint.key.as_str()) && t.value == taint.value,
            };
            key_ok && t.effect.as_deref().is_none_or(|e| e.is_empty() || e == taint.effect)
        });
        if !tolerated {
            return Some(format!(
                "the node's taint {}:{} is not tolerated",
                taint.key, taint.effect
            ));
        }
    }
    None
}

/// The workload that owns a pod, as `(kind, name)`: a ReplicaSet's Deployment when the
/// ReplicaSet is known, else the pod's controller itself (StatefulSet, DaemonSet, ...).
pub fn workload_of(pod: &Pod, replica_sets: &[k8s_openapi::api::apps::v1::ReplicaSet]) -> Option<(String, String)> {
    let owner = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))?;
    if owner.kind == "ReplicaSet" {
        let rs = replica_sets.iter().find(|r| {
            r.metadata.name.as_deref() == Some(owner.name.as_str()) && r.metadata.namespace == pod.metadata.namespace
        });
        if let Some(d) = rs
            .and_then(|r| r.metadata.owner_references.as_ref())
            .and_then(|refs| refs.iter().find(|o| o.controller == Some(true)))
        {
            return Some((d.kind.clone(), d.name.clone()));
        }
    }
    Some((owner.kind.clone(), owner.name.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn terminal_and_evicted_pods() {
        let evicted = pod(json!({"status": {"phase": "Failed", "reason": "Evicted"}}));
        assert!(is_terminal(&evicted) && is_evicted(&evicted) && !is_live(&evicted));
        let done = pod(json!({"status": {"phase": "Succeeded"}}));
        assert!(is_terminal(&done));
        assert!(is_live(&pod(json!({"status": {"phase": "Running"}}))));
    }

    #[test]
    fn a_pending_lb_gate_is_the_load_balancers_verdict() {
        let p = pod(json!({
            "spec": {"containers": [], "readinessGates": [{"conditionType": "target-health.elbv2.k8s.aws/k8s-shop-web-123"}]},
            "status": {"phase": "Running", "conditions": [
                {"type": "ContainersReady", "status": "True"},
                {"type": "Ready", "status": "False", "reason": "ReadinessGatesNotReady"}
            ]}
        }));
        assert!(waits_only_on_lb_gate(&p));
        assert_eq!(pending_lb_gates(&p), ["target-health.elbv2.k8s.aws/k8s-shop-web-123"]);
    }

    #[test]
    fn named_ports_resolve_per_pod_and_sidecars_are_not_the_app() {
        let p = pod(json!({"spec": {"containers": [
            {"name": "app", "ports": [{"name": "http", "containerPort": 8080}],
             "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}}},
            {"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.24.1",
             "ports": [{"name": "http-envoy-prom", "containerPort": 15090}]}
        ]}}));
        assert_eq!(resolve_target_port(&p, &IntOrString::String("http".into())), Some(8080));
        assert_eq!(resolve_target_port(&p, &IntOrString::String("web".into())), None);
        assert_eq!(app_ports(&p), vec![8080]);
        assert_eq!(readiness_probe_port(&p), Some(8080));
    }

    #[test]
    fn restarts_saturate_and_recency_uses_the_last_termination() {
        let p = pod(json!({"status": {"phase": "Running", "containerStatuses": [
            {"name": "a", "image": "x", "imageID": "", "ready": true, "restartCount": 2147483647,
             "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2026-11-20T10:00:00Z"}}},
            {"name": "b", "image": "x", "imageID": "", "ready": true, "restartCount": 2147483647}
        ]}}));
        assert_eq!(restarts(&p), 2 * 2_147_483_647);
        let now: Timestamp = "2026-11-27T03:00:00Z".parse().unwrap();
        assert!(!restarting_recently(&p, Some(now), SignedDuration::from_mins(10)));
        let soon: Timestamp = "2026-11-20T10:05:00Z".parse().unwrap();
        assert!(restarting_recently(&p, Some(soon), SignedDuration::from_mins(10)));
    }

    #[test]
    fn daemon_set_placement() {
        let ds: DaemonSet = serde_json::from_value(json!({"spec": {"selector": {}, "template": {"spec": {
            "containers": [],
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "eks.amazonaws.com/compute-type", "operator": "NotIn", "values": ["fargate", "hybrid"]}]}
            ]}}},
            "tolerations": [{"operator": "Exists"}]
        }}}}))
        .unwrap();
        let node = |labels: serde_json::Value, taints: serde_json::Value| -> Node {
            serde_json::from_value(json!({"metadata": {"labels": labels}, "spec": {"taints": taints}})).unwrap()
        };
        assert_eq!(
            daemon_set_skips_node(
                &ds,
                &node(
                    json!({"kubernetes.io/os": "linux"}),
                    json!([{"key": "dedicated", "effect": "NoSchedule"}])
                )
            ),
            None
        );
        assert!(daemon_set_skips_node(
            &ds,
            &node(
                json!({"kubernetes.io/os": "linux", "eks.amazonaws.com/compute-type": "fargate"}),
                json!([])
            )
        )
        .is_some());
        assert!(daemon_set_skips_node(
            &ds,
            &node(
                json!({"kubernetes.io/os": "linux", "eks.amazonaws.com/compute-type": "hybrid"}),
                json!([])
            )
        )
        .unwrap()
        .contains("affinity"));
        assert!(
            daemon_set_skips_node(&ds, &node(json!({"kubernetes.io/os": "windows"}), json!([])))
                .unwrap()
                .contains("nodeSelector")
        );
    }
}
