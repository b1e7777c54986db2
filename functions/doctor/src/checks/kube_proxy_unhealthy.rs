//! `kube-proxy-unhealthy`: kube-proxy is not ready, missing or restarting on the nodes
//! behind the target group.
//!
//! # What it checks
//! The `kube-proxy` DaemonSet and its pods on the nodes that host the targets: a pod exists on
//! each such node, it is Running and Ready, and it is not restart-looping (5 or more
//! restarts). Error lines from its log (klog `E....`) are attached as evidence.
//!
//! # Why it matters
//! With instance targets the load balancer talks to a NodePort, and only kube-proxy's rules
//! forward that port to a pod. A crashed or stuck kube-proxy leaves stale or no rules: the
//! node refuses or drops the health check. (IP targets bypass it, so there it is a warning.)
//!
//! # Example
//! Bad: `kube-proxy-7xk2m  0/1  CrashLoopBackOff  12`. Good: `1/1 Running 0` on every node.
//!
//! # Fix safety
//! Catalogue fix `restart-kube-proxy` (rollout restart of `kube-system/kube-proxy`), the
//! runbook's last step; may run unattended, with a cooldown so flapping alarms never loop it.
//!
//! # References
//! - <https://repost.aws/knowledge-center/eks-resolve-failed-health-check-alb-nlb> (restart kube-proxy)
//! - <https://docs.aws.amazon.com/eks/latest/userguide/managing-kube-proxy.html>

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Pod;
use serde_json::json;

use super::pod_not_ready::not_ready_reason;
use super::{is_pod_ready, pod_name, pod_node, Check, CheckContext, CheckMeta, FixSafety, Inconclusive};
use crate::finding::{Finding, FixAction, Severity};

pub struct KubeProxyUnhealthy;

static META: CheckMeta = CheckMeta {
    id: "kube-proxy-unhealthy",
    title: "kube-proxy unhealthy on target nodes",
    runbook_step: "restart kube-proxy",
    fix: FixSafety::Unattended("restart-kube-proxy"),
};

const RESTART_LOOP: i32 = 5;

fn is_kube_proxy(labels: Option<&std::collections::BTreeMap<String, String>>, name: Option<&str>) -> bool {
    labels.and_then(|l| l.get("k8s-app")).map(String::as_str) == Some("kube-proxy") || name == Some("kube-proxy")
}

fn restarts(pod: &Pod) -> i32 {
    pod.status
        .iter()
        .flat_map(|s| s.container_statuses.iter().flatten())
        .map(|c| c.restart_count)
        .sum()
}

impl Check for KubeProxyUnhealthy {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    fn run(&self, cx: &CheckContext<'_>) -> Result<Vec<Finding>, Inconclusive> {
        let kube = &cx.snapshot.kube;
        let daemon_sets = kube
            .daemon_sets
            .items()
            .map_err(|why| Inconclusive(format!("DaemonSets not collected: {why}")))?;
        let Some(ds) = daemon_sets
            .iter()
            .find(|d| is_kube_proxy(d.metadata.labels.as_ref(), d.metadata.name.as_deref()))
        else {
            return Err(Inconclusive::new(
                "no kube-proxy DaemonSet found (a kube-proxy replacement such as Cilium may be in use)",
            ));
        };
        let ns = ds.metadata.namespace.as_deref().unwrap_or("kube-system");
        let ds_name = ds.metadata.name.as_deref().unwrap_or("kube-proxy");
        let pods = kube
            .pods
            .items()
            .map_err(|why| Inconclusive(format!("kube-proxy pods not collected: {why}")))?;
        let proxies: Vec<&Pod> = pods
            .iter()
            .filter(|p| p.metadata.namespace.as_deref() == Some(ns))
            .filter(|p| is_kube_proxy(p.metadata.labels.as_ref(), None))
            .collect();
        let instance_mode = cx.target_type()? == "instance";
        let mut nodes: BTreeSet<String> = cx
            .targets()?
            .iter()
            .filter_map(|t| t.node_name().map(str::to_string))
            .collect();
        if nodes.is_empty() {
            nodes = proxies.iter().filter_map(|p| pod_node(p).map(str::to_string)).collect();
        }
        let logs = kube.logs.present();
        let mut problems = Vec::new();
        for node in &nodes {
            match proxies.iter().find(|p| pod_node(p) == Some(node.as_str())) {
                None => problems.push(json!({ "node": node, "problem": "no kube-proxy pod on the node" })),
                Some(p) if !is_pod_ready(p) || restarts(p) >= RESTART_LOOP => {
                    let problem = if is_pod_ready(p) {
                        format!("restarting ({} restarts)", restarts(p))
                    } else {
                        not_ready_reason(p)
                    };
                    let errors: Vec<&str> = logs
                        .and_then(|l| l.get(&(ns.to_string(), pod_name(p).to_string())))
                        .map(|log| log.lines().filter(|l| l.starts_with('E')).collect::<Vec<_>>())
                        .unwrap_or_default();
                    problems.push(json!({
                        "node": node,
                        "pod": pod_name(p),
                        "ready": is_pod_ready(p),
                        "restarts": restarts(p),
                        "problem": problem,
                        "logErrors": errors.iter().rev().take(3).rev().collect::<Vec<_>>(),
                    }));
                }
                Some(_) => {}
            }
        }
        if problems.is_empty() {
            return Ok(vec![]);
        }
        let down = problems.iter().filter(|p| p["ready"] != json!(true)).count();
        let severity = if instance_mode && down > 0 {
            Severity::Critical
        } else {
            Severity::Warning
        };
        let status = ds.status.as_ref();
        Ok(vec![Finding::new(
            META.id,
            severity,
            format!("{ns}/DaemonSet/{}", ds.metadata.name.as_deref().unwrap_or("kube-proxy")),
            format!(
                "kube-proxy is unhealthy on {} of {} node(s) behind the target group ({}){}",
                problems.len(),
                nodes.len(),
                problems
                    .iter()
                    .filter_map(|p| p["problem"].as_str())
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect::<Vec<_>>()
                    .join(", "),
                if instance_mode {
                    ": NodePort traffic is not forwarded to pods"
                } else {
                    ""
                }
            ),
        )
        .with_evidence(json!({
            "daemonSet": format!("{ns}/{}", ds.metadata.name.as_deref().unwrap_or("kube-proxy")),
            "desired": status.map(|s| s.desired_number_scheduled),
            "ready": status.map(|s| s.number_ready),
            "nodes": problems,
            "targetType": if instance_mode { "instance" } else { "ip" },
        }))
        .with_fix(
            format!("kubectl -n {ns} rollout restart daemonset {ds_name}"),
            META.fix.fix_id(),
        )
        .with_action(FixAction::RolloutRestart {
            api_version: "apps/v1",
            resource_kind: "DaemonSet",
            namespace: ns.to_string(),
            name: ds_name.to_string(),
        })])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixtures::{fires, quiet, scenario};

    #[test]
    fn fires_on_crash_looping_kube_proxy() {
        let findings = fires(&KubeProxyUnhealthy, &scenario("kube-proxy-unhealthy"));
        let f = &findings[0];
        assert_eq!(f.severity, Severity::Critical);
        assert!(f.message.contains("2 of 2"), "{}", f.message);
        assert_eq!(f.fix.as_ref().unwrap().fix_id, Some("restart-kube-proxy"));
        let errors = f.evidence["nodes"][0]["logErrors"].as_array().unwrap();
        assert!(!errors.is_empty());
    }

    #[test]
    fn quiet_when_kube_proxy_is_ready() {
        quiet(&KubeProxyUnhealthy, &scenario("healthy"));
    }
}
