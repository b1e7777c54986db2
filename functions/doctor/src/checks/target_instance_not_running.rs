//! `target-instance-not-running`: the instance behind a target is stopped or terminated, or
//! its node is NotReady.
//!
//! # What it checks
//! For every registered target: the reason `Target.InvalidState`, the EC2 instance state
//! (anything but `running`, or an instance EC2 says no longer exists), and the Kubernetes
//! Node's Ready condition (False or Unknown). For IP targets, the instance and node hosting
//! the pod. Targets that are draining (being deregistered) from instances shutting down or
//! nodes being removed (Cluster Autoscaler's `ToBeDeletedByClusterAutoscaler`, Karpenter's
//! `karpenter.sh/disrupted`, a cordon during a node group update) are normal rotation: an
//! `info` finding, never a cause. Targets concerned: the affected ones.
//!
//! # Why it matters
//! A stopped or terminated instance cannot answer; a NotReady node (kubelet down, network
//! partition, resource pressure) usually cannot either. No Kubernetes-side fix helps until
//! the node is back or replaced and deregistered.
//!
//! # Example
//! Bad: `Target.InvalidState: Target is in the stopped state`, node `NotReady`.
//! Good: instance `running`, node `Ready`.
//!
//! # Fix safety
//! Manual: starting instances or deregistering targets is a capacity decision; the report
//! gives the command that fits the state found.
//!
//! # References
//! - <https://docs.aws.amazon.com/eks/latest/userguide/managed-node-update-behavior.html> (node group updates drain and replace nodes)
//! - <https://docs.aws.amazon.com/elasticloadbalancing/latest/application/target-group-health-checks.html#target-health-reason-codes>
//! - <https://docs.aws.amazon.com/eks/latest/userguide/troubleshooting.html>

use serde_json::json;

use super::{is_node_ready, Check, CheckContext, CheckMeta, FixSafety, Inconclusive, TargetInfo};
use crate::finding::{Finding, Severity};
use crate::{controller, target_state};

pub struct TargetInstanceNotRunning;

static META: CheckMeta = CheckMeta {
    id: "target-instance-not-running",
    title: "Target instance stopped or node NotReady",
    runbook_step: "(beyond)",
    fix: FixSafety::Manual,
};

/// Why a target's instance or node is down, or `None` when it is fine.
fn down(cx: &CheckContext<'_>, t: &TargetInfo<'_>) -> Option<Vec<String>> {
    let mut what = Vec::new();
    if let Some(s) = t.instance.map(|i| i.state_name()).filter(|s| *s != "running") {
        what.push(format!("instance {s}"));
    }
    let instance_id = t.instance.map(|i| i.instance_id.as_str()).unwrap_or(t.id());
    if t.instance.is_none() && cx.snapshot.aws.instances_not_found.iter().any(|i| i == instance_id) {
        what.push("instance no longer exists".into());
    }
    if t.node.map(is_node_ready) == Some(false) {
        what.push("node NotReady".into());
    }
    if what.is_empty() && t.reason() == Some("Target.InvalidState") {
        what.push("Target.InvalidState".into());
    }
    (!what.is_empty()).then_some(what)
}

/// The target is leaving on purpose: draining from an instance shutting down or a node
/// being removed.
fn rotating(t: &TargetInfo<'_>) -> Option<String> {
    if !target_state::is_draining(t.state()) {
        return None;
    }
    if let Some(s) = t
        .instance
        .map(|i| i.state_name())
        .filter(|s| matches!(*s, "shutting-down" | "terminated" | "stopping" | "stopped"))
    {
        return Some(format!("instance {s}"));
    }
    t.node.and_then(controller::node_is_being_removed).map(str::to_string)
}

impl Check for TargetInstanceNotRunning {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    fn run(&self, cx: &CheckContext<'_>) -> Result<Vec<Finding>, Inconclusive> {
        let tg = cx.target_group()?;
        let targets = cx.targets()?;
        if cx.snapshot.aws.instances.items().is_err() && cx.snapshot.kube.nodes.items().is_err() {
            let invalid = targets.iter().any(|t| t.reason() == Some("Target.InvalidState"));
            if !invalid {
                return Err(Inconclusive::new("neither EC2 instances nor Nodes were collected"));
            }
        }
        let mut hits = Vec::new();
        let mut rotation = Vec::new();
        for t in &targets {
            if let Some(why) = rotating(t) {
                rotation.push((t, why));
            } else if let Some(what) = down(cx, t) {
                hits.push((t, what));
            }
        }
        let mut out = Vec::new();
        if !rotation.is_empty() {
            out.push(
                Finding::new(
                    META.id,
                    Severity::Info,
                    tg.target_group_arn.clone(),
                    format!(
                        "{} target(s) are draining from nodes being replaced: normal rotation (node group update, Cluster Autoscaler, Karpenter), not a fault ({})",
                        rotation.len(),
                        rotation
                            .iter()
                            .map(|(t, why)| format!("{}: {why}", t.label()))
                            .collect::<Vec<_>>()
                            .join("; ")
                    ),
                )
                .with_targets(rotation.iter().map(|(t, _)| t.id().to_string()))
                .with_evidence(json!({
                    "targets": rotation.iter().map(|(t, why)| json!({
                        "id": t.id(), "state": t.state(), "node": t.node_name(), "why": why,
                    })).collect::<Vec<_>>(),
                })),
            );
        }
        let Some((first, first_what)) = hits.first() else {
            return Ok(out);
        };
        let instance_id = first.instance.map(|i| i.instance_id.clone());
        let state = first.instance.map(|i| i.state_name());
        let fix = match (state, &instance_id) {
            (Some("stopped" | "stopping"), Some(id)) => format!("aws ec2 start-instances --instance-ids {id}"),
            (Some("terminated" | "shutting-down"), _) => format!(
                "aws elbv2 deregister-targets --target-group-arn {} --targets Id={}",
                tg.target_group_arn,
                first.id()
            ),
            _ if first_what.iter().any(|w| w.contains("no longer exists")) => format!(
                "aws elbv2 deregister-targets --target-group-arn {} --targets Id={}",
                tg.target_group_arn,
                first.id()
            ),
            _ => match first.node_name() {
                Some(node) => format!("kubectl describe node {}", super::shell_quote(node)),
                None => format!(
                    "aws ec2 describe-instance-status --include-all-instances --instance-ids {}",
                    first.id()
                ),
            },
        };
        out.insert(
            0,
            Finding::new(
                META.id,
                Severity::Critical,
                instance_id.unwrap_or_else(|| first.id().to_string()),
                format!(
                    "{} target(s) sit on instances that are not running or nodes that are not Ready: {}",
                    hits.len(),
                    hits.iter()
                        .map(|(t, what)| format!("{} ({})", t.label(), what.join(", ")))
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            )
            .with_targets(hits.iter().map(|(t, _)| t.id().to_string()))
            .with_evidence(json!({
                "targets": hits.iter().map(|(t, what)| json!({
                    "id": t.id(),
                    "instance": t.instance.map(|i| &i.instance_id),
                    "instanceState": t.instance.map(|i| i.state_name()),
                    "node": t.node_name(),
                    "nodeReady": t.node.map(is_node_ready),
                    "state": t.state(),
                    "reason": t.reason(),
                    "description": t.health.target_health.description,
                    "problems": what,
                })).collect::<Vec<_>>(),
            }))
            .with_fix(fix, None),
        );
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixtures::{fires, quiet, scenario};

    #[test]
    fn fires_on_a_stopped_instance() {
        let findings = fires(&TargetInstanceNotRunning, &scenario("target-instance-not-running"));
        let f = &findings[0];
        assert!(f.message.contains("instance stopped"), "{}", f.message);
        assert!(f.message.contains("node NotReady"), "{}", f.message);
        assert_eq!(
            f.fix.as_ref().unwrap().command,
            "aws ec2 start-instances --instance-ids i-0a1b2c3d4e5f6a002"
        );
    }

    #[test]
    fn quiet_when_instances_run() {
        quiet(&TargetInstanceNotRunning, &scenario("healthy"));
    }
}
