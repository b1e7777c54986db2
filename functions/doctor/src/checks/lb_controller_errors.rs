//! `lb-controller-errors`: the AWS Load Balancer Controller is not available, or its logs /
//! events show permission or reconcile errors.
//!
//! # What it checks
//! For target groups the controller manages (its tags or a TargetGroupBinding): the
//! controller Deployment exists and has available replicas; its pods' logs hold no error
//! lines (permission errors such as `AccessDenied ... is not authorized to perform:
//! elasticloadbalancing:RegisterTargets` are singled out with the denied actions); no Warning
//! events such as `FailedDeployModel` on the backend's Ingress, Service or binding.
//!
//! # Why it matters
//! The controller registers and deregisters targets as pods and nodes come and go. If it is
//! down or lacks IAM permissions, the target group keeps stale targets (unhealthy) and never
//! gets the new ones, whatever the state of the pods.
//!
//! # Example
//! Bad: `"level":"error" ... "Reconciler error" ... AccessDenied ... elasticloadbalancing:RegisterTargets`.
//! Good: `2/2` available replicas and only `successfully deployed model` lines.
//!
//! # Fix safety
//! Manual: IAM policy changes and controller restarts are human decisions. The report names
//! the denied actions and the command that installs the current controller IAM policy.
//!
//! # References
//! - <https://repost.aws/knowledge-center/eks-resolve-failed-health-check-alb-nlb> (controller permissions and logs)
//! - <https://kubernetes-sigs.github.io/aws-load-balancer-controller/latest/deploy/installation/>

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use serde_json::{json, Value};

use super::{is_pod_ready, labels_match, pod_name, Check, CheckContext, CheckMeta, FixSafety, Inconclusive};
use crate::finding::{k8s_resource, Finding, Severity};
use crate::resolve::{TAG_CLUSTER, TAG_INGRESS_RESOURCE, TAG_SERVICE_STACK};

pub struct LbControllerErrors;

static META: CheckMeta = CheckMeta {
    id: "lb-controller-errors",
    title: "AWS Load Balancer Controller unavailable or failing",
    runbook_step: "controller permissions",
    fix: FixSafety::Manual,
};

const CONTROLLER: &str = "aws-load-balancer-controller";
const PERMISSION_MARKERS: &[&str] = &[
    "AccessDenied",
    "UnauthorizedOperation",
    "is not authorized to perform",
    "WebIdentityErr",
];
const FAILURE_EVENT_REASONS: &[&str] = &[
    "FailedDeployModel",
    "FailedBuildModel",
    "FailedNetworkReconcile",
    "FailedRegisterTargets",
    "FailedAddFinalizer",
];

fn is_controller(d: &Deployment) -> bool {
    d.metadata.name.as_deref() == Some(CONTROLLER)
        || d.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("app.kubernetes.io/name"))
            .map(String::as_str)
            == Some(CONTROLLER)
}

/// An error line of the controller's log: (is a permission error, the denied action, text).
pub(crate) fn classify_log_line(line: &str) -> Option<(bool, Option<String>, String)> {
    let parsed: Option<Value> = line
        .trim_start()
        .starts_with('{')
        .then(|| serde_json::from_str(line).ok())
        .flatten();
    let is_error = match &parsed {
        Some(v) => v.get("level").and_then(Value::as_str) == Some("error"),
        None => {
            line.contains("level=error")
                || line.starts_with('E') && line.get(1..5).is_some_and(|d| d.bytes().all(|b| b.is_ascii_digit()))
        }
    };
    if !is_error {
        return None;
    }
    let text = match &parsed {
        Some(v) => {
            let msg = v.get("msg").and_then(Value::as_str).unwrap_or("");
            match v.get("error").and_then(Value::as_str) {
                Some(err) => format!("{msg}: {err}"),
                None => msg.to_string(),
            }
        }
        None => line.to_string(),
    };
    let permission = PERMISSION_MARKERS.iter().any(|m| text.contains(m));
    let action = text
        .split_once("perform: ")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .map(|a| a.trim_end_matches([',', '.', ';']).to_string());
    Some((permission, action, text))
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        format!("{}...", s.chars().take(max).collect::<String>())
    }
}

impl Check for LbControllerErrors {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    fn run(&self, cx: &CheckContext<'_>) -> Result<Vec<Finding>, Inconclusive> {
        let kube = &cx.snapshot.kube;
        let tags = cx.snapshot.aws.tags.present();
        let managed = tags.is_some_and(|t| {
            t.contains_key(TAG_CLUSTER) || t.contains_key(TAG_SERVICE_STACK) || t.contains_key(TAG_INGRESS_RESOURCE)
        }) || cx.backend().is_ok_and(|b| b.target_group_binding.is_some());
        if !managed {
            return Ok(vec![]); // not a controller-managed target group (legacy in-tree or hand-made)
        }
        let deployments = kube
            .deployments
            .items()
            .map_err(|why| Inconclusive(format!("controller Deployment not collected: {why}")))?;
        let Some(deployment) = deployments.iter().find(|d| is_controller(d)) else {
            return Ok(vec![Finding::new(
                META.id,
                Severity::Critical,
                format!("kube-system/Deployment/{CONTROLLER}"),
                "the target group is managed by the AWS Load Balancer Controller but no controller Deployment exists: nothing registers or deregisters its targets",
            )
            .with_evidence(json!({ "deploymentsCollected": deployments.len() }))
            .with_fix("kubectl get deployments -A -l app.kubernetes.io/name=aws-load-balancer-controller", None)]);
        };
        let ns = deployment.metadata.namespace.as_deref().unwrap_or("kube-system");
        let name = deployment.metadata.name.as_deref().unwrap_or(CONTROLLER);
        let resource = k8s_resource(ns, "Deployment", name);
        let status = deployment.status.as_ref();
        let desired = deployment.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        let available = status.and_then(|s| s.available_replicas).unwrap_or(0);

        let selector = deployment
            .spec
            .as_ref()
            .and_then(|s| s.selector.match_labels.clone())
            .unwrap_or_default();
        let pods: Vec<_> = kube
            .pods
            .items()
            .unwrap_or_default()
            .iter()
            .filter(|p| p.metadata.namespace.as_deref() == Some(ns))
            .filter(|p| !selector.is_empty() && labels_match(&selector, p.metadata.labels.as_ref()))
            .collect();

        // Log errors grouped by (permission?, action, first 160 chars).
        let mut errors: BTreeMap<(bool, Option<String>), (usize, String)> = BTreeMap::new();
        let logs = kube.logs.present();
        let mut logs_read = 0;
        for pod in &pods {
            let Some(log) = logs.and_then(|l| l.get(&(ns.to_string(), pod_name(pod).to_string()))) else {
                continue;
            };
            logs_read += 1;
            for (permission, action, text) in log.lines().filter_map(classify_log_line) {
                let entry = errors.entry((permission, action)).or_insert((0, text));
                entry.0 += 1;
            }
        }

        // Warning events on the backend's objects.
        let backend = cx.backend().ok();
        let events: Vec<String> = kube
            .events
            .items()
            .unwrap_or_default()
            .iter()
            .filter(|e| e.type_.as_deref() == Some("Warning"))
            .filter(|e| e.reason.as_deref().is_some_and(|r| FAILURE_EVENT_REASONS.contains(&r)))
            .filter(|e| {
                backend.is_none_or(|b| {
                    e.involved_object.namespace.as_deref() == Some(b.namespace.as_str())
                        && [Some(&b.service), b.ingress.as_ref(), b.target_group_binding.as_ref()]
                            .into_iter()
                            .flatten()
                            .any(|n| e.involved_object.name.as_deref() == Some(n.as_str()))
                })
            })
            .map(|e| {
                format!(
                    "{} {}: {}",
                    e.involved_object.kind.as_deref().unwrap_or("?"),
                    e.reason.as_deref().unwrap_or("?"),
                    truncate(e.message.as_deref().unwrap_or(""), 300)
                )
            })
            .collect();
        let event_permission = events.iter().any(|e| PERMISSION_MARKERS.iter().any(|m| e.contains(m)));

        let denied: Vec<String> = errors
            .keys()
            .filter(|(p, _)| *p)
            .filter_map(|(_, a)| a.clone())
            .collect();
        let permission_errors: usize = errors.iter().filter(|((p, _), _)| *p).map(|(_, (n, _))| n).sum();
        let other_errors: usize = errors.iter().filter(|((p, _), _)| !*p).map(|(_, (n, _))| n).sum();
        let evidence = json!({
            "deployment": format!("{ns}/{name}"),
            "replicas": desired,
            "availableReplicas": available,
            "readyPods": pods.iter().filter(|p| is_pod_ready(p)).count(),
            "logsRead": logs_read,
            "deniedActions": denied,
            "logErrors": errors.iter().map(|((p, a), (n, text))| json!({
                "permission": p, "action": a, "count": n, "sample": truncate(text, 400)
            })).collect::<Vec<_>>(),
            "warningEvents": events,
        });

        let account = cx.snapshot.account_id.clone().unwrap_or_else(|| "<account-id>".into());
        let policy_fix = format!(
            "aws iam create-policy-version --policy-arn arn:aws:iam::{account}:policy/AWSLoadBalancerControllerIAMPolicy --policy-document file://iam_policy.json --set-as-default"
        );
        let finding = if available == 0 {
            Finding::new(
                META.id,
                Severity::Critical,
                resource,
                format!("the AWS Load Balancer Controller has 0 of {desired} replicas available: target registrations are not being kept in sync"),
            )
            .with_fix(format!("kubectl -n {ns} describe deployment {name} && kubectl -n {ns} logs deploy/{name} --tail=100"), None)
        } else if permission_errors > 0 || event_permission {
            let actions = if denied.is_empty() {
                "see evidence".to_string()
            } else {
                denied.join(", ")
            };
            Finding::new(
                META.id,
                Severity::Critical,
                resource,
                format!("the AWS Load Balancer Controller is denied AWS API calls ({actions}); {permission_errors} permission error(s) in its logs"),
            )
            .with_fix(policy_fix, None)
        } else if other_errors > 0 || !events.is_empty() {
            Finding::new(
                META.id,
                Severity::Warning,
                resource,
                format!(
                    "the AWS Load Balancer Controller reports {other_errors} reconcile error(s) in its logs and {} warning event(s)",
                    events.len()
                ),
            )
            .with_fix(format!("kubectl -n {ns} logs deploy/{name} --tail=200 | grep -i error"), None)
        } else if logs_read == 0 {
            let why = kube.logs.reason().unwrap_or("no log for any controller pod");
            return Err(Inconclusive(format!(
                "controller Deployment {ns}/{name} is available but its logs were not collected: {why}"
            )));
        } else {
            return Ok(vec![]);
        };
        Ok(vec![finding.with_evidence(evidence)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixtures::{fires, quiet, scenario};
    use crate::snapshot::Collected;

    #[test]
    fn fires_on_access_denied_in_the_logs() {
        let findings = fires(&LbControllerErrors, &scenario("lb-controller-errors"));
        let f = &findings[0];
        assert_eq!(f.severity, Severity::Critical);
        assert!(
            f.message.contains("elasticloadbalancing:RegisterTargets"),
            "{}",
            f.message
        );
        assert!(f
            .fix
            .as_ref()
            .unwrap()
            .command
            .contains("AWSLoadBalancerControllerIAMPolicy"));
    }

    #[test]
    fn fires_when_no_replica_is_available() {
        let mut snap = scenario("healthy");
        if let Collected::Present(ds) = &mut snap.kube.deployments {
            for d in ds.iter_mut().filter(|d| is_controller(d)) {
                d.status.as_mut().unwrap().available_replicas = Some(0);
            }
        }
        let findings = fires(&LbControllerErrors, &snap);
        assert!(findings[0].message.contains("0 of 2"), "{}", findings[0].message);
    }

    #[test]
    fn quiet_when_the_controller_is_healthy() {
        quiet(&LbControllerErrors, &scenario("healthy"));
    }

    #[test]
    fn inconclusive_without_logs() {
        let mut snap = scenario("healthy");
        snap.kube.logs = Collected::not_collected("forbidden: get pods/log");
        let err = crate::checks::fixtures::run(&LbControllerErrors, &snap).unwrap_err();
        assert!(err.0.contains("forbidden: get pods/log"), "{err}");
    }

    #[test]
    fn classifies_log_lines() {
        let denied = r#"{"level":"error","msg":"Reconciler error","error":"api error AccessDenied: User: x is not authorized to perform: elasticloadbalancing:RegisterTargets on resource: y"}"#;
        let (perm, action, _) = classify_log_line(denied).unwrap();
        assert!(perm);
        assert_eq!(action.as_deref(), Some("elasticloadbalancing:RegisterTargets"));
        assert_eq!(
            classify_log_line(r#"{"level":"info","msg":"successfully deployed model"}"#),
            None
        );
        let (perm, _, _) =
            classify_log_line(r#"{"level":"error","msg":"Reconciler error","error":"throttled"}"#).unwrap();
        assert!(!perm);
    }
}
