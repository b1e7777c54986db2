//! `target-instance-not-running`: the instance behind a target is stopped or terminated, or
//! its node is NotReady.
//!
//! # What it checks
//! For every registered target: the reason `Target.InvalidState`, the EC2 instance state
//! (anything but `running`), and the Kubernetes Node's Ready condition (False or Unknown).
//! For IP targets, the instance and node hosting the pod.
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
//! - <https://docs.aws.amazon.com/elasticloadbalancing/latest/application/target-group-health-checks.html#target-health-reason-codes>
//! - <https://docs.aws.amazon.com/eks/latest/userguide/troubleshooting.html>

use serde_json::json;

use super::{is_node_ready, Check, CheckContext, CheckMeta, FixSafety, Inconclusive};
use crate::finding::{Finding, Severity};

pub struct TargetInstanceNotRunning;

static META: CheckMeta = CheckMeta {
    id: "target-instance-not-running",
    title: "Target instance stopped or node NotReady",
    runbook_step: "(beyond)",
    fix: FixSafety::Manual,
};

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
        for t in &targets {
            let instance_state = t.instance.map(|i| i.state_name());
            let node_ready = t.node.map(is_node_ready);
            let bad_instance = instance_state.is_some_and(|s| s != "running");
            let bad_node = node_ready == Some(false);
            if bad_instance || bad_node || t.reason() == Some("Target.InvalidState") {
                hits.push((t, instance_state, node_ready));
            }
        }
        if hits.is_empty() {
            return Ok(vec![]);
        }
        let (first, state, _) = &hits[0];
        let instance_id = first.instance.map(|i| i.instance_id.clone());
        let fix = match (*state, &instance_id) {
            (Some("stopped" | "stopping"), Some(id)) => format!("aws ec2 start-instances --instance-ids {id}"),
            (Some("terminated" | "shutting-down"), _) => format!(
                "aws elbv2 deregister-targets --target-group-arn {} --targets Id={}",
                tg.target_group_arn,
                first.id()
            ),
            _ => match first.node_name() {
                Some(node) => format!("kubectl describe node {node}"),
                None => format!(
                    "aws ec2 describe-instance-status --include-all-instances --instance-ids {}",
                    first.id()
                ),
            },
        };
        Ok(vec![Finding::new(
            META.id,
            Severity::Critical,
            instance_id.unwrap_or_else(|| first.id().to_string()),
            format!(
                "{} target(s) sit on instances that are not running or nodes that are not Ready: {}",
                hits.len(),
                hits.iter()
                    .map(|(t, s, r)| {
                        let mut what = Vec::new();
                        if let Some(s) = s.filter(|s| *s != "running") {
                            what.push(format!("instance {s}"));
                        }
                        if *r == Some(false) {
                            what.push("node NotReady".to_string());
                        }
                        if what.is_empty() {
                            what.push(t.reason().unwrap_or("invalid state").to_string());
                        }
                        format!("{} ({})", t.label(), what.join(", "))
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        )
        .with_evidence(json!({
            "targets": hits.iter().map(|(t, s, r)| json!({
                "id": t.id(),
                "instance": t.instance.map(|i| &i.instance_id),
                "instanceState": s,
                "node": t.node_name(),
                "nodeReady": r,
                "reason": t.reason(),
                "description": t.health.target_health.description,
            })).collect::<Vec<_>>(),
        }))
        .with_fix(fix, None)])
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
