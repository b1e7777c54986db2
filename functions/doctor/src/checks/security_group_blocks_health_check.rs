//! `security-group-blocks-health-check`: the targets' security groups do not admit the load
//! balancer on the health-check or traffic port.
//!
//! # What it checks
//! For each registered target, its security groups (the instance's for instance targets,
//! the network interface holding the pod IP for IP targets) must have an inbound rule for TCP
//! on the health-check port and on the traffic port whose source is one of the load
//! balancer's security groups, or an address range covering the load balancer's subnets
//! (NLBs without security groups check from their private addresses in those subnets).
//!
//! # Why it matters
//! Without the rule the load balancer's packets are dropped silently: `Target.Timeout`
//! everywhere although pods, Service and kube-proxy are fine. It happens when the
//! controller's managed rule was removed, `manage-backend-security-group-rules` is off, or
//! the nodes carry a different group than the one the controller edits.
//!
//! # Example
//! Bad: node group `eks-cluster-sg-...` has no rule from `k8s-traffic-demo-cluster-...` on
//! tcp 30080. Good: `tcp 30080 from sg-0bk... (elbv2.k8s.aws/targetGroupBinding=shared)`.
//!
//! # Fix safety
//! Catalogue fix `authorize-health-check-ingress`: one rule from the load balancer's group
//! on the one port; approval only.
//!
//! # References
//! - <https://repost.aws/knowledge-center/eks-resolve-failed-health-check-alb-nlb> (networking)
//! - <https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-update-security-groups.html>

use std::collections::BTreeSet;

use serde_json::json;

use super::net::{cidr, sg_admits, Source};
use super::{Check, CheckContext, CheckMeta, FixSafety, Inconclusive, TargetInfo};
use crate::aws::SecurityGroup;
use crate::finding::{Finding, FixAction, Severity};

pub struct SecurityGroupBlocksHealthCheck;

static META: CheckMeta = CheckMeta {
    id: "security-group-blocks-health-check",
    title: "Target security groups do not admit the load balancer",
    runbook_step: "networking",
    fix: FixSafety::ApprovalOnly("authorize-health-check-ingress"),
};

/// The security groups of a target: the ENI holding an IP target's address, else the instance's.
pub(crate) fn target_groups(cx: &CheckContext<'_>, target: &TargetInfo<'_>) -> Option<Vec<String>> {
    if cx.target_type().ok() == Some("ip") {
        if let Ok(enis) = cx.snapshot.aws.network_interfaces.items() {
            if let Some(eni) = enis.iter().find(|e| e.has_ip(target.id())) {
                return Some(eni.groups.iter().map(|g| g.group_id.clone()).collect());
            }
        }
    }
    target
        .instance
        .map(|i| i.security_groups.iter().map(|g| g.group_id.clone()).collect())
}

impl Check for SecurityGroupBlocksHealthCheck {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    fn run(&self, cx: &CheckContext<'_>) -> Result<Vec<Finding>, Inconclusive> {
        let lb = cx.load_balancer()?;
        let groups = cx
            .snapshot
            .aws
            .security_groups
            .items()
            .map_err(|why| Inconclusive(format!("security groups not collected: {why}")))?;
        let lb_subnets: Vec<String> = lb
            .availability_zones
            .iter()
            .filter_map(|z| z.subnet_id.clone())
            .collect();
        let subnet_cidrs = cx
            .snapshot
            .aws
            .subnets
            .items()
            .map(|subnets| {
                subnets
                    .iter()
                    .filter(|s| lb_subnets.contains(&s.subnet_id))
                    .filter_map(|s| s.cidr_block.as_deref().and_then(cidr))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        if lb.security_groups.is_empty() && subnet_cidrs.is_empty() {
            return Err(Inconclusive::new(
                "the load balancer has no security groups and its subnets' CIDRs were not collected",
            ));
        }
        let source = Source {
            groups: lb.security_groups.clone(),
            cidrs: subnet_cidrs.clone(),
        };
        let targets = cx.targets()?;
        let mut blocked = Vec::new();
        let mut unknown = Vec::new();
        for t in &targets {
            let Some(ids) = target_groups(cx, t) else {
                unknown.push(t.id().to_string());
                continue;
            };
            let sgs: Vec<&SecurityGroup> = groups.iter().filter(|g| ids.contains(&g.group_id)).collect();
            if sgs.len() < ids.len() {
                unknown.push(t.id().to_string());
                continue;
            }
            let mut ports = BTreeSet::new();
            ports.extend(cx.health_check_port(t.health).map(|p| (p, "health check")));
            ports.extend(t.health.target.port.map(|p| (p, "traffic")));
            for (port, kind) in ports {
                if sg_admits(&sgs, &source, port).is_none() {
                    blocked.push((t.clone(), ids.clone(), port, kind));
                }
            }
        }
        if blocked.is_empty() {
            if !unknown.is_empty() && unknown.len() == targets.len() {
                return Err(Inconclusive(format!(
                    "the security groups of targets {} were not collected",
                    unknown.join(", ")
                )));
            }
            return Ok(vec![]);
        }
        let (_, ids, port, _) = &blocked[0];
        let cluster_sg = cx
            .snapshot
            .aws
            .cluster
            .present()
            .and_then(|c| c.resources_vpc_config.as_ref())
            .and_then(|v| v.cluster_security_group_id.clone());
        let group_to_open = cluster_sg.filter(|c| ids.contains(c)).unwrap_or_else(|| ids[0].clone());
        let from = match lb.security_groups.last() {
            Some(sg) => format!("--source-group {sg}"),
            None => format!(
                "--cidr {}",
                subnet_cidrs.first().map(|c| c.to_string()).unwrap_or_default()
            ),
        };
        let target_list: BTreeSet<String> = blocked.iter().map(|(t, ..)| t.label()).collect();
        let port_list: BTreeSet<String> = blocked.iter().map(|(_, _, p, k)| format!("{p} ({k})")).collect();
        Ok(vec![Finding::new(
            META.id,
            Severity::Critical,
            group_to_open.clone(),
            format!(
                "the security groups of {} target(s) do not admit the load balancer on TCP {}: {}",
                target_list.len(),
                port_list.into_iter().collect::<Vec<_>>().join(", "),
                target_list.into_iter().collect::<Vec<_>>().join(", ")
            ),
        )
        .with_targets(blocked.iter().map(|(t, ..)| t.id().to_string()))
        .with_evidence(json!({
            "loadBalancerSecurityGroups": lb.security_groups,
            "loadBalancerSubnetCidrs": subnet_cidrs.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
            "blocked": blocked.iter().map(|(t, ids, port, kind)| json!({
                "target": t.id(), "node": t.node_name(), "securityGroups": ids, "port": port, "kind": kind,
            })).collect::<Vec<_>>(),
            "targetsWithUnknownGroups": unknown,
        }))
        .with_fix(
            format!("aws ec2 authorize-security-group-ingress --group-id {group_to_open} --protocol tcp --port {port} {from}"),
            META.fix.fix_id(),
        )
        // Automated only from the load balancer's own group: a CIDR rule is a person's call.
        .with_action(lb.security_groups.last().map(|sg| FixAction::AuthorizeIngress {
            group_id: group_to_open.clone(),
            protocol: "tcp".into(),
            port: *port,
            source_group_id: sg.clone(),
        }))])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixtures::{fires, quiet, scenario};

    #[test]
    fn fires_when_the_node_group_lacks_the_rule() {
        let findings = fires(
            &SecurityGroupBlocksHealthCheck,
            &scenario("security-group-blocks-health-check"),
        );
        let fix = findings[0].fix.as_ref().unwrap();
        assert_eq!(fix.fix_id, Some("authorize-health-check-ingress"));
        assert_eq!(
            fix.command,
            "aws ec2 authorize-security-group-ingress --group-id sg-0c1000000000000c1 --protocol tcp --port 30080 --source-group sg-0bk000000000000b1"
        );
    }

    #[test]
    fn quiet_when_the_rule_exists() {
        quiet(&SecurityGroupBlocksHealthCheck, &scenario("healthy"));
    }

    #[test]
    fn quiet_for_an_nlb_admitted_by_cidr() {
        quiet(&SecurityGroupBlocksHealthCheck, &scenario("nlb-local-by-design"));
    }
}
