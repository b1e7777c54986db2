//! `cluster-security-group-tag-ambiguous`: a target's interface carries several security
//! groups, and not exactly one is tagged for the cluster, so the controller cannot pick the
//! group to add the load balancer's rules to.
//!
//! # What it checks
//! For targets whose binding has the controller manage backend rules (`networking` in the
//! TargetGroupBinding), the interface that receives the traffic ([`crate::network_path`]:
//! the instance's primary interface, the pod's interface): with more than one group, the
//! controller uses the one tagged `kubernetes.io/cluster/<cluster-name>`, and fails when none
//! or several are (`resolveEndpointSGForENI`, see [`crate::controller::endpoint_security_group`]).
//! The controller's log line saying so is attached when it was collected.
//!
//! # Why it matters
//! Every reconcile of the binding fails: rules the load balancer needs are never added (new
//! ports, a replaced group), and `lb-controller-errors` shows the symptom without the cause.
//! Typical after a node group gained a second cluster-tagged group, or a custom launch template
//! dropped the EKS cluster security group.
//!
//! # Example
//! Bad: nodes with `eks-cluster-sg-demo` and `demo-ng-1-sg`, both tagged
//! `kubernetes.io/cluster/demo-cluster`. Good: only the cluster group tagged.
//!
//! # Fix safety
//! Manual: tags on security groups are shared by everything that reads them. The report gives
//! the `aws ec2 delete-tags` that leaves the EKS cluster security group the only tagged one
//! (or `create-tags` when none is).
//!
//! # References
//! - `pkg/networking/networking_manager.go` (`resolveEndpointSGForENI`) in
//!   kubernetes-sigs/aws-load-balancer-controller
//! - <https://kubernetes-sigs.github.io/aws-load-balancer-controller/latest/deploy/security_group/>

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;

use super::{shell_quote, Check, CheckContext, CheckMeta, FixSafety, Inconclusive};
use crate::finding::{Finding, Severity};
use crate::network_path::PathModel;
use crate::target_state::is_failing;

pub struct ClusterSecurityGroupTagAmbiguous;

static META: CheckMeta = CheckMeta {
    id: "cluster-security-group-tag-ambiguous",
    title: "Not exactly one target security group tagged for the cluster",
    runbook_step: "controller permissions",
    fix: FixSafety::Manual,
};

/// An interface's groups, the ones tagged for the cluster, and the targets behind it.
type Ambiguity = (Vec<String>, Vec<String>, BTreeSet<String>);

/// What the controller logs when it cannot choose.
const LOG_MARK: &str = "expected exactly one securityGroup tagged with";

impl Check for ClusterSecurityGroupTagAmbiguous {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    fn run(&self, cx: &CheckContext<'_>) -> Result<Vec<Finding>, Inconclusive> {
        // Only a binding whose backend rules the controller manages needs the choice.
        let backend = cx.backend()?;
        let bindings = cx
            .snapshot
            .kube
            .target_group_bindings
            .items()
            .map_err(|why| Inconclusive(format!("TargetGroupBindings not collected: {why}")))?;
        let managed = bindings
            .iter()
            .find(|b| {
                b.metadata.name.as_deref() == backend.target_group_binding.as_deref()
                    && b.metadata.namespace.as_deref() == Some(backend.namespace.as_str())
            })
            .is_some_and(|b| b.spec.networking.is_some());
        if !managed {
            return Ok(vec![]);
        }
        let cluster = cx
            .resolution
            .cluster
            .clone()
            .or_else(|| cx.snapshot.cluster_name.clone())
            .ok_or_else(|| Inconclusive::new("the cluster's name is not known"))?;
        let groups = cx
            .snapshot
            .aws
            .security_groups
            .items()
            .map_err(|why| Inconclusive(format!("security groups not collected: {why}")))?;
        let key = format!("kubernetes.io/cluster/{cluster}");
        let model = PathModel::new(cx)?;
        let targets = cx.targets()?;
        // interface -> (its groups, the tagged ones, targets)
        let mut ambiguous: BTreeMap<String, Ambiguity> = BTreeMap::new();
        for t in &targets {
            let Ok(end) = model.target_end(t) else { continue };
            let (Some(ids), Some(eni)) = (end.groups.clone(), end.interface.clone()) else {
                continue;
            };
            if ids.len() < 2 {
                continue;
            }
            if ids.iter().any(|id| !groups.iter().any(|g| &g.group_id == id)) {
                continue; // a group's tags not collected: cannot say
            }
            let tagged: Vec<String> = ids
                .iter()
                .filter(|id| {
                    groups
                        .iter()
                        .any(|g| &&g.group_id == id && g.tags.iter().any(|t| t.key == key))
                })
                .cloned()
                .collect();
            if tagged.len() != 1 {
                ambiguous
                    .entry(eni)
                    .or_insert((ids, tagged, BTreeSet::new()))
                    .2
                    .insert(t.id().to_string());
            }
        }
        let Some((eni, (ids, tagged, _))) = ambiguous.iter().next() else {
            return Ok(vec![]);
        };
        let affected: BTreeSet<String> = ambiguous.values().flat_map(|(_, _, t)| t.iter().cloned()).collect();
        let failing = targets
            .iter()
            .any(|t| affected.contains(t.id()) && is_failing(t.state()));
        let log_lines: Vec<String> = cx
            .snapshot
            .kube
            .logs
            .present()
            .into_iter()
            .flat_map(|logs| logs.values())
            .flat_map(|text| text.lines())
            .filter(|l| l.contains(LOG_MARK))
            .map(|l| super::truncate(l, 400))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .take(3)
            .collect();
        let cluster_sg = cx
            .snapshot
            .aws
            .cluster
            .present()
            .and_then(|c| c.resources_vpc_config.as_ref())
            .and_then(|v| v.cluster_security_group_id.clone());
        let fix = if tagged.is_empty() {
            let keep = cluster_sg.filter(|c| ids.contains(c)).unwrap_or_else(|| ids[0].clone());
            format!(
                "aws ec2 create-tags --resources {} --tags {}",
                shell_quote(&keep),
                shell_quote(&format!("Key={key},Value=owned"))
            )
        } else {
            let keep = cluster_sg
                .filter(|c| tagged.contains(c))
                .unwrap_or_else(|| tagged[0].clone());
            let drop: Vec<String> = tagged.iter().filter(|g| **g != keep).map(|g| shell_quote(g)).collect();
            format!(
                "aws ec2 delete-tags --resources {} --tags {}",
                drop.join(" "),
                shell_quote(&format!("Key={key}"))
            )
        };
        Ok(vec![Finding::new(
            META.id,
            if failing { Severity::Critical } else { Severity::Warning },
            ids.join(","),
            format!(
                "interface {eni} carries {} security groups and {} of them are tagged {key} ({}): the controller cannot choose the group to add the load balancer's rules to, and fails on every reconcile{}",
                ids.len(),
                tagged.len(),
                if tagged.is_empty() { "none".to_string() } else { tagged.join(", ") },
                if log_lines.is_empty() { String::new() } else { " (its log says so)".to_string() }
            ),
        )
        .with_targets(affected.iter().cloned())
        // The controller's reconcile of the whole binding fails on it: it explains the
        // controller's errors about the target group, not only these targets.
        .group_level()
        .with_evidence(json!({
            "tagKey": key,
            "interfaces": ambiguous.iter().map(|(eni, (ids, tagged, targets))| json!({
                "interface": eni, "securityGroups": ids, "tagged": tagged, "targets": targets,
            })).collect::<Vec<_>>(),
            "controllerLog": log_lines,
        }))
        .with_fix(fix, None)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixtures::{fires, quiet, scenario};

    #[test]
    fn fires_when_two_groups_carry_the_cluster_tag() {
        let findings = fires(
            &ClusterSecurityGroupTagAmbiguous,
            &scenario("controller-security-group-tag-ambiguous"),
        );
        let f = &findings[0];
        assert_eq!(f.severity, Severity::Critical);
        assert!(f.message.contains("2 of them are tagged"), "{}", f.message);
        assert_eq!(
            f.fix.as_ref().unwrap().command,
            "aws ec2 delete-tags --resources 'sg-0ng200000000000d1' --tags 'Key=kubernetes.io/cluster/demo-cluster'"
        );
        assert!(!f.evidence["controllerLog"].as_array().unwrap().is_empty());
    }

    #[test]
    fn quiet_with_one_group_or_unmanaged_rules() {
        quiet(&ClusterSecurityGroupTagAmbiguous, &scenario("healthy"));
        quiet(
            &ClusterSecurityGroupTagAmbiguous,
            &scenario("healthy-sg-rules-split-across-subnets"),
        );
        quiet(
            &ClusterSecurityGroupTagAmbiguous,
            &scenario("node-security-groups-mismatch"),
        );
    }
}
