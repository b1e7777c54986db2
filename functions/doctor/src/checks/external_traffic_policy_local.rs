//! `external-traffic-policy-local`: `externalTrafficPolicy: Local` with instance targets, so
//! nodes without a ready pod fail the health check.
//!
//! # What it checks
//! For instance targets, a Service with `externalTrafficPolicy: Local`: which registered
//! nodes run no ready pod of the Service, and where the health check goes. If it goes to the
//! Service's `healthCheckNodePort`, the failing nodes fail **by design** (kube-proxy answers
//! 503 there so the load balancer avoids them): reported as `info`, not a fault. If it goes to
//! the traffic port (the usual ALB setup, or an NLB TCP check on the traffic port), those
//! nodes drop the check and the load balancer marks them unhealthy: `critical`.
//!
//! # Why it matters
//! `Local` keeps the client source IP but makes each node answer only for its own pods.
//! With fewer pods than nodes, some targets are always unhealthy, and during rollouts all can be.
//!
//! # Example
//! Bad: ALB, `target-type: instance`, Service `externalTrafficPolicy: Local`, two nodes, one pod.
//! Good: `externalTrafficPolicy: Cluster`; or NLB with its health check on `healthCheckNodePort`.
//!
//! # Fix safety
//! Catalogue fix `set-external-traffic-policy-cluster` (patches the Service to `Cluster`).
//! It gives up source-IP preservation, which is why policy must allow it. Proof needed to run
//! unattended: the Nodes were collected (without them the check is inconclusive: which node
//! lacks a pod is unknown), every registered instance maps to a Node, the health check goes
//! to the traffic port (the `healthCheckNodePort` case is by design and gets no fix), and a
//! registered node without a ready pod is failing now. Targets concerned: the nodes without a
//! ready pod.
//!
//! # References
//! - <https://repost.aws/knowledge-center/eks-resolve-failed-health-check-alb-nlb> (externalTrafficPolicy)
//! - <https://kubernetes.io/docs/tasks/access-application-cluster/create-external-load-balancer/#preserving-the-client-source-ip>

use serde_json::{json, Map};

use super::{is_pod_ready, pod_node, shell_quote, Check, CheckContext, CheckMeta, FixSafety, Inconclusive};
use crate::finding::{k8s_resource, Finding, FixAction, Severity};

pub struct ExternalTrafficPolicyLocal;

static META: CheckMeta = CheckMeta {
    id: "external-traffic-policy-local",
    title: "externalTrafficPolicy Local leaves nodes without pods failing",
    runbook_step: "traffic policy",
    fix: FixSafety::Unattended("set-external-traffic-policy-cluster"),
};

impl Check for ExternalTrafficPolicyLocal {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    fn run(&self, cx: &CheckContext<'_>) -> Result<Vec<Finding>, Inconclusive> {
        let backend = cx.backend()?;
        let service = cx.service()?;
        let spec = service.spec.as_ref();
        if spec.and_then(|s| s.external_traffic_policy.as_deref()) != Some("Local") {
            return Ok(vec![]);
        }
        if cx.target_type()? != "instance" {
            return Ok(vec![]); // IP targets bypass kube-proxy: the policy does not apply
        }
        // Which node lacks a pod is only known with the Nodes: without them every target
        // would look podless, and a fix would be a guess.
        cx.nodes()?;
        let pods = cx.selected_pods()?;
        let targets = cx.targets()?;
        let unknown: Vec<&str> = targets.iter().filter(|t| t.node.is_none()).map(|t| t.id()).collect();
        if !targets.is_empty() && unknown.len() == targets.len() {
            return Err(Inconclusive(format!(
                "no Node was found for the registered instances ({}), so which nodes run a ready pod is unknown",
                unknown.join(", ")
            )));
        }
        let without_pod: Vec<_> = targets
            .iter()
            .filter(|t| t.node.is_some())
            .filter(|t| {
                let node = t.node_name();
                !pods
                    .iter()
                    .any(|p| node.is_some() && pod_node(p) == node && is_pod_ready(p))
            })
            .collect();
        if without_pod.is_empty() {
            return Ok(vec![]);
        }
        let hc_node_port = spec.and_then(|s| s.health_check_node_port);
        let hc_port = cx.health_check_port(without_pod[0].health);
        let by_design = hc_node_port.is_some() && hc_port.map(i32::from) == hc_node_port;
        let ns = &backend.namespace;
        let nodes: Vec<_> = without_pod
            .iter()
            .map(|t| json!({ "target": t.id(), "node": t.node_name(), "state": t.state(), "reason": t.reason() }))
            .collect();
        let evidence = json!({
            "externalTrafficPolicy": "Local",
            "targetType": "instance",
            "healthCheckPort": hc_port,
            "healthCheckNodePort": hc_node_port,
            "nodesWithoutReadyPod": nodes,
            "readyPods": pods.iter().filter(|p| is_pod_ready(p)).count(),
            "registeredNodes": targets.len(),
        });
        let resource = k8s_resource(ns, "Service", &backend.service);
        let labels: Vec<String> = without_pod.iter().map(|t| t.label()).collect();
        if by_design {
            return Ok(vec![Finding::new(
                META.id,
                Severity::Info,
                resource,
                format!(
                    "{} node(s) without a ready pod fail the health check by design: Service {ns}/{} uses externalTrafficPolicy Local and the check goes to healthCheckNodePort {}, so the load balancer sends traffic only to nodes with pods ({})",
                    without_pod.len(),
                    backend.service,
                    hc_node_port.unwrap_or_default(),
                    labels.join(", ")
                ),
            )
            .with_targets(without_pod.iter().map(|t| t.id().to_string()))
            .with_evidence(evidence)]);
        }
        let patch = json!({ "spec": { "externalTrafficPolicy": "Cluster" } }).to_string();
        let failing_without_pod = without_pod
            .iter()
            .filter(|t| crate::target_state::is_failing(t.state()))
            .count();
        let (unattended, proof) = if failing_without_pod > 0 && unknown.is_empty() {
            (
                true,
                format!("Nodes collected; the check goes to the traffic port, not healthCheckNodePort; {failing_without_pod} registered node(s) without a ready pod fail"),
            )
        } else if !unknown.is_empty() {
            (
                false,
                format!(
                    "no Node found for {}: which nodes lack a pod is not fully known",
                    unknown.join(", ")
                ),
            )
        } else {
            (
                false,
                "no target is failing for lack of a local pod right now".to_string(),
            )
        };
        Ok(vec![Finding::new(
            META.id,
            Severity::Critical,
            resource,
            format!(
                "Service {ns}/{} uses externalTrafficPolicy Local with instance targets and the health check goes to port {}, not healthCheckNodePort: {} node(s) without a ready pod drop it and fail ({}); switching to Cluster fixes it but the pods stop seeing client source IPs",
                backend.service,
                hc_port.map_or("?".to_string(), |p| p.to_string()),
                without_pod.len(),
                labels.join(", ")
            ),
        )
        .with_targets(without_pod.iter().map(|t| t.id().to_string()))
        .with_evidence(evidence)
        .with_fix(
            format!(
                "kubectl -n {ns} patch service {} -p {}  # loses client source IPs",
                shell_quote(&backend.service),
                shell_quote(&patch)
            ),
            META.fix.fix_id(),
        )
        .with_proof(unattended, proof)
        .with_action(FixAction::PatchObject {
            api_version: "v1",
            resource_kind: "Service",
            namespace: ns.clone(),
            name: backend.service.clone(),
            patch: json!({ "spec": { "externalTrafficPolicy": "Cluster" } }),
            expect: Map::from_iter([("/spec/externalTrafficPolicy".to_string(), json!("Local"))]),
        })])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixtures::{fires, quiet, scenario};

    #[test]
    fn fires_on_alb_instance_targets_with_local_policy() {
        let findings = fires(&ExternalTrafficPolicyLocal, &scenario("external-traffic-policy-local"));
        let f = &findings[0];
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(
            f.fix.as_ref().unwrap().fix_id,
            Some("set-external-traffic-policy-cluster")
        );
        assert_eq!(f.evidence["nodesWithoutReadyPod"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn nlb_checking_health_check_node_port_is_by_design() {
        let findings = fires(&ExternalTrafficPolicyLocal, &scenario("nlb-local-by-design"));
        assert_eq!(findings[0].severity, Severity::Info);
        assert!(findings[0].message.contains("by design"), "{}", findings[0].message);
        assert!(findings[0].fix.is_none());
    }

    #[test]
    fn without_nodes_it_is_inconclusive_and_offers_no_fix() {
        let err =
            crate::checks::fixtures::run(&ExternalTrafficPolicyLocal, &scenario("nodes-not-collected")).unwrap_err();
        assert!(err.0.contains("Nodes not collected"), "{err}");
    }

    #[test]
    fn the_fix_is_unattended_only_with_a_failing_podless_node() {
        let f = &fires(&ExternalTrafficPolicyLocal, &scenario("external-traffic-policy-local"))[0];
        assert_eq!(f.fix.as_ref().unwrap().unattended, Some(true));
        assert!(f.message.contains("client source IPs"), "{}", f.message);
        let mut snap = scenario("external-traffic-policy-local");
        if let crate::snapshot::Collected::Present(health) = &mut snap.aws.target_health {
            for t in health.iter_mut() {
                t.target_health = Default::default();
                t.target_health.state = "healthy".into();
            }
        }
        let f = &fires(&ExternalTrafficPolicyLocal, &snap)[0];
        assert_eq!(f.fix.as_ref().unwrap().unattended, Some(false));
    }

    #[test]
    fn quiet_with_cluster_policy() {
        quiet(&ExternalTrafficPolicyLocal, &scenario("healthy"));
    }
}
