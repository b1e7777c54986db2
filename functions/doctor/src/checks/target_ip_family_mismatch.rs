//! `target-ip-family-mismatch`: the target group's IP address type is not the family the
//! backend answers on.
//!
//! # What it checks
//! The family the targets must be reached on: for IP targets, the pods' addresses (else the
//! Service's first `ipFamilies` entry); for instance targets, the family the NodePort is
//! served on (the Service's first `ipFamilies` entry, else the cluster's
//! `kubernetesNetworkConfig.ipFamily`). Against the target group's `IpAddressType` (`ipv4`
//! when unset): an `ipv4` target group in front of an IPv6 cluster's NodePort, an IPv6
//! Service behind an `ipv4` target group, and the reverse.
//!
//! # Why it matters
//! An IPv6 EKS cluster gives pods and Services IPv6 addresses only; kube-proxy serves the
//! NodePort on the nodes' IPv6 addresses. An `ipv4` target group checks the node's IPv4
//! address and finds nothing listening, or cannot register the IPv6 pod addresses at all.
//!
//! # Example
//! Bad: cluster `ipFamily: ipv6`, Service `ipFamilies: [IPv6]`, target group `IpAddressType:
//! ipv4` with instance targets. Good: a dualstack load balancer (`ip-address-type:
//! dualstack`) with an `ipv6` target group of IP targets.
//!
//! # Fix safety
//! Manual: a target group's address type cannot change; the controller creates a new one
//! when the load balancer becomes dualstack. The report gives the annotation.
//!
//! # References
//! - <https://docs.aws.amazon.com/eks/latest/userguide/cni-ipv6.html>
//! - <https://kubernetes-sigs.github.io/aws-load-balancer-controller/latest/guide/service/annotations/#ip-address-type>
//! - <https://docs.aws.amazon.com/elasticloadbalancing/latest/application/target-group-register-targets.html>
//!   (IPv6 target groups take IPv6 IP targets)

use serde_json::json;

use super::{pod_ips, shell_quote, Check, CheckContext, CheckMeta, FixSafety, Inconclusive};
use crate::finding::{Finding, Severity};
use crate::target_state::is_failing;

pub struct TargetIpFamilyMismatch;

static META: CheckMeta = CheckMeta {
    id: "target-ip-family-mismatch",
    title: "Target group IP family differs from the backend's",
    runbook_step: "(beyond)",
    fix: FixSafety::Manual,
};

fn family_of(addr: &str) -> Option<&'static str> {
    match addr.parse::<std::net::IpAddr>().ok()? {
        std::net::IpAddr::V4(_) => Some("ipv4"),
        std::net::IpAddr::V6(_) => Some("ipv6"),
    }
}

impl Check for TargetIpFamilyMismatch {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    fn run(&self, cx: &CheckContext<'_>) -> Result<Vec<Finding>, Inconclusive> {
        let tg = cx.target_group()?;
        let tg_family = tg.ip_address_type.as_deref().unwrap_or("ipv4").to_ascii_lowercase();
        let service_family = cx
            .service()
            .ok()
            .and_then(|s| s.spec.as_ref()?.ip_families.as_ref()?.first().cloned())
            .map(|f| f.to_ascii_lowercase());
        let cluster_family = cx
            .snapshot
            .aws
            .cluster
            .present()
            .and_then(|c| c.kubernetes_network_config.as_ref()?.ip_family.clone())
            .map(|f| f.to_ascii_lowercase());
        let ip_mode = cx.target_type()? == "ip";
        let (backend_family, basis) = if ip_mode {
            let pod_family = cx
                .selected_pods()
                .ok()
                .and_then(|pods| pods.iter().find_map(|p| pod_ips(p).next().and_then(family_of)));
            match (pod_family, &service_family) {
                (Some(f), _) => (f.to_string(), "the pods' addresses".to_string()),
                (None, Some(f)) => (f.clone(), "the Service's ipFamilies".to_string()),
                (None, None) => {
                    return Err(Inconclusive::new(
                        "neither the pods' addresses nor the Service's ipFamilies were collected",
                    ))
                }
            }
        } else {
            match (&service_family, &cluster_family) {
                (Some(f), _) => (
                    f.clone(),
                    "the Service's ipFamilies (the NodePort's family)".to_string(),
                ),
                (None, Some(f)) => (f.clone(), "the cluster's kubernetesNetworkConfig.ipFamily".to_string()),
                (None, None) => {
                    return Err(Inconclusive::new(
                        "neither the Service nor the cluster's network configuration was collected",
                    ))
                }
            }
        };
        if backend_family == tg_family {
            return Ok(vec![]);
        }
        let targets = cx.targets()?;
        let failing = targets.iter().any(|t| is_failing(t.state()));
        let backend = cx.backend()?;
        let nlb = cx.lb_type().ok() == Some("network");
        let (object, annotation) = match (&backend.ingress, nlb) {
            (Some(ing), false) => (
                format!("ingress/{ing}"),
                "alb.ingress.kubernetes.io/ip-address-type=dualstack",
            ),
            _ => (
                format!("service/{}", backend.service),
                "service.beta.kubernetes.io/aws-load-balancer-ip-address-type=dualstack",
            ),
        };
        Ok(vec![Finding::new(
            META.id,
            if failing { Severity::Critical } else { Severity::Warning },
            cx.arn(),
            format!(
                "the target group's IP address type is {tg_family} but the backend answers on {backend_family} ({basis}){}",
                if ip_mode { "" } else { ": the health checks reach the nodes on an address family the NodePort is not served on" }
            ),
        )
        .with_targets(targets.iter().map(|t| t.id().to_string()))
        .with_evidence(json!({
            "targetGroupIpAddressType": tg_family,
            "serviceIpFamily": service_family,
            "clusterIpFamily": cluster_family,
            "backendFamily": backend_family,
            "basis": basis,
            "targetType": tg.target_type,
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
    fn fires_for_an_ipv4_target_group_before_an_ipv6_nodeport() {
        let findings = fires(&TargetIpFamilyMismatch, &scenario("target-ip-family-mismatch"));
        assert_eq!(findings[0].severity, Severity::Critical);
        assert!(
            findings[0].message.contains("ipv4 but the backend answers on ipv6"),
            "{}",
            findings[0].message
        );
    }

    #[test]
    fn quiet_when_families_agree() {
        quiet(&TargetIpFamilyMismatch, &scenario("healthy"));
        quiet(&TargetIpFamilyMismatch, &scenario("healthy-ipv6-cluster"));
    }
}
