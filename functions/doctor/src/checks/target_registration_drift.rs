//! `target-registration-drift`: the registered targets differ from the ready pods / nodes.
//!
//! # What it checks
//! IP targets: registered addresses against the IPs of the Service's ready pods (stale =
//! registered but no ready pod has it; missing = a ready pod not registered). Instance
//! targets: registered instances against the cluster's Nodes (stale = no Node for the
//! instance; missing = a Ready node, not excluded from load balancers, not registered).
//! Draining targets are being deregistered and are ignored. Also: a controller-managed target
//! group with no TargetGroupBinding left, so nothing keeps its registrations in sync.
//!
//! # Why it matters
//! After a rollout or a node replacement, stale targets point at addresses nobody answers on
//! (unhealthy) while the new pods get no traffic. The usual causes are a controller that is
//! down or denied (see `lb-controller-errors`) or a TargetGroupBinding deleted by hand.
//!
//! # Example
//! Bad: registered `192.168.72.31`, pods now at `192.168.75.12`. Good: registered IPs =
//! ready pod IPs.
//!
//! # Fix safety
//! Manual: the report gives the `aws elbv2 deregister-targets` for stale targets, or the
//! no-op annotation that makes the controller rebuild a deleted binding.
//!
//! # References
//! - <https://kubernetes-sigs.github.io/aws-load-balancer-controller/latest/guide/targetgroupbinding/targetgroupbinding/>
//! - <https://docs.aws.amazon.com/elasticloadbalancing/latest/application/target-group-register-targets.html>

use std::collections::BTreeSet;

use serde_json::json;

use super::{is_node_ready, is_pod_ready, node_instance_id, Check, CheckContext, CheckMeta, FixSafety, Inconclusive};
use crate::finding::{Finding, Severity};
use crate::resolve::{ResolvedBy, TAG_INGRESS_RESOURCE, TAG_SERVICE_STACK};

pub struct TargetRegistrationDrift;

static META: CheckMeta = CheckMeta {
    id: "target-registration-drift",
    title: "Registered targets differ from the ready pods or nodes",
    runbook_step: "(beyond)",
    fix: FixSafety::Manual,
};

const EXCLUDE_LABEL: &str = "node.kubernetes.io/exclude-from-external-load-balancers";

impl Check for TargetRegistrationDrift {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    fn run(&self, cx: &CheckContext<'_>) -> Result<Vec<Finding>, Inconclusive> {
        let tg = cx.target_group()?;
        let health = cx.target_health()?;
        let registered: Vec<_> = health
            .iter()
            .filter(|h| !h.target_health.state.contains("draining"))
            .collect();
        let registered_ids: BTreeSet<&str> = registered.iter().map(|h| h.target.id.as_str()).collect();
        let ip_mode = cx.target_type()? == "ip";

        let (expected, kind): (BTreeSet<String>, &str) = if ip_mode {
            let pods = cx.selected_pods()?;
            let ips = pods
                .iter()
                .filter(|p| is_pod_ready(p))
                .filter_map(|p| p.status.as_ref()?.pod_ip.clone())
                .collect();
            (ips, "ready pod IPs")
        } else {
            let nodes = cx.nodes()?;
            let eligible = nodes
                .iter()
                .filter(|n| is_node_ready(n))
                .filter(|n| {
                    !n.metadata
                        .labels
                        .as_ref()
                        .is_some_and(|l| l.contains_key(EXCLUDE_LABEL))
                })
                .filter_map(|n| node_instance_id(n).map(str::to_string))
                .collect();
            (eligible, "Ready nodes")
        };
        let stale: Vec<&str> = if ip_mode {
            registered_ids
                .iter()
                .copied()
                .filter(|id| !expected.contains(*id))
                .collect()
        } else {
            let known: BTreeSet<&str> = cx.nodes()?.iter().filter_map(node_instance_id).collect();
            registered_ids
                .iter()
                .copied()
                .filter(|id| !known.contains(id))
                .collect()
        };
        let missing: Vec<&str> = expected
            .iter()
            .map(String::as_str)
            .filter(|id| !registered_ids.contains(id))
            .collect();

        let tags = cx.snapshot.aws.tags.present();
        let controller_managed =
            tags.is_some_and(|t| t.contains_key(TAG_SERVICE_STACK) || t.contains_key(TAG_INGRESS_RESOURCE));
        let binding_missing = controller_managed
            && cx.snapshot.kube.target_group_bindings.items().is_ok()
            && cx
                .backend()
                .is_ok_and(|b| b.resolved_by != ResolvedBy::TargetGroupBinding);

        if stale.is_empty() && missing.is_empty() && !binding_missing {
            return Ok(vec![]);
        }
        let stale_unhealthy = registered
            .iter()
            .any(|h| stale.contains(&h.target.id.as_str()) && h.target_health.state == "unhealthy");
        let severity = if stale_unhealthy || binding_missing {
            Severity::Critical
        } else {
            Severity::Warning
        };
        let mut parts = Vec::new();
        if binding_missing {
            parts.push("no TargetGroupBinding exists for this controller-managed target group, so nothing keeps its registrations in sync".to_string());
        }
        if !stale.is_empty() {
            parts.push(format!(
                "{} registered target(s) match no {kind} ({})",
                stale.len(),
                stale.join(", ")
            ));
        }
        if !missing.is_empty() {
            parts.push(format!(
                "{} of the {kind} are not registered ({})",
                missing.len(),
                missing.join(", ")
            ));
        }
        let fix = if binding_missing {
            match cx.backend() {
                Ok(b) => {
                    let (kind, name) = match &b.ingress {
                        Some(ing) => ("ingress", ing.as_str()),
                        None => ("service", b.service.as_str()),
                    };
                    format!(
                        "kubectl -n {} annotate {kind} {name} eks-lb-doctor/reconcile-requested=\"$(date -u +%FT%TZ)\" --overwrite  # any change makes the controller rebuild its TargetGroupBinding",
                        b.namespace
                    )
                }
                Err(_) => "kubectl get targetgroupbindings -A".to_string(),
            }
        } else if !stale.is_empty() {
            let targets: Vec<String> = registered
                .iter()
                .filter(|h| stale.contains(&h.target.id.as_str()))
                .map(|h| match h.target.port {
                    Some(p) => format!("Id={},Port={p}", h.target.id),
                    None => format!("Id={}", h.target.id),
                })
                .collect();
            format!(
                "aws elbv2 deregister-targets --target-group-arn {} --targets {}",
                tg.target_group_arn,
                targets.join(" ")
            )
        } else {
            "kubectl -n kube-system logs deploy/aws-load-balancer-controller --tail=200".to_string()
        };
        Ok(vec![Finding::new(
            META.id,
            severity,
            tg.target_group_arn.clone(),
            parts.join("; "),
        )
        .with_evidence(json!({
            "targetType": if ip_mode { "ip" } else { "instance" },
            "registered": registered_ids,
            "expected": expected,
            "stale": stale,
            "missing": missing,
            "targetGroupBindingMissing": binding_missing,
        }))
        .with_fix(fix, None)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixtures::{fires, quiet, scenario};

    #[test]
    fn fires_on_stale_ips_and_a_deleted_binding() {
        let findings = fires(&TargetRegistrationDrift, &scenario("target-registration-drift"));
        let f = &findings[0];
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(f.evidence["targetGroupBindingMissing"], true);
        assert_eq!(f.evidence["stale"], json!(["192.168.101.44", "192.168.72.31"]));
        assert_eq!(f.evidence["missing"], json!(["192.168.110.7", "192.168.75.12"]));
    }

    #[test]
    fn quiet_when_registrations_match() {
        quiet(&TargetRegistrationDrift, &scenario("healthy"));
    }
}
