//! `kube-proxy-replacement-nodeport-broken`: no kube-proxy, a CNI replacing it, and NodePort
//! forwarding across nodes broken: only the nodes hosting a pod pass the health check.
//!
//! # What it checks
//! Instance targets with `externalTrafficPolicy: Cluster`, where what forwards NodePorts is a
//! kube-proxy replacement ([`crate::dataplane::node_port_forwarder`]: no kube-proxy DaemonSet,
//! and Cilium with `kube-proxy-replacement` set). With `Cluster` every node must forward the
//! NodePort to a pod anywhere; when exactly the nodes without a ready backend pod fail and
//! every node with one passes, the replacement's cross-node forwarding is what is broken.
//!
//! # Why it matters
//! kube-proxy-unhealthy looks for kube-proxy pods that are not there by design; the pods and
//! the Service are fine. Cilium's eBPF NodePort needs its own settings (the NodePort feature,
//! the devices it attaches to, tunnelling or native routing to reach other nodes' pods); a
//! node that cannot reach the others' pods fails every check that lands on it.
//!
//! # Example
//! Bad: 3 nodes, pods on 1, cilium `kube-proxy-replacement: "true"`, 2 targets
//! `Target.Timeout`. Good: every node healthy, or IP targets.
//!
//! # Fix safety
//! Manual: the CNI's configuration is the cluster's. The report gives the switch to IP
//! targets, which bypasses NodePorts altogether.
//!
//! # References
//! - <https://docs.cilium.io/en/stable/network/kubernetes/kubeproxy-free/>
//! - <https://kubernetes.io/docs/reference/networking/virtual-ips/#external-traffic-policy>
//! - <https://kubernetes-sigs.github.io/aws-load-balancer-controller/latest/guide/ingress/annotations/#target-type>

use std::collections::BTreeSet;

use serde_json::json;

use super::{pod_node, shell_quote, Check, CheckContext, CheckMeta, FixSafety, Inconclusive};
use crate::dataplane::{node_port_forwarder, NodePortForwarder};
use crate::finding::{Finding, Severity};
use crate::kubernetes::is_pod_ready;
use crate::target_state::is_failing;

pub struct KubeProxyReplacementNodeportBroken;

static META: CheckMeta = CheckMeta {
    id: "kube-proxy-replacement-nodeport-broken",
    title: "kube-proxy replacement does not forward NodePorts across nodes",
    runbook_step: "restart kube-proxy",
    fix: FixSafety::Manual,
};

impl Check for KubeProxyReplacementNodeportBroken {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    fn run(&self, cx: &CheckContext<'_>) -> Result<Vec<Finding>, Inconclusive> {
        if cx.target_type()? != "instance" {
            return Ok(vec![]);
        }
        let by = match node_port_forwarder(cx) {
            NodePortForwarder::KubeProxy => return Ok(vec![]),
            NodePortForwarder::Replacement(by) => by,
            NodePortForwarder::Unknown(why) => {
                return Err(Inconclusive(format!("what forwards NodePorts is not known: {why}")))
            }
        };
        let service = cx.service()?;
        if service.spec.as_ref().and_then(|s| s.external_traffic_policy.as_deref()) == Some("Local") {
            return Ok(vec![]); // only nodes with a pod are meant to pass
        }
        let with_pods: BTreeSet<String> = cx
            .selected_pods()?
            .iter()
            .filter(|p| is_pod_ready(p))
            .filter_map(|p| pod_node(p).map(str::to_string))
            .collect();
        let targets = cx.targets()?;
        let failing: Vec<_> = targets.iter().filter(|t| is_failing(t.state())).collect();
        if failing.is_empty() || with_pods.is_empty() {
            return Ok(vec![]);
        }
        let failing_without_pod = failing
            .iter()
            .all(|t| t.node_name().is_some_and(|n| !with_pods.contains(n)));
        let healthy_with_pod = targets
            .iter()
            .filter(|t| t.node_name().is_some_and(|n| with_pods.contains(n)))
            .all(|t| t.state() == "healthy");
        if !(failing_without_pod && healthy_with_pod) {
            return Ok(vec![]);
        }
        let backend = cx.backend()?;
        let (object, annotation) = match &backend.ingress {
            Some(ing) => (format!("ingress/{ing}"), "alb.ingress.kubernetes.io/target-type=ip"),
            None => (
                format!("service/{}", backend.service),
                "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type=ip",
            ),
        };
        Ok(vec![Finding::new(
            META.id,
            Severity::Critical,
            format!("{}/Service/{}", backend.namespace, backend.service),
            format!(
                "no kube-proxy runs and {by} forwards NodePorts, but only the nodes hosting a pod pass the health check: {} target(s) on nodes without a pod fail although externalTrafficPolicy is Cluster",
                failing.len()
            ),
        )
        .with_targets(failing.iter().map(|t| t.id().to_string()))
        .with_evidence(json!({
            "forwarder": by,
            "nodesWithPods": with_pods,
            "failingNodes": failing.iter().filter_map(|t| t.node_name()).collect::<Vec<_>>(),
        }))
        .with_fix(
            format!(
                "kubectl -n {} annotate {} {} --overwrite",
                shell_quote(&backend.namespace),
                shell_quote(&object),
                shell_quote(annotation)
            ),
            None,
        )])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixtures::{fires, quiet, scenario};

    #[test]
    fn fires_when_only_nodes_with_pods_pass() {
        let findings = fires(
            &KubeProxyReplacementNodeportBroken,
            &scenario("kube-proxy-replacement-nodeport-broken"),
        );
        assert!(findings[0].message.contains("Cilium"), "{}", findings[0].message);
        assert_eq!(findings[0].targets, ["i-0a1b2c3d4e5f6a002"]);
    }

    #[test]
    fn quiet_with_kube_proxy() {
        quiet(&KubeProxyReplacementNodeportBroken, &scenario("healthy"));
        quiet(&KubeProxyReplacementNodeportBroken, &scenario("kube-proxy-unhealthy"));
    }
}
