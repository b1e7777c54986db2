//! `target-in-disabled-az`: targets in an Availability Zone the load balancer does not use.
//!
//! # What it checks
//! Targets reported `unused` with `Target.NotInUse`, and registered targets whose zone (the
//! instance's placement, or the zone given at registration for IP targets) is not one of the
//! load balancer's enabled zones. `Target.NotInUse` on a target group that no load balancer
//! uses is not a zone problem: the check stays quiet and the report notes the unattached
//! target group. Targets concerned: the ones outside the enabled zones.
//!
//! # Why it matters
//! A load balancer only sends traffic to (and health-checks) targets in its enabled zones.
//! Nodes scaled into a new zone sit idle as `unused`; if all pods land there, the service
//! is down while every pod is Ready.
//!
//! # Example
//! Bad: ALB in us-east-1a and us-east-1b, a node in us-east-1c registered -> `Target.NotInUse`.
//! Good: the load balancer has a subnet in every zone the node groups use.
//!
//! # Fix safety
//! Manual: adding a subnet to a load balancer changes its addresses; the report gives the
//! `aws elbv2 set-subnets` with a candidate subnet in the missing zone.
//!
//! # References
//! - <https://docs.aws.amazon.com/elasticloadbalancing/latest/application/target-group-health-checks.html#target-health-reason-codes>
//! - <https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-subnets.html>

use std::collections::BTreeSet;

use serde_json::json;

use super::{Check, CheckContext, CheckMeta, FixSafety, Inconclusive};
use crate::finding::{Finding, Severity};

pub struct TargetInDisabledAz;

static META: CheckMeta = CheckMeta {
    id: "target-in-disabled-az",
    title: "Targets in a zone the load balancer does not enable",
    runbook_step: "(beyond)",
    fix: FixSafety::Manual,
};

impl Check for TargetInDisabledAz {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    fn run(&self, cx: &CheckContext<'_>) -> Result<Vec<Finding>, Inconclusive> {
        let targets = cx.targets()?;
        // Target.NotInUse also means "no load balancer uses this target group": not a zone
        // problem (the report notes the unattached target group).
        if cx.target_group()?.load_balancer_arns.is_empty() {
            return Ok(vec![]);
        }
        let lb = cx.load_balancer().ok();
        let enabled: BTreeSet<&str> = lb
            .iter()
            .flat_map(|lb| &lb.availability_zones)
            .map(|z| z.zone_name.as_str())
            .collect();
        let mut hits = Vec::new();
        for t in &targets {
            let zone = t
                .health
                .target
                .availability_zone
                .as_deref()
                .filter(|z| *z != "all")
                .or_else(|| t.instance.and_then(|i| i.zone()));
            let not_in_use = t.reason() == Some("Target.NotInUse");
            let outside = !enabled.is_empty() && zone.is_some_and(|z| !enabled.contains(z));
            if not_in_use || outside {
                hits.push((t, zone));
            }
        }
        if hits.is_empty() {
            if lb.is_none() && targets.iter().all(|t| t.reason() != Some("Target.NotInUse")) {
                return Err(Inconclusive::new("the load balancer's zones were not collected"));
            }
            return Ok(vec![]);
        }
        let zones: BTreeSet<&str> = hits.iter().filter_map(|(_, z)| *z).collect();
        let severity = if hits.len() == targets.len() {
            Severity::Critical
        } else {
            Severity::Warning
        };
        let lb_arn = lb.map_or("<load-balancer-arn>".to_string(), |l| l.load_balancer_arn.clone());
        let existing: Vec<String> = lb
            .iter()
            .flat_map(|l| &l.availability_zones)
            .filter_map(|z| z.subnet_id.clone())
            .collect();
        // A subnet of the same VPC in the missing zone, preferring ones tagged for load balancers.
        let candidate = cx.snapshot.aws.subnets.items().ok().and_then(|subnets| {
            let vpc = lb.and_then(|l| l.vpc_id.as_deref());
            let in_zone: Vec<_> = subnets
                .iter()
                .filter(|s| s.availability_zone.as_deref().is_some_and(|z| zones.contains(z)))
                .filter(|s| vpc.is_none() || s.vpc_id.as_deref() == vpc)
                .collect();
            let role = if lb.and_then(|l| l.scheme.as_deref()) == Some("internal") {
                "kubernetes.io/role/internal-elb"
            } else {
                "kubernetes.io/role/elb"
            };
            in_zone
                .iter()
                .find(|s| s.tags.iter().any(|t| t.key == role))
                .or(in_zone.first())
                .map(|s| s.subnet_id.clone())
        });
        let subnets = [
            existing.clone(),
            vec![candidate.clone().unwrap_or_else(|| "<subnet-in-zone>".into())],
        ]
        .concat();
        Ok(vec![Finding::new(
            META.id,
            severity,
            lb_arn.clone(),
            format!(
                "{} target(s) are in zone(s) {} that the load balancer does not enable ({}): it neither checks nor routes to them",
                hits.len(),
                zones.iter().copied().collect::<Vec<_>>().join(", "),
                hits.iter().map(|(t, _)| t.label()).collect::<Vec<_>>().join(", ")
            ),
        )
        .with_targets(hits.iter().map(|(t, _)| t.id().to_string()))
        .with_evidence(json!({
            "enabledZones": enabled,
            "targets": hits.iter().map(|(t, z)| json!({
                "id": t.id(), "zone": z, "state": t.state(), "reason": t.reason(),
            })).collect::<Vec<_>>(),
            "candidateSubnet": candidate,
        }))
        .with_fix(format!("aws elbv2 set-subnets --load-balancer-arn {lb_arn} --subnets {}", subnets.join(" ")), None)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixtures::{fires, quiet, scenario};

    #[test]
    fn fires_on_a_node_in_a_third_zone() {
        let findings = fires(&TargetInDisabledAz, &scenario("target-in-disabled-az"));
        let f = &findings[0];
        assert_eq!(f.severity, Severity::Warning);
        assert!(f.message.contains("us-east-1c"), "{}", f.message);
        assert!(f.fix.as_ref().unwrap().command.starts_with("aws elbv2 set-subnets"));
    }

    #[test]
    fn quiet_when_all_zones_are_enabled() {
        quiet(&TargetInDisabledAz, &scenario("healthy"));
    }

    #[test]
    fn not_in_use_because_no_load_balancer_uses_the_group_is_no_zone_problem() {
        let mut snap = scenario("target-in-disabled-az");
        if let crate::snapshot::Collected::Present(tg) = &mut snap.aws.target_group {
            tg.load_balancer_arns.clear();
        }
        quiet(&TargetInDisabledAz, &snap);
        let report = crate::diagnose(&snap);
        assert!(
            report
                .notes
                .iter()
                .any(|n| n.contains("not attached to any load balancer")),
            "{:?}",
            report.notes
        );
    }
}
