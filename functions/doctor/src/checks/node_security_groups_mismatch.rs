//! `node-security-groups-mismatch`: the nodes behind the target group carry different
//! security groups and traffic cannot flow between them.
//!
//! # What it checks
//! Groups the EC2 instances behind the targets by their security-group sets. When there is
//! more than one set (typically two node groups, one without the EKS cluster security group),
//! it checks that each set admits the other on the pods' port. NodePort traffic arriving on
//! one node is forwarded by kube-proxy to a pod that may run on another.
//!
//! # Why it matters
//! With `externalTrafficPolicy: Cluster` (and in IP mode across node groups) a health check
//! landing on node A is answered by a pod on node B. If B's groups do not admit A, the check
//! times out on A even though A is fine: intermittent or permanent unhealthy targets that
//! look random.
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

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::json;

use super::net::{cidr, sg_admits, Source};
use super::{container_ports, Check, CheckContext, CheckMeta, FixSafety, Inconclusive};
use crate::aws::{Instance, SecurityGroup};
use crate::finding::{Finding, Severity};

pub struct NodeSecurityGroupsMismatch;

static META: CheckMeta = CheckMeta {
    id: "node-security-groups-mismatch",
    title: "Node groups' security groups do not admit each other",
    runbook_step: "cluster security groups",
    fix: FixSafety::Manual,
};

/// The port pods listen on for this backend: the Service's numeric targetPort, else the
/// named container port it refers to, else the target group port.
fn pod_port(cx: &CheckContext<'_>) -> Result<u16, Inconclusive> {
    if let Ok(port) = cx.service_port() {
        match port.target_port.as_ref() {
            None => return u16::try_from(port.port).map_err(|_| Inconclusive::new("bad service port")),
            Some(IntOrString::Int(n)) => return u16::try_from(*n).map_err(|_| Inconclusive::new("bad targetPort")),
            Some(IntOrString::String(name)) => {
                let pods = cx.selected_pods()?;
                if let Some(n) = pods
                    .iter()
                    .flat_map(|p| container_ports(p))
                    .find(|(n, _)| *n == Some(name.as_str()))
                {
                    return u16::try_from(n.1).map_err(|_| Inconclusive::new("bad containerPort"));
                }
            }
        }
    }
    cx.target_group()?
        .port
        .ok_or_else(|| Inconclusive::new("target group has no port"))
}

impl Check for NodeSecurityGroupsMismatch {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    fn run(&self, cx: &CheckContext<'_>) -> Result<Vec<Finding>, Inconclusive> {
        cx.instances()?;
        let groups = cx
            .snapshot
            .aws
            .security_groups
            .items()
            .map_err(|why| Inconclusive(format!("security groups not collected: {why}")))?;
        let targets = cx.targets()?;
        // Security-group set -> instances carrying exactly that set.
        let mut sets: BTreeMap<Vec<String>, Vec<&Instance>> = BTreeMap::new();
        for inst in targets.iter().filter_map(|t| t.instance) {
            let mut ids: Vec<String> = inst.security_groups.iter().map(|g| g.group_id.clone()).collect();
            ids.sort();
            let members = sets.entry(ids).or_default();
            if !members.iter().any(|i| i.instance_id == inst.instance_id) {
                members.push(inst);
            }
        }
        if sets.len() < 2 {
            return Ok(vec![]);
        }
        let port = pod_port(cx)?;
        let lookup =
            |ids: &[String]| -> Vec<&SecurityGroup> { groups.iter().filter(|g| ids.contains(&g.group_id)).collect() };
        let mut blocked = Vec::new();
        let keys: Vec<&Vec<String>> = sets.keys().collect();
        for from in &keys {
            for to in &keys {
                if from == to {
                    continue;
                }
                let source = Source {
                    groups: (*from).clone(),
                    cidrs: sets[*from]
                        .iter()
                        .filter_map(|i| i.private_ip_address.as_deref().and_then(cidr))
                        .collect(),
                };
                if sg_admits(&lookup(to), &source, port).is_none() {
                    blocked.push(((*from).clone(), (*to).clone()));
                }
            }
        }
        if blocked.is_empty() {
            return Ok(vec![]);
        }
        let cluster_sg = cx
            .snapshot
            .aws
            .cluster
            .present()
            .and_then(|c| c.resources_vpc_config.as_ref())
            .and_then(|v| v.cluster_security_group_id.clone());
        let describe_set = |ids: &Vec<String>| {
            json!({
                "securityGroups": ids,
                "instances": sets[ids].iter().map(|i| &i.instance_id).collect::<Vec<_>>(),
                "hasClusterSecurityGroup": cluster_sg.as_ref().map(|c| ids.contains(c)),
            })
        };
        let unhealthy = targets.iter().any(|t| crate::target_state::is_failing(t.state()));
        let severity = if unhealthy {
            Severity::Critical
        } else {
            Severity::Warning
        };
        let (from, to) = &blocked[0];
        let pairs: Vec<String> = blocked
            .iter()
            .map(|(f, t)| format!("{} -> {}", f.join("+"), t.join("+")))
            .collect();
        Ok(vec![Finding::new(
            META.id,
            severity,
            to.join(","),
            format!(
                "the nodes behind the target group carry {} different security-group sets and traffic on port {port} cannot flow between them ({}); health checks forwarded to pods on the other node group time out",
                sets.len(),
                pairs.join("; ")
            ),
        )
        .with_targets({
            // Targets on nodes that cannot reach pods on the other node group's nodes.
            let from_sets: Vec<&Vec<String>> = blocked.iter().map(|(f, _)| f).collect();
            targets
                .iter()
                .filter(|t| {
                    t.instance.is_some_and(|i| {
                        let mut ids: Vec<String> = i.security_groups.iter().map(|g| g.group_id.clone()).collect();
                        ids.sort();
                        from_sets.contains(&&ids)
                    })
                })
                .map(|t| t.id().to_string())
                .collect::<Vec<_>>()
        })
        .with_evidence(json!({
            "port": port,
            "clusterSecurityGroup": cluster_sg,
            "sets": keys.iter().map(|k| describe_set(k)).collect::<Vec<_>>(),
            "blocked": blocked.iter().map(|(f, t)| json!({ "from": f, "to": t })).collect::<Vec<_>>(),
        }))
        .with_fix(
            format!(
                "aws ec2 authorize-security-group-ingress --group-id {} --ip-permissions 'IpProtocol=-1,UserIdGroupPairs=[{{GroupId={}}}]'",
                to[0], from[0]
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
    fn fires_when_node_groups_do_not_admit_each_other() {
        let findings = fires(&NodeSecurityGroupsMismatch, &scenario("node-security-groups-mismatch"));
        assert_eq!(findings[0].severity, Severity::Critical);
        assert_eq!(findings[0].evidence["blocked"].as_array().unwrap().len(), 2);
        assert!(findings[0]
            .fix
            .as_ref()
            .unwrap()
            .command
            .starts_with("aws ec2 authorize-security-group-ingress"));
    }

    #[test]
    fn quiet_when_all_nodes_share_their_groups() {
        quiet(&NodeSecurityGroupsMismatch, &scenario("healthy"));
    }
}
