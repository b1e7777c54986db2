//! `target-registration-drift`: the registered targets differ from the ready pods / nodes.
//!
//! # What it checks
//! What the controller would register against what is registered, decided as the
//! controller decides (`crate::controller`). IP targets: the Service's pods that are ready
//! endpoints, or whose containers are ready on a Ready node (pods waiting on the
//! controller's readiness gate are registered on purpose); stale = registered but no such
//! pod has the address, missing = such a pod not registered. Instance targets: nodes that
//! are Ready, not excluded (`exclude-from-external-load-balancers`, Fargate, master), not
//! being removed (Cluster Autoscaler / Karpenter taints) and inside the binding's
//! `nodeSelector`; stale = a registered instance with no Node, missing = such a node not
//! registered. Draining targets are being deregistered and are ignored. Also: a
//! controller-managed target group with no TargetGroupBinding left, so nothing keeps its
//! registrations in sync. Also: registered addresses the load balancer reports as
//! `Target.IpUnusable` (reserved for a load balancer). A target whose instance is tagged for
//! another cluster is that cluster's: in a multi-cluster target group (the binding's
//! `multiClusterTargetGroup`, v2.10+) it is never stale here; in one not marked so, the two
//! clusters' controllers deregister each other's targets, which is reported. Targets
//! concerned: the stale, unusable and conflicting ones.
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
//! - <https://kubernetes-sigs.github.io/aws-load-balancer-controller/latest/guide/targetgroupbinding/spec/> (multiClusterTargetGroup, nodeSelector)

use std::collections::BTreeSet;

use serde_json::json;

use super::{
    is_pod_ready, node_instance_id, pod_ips, pod_node, Check, CheckContext, CheckMeta, FixSafety, Inconclusive,
};
use crate::finding::{Finding, Severity};
use crate::resolve::{ResolvedBy, TAG_INGRESS_RESOURCE, TAG_SERVICE_STACK};
use crate::{controller, target_state};

pub struct TargetRegistrationDrift;

static META: CheckMeta = CheckMeta {
    id: "target-registration-drift",
    title: "Registered targets differ from the ready pods or nodes",
    runbook_step: "(beyond)",
    fix: FixSafety::Manual,
};

/// The target group is shared across clusters: the binding's `multiClusterTargetGroup`, or
/// the annotation that sets it.
fn multi_cluster(cx: &CheckContext<'_>) -> bool {
    let arn = cx.arn();
    let binding = cx
        .snapshot
        .kube
        .target_group_bindings
        .items()
        .unwrap_or_default()
        .iter()
        .any(|b| {
            b.spec.target_group_arn.as_deref() == Some(arn.as_str()) && b.spec.multi_cluster_target_group == Some(true)
        });
    let annotated = cx.service().ok().is_some_and(|s| {
        s.metadata.annotations.as_ref().is_some_and(|a| {
            a.get("service.beta.kubernetes.io/aws-load-balancer-multi-cluster-target-group")
                .map(String::as_str)
                == Some("true")
                || a.get("alb.ingress.kubernetes.io/multi-cluster-target-group")
                    .map(String::as_str)
                    == Some("true")
        })
    });
    binding || annotated
}

/// The EKS cluster a registered target's instance belongs to, from its tags.
fn target_cluster<'a>(cx: &CheckContext<'a>, id: &str) -> Option<&'a str> {
    let instance_id = if id.starts_with("i-") {
        id.to_string()
    } else {
        cx.snapshot
            .aws
            .network_interfaces
            .items()
            .ok()?
            .iter()
            .find(|e| e.has_ip(id))?
            .attachment
            .as_ref()?
            .instance_id
            .clone()?
    };
    let instance = cx.instance_by_id(&instance_id)?;
    instance.tag("eks:cluster-name").or_else(|| {
        instance
            .tags
            .iter()
            .find_map(|t| t.key.strip_prefix("kubernetes.io/cluster/"))
    })
}

impl Check for TargetRegistrationDrift {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    fn run(&self, cx: &CheckContext<'_>) -> Result<Vec<Finding>, Inconclusive> {
        let tg = cx.target_group()?;
        let health = cx.target_health()?;
        // Draining targets are being deregistered already.
        let registered: Vec<_> = health
            .iter()
            .filter(|h| !target_state::is_draining(&h.target_health.state))
            .collect();
        let registered_ids: BTreeSet<&str> = registered.iter().map(|h| h.target.id.as_str()).collect();
        let ip_mode = cx.target_type()? == "ip";

        let (expected, kind): (BTreeSet<String>, &str) = if ip_mode {
            // The controller registers ready endpoints, and pods whose containers are ready
            // on a Ready node (those waiting on a readiness gate): controller::pod_registrable.
            let pods = cx.selected_pods()?;
            let ips = pods
                .iter()
                .filter(|p| {
                    let node = pod_node(p).and_then(|n| cx.node_by_name(n));
                    controller::pod_registrable(p, is_pod_ready(p), node)
                })
                .flat_map(|p| pod_ips(p).map(str::to_string).collect::<Vec<_>>())
                .collect();
            (ips, "registrable pod IPs")
        } else {
            let nodes = cx.nodes()?;
            let arn = cx.arn();
            let binding_selector = cx
                .snapshot
                .kube
                .target_group_bindings
                .items()
                .unwrap_or_default()
                .iter()
                .find(|b| b.spec.target_group_arn.as_deref() == Some(arn.as_str()))
                .and_then(|b| b.spec.node_selector.as_ref());
            let eligible = nodes
                .iter()
                .filter(|n| controller::node_not_registrable(n, binding_selector).is_none())
                .filter_map(|n| node_instance_id(n).map(str::to_string))
                .collect();
            (eligible, "registrable nodes")
        };
        let unmatched: Vec<&str> = if ip_mode {
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
        // Targets of another cluster (by the instance's cluster tag): in a multi-cluster
        // target group they are the other controller's, never stale here; in one that is not
        // marked multi-cluster, the two controllers deregister each other's targets.
        let ours = cx
            .snapshot
            .cluster_name
            .clone()
            .or_else(|| cx.resolution.cluster.clone());
        let multi_cluster = multi_cluster(cx);
        let mut foreign: Vec<(&str, String)> = Vec::new();
        let mut stale: Vec<&str> = Vec::new();
        for id in unmatched {
            match target_cluster(cx, id) {
                Some(other) if ours.as_deref().is_some_and(|o| o != other) => foreign.push((id, other.to_string())),
                None if multi_cluster => foreign.push((id, "another cluster".into())),
                _ => stale.push(id),
            }
        }
        let foreign_conflict = !multi_cluster && !foreign.is_empty();
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

        // Addresses the load balancer refuses as targets (reserved for a load balancer).
        let unusable: Vec<&str> = registered
            .iter()
            .filter(|h| h.target_health.reason.as_deref() == Some("Target.IpUnusable"))
            .map(|h| h.target.id.as_str())
            .collect();
        if stale.is_empty() && missing.is_empty() && !binding_missing && unusable.is_empty() && !foreign_conflict {
            return Ok(vec![]);
        }
        let stale_unhealthy = registered
            .iter()
            .any(|h| stale.contains(&h.target.id.as_str()) && target_state::is_failing(&h.target_health.state));
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
        if foreign_conflict {
            parts.push(format!(
                "{} registered target(s) belong to another cluster ({}) but the target group is not marked multi-cluster: each cluster's controller deregisters the other's targets",
                foreign.len(),
                foreign.iter().map(|(id, c)| format!("{id}: {c}")).collect::<Vec<_>>().join(", ")
            ));
        }
        if !unusable.is_empty() {
            parts.push(format!(
                "{} registered address(es) cannot be targets: Target.IpUnusable, the address is reserved for a load balancer ({})",
                unusable.len(),
                unusable.join(", ")
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
            "unusable": unusable,
            "multiClusterTargetGroup": multi_cluster,
            "otherClusters": foreign.iter().map(|(id, c)| json!({ "target": id, "cluster": c })).collect::<Vec<_>>(),
        }))
        .with_targets(
            stale.iter().chain(&unusable).map(|s| s.to_string()).chain(
                foreign
                    .iter()
                    .filter(|_| foreign_conflict)
                    .map(|(id, _)| id.to_string()),
            ),
        )
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
    fn an_unusable_address_is_a_registration_problem() {
        let mut snap = scenario("healthy-rollout-ip-readiness-gates");
        if let crate::snapshot::Collected::Present(health) = &mut snap.aws.target_health {
            let t = health.iter_mut().find(|t| t.target.id == "192.168.72.31").unwrap();
            t.target_health.state = "unused".into();
            t.target_health.reason = Some("Target.IpUnusable".into());
        }
        let findings = fires(&TargetRegistrationDrift, &snap);
        assert_eq!(findings[0].evidence["unusable"], json!(["192.168.72.31"]));
        assert_eq!(findings[0].targets, ["192.168.72.31"]);
    }

    #[test]
    fn quiet_mid_rollout_with_readiness_gates_and_a_draining_target() {
        // The new pod waits on its gate (registered, initial); a scaled-down pod's target drains.
        quiet(
            &TargetRegistrationDrift,
            &scenario("healthy-rollout-ip-readiness-gates"),
        );
        quiet(&TargetRegistrationDrift, &scenario("healthy-node-rotation"));
    }

    #[test]
    fn another_clusters_targets_are_not_stale_in_a_multi_cluster_target_group() {
        quiet(&TargetRegistrationDrift, &scenario("multi-cluster-target-group"));
        quiet(&TargetRegistrationDrift, &scenario("tgb-node-selector"));
        let f = &fires(
            &TargetRegistrationDrift,
            &scenario("shared-target-group-without-multi-cluster"),
        )[0];
        assert_eq!(f.targets, ["i-0b2c3d4e5f6a7b001"]);
        assert_eq!(f.evidence["stale"], json!([]));
    }

    #[test]
    fn quiet_when_registrations_match() {
        quiet(&TargetRegistrationDrift, &scenario("healthy"));
    }
}
