//! `service-handled-by-legacy-provider`: a `type: LoadBalancer` Service is handled by the
//! in-tree AWS cloud provider while its annotations are the AWS Load Balancer Controller's.
//!
//! # What it checks
//! The backend Service has `service.beta.kubernetes.io/aws-load-balancer-type: nlb` (the
//! in-tree provider's value) and no `loadBalancerClass` (see
//! [`crate::controller::service_owner`]), and carries annotations only the controller reads
//! (`aws-load-balancer-nlb-target-type`, `-scheme`, `-target-group-attributes`, ...): the
//! controller ignores the Service (it takes `external`, `nlb-ip` or its load balancer class),
//! and the in-tree provider ignores those annotations.
//!
//! # Why it matters
//! The settings the owner wrote silently do nothing: instance targets where IP targets were
//! asked for, an internet-facing load balancer where `scheme: internal` was meant, health-check
//! codes and target-group attributes left at the provider's defaults. Diagnosis and fixes
//! aimed at the controller (its logs, its TargetGroupBinding) find nothing.
//!
//! # Example
//! Bad: `aws-load-balancer-type: nlb` with `aws-load-balancer-nlb-target-type: ip`. Good:
//! `aws-load-balancer-type: external` (or `spec.loadBalancerClass: service.k8s.aws/nlb`).
//!
//! # Fix safety
//! Manual: handing the Service to the controller replaces the load balancer (a new DNS name).
//! The report gives the annotation.
//!
//! # References
//! - <https://kubernetes-sigs.github.io/aws-load-balancer-controller/latest/guide/service/nlb/>
//!   (`external` / `nlb-ip`; the in-tree controller handles `nlb`)
//! - <https://kubernetes-sigs.github.io/aws-load-balancer-controller/latest/guide/service/annotations/>
//! - <https://docs.aws.amazon.com/eks/latest/userguide/network-load-balancing.html>

use serde_json::json;

use super::{shell_quote, Check, CheckContext, CheckMeta, FixSafety, Inconclusive};
use crate::controller::service_owner;
use crate::finding::{Finding, Severity};
use crate::target_state::is_failing;

pub struct ServiceHandledByLegacyProvider;

static META: CheckMeta = CheckMeta {
    id: "service-handled-by-legacy-provider",
    title: "Service handled by the in-tree provider, annotated for the controller",
    runbook_step: "service annotations (NLB)",
    fix: FixSafety::Manual,
};

const PREFIX: &str = "service.beta.kubernetes.io/aws-load-balancer-";
/// Annotations only the AWS Load Balancer Controller reads (the in-tree provider has none of
/// them), with what the in-tree provider does instead.
const CONTROLLER_ONLY: &[(&str, &str)] = &[
    ("nlb-target-type", "instance targets"),
    ("scheme", "internet-facing unless aws-load-balancer-internal is set"),
    ("ip-address-type", "IPv4"),
    ("target-group-attributes", "the target group's defaults"),
    ("attributes", "the load balancer's defaults"),
    ("healthcheck-success-codes", "the default success codes"),
    (
        "manage-backend-security-group-rules",
        "its own node security group rules",
    ),
    ("private-ipv4-addresses", "addresses AWS picks"),
    ("ipv6-addresses", "addresses AWS picks"),
    ("alpn-policy", "no ALPN policy"),
    ("multi-cluster-target-group", "a target group of its own"),
    ("load-balancer-name", "a generated name"),
    ("security-group-prefix-lists", "no prefix lists"),
    ("listener-attributes", "the listener's defaults"),
];

impl Check for ServiceHandledByLegacyProvider {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    fn run(&self, cx: &CheckContext<'_>) -> Result<Vec<Finding>, Inconclusive> {
        let Some(service) = cx.service_opt()? else {
            return Ok(vec![]);
        };
        if service_owner(service) != Some("in-tree") {
            return Ok(vec![]);
        }
        let annotations = service.metadata.annotations.clone().unwrap_or_default();
        if annotations.get(&format!("{PREFIX}type")).map(String::as_str) != Some("nlb") {
            return Ok(vec![]);
        }
        let ignored: Vec<(String, String, &str)> = CONTROLLER_ONLY
            .iter()
            .filter_map(|(suffix, instead)| {
                let key = format!("{PREFIX}{suffix}");
                annotations.get(&key).map(|v| (key, v.clone(), *instead))
            })
            .collect();
        if ignored.is_empty() {
            return Ok(vec![]);
        }
        let backend = cx.backend()?;
        let failing = cx.targets()?.iter().any(|t| is_failing(t.state()));
        Ok(vec![Finding::new(
            META.id,
            if failing { Severity::Critical } else { Severity::Warning },
            format!("{}/Service/{}", backend.namespace, backend.service),
            format!(
                "Service {}/{} is handled by the in-tree cloud provider (aws-load-balancer-type: nlb) but carries {} annotation(s) only the AWS Load Balancer Controller reads, so they are ignored: {}",
                backend.namespace,
                backend.service,
                ignored.len(),
                ignored
                    .iter()
                    .map(|(k, v, instead)| format!("{}={} (in-tree: {instead})", k.trim_start_matches(PREFIX), super::truncate(v, 60)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
        .with_evidence(json!({
            "type": "nlb",
            "loadBalancerClass": service.spec.as_ref().and_then(|s| s.load_balancer_class.clone()),
            "ignored": ignored.iter().map(|(k, v, instead)| json!({"annotation": k, "value": v, "inTree": instead})).collect::<Vec<_>>(),
            "resolvedBy": backend.resolved_by,
        }))
        .with_fix(
            format!(
                "kubectl -n {} annotate service {} {} --overwrite  # the controller takes over with a new load balancer",
                shell_quote(&backend.namespace),
                shell_quote(&backend.service),
                shell_quote(&format!("{PREFIX}type=external"))
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
    fn fires_on_controller_annotations_the_in_tree_provider_ignores() {
        let findings = fires(
            &ServiceHandledByLegacyProvider,
            &scenario("service-handled-by-legacy-provider"),
        );
        assert!(
            findings[0].message.contains("nlb-target-type=ip"),
            "{}",
            findings[0].message
        );
    }

    #[test]
    fn quiet_for_services_the_controller_handles() {
        quiet(&ServiceHandledByLegacyProvider, &scenario("nlb-local-by-design"));
        quiet(&ServiceHandledByLegacyProvider, &scenario("healthy"));
    }
}
