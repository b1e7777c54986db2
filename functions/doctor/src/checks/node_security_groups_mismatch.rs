//! `node-security-groups-mismatch`: a node that receives the load balancer's packets cannot
//! forward them to the pods on other nodes, because of their security groups.
//!
//! # What it checks
//! Instance targets with `externalTrafficPolicy: Cluster`: kube-proxy on the node a packet
//! arrives at sends it on to any ready pod of the Service, source-NATed to the node's own
//! address. For each target node and each ready backend pod on another node, the hop as EC2
//! evaluates it ([`crate::network_path::evaluate_security_groups`]): the sending node's
//! outbound rules, and the inbound rules of the interface holding the pod's address (a
//! secondary address or prefix of the other node's interface, or the pod's own branch
//! interface with security groups for pods) for the pod's port, from the node's address or
//! its groups. Typically two node groups, one without the EKS cluster security group.
//!
//! # Why it matters
//! A health check landing on node A is answered by a pod on node B. If B's groups do not
//! admit A, the check times out on A although A is fine: intermittent or permanent
//! unhealthy targets that look random.
//!
//! # Example
//! Bad: node group `ng-1` has `eks-cluster-sg-...`, `ng-2` only `sg-ng2` which admits
//! nothing from the cluster group. Good: every node group carries the cluster security group
//! (or the groups reference each other).
//!
//! # Fix safety
//! Manual: the report gives the `aws ec2 authorize-security-group-ingress` that lets the
//! groups talk; widening security groups is a human decision.
//!
//! # References
//! - <https://repost.aws/knowledge-center/eks-resolve-failed-health-check-alb-nlb> (cluster security groups)
//! - <https://docs.aws.amazon.com/eks/latest/userguide/sec-group-reqs.html>
//! - <https://kubernetes.io/docs/reference/networking/virtual-ips/#external-traffic-policy>

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;

use super::{pod_ips, pod_name, pod_node, shell_quote, Check, CheckContext, CheckMeta, FixSafety, Inconclusive};
use crate::aws::Instance;
use crate::finding::{Finding, Severity};
use crate::kubernetes::{is_pod_ready, resolve_target_port};
use crate::network_path::{evaluate_security_groups, Direction, Peer, Protocol, SgVerdict, Span};
use crate::target_state::is_failing;

pub struct NodeSecurityGroupsMismatch;

static META: CheckMeta = CheckMeta {
    id: "node-security-groups-mismatch",
    title: "Node groups' security groups do not admit each other",
    runbook_step: "cluster security groups",
    fix: FixSafety::Manual,
};

struct Hop {
    from_target: String,
    from_instance: String,
    from_groups: Vec<String>,
    pod: String,
    pod_ip: String,
    node: String,
    interface: Option<String>,
    to_groups: Vec<String>,
    port: u16,
    direction: Direction,
    verdict: SgVerdict,
}

impl Check for NodeSecurityGroupsMismatch {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    fn run(&self, cx: &CheckContext<'_>) -> Result<Vec<Finding>, Inconclusive> {
        if cx.target_type()? != "instance" {
            return Ok(vec![]); // IP targets receive the packets themselves
        }
        let service = cx.service()?;
        if service.spec.as_ref().and_then(|s| s.external_traffic_policy.as_deref()) == Some("Local") {
            return Ok(vec![]); // no forwarding to other nodes
        }
        cx.instances()?;
        let groups = cx
            .snapshot
            .aws
            .security_groups
            .items()
            .map_err(|why| Inconclusive(format!("security groups not collected: {why}")))?;
        let enis = cx.snapshot.aws.network_interfaces.items().unwrap_or_default();
        let lists = &cx.snapshot.aws.prefix_lists;
        let target_port = cx.service_port()?.target_port.clone();
        let pods: Vec<_> = cx.selected_pods()?.into_iter().filter(|p| is_pod_ready(p)).collect();
        let targets = cx.targets()?;
        let lookup = |ids: &[String]| -> Option<Vec<&crate::aws::SecurityGroup>> {
            let found: Vec<_> = groups.iter().filter(|g| ids.contains(&g.group_id)).collect();
            (found.len() == ids.len()).then_some(found)
        };
        let group_ids =
            |i: &Instance| -> Vec<String> { i.security_groups.iter().map(|g| g.group_id.clone()).collect() };
        let mut hops: Vec<Hop> = Vec::new();
        let mut undetermined: BTreeSet<String> = BTreeSet::new();
        for t in &targets {
            let (Some(from), Some(node)) = (t.instance, t.node_name()) else {
                continue;
            };
            let Some(from_ip) = from.private_ip_address.as_deref().and_then(Span::parse) else {
                continue;
            };
            let from_ids = group_ids(from);
            let Some(from_groups) = lookup(&from_ids) else {
                undetermined.insert(format!("{}: its security groups were not collected", t.id()));
                continue;
            };
            for pod in pods.iter().filter(|p| pod_node(p).is_some_and(|n| n != node)) {
                let Some(ip) = pod_ips(pod).next() else { continue };
                let port = match &target_port {
                    Some(tp) => resolve_target_port(pod, tp),
                    None => cx.service_port().ok().map(|p| p.port),
                };
                let Some(port) = port.and_then(|p| u16::try_from(p).ok()) else {
                    continue;
                };
                let holder = enis.iter().find(|e| e.has_ip(ip));
                let to_ids: Vec<String> = match holder {
                    Some(e) => e.groups.iter().map(|g| g.group_id.clone()).collect(),
                    None => match pod_node(pod)
                        .and_then(|n| cx.node_by_name(n))
                        .and_then(super::node_instance_id)
                        .and_then(|id| cx.instance_by_id(id))
                    {
                        Some(i) => group_ids(i),
                        None => {
                            undetermined.insert(format!(
                                "{}: no interface or node of pod {} collected",
                                t.id(),
                                pod_name(pod)
                            ));
                            continue;
                        }
                    },
                };
                let Some(to_groups) = lookup(&to_ids) else {
                    undetermined.insert(format!(
                        "{}: the security groups of pod {} were not collected",
                        t.id(),
                        pod_name(pod)
                    ));
                    continue;
                };
                let Some(pod_span) = Span::parse(ip) else { continue };
                let inbound = evaluate_security_groups(
                    &to_groups,
                    Direction::Inbound,
                    &Peer {
                        addresses: from_ip,
                        groups: &from_ids,
                    },
                    Protocol::Tcp,
                    port,
                    lists,
                );
                let outbound = evaluate_security_groups(
                    &from_groups,
                    Direction::Outbound,
                    &Peer {
                        addresses: pod_span,
                        groups: &to_ids,
                    },
                    Protocol::Tcp,
                    port,
                    lists,
                );
                for (direction, verdict) in [(Direction::Inbound, inbound), (Direction::Outbound, outbound)] {
                    match verdict {
                        SgVerdict::Blocked { .. } => hops.push(Hop {
                            from_target: t.id().to_string(),
                            from_instance: from.instance_id.clone(),
                            from_groups: from_ids.clone(),
                            pod: pod_name(pod).to_string(),
                            pod_ip: ip.to_string(),
                            node: pod_node(pod).unwrap_or_default().to_string(),
                            interface: holder.map(|e| e.network_interface_id.clone()),
                            to_groups: to_ids.clone(),
                            port,
                            direction,
                            verdict,
                        }),
                        SgVerdict::Unknown { why } => {
                            undetermined.insert(format!("{}: {why}", t.id()));
                        }
                        SgVerdict::Allowed { .. } | SgVerdict::Partial { .. } => {}
                    }
                }
            }
        }
        let Some(first) = hops.first() else {
            if !undetermined.is_empty() && targets.iter().any(|t| is_failing(t.state())) {
                return Err(Inconclusive(format!(
                    "the hop from nodes to pods could not be evaluated ({})",
                    undetermined.into_iter().collect::<Vec<_>>().join("; ")
                )));
            }
            return Ok(vec![]);
        };
        let from_targets: BTreeSet<&str> = hops.iter().map(|h| h.from_target.as_str()).collect();
        let failing = targets
            .iter()
            .any(|t| from_targets.contains(t.id()) && (is_failing(t.state()) || t.state() == "initial"));
        let pairs: BTreeMap<String, BTreeSet<String>> = hops.iter().fold(BTreeMap::new(), |mut m, h| {
            m.entry(format!("{} -> {}", h.from_groups.join("+"), h.to_groups.join("+")))
                .or_default()
                .insert(format!("{} -> {} ({}:{})", h.from_instance, h.pod, h.pod_ip, h.port));
            m
        });
        let fix = match first.direction {
            Direction::Inbound => format!(
                "aws ec2 authorize-security-group-ingress --group-id {} --ip-permissions {}",
                shell_quote(&first.to_groups[0]),
                shell_quote(&format!(
                    "IpProtocol=tcp,FromPort={p},ToPort={p},UserIdGroupPairs=[{{GroupId={}}}]",
                    first.from_groups.first().cloned().unwrap_or_default(),
                    p = first.port
                ))
            ),
            Direction::Outbound => format!(
                "aws ec2 authorize-security-group-egress --group-id {} --ip-permissions {}",
                shell_quote(&first.from_groups[0]),
                shell_quote(&format!(
                    "IpProtocol=tcp,FromPort={p},ToPort={p},UserIdGroupPairs=[{{GroupId={}}}]",
                    first.to_groups.first().cloned().unwrap_or_default(),
                    p = first.port
                ))
            ),
        };
        Ok(vec![Finding::new(
            META.id,
            if failing { Severity::Critical } else { Severity::Warning },
            first.to_groups.join(","),
            format!(
                "nodes behind the target group cannot forward to the pods on other nodes: {} has no {} rule for tcp {} ({}); health checks forwarded there time out",
                match first.direction {
                    Direction::Inbound => first.to_groups.join(", "),
                    Direction::Outbound => first.from_groups.join(", "),
                },
                first.direction.noun(),
                first.port,
                pairs.keys().cloned().collect::<Vec<_>>().join("; ")
            ),
        )
        .with_targets(from_targets.iter().map(|t| t.to_string()))
        .with_evidence(json!({
            "blocked": hops.iter().map(|h| json!({
                "fromTarget": h.from_target,
                "fromInstance": h.from_instance,
                "fromSecurityGroups": h.from_groups,
                "pod": h.pod,
                "podIp": h.pod_ip,
                "podNode": h.node,
                "podInterface": h.interface,
                "podSecurityGroups": h.to_groups,
                "port": h.port,
                "direction": h.direction,
                "verdict": h.verdict,
            })).collect::<Vec<_>>(),
            "pairs": pairs,
            "undetermined": undetermined,
        }))
        .with_fix(fix, None)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixtures::{fires, quiet, scenario};

    #[test]
    fn fires_when_node_groups_do_not_admit_each_other() {
        let findings = fires(&NodeSecurityGroupsMismatch, &scenario("node-security-groups-mismatch"));
        assert_eq!(findings[0].severity, Severity::Critical);
        let blocked = findings[0].evidence["blocked"].as_array().unwrap();
        assert_eq!(blocked.len(), 1, "{blocked:#?}");
        assert_eq!(blocked[0]["podSecurityGroups"], json!(["sg-0ng200000000000d1"]));
        assert_eq!(findings[0].targets, ["i-0a1b2c3d4e5f6a001"]);
        assert!(findings[0]
            .fix
            .as_ref()
            .unwrap()
            .command
            .starts_with("aws ec2 authorize-security-group-ingress --group-id 'sg-0ng200000000000d1'"));
    }

    #[test]
    fn quiet_when_all_nodes_share_their_groups() {
        quiet(&NodeSecurityGroupsMismatch, &scenario("healthy"));
    }
}
