//! `security-group-blocks-health-check`: the targets' security groups do not admit the load
//! balancer on the health-check port (or its traffic), or the load balancer's own groups do
//! not let it out.
//!
//! # What it checks
//! For every registered target, the packets it receives as [`crate::network_path`] models
//! them: TCP health checks from every load balancer node (each address of its interfaces),
//! and traffic on the target's port from the load balancer, or, with client IP preservation
//! (NLB instance targets, UDP and TCP_UDP by default), from the clients the Service declares
//! in `loadBalancerSourceRanges`. Each packet is evaluated as EC2 does: the union of every
//! rule of every group on the interface that receives it (the instance's primary interface;
//! for IP targets the interface holding the pod address, a branch interface's groups with
//! security groups for pods), sources by CIDR (IPv4 and IPv6), group reference, or managed
//! prefix list; and the load balancer's own outbound rules. A prefix list whose entries were
//! not collected leaves the verdict unknown, never "blocked".
//!
//! # Why it matters
//! Without the rule the load balancer's packets are dropped silently: `Target.Timeout`
//! everywhere although pods, Service and kube-proxy are fine. It happens when the
//! controller's managed rule was removed, `manage-backend-security-group-rules` is off, or
//! the nodes carry a different group than the one the controller edits.
//!
//! # Example
//! Bad: node group `eks-cluster-sg-...` has no rule from `k8s-traffic-demo-cluster-...` on
//! tcp 30080. Good: `tcp 30080 from sg-0bk... (elbv2.k8s.aws/targetGroupBinding=shared)`, or
//! two rules covering the two load balancer subnets between them, or a prefix list holding
//! them.
//!
//! # Fix safety
//! Catalogue fix `authorize-health-check-ingress`, offered only for a health-check port the
//! model found blocked (not unknown): one rule on the group the controller manages
//! (`resolveEndpointSGForENI`), from the load balancer's group, or, for an NLB without
//! groups, from its interface addresses (`/32` each). Approval only. Outbound rules of the
//! load balancer's groups and blocked traffic ports get the command, never the catalogue fix.
//!
//! # References
//! - <https://repost.aws/knowledge-center/eks-resolve-failed-health-check-alb-nlb> (networking)
//! - <https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-update-security-groups.html>
//! - <https://docs.aws.amazon.com/elasticloadbalancing/latest/network/target-group-register-targets.html#target-security-groups>
//! - <https://docs.aws.amazon.com/vpc/latest/userguide/security-group-rules.html>

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use super::{shell_quote, Check, CheckContext, CheckMeta, FixSafety, Inconclusive, TargetInfo};
use crate::aws::SecurityGroup;
use crate::controller::endpoint_security_group;
use crate::finding::{Finding, FixAction, Severity};
use crate::network_path::{
    evaluate_security_groups, Direction, Flow, FlowKind, PathModel, Peer, SgVerdict, Span, TargetEnd,
};
use crate::target_state::is_failing;

pub struct SecurityGroupBlocksHealthCheck;

static META: CheckMeta = CheckMeta {
    id: "security-group-blocks-health-check",
    title: "Target security groups do not admit the load balancer",
    runbook_step: "networking",
    fix: FixSafety::ApprovalOnly("authorize-health-check-ingress"),
};

/// The catalogue change, the command, and the targets it opens the path for.
type IngressFix = (Option<FixAction>, String, BTreeSet<String>);

/// One packet a group set does not admit.
struct Block<'t> {
    target: &'t TargetInfo<'t>,
    end: TargetEnd,
    flow: Flow,
    /// Who sends it: a load balancer address, or a client range.
    from: String,
    direction: Direction,
    groups: Vec<String>,
    verdict: SgVerdict,
}

impl Block<'_> {
    fn evidence(&self) -> Value {
        json!({
            "target": self.target.id(),
            "node": self.target.node_name(),
            "interface": self.end.interface,
            "address": self.end.address.to_string(),
            "via": self.end.via,
            "securityGroups": self.groups,
            "direction": self.direction,
            "flow": self.flow.kind,
            "protocol": self.flow.protocol,
            "port": self.flow.port,
            "from": self.from,
            "verdict": self.verdict,
        })
    }
}

impl Check for SecurityGroupBlocksHealthCheck {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    fn run(&self, cx: &CheckContext<'_>) -> Result<Vec<Finding>, Inconclusive> {
        cx.snapshot
            .aws
            .security_groups
            .items()
            .map_err(|why| Inconclusive(format!("security groups not collected: {why}")))?;
        let model = PathModel::new(cx)?;
        let targets = cx.targets()?;
        let lb_groups = model.groups(&model.lb_groups);
        let mut blocks: Vec<Block<'_>> = Vec::new();
        let mut partial: Vec<Block<'_>> = Vec::new();
        let mut undetermined: BTreeMap<String, String> = BTreeMap::new();
        for t in &targets {
            let end = match model.target_end(t) {
                Ok(end) => end,
                Err(why) => {
                    undetermined.insert(t.id().to_string(), why);
                    continue;
                }
            };
            let Some(ids) = end.groups.clone() else {
                undetermined.insert(t.id().to_string(), "no collected interface holds its address".into());
                continue;
            };
            let groups = match model.groups(&ids) {
                Ok(g) => g,
                Err(missing) => {
                    undetermined.insert(
                        t.id().to_string(),
                        format!("security groups {} not collected", missing.join(", ")),
                    );
                    continue;
                }
            };
            for flow in model.flows(t) {
                let sources: Vec<(Span, Vec<String>, String)> = match &flow.clients {
                    Some(clients) => clients
                        .iter()
                        .map(|c| (*c, Vec::new(), format!("clients {c}")))
                        .collect(),
                    None => model
                        .senders(&flow, &end)
                        .into_iter()
                        .map(|a| (a.addresses, model.lb_groups.clone(), a.label()))
                        .collect(),
                };
                for (addresses, peer_groups, from) in sources {
                    let peer = Peer {
                        addresses,
                        groups: &peer_groups,
                    };
                    let verdict = evaluate_security_groups(
                        &groups,
                        Direction::Inbound,
                        &peer,
                        flow.protocol,
                        flow.port,
                        model.lists,
                    );
                    let block = |verdict| Block {
                        target: t,
                        end: end.clone(),
                        flow: flow.clone(),
                        from: from.clone(),
                        direction: Direction::Inbound,
                        groups: ids.clone(),
                        verdict,
                    };
                    match verdict {
                        SgVerdict::Allowed { .. } => {}
                        SgVerdict::Blocked { .. } => blocks.push(block(verdict)),
                        SgVerdict::Partial { .. } if flow.clients.is_some() => partial.push(block(verdict)),
                        SgVerdict::Partial { .. } => {
                            undetermined.insert(
                                t.id().to_string(),
                                format!("admitted from part of {from} only: it depends on the load balancer's address, and its interfaces were not collected"),
                            );
                        }
                        SgVerdict::Unknown { why } => {
                            undetermined.insert(t.id().to_string(), why);
                        }
                    }
                }
                // The load balancer's own outbound rules (ALBs; NLBs with groups).
                if flow.clients.is_none() && !model.lb_groups.is_empty() {
                    if let Ok(lb_groups) = &lb_groups {
                        let peer = Peer {
                            addresses: Span::addr(end.address),
                            groups: &ids,
                        };
                        let verdict = evaluate_security_groups(
                            lb_groups,
                            Direction::Outbound,
                            &peer,
                            flow.protocol,
                            flow.port,
                            model.lists,
                        );
                        if verdict.is_blocked() {
                            blocks.push(Block {
                                target: t,
                                end: end.clone(),
                                flow: flow.clone(),
                                from: "the load balancer".into(),
                                direction: Direction::Outbound,
                                groups: model.lb_groups.clone(),
                                verdict,
                            });
                        }
                    }
                }
            }
        }

        let mut findings = Vec::new();
        let cluster = cx
            .resolution
            .cluster
            .clone()
            .or_else(|| cx.snapshot.cluster_name.clone());
        let all_groups = cx.snapshot.aws.security_groups.items().unwrap_or_default();
        let cluster_sg = cx
            .snapshot
            .aws
            .cluster
            .present()
            .and_then(|c| c.resources_vpc_config.as_ref())
            .and_then(|v| v.cluster_security_group_id.clone());
        let (inbound_hc, rest): (Vec<&Block<'_>>, Vec<&Block<'_>>) = blocks
            .iter()
            .partition(|b| b.direction == Direction::Inbound && b.flow.kind == FlowKind::HealthCheck);
        let (outbound, traffic): (Vec<&Block<'_>>, Vec<&Block<'_>>) =
            rest.into_iter().partition(|b| b.direction == Direction::Outbound);

        if !inbound_hc.is_empty() {
            // One command per (group to open, port): the group the controller manages.
            let mut commands: BTreeMap<(String, u16), IngressFix> = BTreeMap::new();
            for b in &inbound_hc {
                let group = group_to_open(&b.groups, all_groups, cluster.as_deref(), cluster_sg.as_deref());
                let entry = commands.entry((group.clone(), b.flow.port)).or_insert_with(|| {
                    let (action, command) = ingress_fix(&model, &group, b.flow.protocol.name(), b.flow.port);
                    (action, command, BTreeSet::new())
                });
                entry.2.insert(b.target.id().to_string());
            }
            let first = inbound_hc[0];
            let ((group, _), (action, command, _)) = commands
                .iter()
                .next()
                .map(|(k, v)| (k.clone(), v.clone()))
                .unwrap_or_default();
            let affected: BTreeSet<String> = inbound_hc.iter().map(|b| b.target.id().to_string()).collect();
            let labels: BTreeSet<String> = inbound_hc.iter().map(|b| b.target.label()).collect();
            let failing = inbound_hc
                .iter()
                .any(|b| is_failing(b.target.state()) || b.target.state() == "initial");
            let senders: BTreeSet<&str> = inbound_hc.iter().map(|b| b.from.as_str()).collect();
            let f = Finding::new(
                META.id,
                if failing { Severity::Critical } else { Severity::Warning },
                group.clone(),
                format!(
                    "no inbound rule of {} on {} ({}) admits the health check (tcp {}) from {}{}; {} target(s) affected: {}{}",
                    first.groups.join(", "),
                    first.end.interface.as_deref().unwrap_or("the target's interface"),
                    first.end.via,
                    first.flow.port,
                    senders.iter().take(3).copied().collect::<Vec<_>>().join(", "),
                    if model.lb_groups.is_empty() { String::new() } else { format!(" or {}", model.lb_groups.join(", ")) },
                    affected.len(),
                    labels.into_iter().collect::<Vec<_>>().join(", "),
                    if failing { "" } else { " (the load balancer still reports them healthy: a rule removed moments ago, or something the model cannot see)" }
                ),
            )
            .with_targets(affected)
            .with_evidence(json!({
                "loadBalancer": lb_evidence(&model),
                "blocked": inbound_hc.iter().map(|b| b.evidence()).collect::<Vec<_>>(),
                "fixes": commands.iter().map(|((g, p), (_, c, t))| json!({"group": g, "port": p, "targets": t, "command": c})).collect::<Vec<_>>(),
                "undetermined": undetermined,
            }))
            .with_fix(command, META.fix.fix_id())
            .with_action(action);
            findings.push(f);
        }

        if !outbound.is_empty() {
            let first = outbound[0];
            let affected: BTreeSet<String> = outbound.iter().map(|b| b.target.id().to_string()).collect();
            let failing = outbound
                .iter()
                .any(|b| is_failing(b.target.state()) || b.target.state() == "initial");
            let group = model.lb_groups.first().cloned().unwrap_or_default();
            let target_group = first.end.groups.as_ref().and_then(|g| g.first()).cloned();
            let destination = match &target_group {
                Some(g) => format!("UserIdGroupPairs=[{{GroupId={g}}}]"),
                None => format!("IpRanges=[{{CidrIp={}}}]", Span::addr(first.end.address)),
            };
            findings.push(
                Finding::new(
                    META.id,
                    if failing { Severity::Critical } else { Severity::Warning },
                    group.clone(),
                    format!(
                        "no outbound rule of the load balancer's groups {} lets its {} (tcp {}) out to {} ({} target(s))",
                        model.lb_groups.join(", "),
                        first.flow.kind.noun(),
                        first.flow.port,
                        first.end.address,
                        affected.len()
                    ),
                )
                .with_targets(affected)
                .with_evidence(json!({
                    "loadBalancer": lb_evidence(&model),
                    "blocked": outbound.iter().map(|b| b.evidence()).collect::<Vec<_>>(),
                }))
                .with_fix(
                    format!(
                        "aws ec2 authorize-security-group-egress --group-id {} --ip-permissions {}",
                        shell_quote(&group),
                        shell_quote(&format!(
                            "IpProtocol={},FromPort={p},ToPort={p},{destination}",
                            first.flow.protocol.name(),
                            p = first.flow.port
                        ))
                    ),
                    None,
                ),
            );
        }

        // Traffic that health checks do not share: users' requests fail, the alarm does
        // not come from it. A side warning naming no target.
        let side: Vec<&Block<'_>> = traffic.into_iter().chain(partial.iter()).collect();
        if !side.is_empty() {
            let first = side[0];
            let group = group_to_open(&first.groups, all_groups, cluster.as_deref(), cluster_sg.as_deref());
            let source = match (&first.flow.clients, &first.verdict) {
                (Some(_), SgVerdict::Partial { uncovered, .. }) => {
                    uncovered.iter().map(Span::to_string).collect::<Vec<_>>()
                }
                (Some(c), _) => c.iter().map(Span::to_string).collect(),
                (None, _) => Vec::new(),
            };
            let command = if source.is_empty() {
                ingress_fix(&model, &group, first.flow.protocol.name(), first.flow.port).1
            } else {
                cidr_command(&group, first.flow.protocol.name(), first.flow.port, &source)
            };
            findings.push(
                Finding::new(
                    META.id,
                    Severity::Warning,
                    group,
                    format!(
                        "{} on {} {} is not admitted from {}{} (health checks use another port or source, so targets stay healthy while requests fail)",
                        first.flow.kind.noun(),
                        first.flow.protocol,
                        first.flow.port,
                        first.from,
                        if matches!(first.verdict, SgVerdict::Partial { .. }) { " in part" } else { "" }
                    ),
                )
                .with_evidence(json!({
                    "loadBalancer": lb_evidence(&model),
                    "blocked": side.iter().map(|b| b.evidence()).collect::<Vec<_>>(),
                }))
                .with_fix(command, None),
            );
        }

        if findings.is_empty() {
            let failing_undetermined: Vec<String> = targets
                .iter()
                .filter(|t| is_failing(t.state()) && undetermined.contains_key(t.id()))
                .map(|t| format!("{}: {}", t.id(), undetermined[t.id()]))
                .collect();
            if !failing_undetermined.is_empty() || (!targets.is_empty() && undetermined.len() == targets.len()) {
                let all: Vec<String> = undetermined.iter().map(|(t, why)| format!("{t}: {why}")).collect();
                return Err(Inconclusive(format!(
                    "the security groups of {} could not be evaluated ({})",
                    if failing_undetermined.is_empty() {
                        "every target"
                    } else {
                        "failing targets"
                    },
                    if failing_undetermined.is_empty() {
                        all
                    } else {
                        failing_undetermined
                    }
                    .join("; ")
                )));
            }
        }
        Ok(findings)
    }
}

/// The group a rule goes on: the one the controller manages on the interface; when that is
/// ambiguous (the controller itself then fails), the EKS cluster security group if the
/// interface carries it, else the first.
fn group_to_open(groups: &[String], all: &[SecurityGroup], cluster: Option<&str>, cluster_sg: Option<&str>) -> String {
    endpoint_security_group(groups, all, cluster)
        .or_else(|| cluster_sg.filter(|c| groups.iter().any(|g| g == c)).map(str::to_string))
        .or_else(|| groups.first().cloned())
        .unwrap_or_default()
}

/// The load balancer side, for evidence.
fn lb_evidence(model: &PathModel<'_>) -> Value {
    json!({
        "securityGroups": model.lb_groups,
        "addresses": model.lb_addresses,
        "clientIpPreservation": model.client_ip,
        "crossZone": model.cross_zone,
        "notes": model.notes,
    })
}

/// The command and the catalogue change that admit the load balancer on `port`: from its
/// (backend) security group, or, without groups, from its addresses (its subnets' ranges
/// when its interfaces were not collected: what the controller itself opens).
fn ingress_fix(model: &PathModel<'_>, group: &str, protocol: &str, port: u16) -> (Option<FixAction>, String) {
    let backend = model
        .groups(&model.lb_groups)
        .ok()
        .and_then(|gs| {
            gs.iter()
                .find(|g| {
                    g.tags
                        .iter()
                        .any(|t| t.key == "elbv2.k8s.aws/resource" && t.value == "backend-sg")
                })
                .map(|g| g.group_id.clone())
        })
        .or_else(|| model.lb_groups.last().cloned());
    match backend {
        Some(source) => (
            Some(FixAction::AuthorizeIngress {
                group_id: group.to_string(),
                protocol: protocol.to_string(),
                port,
                source_group_id: Some(source.clone()),
                source_cidrs: Vec::new(),
            }),
            format!(
                "aws ec2 authorize-security-group-ingress --group-id {} --protocol {protocol} --port {port} --source-group {}",
                shell_quote(group),
                shell_quote(&source)
            ),
        ),
        None => {
            let cidrs: Vec<String> = model
                .lb_addresses
                .iter()
                .map(|a| match a.addresses.is_single() {
                    true => format!("{}/{}", a.addresses, if a.addresses.v6 { 128 } else { 32 }),
                    false => a.addresses.to_string(),
                })
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            (
                Some(FixAction::AuthorizeIngress {
                    group_id: group.to_string(),
                    protocol: protocol.to_string(),
                    port,
                    source_group_id: None,
                    source_cidrs: cidrs.clone(),
                }),
                cidr_command(group, protocol, port, &cidrs),
            )
        }
    }
}

fn cidr_command(group: &str, protocol: &str, port: u16, cidrs: &[String]) -> String {
    let (v6, v4): (Vec<&String>, Vec<&String>) = cidrs.iter().partition(|c| c.contains(':'));
    let mut permission = format!("IpProtocol={protocol},FromPort={port},ToPort={port}");
    if !v4.is_empty() {
        let ranges: Vec<String> = v4.iter().map(|c| format!("{{CidrIp={c}}}")).collect();
        permission.push_str(&format!(",IpRanges=[{}]", ranges.join(",")));
    }
    if !v6.is_empty() {
        let ranges: Vec<String> = v6.iter().map(|c| format!("{{CidrIpv6={c}}}")).collect();
        permission.push_str(&format!(",Ipv6Ranges=[{}]", ranges.join(",")));
    }
    format!(
        "aws ec2 authorize-security-group-ingress --group-id {} --ip-permissions {}",
        shell_quote(group),
        shell_quote(&permission)
    )
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
            "aws ec2 authorize-security-group-ingress --group-id 'sg-0c1000000000000c1' --protocol tcp --port 30080 --source-group 'sg-0bk000000000000b1'"
        );
        assert_eq!(findings[0].severity, Severity::Critical);
    }

    #[test]
    fn quiet_when_the_rule_exists() {
        quiet(&SecurityGroupBlocksHealthCheck, &scenario("healthy"));
    }

    #[test]
    fn quiet_for_an_nlb_admitted_by_cidr() {
        quiet(&SecurityGroupBlocksHealthCheck, &scenario("nlb-local-by-design"));
    }

    #[test]
    fn quiet_where_aws_admits_the_load_balancer_by_any_rule_kind() {
        for name in [
            // two permissions, one per load balancer subnet
            "healthy-sg-rules-split-across-subnets",
            // a managed prefix list holding the subnets
            "healthy-sg-prefix-list",
            // client IP preservation: the traffic port open to the clients only
            "healthy-nlb-client-ip-preservation",
            // the pod's own group on its branch interface, not the node's
            "healthy-security-groups-for-pods",
            "healthy-ipv6-cluster",
        ] {
            quiet(&SecurityGroupBlocksHealthCheck, &scenario(name));
        }
    }

    #[test]
    fn an_unread_prefix_list_is_inconclusive_never_blocked() {
        let mut s = scenario("healthy-sg-prefix-list");
        s.aws.prefix_lists.insert(
            "pl-0a1b2c3d4e5f000b1".into(),
            crate::snapshot::Collected::not_collected("ec2:GetManagedPrefixListEntries: AccessDenied"),
        );
        let why = crate::checks::fixtures::run(&SecurityGroupBlocksHealthCheck, &s).unwrap_err();
        assert!(
            why.0.contains("pl-0a1b2c3d4e5f000b1") && why.0.contains("AccessDenied"),
            "{why}"
        );
    }

    #[test]
    fn an_nlb_without_groups_is_admitted_by_its_addresses() {
        let findings = fires(
            &SecurityGroupBlocksHealthCheck,
            &scenario("nlb-health-check-port-closed"),
        );
        let fix = findings[0].fix.as_ref().unwrap();
        assert_eq!(fix.fix_id, Some("authorize-health-check-ingress"));
        assert_eq!(
            fix.action,
            Some(FixAction::AuthorizeIngress {
                group_id: "sg-0c1000000000000c1".into(),
                protocol: "tcp".into(),
                port: 32123,
                source_group_id: None,
                source_cidrs: vec!["192.168.22.117/32".into(), "192.168.53.8/32".into()],
            })
        );
        // The traffic port is open to the declared clients, as it should be: no warning.
        assert_eq!(findings.len(), 1, "{findings:#?}");
    }

    #[test]
    fn names_the_pod_group_of_a_branch_interface() {
        let findings = fires(
            &SecurityGroupBlocksHealthCheck,
            &scenario("security-groups-for-pods-blocked"),
        );
        assert_eq!(findings[0].resource, "sg-0pod0000000000e1");
        assert!(
            findings[0].message.contains("branch interface"),
            "{}",
            findings[0].message
        );
        assert_eq!(findings[0].targets.len(), 2);
    }

    #[test]
    fn subnets_stand_for_the_load_balancer_when_its_interfaces_are_unknown() {
        let mut s = scenario("security-group-blocks-health-check");
        s.aws.load_balancer_interfaces = crate::snapshot::Collected::not_collected("not in dump");
        let findings = fires(&SecurityGroupBlocksHealthCheck, &s);
        assert!(
            findings[0]
                .message
                .contains("subnet-0a1b2c3d4e5f00011 (192.168.0.0/19)"),
            "{}",
            findings[0].message
        );
    }

    #[test]
    fn clients_left_out_of_the_traffic_port_are_a_side_warning() {
        let mut s = scenario("healthy-nlb-client-ip-preservation");
        if let crate::snapshot::Collected::Present(groups) = &mut s.aws.security_groups {
            let rule = groups[0]
                .ip_permissions
                .iter_mut()
                .find(|p| p.from_port == Some(31080))
                .unwrap();
            rule.ip_ranges.retain(|r| r.cidr_ip == "203.0.113.0/24");
        }
        let findings = fires(&SecurityGroupBlocksHealthCheck, &s);
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].severity, Severity::Warning);
        assert!(
            findings[0].targets.is_empty(),
            "a side warning explains no failing target"
        );
        assert!(findings[0].fix.as_ref().unwrap().command.contains("198.51.100.0/24"));
    }

    #[test]
    fn a_tcp_udp_target_group_needs_the_udp_port_open_to_its_clients() {
        // TCP_UDP preserves client IPs always; the rules open tcp 31080 to the clients only.
        let mut s = scenario("healthy-nlb-client-ip-preservation");
        if let crate::snapshot::Collected::Present(tg) = &mut s.aws.target_group {
            tg.protocol = Some("TCP_UDP".into());
        }
        let findings = fires(&SecurityGroupBlocksHealthCheck, &s);
        assert_eq!(findings.len(), 1, "{findings:#?}");
        assert_eq!(findings[0].severity, Severity::Warning);
        assert!(
            findings[0].message.starts_with("traffic on udp 31080"),
            "{}",
            findings[0].message
        );
        assert!(findings[0]
            .fix
            .as_ref()
            .unwrap()
            .command
            .contains("IpProtocol=udp,FromPort=31080"));
    }

    #[test]
    fn a_block_the_load_balancer_does_not_see_yet_is_a_warning() {
        let mut s = scenario("security-group-blocks-health-check");
        if let crate::snapshot::Collected::Present(health) = &mut s.aws.target_health {
            for h in health {
                h.target_health.state = "healthy".into();
                h.target_health.reason = None;
            }
        }
        let findings = fires(&SecurityGroupBlocksHealthCheck, &s);
        assert_eq!(findings[0].severity, Severity::Warning);
        assert!(findings[0].message.contains("still reports them healthy"));
    }
}
