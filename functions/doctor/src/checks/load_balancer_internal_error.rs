//! `load-balancer-internal-error`: the load balancer reports its own internal error as the
//! reason its health checks fail.
//!
//! # What it checks
//! Failing targets whose reason code is `Elb.InternalError`: "the health checks failed due
//! to an internal error" (Application Load Balancers only, per the API reference). Nothing in
//! the cluster or the VPC produces this code. Targets concerned: those targets.
//!
//! # Why it matters
//! Without this check such targets would look unexplained, and an engineer would go through
//! pods, ports and security groups for a failure that is on the load balancer's side. It
//! usually clears on its own; if it persists, it is a case for AWS Support.
//!
//! # Example
//! Bad: `unhealthy Elb.InternalError: Health checks failed due to an internal error` on
//! every target while the pods, ports and security groups are fine. Good: any other reason
//! code, explained by its own check.
//!
//! # Fix safety
//! Manual: nothing to change in the account or the cluster. The report gives the command
//! that shows whether the state persists; open an AWS Support case if it does.
//!
//! # References
//! - <https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_TargetHealth.html>
//! - <https://docs.aws.amazon.com/elasticloadbalancing/latest/application/target-group-health-checks.html#target-health-reason-codes>

use serde_json::json;

use super::{Check, CheckContext, CheckMeta, FixSafety, Inconclusive};
use crate::finding::{Finding, Severity};

pub struct LoadBalancerInternalError;

static META: CheckMeta = CheckMeta {
    id: "load-balancer-internal-error",
    title: "Load balancer reports an internal error",
    runbook_step: "(beyond)",
    fix: FixSafety::Manual,
};

const REASON: &str = "Elb.InternalError";

impl Check for LoadBalancerInternalError {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    fn run(&self, cx: &CheckContext<'_>) -> Result<Vec<Finding>, Inconclusive> {
        let tg = cx.target_group()?;
        let hit: Vec<_> = cx
            .failing_targets()?
            .into_iter()
            .filter(|t| t.reason() == Some(REASON))
            .collect();
        if hit.is_empty() {
            return Ok(vec![]);
        }
        let all = cx.targets()?.len();
        Ok(vec![Finding::new(
            META.id,
            Severity::Warning,
            tg.target_group_arn.clone(),
            format!(
                "{} of {all} target(s) fail with {REASON}: the load balancer's health-check system failed, not your configuration; it usually clears by itself, and if it persists open an AWS Support case naming the target group",
                hit.len()
            ),
        )
        .with_targets(hit.iter().map(|t| t.id().to_string()))
        .with_evidence(json!({
            "targets": hit.iter().map(|t| json!({
                "id": t.id(), "state": t.state(), "description": t.health.target_health.description,
            })).collect::<Vec<_>>(),
        }))
        .with_fix(
            format!(
                "aws elbv2 describe-target-health --target-group-arn {} --query 'TargetHealthDescriptions[].TargetHealth'  # does it persist?",
                tg.target_group_arn
            ),
            None,
        )])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixtures::{fires, quiet, scenario};
    use crate::snapshot::Collected;

    #[test]
    fn fires_on_internal_errors_only() {
        let findings = fires(&LoadBalancerInternalError, &scenario("load-balancer-internal-error"));
        assert_eq!(findings[0].severity, Severity::Warning);
        assert_eq!(findings[0].targets.len(), 2);
        let mut snap = scenario("health-check-unreachable");
        quiet(&LoadBalancerInternalError, &snap);
        if let Collected::Present(health) = &mut snap.aws.target_health {
            health[0].target_health.reason = Some(REASON.into());
        }
        assert_eq!(fires(&LoadBalancerInternalError, &snap)[0].targets.len(), 1);
    }

    #[test]
    fn quiet_when_targets_are_healthy() {
        quiet(&LoadBalancerInternalError, &scenario("healthy"));
    }
}
