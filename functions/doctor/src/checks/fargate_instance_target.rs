//! `fargate-instance-target`: instance targets in front of pods that run on Fargate, which
//! supports IP targets only.
//!
//! # What it checks
//! A target group of type `instance` (from the Ingress or Service annotation, IngressClassParams
//! or the controller's `--default-target-type`) whose Service's ready pods run on Fargate
//! (node label `eks.amazonaws.com/compute-type: fargate`). Fargate nodes are never registered
//! (the controller's node selector excludes them), so such pods are reached only through the
//! EC2 nodes' NodePort forwarding, if there are any.
//!
//! # Why it matters
//! With every pod on Fargate and `externalTrafficPolicy: Local`, no registered node has a pod:
//! every target fails and the load balancer fails open onto nodes that drop the traffic. With
//! `Cluster` it works only by hopping through EC2 nodes that may disappear. The controller's
//! documentation: Fargate requires `target-type: ip`.
//!
//! # Example
//! Bad: `alb.ingress.kubernetes.io/target-type: instance` with a Fargate profile for the
//! namespace. Good: `target-type: ip`.
//!
//! # Fix safety
//! Manual: switching the target type replaces the target group. The report gives the
//! annotation.
//!
//! # References
//! - <https://docs.aws.amazon.com/eks/latest/userguide/alb-ingress.html> (Fargate: IP targets)
//! - <https://kubernetes-sigs.github.io/aws-load-balancer-controller/latest/guide/ingress/annotations/#target-type>
//! - `pkg/backend/endpoint_utils.go` in kubernetes-sigs/aws-load-balancer-controller (Fargate
//!   nodes are not instance targets)

use std::collections::BTreeSet;

use serde_json::json;

use super::{pod_node, shell_quote, Check, CheckContext, CheckMeta, FixSafety, Inconclusive};
use crate::finding::{Finding, Severity};
use crate::kubernetes::{is_pod_ready, COMPUTE_TYPE_LABEL};

pub struct FargateInstanceTarget;

static META: CheckMeta = CheckMeta {
    id: "fargate-instance-target",
    title: "Instance targets for pods on Fargate",
    runbook_step: "(beyond)",
    fix: FixSafety::Manual,
};

impl Check for FargateInstanceTarget {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    fn run(&self, cx: &CheckContext<'_>) -> Result<Vec<Finding>, Inconclusive> {
        if cx.target_type()? != "instance" {
            return Ok(vec![]);
        }
        let pods: Vec<_> = cx.selected_pods()?.into_iter().filter(|p| is_pod_ready(p)).collect();
        if pods.is_empty() {
            return Ok(vec![]);
        }
        cx.nodes()?;
        let on_fargate = |p: &&&k8s_openapi::api::core::v1::Pod| {
            pod_node(p)
                .and_then(|n| cx.node_by_name(n))
                .and_then(|n| n.metadata.labels.as_ref()?.get(COMPUTE_TYPE_LABEL).cloned())
                .as_deref()
                == Some("fargate")
        };
        let fargate: Vec<&str> = pods
            .iter()
            .filter(on_fargate)
            .filter_map(|p| p.metadata.name.as_deref())
            .collect();
        if fargate.is_empty() {
            return Ok(vec![]);
        }
        let targets = cx.targets()?;
        let registered_nodes: BTreeSet<&str> = targets.iter().filter_map(|t| t.node_name()).collect();
        let elsewhere = pods
            .iter()
            .filter(|p| !on_fargate(p))
            .any(|p| pod_node(p).is_some_and(|n| registered_nodes.contains(n)));
        let backend = cx.backend()?;
        let (object, annotation) = match &backend.ingress {
            Some(ing) => (format!("ingress/{ing}"), "alb.ingress.kubernetes.io/target-type=ip"),
            None => (
                format!("service/{}", backend.service),
                "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type=ip",
            ),
        };
        let etp = cx
            .service()
            .ok()
            .and_then(|s| s.spec.as_ref()?.external_traffic_policy.clone())
            .unwrap_or_else(|| "Cluster".into());
        Ok(vec![Finding::new(
            META.id,
            if elsewhere { Severity::Warning } else { Severity::Critical },
            format!("{}/Service/{}", backend.namespace, backend.service),
            format!(
                "the target group uses instance targets but {} of the Service's {} ready pod(s) run on Fargate, which supports IP targets only{}",
                fargate.len(),
                pods.len(),
                if elsewhere {
                    String::new()
                } else if etp == "Local" {
                    ": with externalTrafficPolicy Local no registered node has a pod, so every target fails".to_string()
                } else {
                    ": they are reached only through the EC2 nodes' NodePort forwarding".to_string()
                }
            ),
        )
        .with_targets(if elsewhere { Vec::new() } else { cx.all_target_ids() })
        .with_evidence(json!({
            "podsOnFargate": fargate,
            "readyPods": pods.len(),
            "externalTrafficPolicy": etp,
            "registeredNodes": registered_nodes,
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
    fn fires_when_every_pod_runs_on_fargate() {
        let findings = fires(&FargateInstanceTarget, &scenario("fargate-instance-target"));
        assert_eq!(findings[0].severity, Severity::Critical);
        assert!(findings[0].fix.as_ref().unwrap().command.contains("nlb-target-type=ip"));
    }

    #[test]
    fn quiet_for_ip_targets_on_fargate_and_ec2_pods() {
        quiet(&FargateInstanceTarget, &scenario("healthy"));
        quiet(&FargateInstanceTarget, &scenario("healthy-rollout-ip-readiness-gates"));
    }
}
