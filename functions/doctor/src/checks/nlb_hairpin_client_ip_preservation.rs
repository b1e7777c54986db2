//! `nlb-hairpin-client-ip-preservation`: clients inside the cluster call an NLB that
//! preserves client IPs, and time out whenever it picks a target on their own node.
//!
//! # What it checks
//! A Network Load Balancer whose target group preserves client IPs
//! ([`crate::network_path::PathModel`]: instance targets, UDP / TCP_UDP, or
//! `preserve_client_ip.enabled`), and pods of the collected namespaces that call it: their
//! environment, arguments or command name the load balancer's DNS name (or the Service's
//! load balancer hostname). The targets on the callers' own nodes are the ones those calls
//! hang on. A warning about traffic: health checks come from the load balancer and pass.
//!
//! # Why it matters
//! With the client's address preserved, a packet from a node to the NLB that lands on the
//! same node arrives with source = destination host and the reply never leaves the node: the
//! connection times out ("NLB loopback / hairpinning"). It looks random: only a share of the
//! calls, depending on which target is picked.
//!
//! # Example
//! Bad: `ORDERS_URL=http://k8s-default-echonlb-....elb.us-east-1.amazonaws.com` in a pod on
//! a registered node, instance targets. Good: the Service's in-cluster name, or
//! `preserve_client_ip.enabled=false`.
//!
//! # Fix safety
//! Manual: turning preservation off changes what every target sees as the client address.
//! The report gives the annotation.
//!
//! # References
//! - <https://docs.aws.amazon.com/elasticloadbalancing/latest/network/load-balancer-troubleshooting.html#loopback-timeout>
//! - <https://docs.aws.amazon.com/elasticloadbalancing/latest/network/edit-target-group-attributes.html#client-ip-preservation>

use std::collections::BTreeSet;

use serde_json::json;

use super::{pod_node, shell_quote, Check, CheckContext, CheckMeta, FixSafety, Inconclusive};
use crate::finding::{Finding, Severity};
use crate::network_path::PathModel;

pub struct NlbHairpinClientIpPreservation;

static META: CheckMeta = CheckMeta {
    id: "nlb-hairpin-client-ip-preservation",
    title: "In-cluster clients of an NLB that preserves client IPs",
    runbook_step: "(beyond)",
    fix: FixSafety::Manual,
};

impl Check for NlbHairpinClientIpPreservation {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    fn run(&self, cx: &CheckContext<'_>) -> Result<Vec<Finding>, Inconclusive> {
        if cx.lb_type()? != "network" {
            return Ok(vec![]);
        }
        let model = PathModel::new(cx)?;
        if !model.client_ip.enabled {
            return Ok(vec![]);
        }
        let mut names: BTreeSet<String> = model.lb.dns_name.iter().map(|d| d.to_ascii_lowercase()).collect();
        if let Ok(Some(svc)) = cx.service_opt() {
            for ing in svc
                .status
                .iter()
                .flat_map(|s| s.load_balancer.iter())
                .flat_map(|l| l.ingress.iter().flatten())
            {
                names.extend(ing.hostname.iter().map(|h| h.to_ascii_lowercase()));
                names.extend(ing.ip.clone());
            }
        }
        names.retain(|n| !n.is_empty());
        if names.is_empty() {
            return Ok(vec![]);
        }
        let pods = cx
            .snapshot
            .kube
            .pods
            .items()
            .map_err(|why| Inconclusive(format!("pods not collected: {why}")))?;
        let mentions = |text: &str| {
            let t = text.to_ascii_lowercase();
            names.iter().any(|n| t.contains(n.as_str()))
        };
        let callers: Vec<(String, String, String)> = pods
            .iter()
            .filter(|p| crate::kubernetes::is_live(p))
            .filter_map(|p| {
                let spec = p.spec.as_ref()?;
                let hit = spec.containers.iter().find_map(|c| {
                    c.env
                        .iter()
                        .flatten()
                        .find(|e| e.value.as_deref().is_some_and(mentions))
                        .map(|e| format!("env {}", e.name))
                        .or_else(|| {
                            c.args
                                .iter()
                                .flatten()
                                .chain(c.command.iter().flatten())
                                .find(|a| mentions(a))
                                .map(|_| "arguments".to_string())
                        })
                        .map(|w| format!("container {} {w}", c.name))
                })?;
                Some((
                    format!(
                        "{}/{}",
                        p.metadata.namespace.as_deref().unwrap_or_default(),
                        p.metadata.name.as_deref().unwrap_or_default()
                    ),
                    pod_node(p).unwrap_or_default().to_string(),
                    hit,
                ))
            })
            .collect();
        if callers.is_empty() {
            return Ok(vec![]);
        }
        let caller_nodes: BTreeSet<&str> = callers.iter().map(|(_, n, _)| n.as_str()).collect();
        let same_node: Vec<String> = cx
            .targets()?
            .iter()
            .filter(|t| t.node_name().is_some_and(|n| caller_nodes.contains(n)))
            .map(|t| t.label())
            .collect();
        if same_node.is_empty() {
            return Ok(vec![]); // no target shares a node with a caller
        }
        let backend = cx.backend()?;
        Ok(vec![Finding::new(
            META.id,
            Severity::Warning,
            cx.arn(),
            format!(
                "the NLB preserves client IPs ({}) and pods inside the cluster call it ({}); their connections time out whenever the NLB picks a target on their own node: {}",
                model.client_ip.basis,
                callers.iter().map(|(p, _, w)| format!("{p} via {w}")).collect::<Vec<_>>().join(", "),
                same_node.join(", ")
            ),
        )
        .with_evidence(json!({
            "clientIpPreservation": model.client_ip,
            "loadBalancerNames": names,
            "callers": callers.iter().map(|(p, n, w)| json!({"pod": p, "node": n, "where": w})).collect::<Vec<_>>(),
            "sameNodeTargets": same_node,
        }))
        .with_fix(
            format!(
                "kubectl -n {} annotate service {} {} --overwrite  # or call the Service's in-cluster name",
                shell_quote(&backend.namespace),
                shell_quote(&backend.service),
                shell_quote("service.beta.kubernetes.io/aws-load-balancer-target-group-attributes=preserve_client_ip.enabled=false")
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
    fn fires_for_an_in_cluster_caller_on_a_target_node() {
        let findings = fires(
            &NlbHairpinClientIpPreservation,
            &scenario("nlb-hairpin-client-ip-preservation"),
        );
        assert_eq!(findings[0].severity, Severity::Warning);
        assert!(findings[0].targets.is_empty(), "health checks are not affected");
    }

    #[test]
    fn quiet_without_callers_or_preservation() {
        quiet(&NlbHairpinClientIpPreservation, &scenario("nlb-local-by-design"));
        quiet(&NlbHairpinClientIpPreservation, &scenario("service-annotation-invalid"));
    }
}
