//! `network-acl-blocks-traffic`: a network ACL denies the load balancer's packets to a
//! target, or the replies.
//!
//! # What it checks
//! Network ACLs are stateless and apply where a packet crosses a subnet boundary, so every
//! path from a load balancer address to a target in another subnet needs four decisions, each
//! made per packet as [`crate::network_path::evaluate_acl`] does (entries in rule-number
//! order, the first one matching the packet's address, protocol and port decides, `*`
//! denies; IPv6 packets by IPv6 entries): the target subnet's ACL inbound from the load
//! balancer address on the health-check (and traffic) port, its outbound to that address on
//! the ephemeral ports 1024-65535, and the mirror pair on the load balancer subnet's ACL.
//! Each load balancer node's own address is checked (health checks come from every node);
//! with client IP preservation the traffic port is checked from the declared client ranges.
//! The target's subnet is its interface's: with custom networking pods live in other subnets
//! than their node.
//!
//! # Why it matters
//! A deny in an ACL drops packets silently: `Target.Timeout` with every security group and
//! pod in order, a classic after "hardening" the private subnets.
//!
//! # Example
//! Bad: rule 90 `deny tcp 30000-32767 from 192.168.0.0/18` on the private subnets' ACL, or an
//! ACL allowing only `192.168.0.0/24` while the load balancer sits at `192.168.14.201`. Good:
//! the default ACL's rule 100 `allow all`; a rule 50 denying one foreign host before it.
//!
//! # Fix safety
//! Manual: ACLs are shared by every workload in the subnet. The report names the deciding
//! rule and gives the `aws ec2 create-network-acl-entry` that allows the load balancer's
//! subnet just before it (or before the final `*`).
//!
//! # References
//! - <https://repost.aws/knowledge-center/eks-resolve-failed-health-check-alb-nlb> (network ACLs)
//! - <https://docs.aws.amazon.com/vpc/latest/userguide/nacl-rules.html>
//! - <https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-update-security-groups.html> (recommended ACL rules)

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;

use super::{shell_quote, Check, CheckContext, CheckMeta, FixSafety, Inconclusive, TargetInfo};
use crate::aws::{NetworkAcl, Subnet};
use crate::finding::{Finding, Severity};
use crate::network_path::{acl_for_subnet, evaluate_acl, AclRule, Direction, Flow, FlowKind, PathModel, Ports, Span};
use crate::target_state::is_failing;

pub struct NetworkAclBlocksTraffic;

static META: CheckMeta = CheckMeta {
    id: "network-acl-blocks-traffic",
    title: "Network ACL denies load balancer traffic",
    runbook_step: "networking",
    fix: FixSafety::Manual,
};

/// One of the four decisions a path needs.
struct Leg<'a> {
    acl: &'a NetworkAcl,
    subnet: String,
    direction: Direction,
    peer: Span,
    ports: Ports,
    what: String,
    /// The subnet the allowing rule should name (the peer's subnet, a stable range).
    allow_from: Option<String>,
}

struct Block<'t> {
    target: &'t TargetInfo<'t>,
    flow: Flow,
    acl: String,
    subnet: String,
    direction: Direction,
    peer: Span,
    ports: Ports,
    rule: AclRule,
    what: String,
    fix: String,
}

impl Check for NetworkAclBlocksTraffic {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    fn run(&self, cx: &CheckContext<'_>) -> Result<Vec<Finding>, Inconclusive> {
        let aws = &cx.snapshot.aws;
        let acls = aws
            .network_acls
            .items()
            .map_err(|why| Inconclusive(format!("network ACLs not collected: {why}")))?;
        let subnets = aws
            .subnets
            .items()
            .map_err(|why| Inconclusive(format!("subnets not collected: {why}")))?;
        let model = PathModel::new(cx)?;
        let vpc = model.tg.vpc_id.as_deref();
        let targets = cx.targets()?;
        let mut blocks: Vec<Block<'_>> = Vec::new();
        let mut side: Vec<Block<'_>> = Vec::new();
        let mut undetermined: BTreeMap<String, String> = BTreeMap::new();
        for t in &targets {
            let end = match model.target_end(t) {
                Ok(end) => end,
                Err(why) => {
                    undetermined.insert(t.id().to_string(), why);
                    continue;
                }
            };
            let Some(t_subnet) = end.subnet_id.clone() else {
                undetermined.insert(t.id().to_string(), "its subnet is not known".into());
                continue;
            };
            let Some(t_acl) = acl_for_subnet(acls, &t_subnet, vpc) else {
                undetermined.insert(
                    t.id().to_string(),
                    format!("no network ACL found for subnet {t_subnet}"),
                );
                continue;
            };
            for flow in model.flows(t) {
                let mut legs: Vec<Leg<'_>> = Vec::new();
                if let Some(clients) = &flow.clients {
                    // The clients' packets reach the target subnet with their own addresses.
                    for c in clients {
                        legs.push(target_legs(t_acl, &t_subnet, *c, &flow, None));
                        legs.push(reply_leg(t_acl, &t_subnet, *c, None));
                    }
                }
                for a in model.senders(&flow, &end) {
                    let Some(l_subnet) = a.subnet_id.clone() else { continue };
                    if l_subnet == t_subnet {
                        continue; // ACLs apply at the subnet boundary only
                    }
                    let Some(l_acl) = acl_for_subnet(acls, &l_subnet, vpc) else {
                        undetermined.insert(
                            t.id().to_string(),
                            format!("no network ACL found for subnet {l_subnet}"),
                        );
                        continue;
                    };
                    let lb_cidr = subnet_block(subnets, &l_subnet, model.ipv6);
                    let t_cidr = subnet_block(subnets, &t_subnet, model.ipv6);
                    if flow.clients.is_none() {
                        legs.push(target_legs(t_acl, &t_subnet, a.addresses, &flow, lb_cidr.clone()));
                        legs.push(reply_leg(t_acl, &t_subnet, a.addresses, lb_cidr));
                    }
                    let target = Span::addr(end.address);
                    legs.push(Leg {
                        acl: l_acl,
                        subnet: l_subnet.clone(),
                        direction: Direction::Outbound,
                        peer: target,
                        ports: Ports::one(flow.port),
                        what: format!("the {} leaving the load balancer's subnet", flow.kind.noun()),
                        allow_from: t_cidr.clone(),
                    });
                    legs.push(Leg {
                        acl: l_acl,
                        subnet: l_subnet.clone(),
                        direction: Direction::Inbound,
                        peer: target,
                        ports: Ports::EPHEMERAL,
                        what: "the target's replies entering the load balancer's subnet".into(),
                        allow_from: t_cidr,
                    });
                }
                for leg in legs {
                    let parts = evaluate_acl(leg.acl, leg.direction, leg.peer, flow.protocol, leg.ports);
                    let denied: Vec<_> = parts.iter().filter(|p| !p.rule.allow).collect();
                    let Some(first) = denied.first() else { continue };
                    let whole = denied.len() == parts.len();
                    let from_clients = flow.clients.is_some() && leg.allow_from.is_none();
                    if !leg.peer.is_single() && !whole && !from_clients {
                        undetermined.insert(
                            t.id().to_string(),
                            format!(
                                "{} {} denies part of {} only: it depends on the load balancer's address, and its interfaces were not collected",
                                leg.acl.network_acl_id, first.rule.text, leg.peer
                            ),
                        );
                        continue;
                    }
                    let block = Block {
                        target: t,
                        flow: flow.clone(),
                        acl: leg.acl.network_acl_id.clone(),
                        subnet: leg.subnet.clone(),
                        direction: leg.direction,
                        peer: first.addresses,
                        ports: first.ports,
                        rule: first.rule.clone(),
                        what: leg.what.clone(),
                        fix: allow_command(
                            leg.acl,
                            leg.direction,
                            &first.rule,
                            flow.protocol.number(),
                            leg.ports,
                            leg.allow_from.as_deref().unwrap_or(&first.addresses.to_string()),
                        ),
                    };
                    if flow.kind == FlowKind::HealthCheck {
                        blocks.push(block);
                    } else {
                        side.push(block);
                    }
                }
            }
        }

        let mut findings = Vec::new();
        if let Some(b) = blocks.first() {
            let affected: BTreeSet<String> = blocks.iter().map(|b| b.target.id().to_string()).collect();
            let failing = blocks
                .iter()
                .any(|b| is_failing(b.target.state()) || b.target.state() == "initial");
            let mut fixes: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
            for b in &blocks {
                fixes.entry(b.fix.as_str()).or_default().insert(b.target.id());
            }
            findings.push(
                Finding::new(
                    META.id,
                    if failing { Severity::Critical } else { Severity::Warning },
                    b.acl.clone(),
                    format!(
                        "network ACL {} of subnet {} denies {} ({} {} {} on {} {}) by {}; {} target(s) affected: {}",
                        b.acl,
                        b.subnet,
                        b.what,
                        b.direction.noun(),
                        b.direction.preposition(),
                        b.peer,
                        b.flow.protocol,
                        b.ports,
                        b.rule.text,
                        affected.len(),
                        blocks
                            .iter()
                            .map(|b| b.target.label())
                            .collect::<BTreeSet<_>>()
                            .into_iter()
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
                .with_targets(affected)
                .with_evidence(json!({
                    "blocked": blocks.iter().map(block_evidence).collect::<Vec<_>>(),
                    "fixes": fixes.iter().map(|(c, t)| json!({"command": c, "targets": t})).collect::<Vec<_>>(),
                    "loadBalancerAddresses": model.lb_addresses,
                    "notes": model.notes,
                    "undetermined": undetermined,
                }))
                .with_fix(b.fix.clone(), None),
            );
        }
        if let Some(b) = side.first() {
            findings.push(
                Finding::new(
                    META.id,
                    Severity::Warning,
                    b.acl.clone(),
                    format!(
                        "network ACL {} of subnet {} denies {} of the {} ({} {} {} on {} {}) by {} (health checks pass, so targets stay healthy while requests fail)",
                        b.acl,
                        b.subnet,
                        b.what,
                        b.flow.kind.noun(),
                        b.direction.noun(),
                        b.direction.preposition(),
                        b.peer,
                        b.flow.protocol,
                        b.ports,
                        b.rule.text,
                    ),
                )
                .with_evidence(json!({
                    "blocked": side.iter().map(block_evidence).collect::<Vec<_>>(),
                    "clientIpPreservation": model.client_ip,
                }))
                .with_fix(b.fix.clone(), None),
            );
        }
        if findings.is_empty() {
            let failing: Vec<String> = targets
                .iter()
                .filter(|t| is_failing(t.state()) && undetermined.contains_key(t.id()))
                .map(|t| format!("{}: {}", t.id(), undetermined[t.id()]))
                .collect();
            if !failing.is_empty() || (!targets.is_empty() && undetermined.len() == targets.len()) {
                let reasons: Vec<String> = if failing.is_empty() {
                    undetermined.iter().map(|(t, why)| format!("{t}: {why}")).collect()
                } else {
                    failing
                };
                return Err(Inconclusive(format!(
                    "the network ACLs on the path could not be decided ({})",
                    reasons.join("; ")
                )));
            }
        }
        Ok(findings)
    }
}

fn block_evidence(b: &Block<'_>) -> serde_json::Value {
    json!({
        "target": b.target.id(),
        "flow": b.flow.kind,
        "networkAcl": b.acl,
        "subnet": b.subnet,
        "direction": b.direction,
        "peer": b.peer,
        "protocol": b.flow.protocol,
        "ports": b.ports,
        "rule": b.rule.text,
        "what": b.what,
    })
}

/// The target subnet's inbound decision for the flow's packets from `peer`.
fn target_legs<'a>(acl: &'a NetworkAcl, subnet: &str, peer: Span, flow: &Flow, allow_from: Option<String>) -> Leg<'a> {
    Leg {
        acl,
        subnet: subnet.to_string(),
        direction: Direction::Inbound,
        peer,
        ports: Ports::one(flow.port),
        what: format!("the {} reaching the target", flow.kind.noun()),
        allow_from,
    }
}

/// The target subnet's outbound decision for its replies to `peer` (ephemeral ports).
fn reply_leg<'a>(acl: &'a NetworkAcl, subnet: &str, peer: Span, allow_from: Option<String>) -> Leg<'a> {
    Leg {
        acl,
        subnet: subnet.to_string(),
        direction: Direction::Outbound,
        peer,
        ports: Ports::EPHEMERAL,
        what: "the target's replies leaving its subnet".into(),
        allow_from,
    }
}

fn subnet_block(subnets: &[Subnet], id: &str, ipv6: bool) -> Option<String> {
    let s = subnets.iter().find(|s| s.subnet_id == id)?;
    if ipv6 {
        s.ipv6_cidr_block_association_set
            .first()
            .map(|a| a.ipv6_cidr_block.clone())
    } else {
        s.cidr_block.clone()
    }
}

/// An allow entry placed where it decides before `rule`: the highest free number below an
/// explicit deny, or, when the final `*` denied, the lowest free number from 100.
fn allow_command(
    acl: &NetworkAcl,
    direction: Direction,
    rule: &AclRule,
    protocol: &str,
    ports: Ports,
    cidr: &str,
) -> String {
    let egress = direction == Direction::Outbound;
    let used: BTreeSet<u32> = acl
        .entries
        .iter()
        .filter(|e| e.egress == egress)
        .map(|e| e.rule_number)
        .collect();
    let number = match rule.number {
        Some(deny) => (1..deny).rev().find(|n| !used.contains(n)),
        None => (100..32767).find(|n| !used.contains(n)),
    };
    let flag = if egress { "--egress" } else { "--ingress" };
    let block = if cidr.contains(':') {
        "--ipv6-cidr-block"
    } else {
        "--cidr-block"
    };
    match number {
        Some(n) => format!(
            "aws ec2 create-network-acl-entry --network-acl-id {} {flag} --rule-number {n} --protocol {protocol} --port-range From={},To={} {block} {} --rule-action allow",
            shell_quote(&acl.network_acl_id),
            ports.lo,
            ports.hi,
            shell_quote(cidr)
        ),
        // No free number before the deny: it has to go (or be renumbered).
        None => format!(
            "aws ec2 delete-network-acl-entry --network-acl-id {} {flag} --rule-number {}",
            shell_quote(&acl.network_acl_id),
            rule.label()
        ),
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
        assert!(
            f.message.contains("rule 90: deny tcp 30000-32767 from 192.168.0.0/18"),
            "{}",
            f.message
        );
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(
            f.fix.as_ref().unwrap().command,
            "aws ec2 create-network-acl-entry --network-acl-id 'acl-0priv0000000000p1' --ingress --rule-number 89 --protocol 6 --port-range From=30080,To=30080 --cidr-block '192.168.0.0/19' --rule-action allow"
        );
    }

    #[test]
    fn quiet_with_the_default_acl() {
        quiet(&NetworkAclBlocksTraffic, &scenario("healthy"));
    }

    #[test]
    fn quiet_when_the_first_matching_rule_allows_each_load_balancer_address() {
        // rule 50 denies a foreign host inside the load balancer's subnet, 100 allows all
        quiet(&NetworkAclBlocksTraffic, &scenario("healthy-acl-host-deny"));
        quiet(&NetworkAclBlocksTraffic, &scenario("healthy-ipv6-cluster"));
        quiet(
            &NetworkAclBlocksTraffic,
            &scenario("healthy-nlb-client-ip-preservation"),
        );
    }

    #[test]
    fn fires_when_the_allowed_range_misses_the_load_balancer_addresses() {
        let findings = fires(
            &NetworkAclBlocksTraffic,
            &scenario("network-acl-allows-part-of-lb-subnet"),
        );
        let f = &findings[0];
        assert!(
            f.message.contains("from 192.168.14.201") && f.message.contains("rule *"),
            "{}",
            f.message
        );
        assert!(
            f.fix.as_ref().unwrap().command.contains("--rule-number 102"),
            "{:?}",
            f.fix
        );
        // Without the interfaces the subnet is only partly allowed: which address the load
        // balancer has decides, so the check cannot.
        let mut s = scenario("network-acl-allows-part-of-lb-subnet");
        s.aws.load_balancer_interfaces = crate::snapshot::Collected::not_collected("not in dump");
        let why = crate::checks::fixtures::run(&NetworkAclBlocksTraffic, &s).unwrap_err();
        assert!(why.0.contains("depends on the load balancer's address"), "{why}");
    }

    #[test]
    fn with_custom_networking_the_pods_subnet_decides() {
        let findings = fires(&NetworkAclBlocksTraffic, &scenario("custom-networking-pod-subnet-acl"));
        assert_eq!(findings[0].resource, "acl-0pods0000000000q1");
        assert!(
            findings[0].message.contains("subnet-0a1b2c3d4e5f00031"),
            "{}",
            findings[0].message
        );
        quiet(&NetworkAclBlocksTraffic, &scenario("healthy-custom-networking"));
    }

    #[test]
    fn ipv6_packets_fall_to_the_ipv6_star_rule_of_an_ipv4_only_acl() {
        let findings = fires(&NetworkAclBlocksTraffic, &scenario("ipv6-acl-blocks-traffic"));
        let f = &findings[0];
        assert!(
            f.message.contains("from 2600:1f18:4a2:8c00:9d1e:4b07:21c3:6a10"),
            "{}",
            f.message
        );
        assert!(f
            .fix
            .as_ref()
            .unwrap()
            .command
            .contains("--ipv6-cidr-block '2600:1f18:4a2:8c00::/64'"));
    }
}
