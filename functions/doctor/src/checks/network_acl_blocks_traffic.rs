//! `network-acl-blocks-traffic`: a network ACL denies load balancer to target traffic, or the
//! return traffic on ephemeral ports.
//!
//! # What it checks
//! For every pair of (load balancer subnet, target subnet), the four directions a health
//! check needs: the target subnet's ACL inbound from the load balancer subnet on the
//! health-check and traffic ports, its outbound to the load balancer subnet on ephemeral
//! ports 1024-65535, and the mirror rules on the load balancer subnet's ACL. Network ACLs are
//! stateless, so the return path needs its own rule. Rules are read in rule-number order;
//! the first one that overlaps decides (a straightforward evaluation).
//!
//! # Why it matters
//! A deny in an ACL drops packets silently: `Target.Timeout` with every security group and
//! pod in order, a classic after "hardening" the private subnets.
//!
//! # Example
//! Bad: rule 90 `deny tcp 30000-32767 from 192.168.0.0/18` on the private subnets' ACL.
//! Good: the default ACL's rule 100 `allow all`.
//!
//! # Fix safety
//! Manual: ACLs are shared by every workload in the subnet; the report names the deciding
//! rule and the `aws ec2` command that removes or adds it.
//!
//! # References
//! - <https://repost.aws/knowledge-center/eks-resolve-failed-health-check-alb-nlb> (network ACLs)
//! - <https://docs.aws.amazon.com/vpc/latest/userguide/vpc-network-acls.html>

use std::collections::{BTreeMap, BTreeSet};

use ipnet::Ipv4Net;
use serde_json::json;

use super::net::{acl_decision, cidr, nacl_for_subnet};
use super::{Check, CheckContext, CheckMeta, FixSafety, Inconclusive};
use crate::aws::Subnet;
use crate::finding::{Finding, Severity};

pub struct NetworkAclBlocksTraffic;

static META: CheckMeta = CheckMeta {
    id: "network-acl-blocks-traffic",
    title: "Network ACL denies load balancer traffic",
    runbook_step: "networking",
    fix: FixSafety::Manual,
};

const EPHEMERAL: (u16, u16) = (1024, 65535);

#[derive(Debug)]
struct Block {
    acl: String,
    rule: String,
    egress: bool,
    peer: Ipv4Net,
    ports: (u16, u16),
    subnet: String,
    /// The targets' subnet on the blocked path.
    target_subnet: String,
    what: &'static str,
}

/// Each target's subnet: the ENI holding an IP target, else the instance's subnet.
pub(crate) fn target_subnet_map(cx: &CheckContext<'_>) -> Result<BTreeMap<String, String>, Inconclusive> {
    let enis = cx.snapshot.aws.network_interfaces.items().unwrap_or_default();
    let subnets = cx.snapshot.aws.subnets.items().unwrap_or_default();
    let ip_mode = cx.target_type()? == "ip";
    Ok(cx
        .targets()?
        .iter()
        .filter_map(|t| {
            let from_eni = ip_mode
                .then(|| enis.iter().find(|e| e.has_ip(t.id())).and_then(|e| e.subnet_id.clone()))
                .flatten();
            // An IP no interface holds any more (a stale target) still lies in a subnet.
            let by_cidr = || {
                let ip = cidr(t.id())?;
                subnets
                    .iter()
                    .find(|s| s.cidr_block.as_deref().and_then(cidr).is_some_and(|c| c.contains(&ip)))
                    .map(|s| s.subnet_id.clone())
            };
            from_eni
                .or_else(|| t.instance.and_then(|i| i.subnet_id.clone()))
                .or_else(|| if ip_mode { by_cidr() } else { None })
                .map(|subnet| (t.id().to_string(), subnet))
        })
        .collect())
}

/// The subnets the targets live in.
pub(crate) fn target_subnets(cx: &CheckContext<'_>) -> Result<BTreeSet<String>, Inconclusive> {
    Ok(target_subnet_map(cx)?.into_values().collect())
}

impl Check for NetworkAclBlocksTraffic {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    fn run(&self, cx: &CheckContext<'_>) -> Result<Vec<Finding>, Inconclusive> {
        let aws = &cx.snapshot.aws;
        let lb = cx.load_balancer()?;
        let acls = aws
            .network_acls
            .items()
            .map_err(|why| Inconclusive(format!("network ACLs not collected: {why}")))?;
        let subnets = aws
            .subnets
            .items()
            .map_err(|why| Inconclusive(format!("subnets not collected: {why}")))?;
        let find = |id: &str| subnets.iter().find(|s| s.subnet_id == id);
        let lb_subnets: Vec<&Subnet> = lb
            .availability_zones
            .iter()
            .filter_map(|z| z.subnet_id.as_deref())
            .filter_map(find)
            .collect();
        let target_subnets: Vec<&Subnet> = target_subnets(cx)?.iter().filter_map(|id| find(id)).collect();
        if lb_subnets.is_empty() || target_subnets.is_empty() {
            return Err(Inconclusive::new(
                "the subnets of the load balancer or of the targets are not known (not collected, or no interface, instance or subnet holds the target addresses)",
            ));
        }
        let tg = cx.target_group()?;
        let mut ports: BTreeSet<u16> = BTreeSet::new();
        for t in cx.target_health()? {
            ports.extend(cx.health_check_port(t));
            ports.extend(t.target.port);
        }
        let mut blocks = Vec::new();
        for l in &lb_subnets {
            for t in &target_subnets {
                if l.subnet_id == t.subnet_id {
                    continue; // ACLs apply only at the subnet boundary
                }
                let (Some(l_cidr), Some(t_cidr)) = (
                    l.cidr_block.as_deref().and_then(cidr),
                    t.cidr_block.as_deref().and_then(cidr),
                ) else {
                    continue;
                };
                let vpc = tg.vpc_id.as_deref();
                let (Some(t_acl), Some(l_acl)) = (
                    nacl_for_subnet(acls, &t.subnet_id, vpc),
                    nacl_for_subnet(acls, &l.subnet_id, vpc),
                ) else {
                    return Err(Inconclusive(format!(
                        "no network ACL found for subnet {} or {}",
                        t.subnet_id, l.subnet_id
                    )));
                };
                for &port in &ports {
                    let checks = [
                        (
                            t_acl,
                            &t.subnet_id,
                            false,
                            l_cidr,
                            (port, port),
                            "inbound traffic to the targets",
                        ),
                        (
                            t_acl,
                            &t.subnet_id,
                            true,
                            l_cidr,
                            EPHEMERAL,
                            "return traffic from the targets",
                        ),
                        (
                            l_acl,
                            &l.subnet_id,
                            true,
                            t_cidr,
                            (port, port),
                            "outbound traffic from the load balancer",
                        ),
                        (
                            l_acl,
                            &l.subnet_id,
                            false,
                            t_cidr,
                            EPHEMERAL,
                            "return traffic to the load balancer",
                        ),
                    ];
                    for (acl, subnet, egress, peer, range, what) in checks {
                        let d = acl_decision(acl, egress, &peer, range);
                        if !d.allowed {
                            blocks.push(Block {
                                acl: acl.network_acl_id.clone(),
                                rule: d.rule,
                                egress,
                                peer,
                                ports: range,
                                subnet: subnet.clone(),
                                target_subnet: t.subnet_id.clone(),
                                what,
                            });
                        }
                    }
                }
            }
        }
        if blocks.is_empty() {
            return Ok(vec![]);
        }
        let b = &blocks[0];
        let direction = if b.egress { "--egress" } else { "--ingress" };
        let fix = if b.rule == "*" {
            format!(
                "aws ec2 create-network-acl-entry --network-acl-id {} {direction} --rule-number 100 --protocol tcp --port-range From={},To={} --cidr-block {} --rule-action allow",
                b.acl, b.ports.0, b.ports.1, b.peer
            )
        } else {
            format!(
                "aws ec2 delete-network-acl-entry --network-acl-id {} {direction} --rule-number {}",
                b.acl, b.rule
            )
        };
        let mut acl_ids: Vec<&str> = blocks.iter().map(|b| b.acl.as_str()).collect();
        acl_ids.dedup();
        Ok(vec![Finding::new(
            META.id,
            Severity::Critical,
            b.acl.clone(),
            format!(
                "network ACL {} rule {} of subnet {} denies the {} ({} {} on tcp {})",
                b.acl,
                b.rule,
                b.subnet,
                b.what,
                if b.egress { "to" } else { "from" },
                b.peer,
                if b.ports.0 == b.ports.1 {
                    b.ports.0.to_string()
                } else {
                    format!("{}-{}", b.ports.0, b.ports.1)
                }
            ),
        )
        .with_targets({
            let blocked: BTreeSet<&str> = blocks.iter().map(|b| b.target_subnet.as_str()).collect();
            target_subnet_map(cx)?
                .into_iter()
                .filter(|(_, subnet)| blocked.contains(subnet.as_str()))
                .map(|(id, _)| id)
                .collect::<Vec<_>>()
        })
        .with_evidence(json!({
            "blocked": blocks.iter().map(|b| json!({
                "networkAcl": b.acl,
                "rule": b.rule,
                "direction": if b.egress { "egress" } else { "ingress" },
                "peer": b.peer.to_string(),
                "ports": format!("{}-{}", b.ports.0, b.ports.1),
                "subnet": b.subnet,
                "what": b.what,
            })).collect::<Vec<_>>(),
            "ports": ports,
        }))
        .with_fix(fix, None)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixtures::{fires, quiet, scenario};

    #[test]
    fn fires_on_a_deny_for_the_node_port_range() {
        let findings = fires(&NetworkAclBlocksTraffic, &scenario("network-acl-blocks-traffic"));
        let f = &findings[0];
        assert!(f.message.contains("rule 90"), "{}", f.message);
        assert_eq!(
            f.fix.as_ref().unwrap().command,
            "aws ec2 delete-network-acl-entry --network-acl-id acl-0priv0000000000p1 --ingress --rule-number 90"
        );
    }

    #[test]
    fn quiet_with_the_default_acl() {
        quiet(&NetworkAclBlocksTraffic, &scenario("healthy"));
    }
}
