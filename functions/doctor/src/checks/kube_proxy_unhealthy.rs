//! `kube-proxy-unhealthy`: kube-proxy is not ready, missing or restarting on the nodes
//! behind the target group.
//!
//! # What it checks
//! The `kube-proxy` DaemonSet (kube-system) and its pods on the nodes that host the targets:
//! a pod exists on each node where the DaemonSet places one, it is Running and Ready, and it
//! has not restarted in the last 10 minutes (judged on the last termination time, not the
//! lifetime restart count). Nodes the DaemonSet never places a pod on are not "kube-proxy
//! down": Fargate and EKS Auto Mode nodes (kube-proxy is part of the node), nodes its
//! nodeSelector or required affinity excludes, and nodes with taints it does not tolerate.
//! Error lines from its log (klog `E....`) are attached as evidence. Targets concerned: the
//! instance targets on the affected nodes (IP targets bypass kube-proxy: a warning that
//! concerns none).
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
//! runbook's last step, with a cooldown so flapping alarms never loop it. Unattended only
//! when kube-proxy pods exist on nodes behind failing targets and are failing now (not
//! Ready, or restarted in the last 10 minutes); a node with no kube-proxy pod is not helped
//! by a restart, so it gets no fix.
//!
//! # References
//! - <https://repost.aws/knowledge-center/eks-resolve-failed-health-check-alb-nlb> (restart kube-proxy)
//! - <https://docs.aws.amazon.com/eks/latest/userguide/managing-kube-proxy.html>

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::SignedDuration;
use serde_json::json;

use super::pod_not_ready::not_ready_reason;
use super::{is_pod_ready, pod_name, pod_node, Check, CheckContext, CheckMeta, FixSafety, Inconclusive};
use crate::finding::{Finding, FixAction, Severity};
use crate::kubernetes;

pub struct KubeProxyUnhealthy;

static META: CheckMeta = CheckMeta {
    id: "kube-proxy-unhealthy",
    title: "kube-proxy unhealthy on target nodes",
    runbook_step: "restart kube-proxy",
    fix: FixSafety::Unattended("restart-kube-proxy"),
};

/// A restart within this window counts as failing now.
const RECENT: SignedDuration = SignedDuration::from_mins(10);
const NAMESPACE: &str = "kube-system";
const LABEL: (&str, &str) = ("k8s-app", "kube-proxy");

fn is_kube_proxy(labels: Option<&std::collections::BTreeMap<String, String>>, name: Option<&str>) -> bool {
    labels.and_then(|l| l.get(LABEL.0)).map(String::as_str) == Some(LABEL.1) || name == Some("kube-proxy")
}

impl Check for KubeProxyUnhealthy {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    fn run(&self, cx: &CheckContext<'_>) -> Result<Vec<Finding>, Inconclusive> {
        let kube = &cx.snapshot.kube;
        // Fargate and EKS Auto Mode nodes never run a kube-proxy pod: nothing to check there.
        let target_nodes: Vec<_> = cx.targets()?.iter().filter_map(|t| t.node).collect();
        let builtin = |n: &&k8s_openapi::api::core::v1::Node| {
            matches!(
                n.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(kubernetes::COMPUTE_TYPE_LABEL))
                    .map(String::as_str),
                Some("fargate" | "auto")
            )
        };
        if !target_nodes.is_empty() && target_nodes.iter().all(builtin) {
            return Ok(vec![]);
        }
        // A CNI that replaces kube-proxy forwards NodePorts itself: no kube-proxy to judge
        // (kube-proxy-replacement-nodeport-broken looks at that path).
        if let crate::dataplane::NodePortForwarder::Replacement(_) = crate::dataplane::node_port_forwarder(cx) {
            return Ok(vec![]);
        }
        let daemon_sets = cx.scoped("DaemonSet", &kube.daemon_sets, NAMESPACE, &[LABEL])?;
        let Some(ds) = daemon_sets
            .iter()
            .find(|d| is_kube_proxy(d.metadata.labels.as_ref(), d.metadata.name.as_deref()))
        else {
            return Err(Inconclusive::new(
                "no kube-proxy DaemonSet found (a kube-proxy replacement such as Cilium may be in use)",
            ));
        };
        let ns = ds.metadata.namespace.as_deref().unwrap_or(NAMESPACE);
        let ds_name = ds.metadata.name.as_deref().unwrap_or("kube-proxy");
        let pods = cx.scoped("Pod", &kube.pods, ns, &[LABEL])?;
        let proxies: Vec<&Pod> = pods
            .iter()
            .filter(|p| p.metadata.namespace.as_deref() == Some(ns))
            .filter(|p| is_kube_proxy(p.metadata.labels.as_ref(), None))
            .filter(|p| kubernetes::is_live(p))
            .collect();
        let instance_mode = cx.target_type()? == "instance";
        let targets = cx.targets()?;
        let failing: BTreeSet<String> = cx
            .failing_targets()?
            .iter()
            .filter_map(|t| t.node_name().map(str::to_string))
            .collect();
        let mut nodes: BTreeSet<String> = targets
            .iter()
            .filter_map(|t| t.node_name().map(str::to_string))
            .collect();
        if nodes.is_empty() {
            nodes = proxies.iter().filter_map(|p| pod_node(p).map(str::to_string)).collect();
        }
        let now = cx.now();
        let logs = kube.logs.present();
        let mut problems = Vec::new();
        let mut not_expected = Vec::new();
        for node in &nodes {
            match proxies.iter().find(|p| pod_node(p) == Some(node.as_str())) {
                None => {
                    // Is a kube-proxy pod expected there at all?
                    match cx.node_by_name(node) {
                        Some(n) => match kubernetes::daemon_set_skips_node(ds, n) {
                            Some(why) => not_expected.push(json!({ "node": node, "why": why })),
                            None => problems.push(json!({
                                "node": node, "problem": "no kube-proxy pod on the node", "failingNow": false,
                            })),
                        },
                        None => not_expected.push(json!({ "node": node, "why": "the Node was not collected" })),
                    }
                }
                Some(p) if !is_pod_ready(p) || kubernetes::restarting_recently(p, now, RECENT) => {
                    let problem = if is_pod_ready(p) {
                        format!("restarted within the last {} minutes", RECENT.as_mins())
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
                        "restarts": kubernetes::restarts(p),
                        "lastTermination": kubernetes::last_termination(p).map(|t| t.to_string()),
                        "problem": problem,
                        "failingNow": true,
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
        let problem_nodes: BTreeSet<String> = problems
            .iter()
            .filter_map(|p| p["node"].as_str().map(str::to_string))
            .collect();
        let failing_now_on_failing_nodes: Vec<&str> = problems
            .iter()
            .filter(|p| p["failingNow"] == json!(true))
            .filter_map(|p| p["node"].as_str())
            .filter(|n| failing.contains(*n))
            .collect();
        let (unattended, proof) = if !instance_mode {
            (false, "IP targets do not go through kube-proxy".to_string())
        } else if failing_now_on_failing_nodes.is_empty() {
            (
                false,
                "no kube-proxy pod on a node behind a failing target is failing now (a missing pod is not fixed by a restart)".to_string(),
            )
        } else {
            (
                true,
                format!(
                    "kube-proxy pods are failing now on {} node(s) behind failing targets",
                    failing_now_on_failing_nodes.len()
                ),
            )
        };
        let status = ds.status.as_ref();
        Ok(vec![Finding::new(
            META.id,
            severity,
            format!("{ns}/DaemonSet/{ds_name}"),
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
        .with_targets(if instance_mode {
            cx.target_ids_on_nodes(&problem_nodes)
        } else {
            Vec::new()
        })
        .with_evidence(json!({
            "daemonSet": format!("{ns}/{ds_name}"),
            "desired": status.map(|s| s.desired_number_scheduled),
            "ready": status.map(|s| s.number_ready),
            "nodes": problems,
            "nodesWithoutKubeProxyByDesign": not_expected,
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
        })
        .with_proof(unattended, proof)])
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
        // The realistic base: kube-proxy on node 2 restarted once at boot, over an hour ago.
        quiet(&KubeProxyUnhealthy, &scenario("healthy"));
    }

    #[test]
    fn quiet_where_nodes_run_no_kube_proxy_by_design() {
        // A pod on a Fargate node (the DaemonSet's affinity excludes Fargate), and a node
        // being replaced by Karpenter.
        quiet(&KubeProxyUnhealthy, &scenario("healthy-rollout-ip-readiness-gates"));
        quiet(&KubeProxyUnhealthy, &scenario("healthy-node-rotation"));
    }

    #[test]
    fn quiet_on_eks_auto_mode_nodes_without_a_daemonset() {
        quiet(&KubeProxyUnhealthy, &scenario("eks-auto-mode-alb"));
    }

    #[test]
    fn a_missing_pod_is_reported_but_never_restarted_unattended() {
        let mut snap = scenario("healthy");
        if let crate::snapshot::Collected::Present(pods) = &mut snap.kube.pods {
            pods.retain(|p| p.metadata.name.as_deref() != Some("kube-proxy-9pl4n"));
        }
        let f = &fires(&KubeProxyUnhealthy, &snap)[0];
        assert!(f.message.contains("no kube-proxy pod"), "{}", f.message);
        assert_eq!(f.fix.as_ref().unwrap().unattended, Some(false));
    }

    #[test]
    fn the_crash_loop_is_proven_for_an_unattended_restart() {
        let f = &fires(&KubeProxyUnhealthy, &scenario("kube-proxy-unhealthy"))[0];
        assert_eq!(f.fix.as_ref().unwrap().unattended, Some(true), "{:?}", f.fix);
        assert_eq!(f.targets.len(), 2);
    }
}
