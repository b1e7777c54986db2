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
//! Only errors that concern this target group can be its cause: log lines naming the
//! backend's Service, Ingress, IngressGroup or TargetGroupBinding or the target group's ARN,
//! and lines naming no object at all (credentials, webhook: they affect every target group),
//! from the hour before the snapshot was taken. Errors about other objects, and older
//! lines, are context: an `info` finding that explains nothing. The controller is a
//! group-level cause (it concerns no target directly): it explains stale registrations.
//! A Deployment that was not collected (the dump or the gathering did not cover its
//! namespace) makes the check inconclusive, never "no controller". Errors that only concern
//! security-group rules (e.g. `expected exactly one securityGroup tagged with
//! kubernetes.io/cluster/...`) explain a blocked health check; errors that only concern
//! registrations explain stale targets. A target group of EKS Auto Mode (its
//! TargetGroupBinding in `eks.amazonaws.com/v1`, an `eks.amazonaws.com/alb` IngressClass or an
//! `eks.amazonaws.com/nlb` loadBalancerClass) has no controller in the cluster to read:
//! inconclusive.
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
use serde_json::json;

use super::{is_pod_ready, labels_match, pod_name, truncate, Check, CheckContext, CheckMeta, FixSafety, Inconclusive};
use crate::controller::{self, BackendObjects, Concerns};
use crate::finding::{k8s_resource, Finding, Severity};
use crate::resolve::{TAG_CLUSTER, TAG_INGRESS_RESOURCE, TAG_INGRESS_STACK, TAG_SERVICE_STACK};

pub struct LbControllerErrors;

static META: CheckMeta = CheckMeta {
    id: "lb-controller-errors",
    title: "AWS Load Balancer Controller unavailable or failing",
    runbook_step: "controller permissions",
    fix: FixSafety::Manual,
};

const CONTROLLER: &str = "aws-load-balancer-controller";
const CONTROLLER_NAMESPACE: &str = "kube-system";
const NAME_LABEL: &str = "app.kubernetes.io/name";
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
            .and_then(|l| l.get(NAME_LABEL))
            .map(String::as_str)
            == Some(CONTROLLER)
}

/// An error line of the controller's log: (is a permission error, the denied action, text).
pub(crate) fn permission_and_action(text: &str) -> (bool, Option<String>) {
    let permission = PERMISSION_MARKERS.iter().any(|m| text.contains(m));
    let action = text
        .split_once("perform: ")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .map(|a| a.trim_end_matches([',', '.', ';']).to_string());
    (permission, action)
}

/// Why the target group is EKS Auto Mode's, if it is: its TargetGroupBinding's API group,
/// the Ingress's class controller, or the Service's loadBalancerClass.
fn auto_mode(cx: &CheckContext<'_>) -> Option<String> {
    let arn = cx.arn();
    if cx
        .snapshot
        .kube
        .target_group_bindings
        .items()
        .ok()?
        .iter()
        .any(|b| b.spec.target_group_arn.as_deref() == Some(arn.as_str()) && b.is_auto_mode())
    {
        return Some("its TargetGroupBinding is eks.amazonaws.com/v1".into());
    }
    let backend = cx.backend().ok()?;
    if let Ok(service) = cx.service() {
        if crate::controller::service_owner(service) == Some("eks-auto-mode") {
            return Some("the Service's loadBalancerClass is eks.amazonaws.com/nlb".into());
        }
    }
    let ingress = backend.ingress.as_deref()?;
    let ing = cx.snapshot.kube.ingresses.items().ok()?.iter().find(|i| {
        i.metadata.name.as_deref() == Some(ingress)
            && i.metadata.namespace.as_deref() == Some(backend.namespace.as_str())
    })?;
    let class = ing.spec.as_ref()?.ingress_class_name.as_deref()?;
    let controller = cx
        .snapshot
        .kube
        .ingress_classes
        .items()
        .ok()?
        .iter()
        .find(|c| c.metadata.name.as_deref() == Some(class))?
        .spec
        .as_ref()?
        .controller
        .clone()?;
    (controller == crate::controller::AUTO_MODE_ALB_CLASS_CONTROLLER)
        .then(|| format!("IngressClass {class} belongs to {controller}"))
}

/// What a controller error stops: security-group rules, registrations, or (unknown) both.
fn consequences(text: &str) -> &'static [&'static str] {
    let networking = [
        "securityGroup",
        "security group",
        "SecurityGroupIngress",
        "ingress rule",
        "ENI",
    ]
    .iter()
    .any(|m| text.contains(m));
    let registration = [
        "RegisterTargets",
        "DeregisterTargets",
        "registering targets",
        "TargetGroupNotFound",
    ]
    .iter()
    .any(|m| text.contains(m));
    match (networking, registration) {
        (true, false) => &["security-group-blocks-health-check"],
        (false, true) => &["target-registration-drift"],
        _ => &[],
    }
}

/// The objects of this backend a log line may name.
fn backend_objects(cx: &CheckContext<'_>) -> Option<BackendObjects> {
    let b = cx.backend().ok()?;
    let tg = cx.target_group().ok();
    let mut names = vec![b.service.clone()];
    names.extend(b.ingress.clone());
    names.extend(b.target_group_binding.clone());
    if let Some(tg) = tg {
        names.push(tg.target_group_name.clone()); // the controller names bindings after the target group
    }
    let ingress_group = cx
        .snapshot
        .aws
        .tags
        .present()
        .and_then(|t| t.get(TAG_INGRESS_STACK))
        .filter(|stack| !stack.contains('/'))
        .cloned();
    Some(BackendObjects {
        namespace: b.namespace.clone(),
        names,
        ingress_group,
        target_group_arn: cx.arn(),
        target_group_name: tg.map(|t| t.target_group_name.clone()).unwrap_or_default(),
    })
}

#[derive(Default)]
struct ErrorGroup {
    count: usize,
    sample: String,
    last: Option<k8s_openapi::jiff::Timestamp>,
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
        if let Some(why) = auto_mode(cx) {
            return Err(Inconclusive(format!(
                "the target group is managed by EKS Auto Mode ({why}): its load balancer controller runs in the EKS control plane, with no Deployment or logs in the cluster to read"
            )));
        }
        let deployments = kube
            .deployments
            .items()
            .map_err(|why| Inconclusive(format!("controller Deployment not collected: {why}")))?;
        let Some(deployment) = deployments.iter().find(|d| is_controller(d)) else {
            // Absent only if the list could have seen it.
            cx.scoped(
                "Deployment",
                &kube.deployments,
                CONTROLLER_NAMESPACE,
                &[(NAME_LABEL, CONTROLLER)],
            )
            .map_err(|why| Inconclusive(format!("the controller Deployment was not collected: {why}")))?;
            return Ok(vec![Finding::new(
                META.id,
                Severity::Critical,
                format!("{CONTROLLER_NAMESPACE}/Deployment/{CONTROLLER}"),
                "the target group is managed by the AWS Load Balancer Controller but no controller Deployment exists: nothing registers or deregisters its targets",
            )
            .group_level()
            .with_evidence(json!({ "deploymentsCollected": deployments.len() }))
            .with_fix("kubectl get deployments -A -l app.kubernetes.io/name=aws-load-balancer-controller", None)]);
        };
        let ns = deployment.metadata.namespace.as_deref().unwrap_or(CONTROLLER_NAMESPACE);
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

        // Log errors: causes (this backend or no object, recent) apart from context.
        let now = cx.now();
        let objects = backend_objects(cx);
        let mut causes: BTreeMap<(bool, Option<String>), ErrorGroup> = BTreeMap::new();
        let mut context: BTreeMap<String, ErrorGroup> = BTreeMap::new();
        let logs = kube.logs.present();
        let mut logs_read = 0;
        for pod in &pods {
            let Some(log) = logs.and_then(|l| l.get(&(ns.to_string(), pod_name(pod).to_string()))) else {
                continue;
            };
            logs_read += 1;
            for line in log
                .lines()
                .filter_map(|l| controller::classify(l, objects.as_ref(), now))
            {
                let recent = controller::is_recent(line.at, now);
                let group = match (&line.concerns, recent) {
                    (Concerns::ThisBackend | Concerns::Global, true) => {
                        causes.entry(permission_and_action(&line.text)).or_default()
                    }
                    (Concerns::OtherObject(what), true) => context
                        .entry(if what.is_empty() {
                            "another object".to_string()
                        } else {
                            what.clone()
                        })
                        .or_default(),
                    (_, false) => context.entry("older than an hour".to_string()).or_default(),
                };
                group.count += 1;
                if group.sample.is_empty() {
                    group.sample = line.text.clone();
                }
                group.last = group.last.max(line.at);
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
                let at = e
                    .last_timestamp
                    .as_ref()
                    .map(|t| t.0)
                    .or(e.event_time.as_ref().map(|t| t.0));
                controller::is_recent(at, now)
            })
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

        let denied: Vec<String> = causes
            .keys()
            .filter(|(p, _)| *p)
            .filter_map(|(_, a)| a.clone())
            .collect();
        // What the errors stop: one kind narrows the claim, mixed or unknown ones do not.
        let mut stops: Vec<&'static str> = Vec::new();
        let mut unknown = false;
        for g in causes.values() {
            match consequences(&g.sample) {
                [] => unknown = true,
                some => stops.extend_from_slice(some),
            }
        }
        stops.sort_unstable();
        stops.dedup();
        let narrowed: Vec<&'static str> = if unknown { Vec::new() } else { stops };
        let permission_errors: usize = causes.iter().filter(|((p, _), _)| *p).map(|(_, g)| g.count).sum();
        let other_errors: usize = causes.iter().filter(|((p, _), _)| !*p).map(|(_, g)| g.count).sum();
        let context_errors: usize = context.values().map(|g| g.count).sum();
        let evidence = json!({
            "deployment": format!("{ns}/{name}"),
            "replicas": desired,
            "availableReplicas": available,
            "readyPods": pods.iter().filter(|p| is_pod_ready(p)).count(),
            "logsRead": logs_read,
            "deniedActions": denied,
            "logErrors": causes.iter().map(|((p, a), g)| json!({
                "permission": p, "action": a, "count": g.count, "last": g.last.map(|t| t.to_string()), "sample": truncate(&g.sample, 400)
            })).collect::<Vec<_>>(),
            "contextErrors": context.iter().map(|(about, g)| json!({
                "about": about, "count": g.count, "last": g.last.map(|t| t.to_string()), "sample": truncate(&g.sample, 200)
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
                format!("the AWS Load Balancer Controller is denied AWS API calls for this target group ({actions}); {permission_errors} permission error(s) in its logs in the last hour"),
            )
            .with_fix(policy_fix, None)
        } else if other_errors > 0 || !events.is_empty() {
            // An error that keeps the controller from opening the rules or registering the
            // targets is a cause of failing targets; other reconcile errors are warnings.
            let stops = match narrowed.as_slice() {
                [] => None,
                some if some.contains(&"security-group-blocks-health-check") => {
                    Some("it cannot open the load balancer's security-group rule on the targets")
                }
                _ => Some("it cannot keep the target registrations in sync"),
            };
            let sample = causes
                .values()
                .next()
                .map(|g| truncate(&g.sample, 240))
                .unwrap_or_default();
            Finding::new(
                META.id,
                if stops.is_some() { Severity::Critical } else { Severity::Warning },
                resource,
                match stops {
                    Some(what) => format!(
                        "the AWS Load Balancer Controller fails to reconcile this target group's objects ({other_errors} error(s) in the last hour): {what} ({sample})"
                    ),
                    None => format!(
                        "the AWS Load Balancer Controller reports {other_errors} reconcile error(s) about this target group's objects in the last hour and {} warning event(s)",
                        events.len()
                    ),
                },
            )
            .with_fix(format!("kubectl -n {ns} logs deploy/{name} --tail=200 | grep -i error"), None)
        } else if context_errors > 0 {
            Finding::new(
                META.id,
                Severity::Info,
                resource,
                format!(
                    "the AWS Load Balancer Controller logs {context_errors} error(s) about other objects or from more than an hour ago: context, not a cause of this alarm ({})",
                    context.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            )
        } else if logs_read == 0 {
            let why = kube.logs.reason().unwrap_or("no log for any controller pod");
            return Err(Inconclusive(format!(
                "controller Deployment {ns}/{name} is available but its logs were not collected: {why}"
            )));
        } else {
            return Ok(vec![]);
        };
        let finding = if available > 0 {
            finding.explaining(&narrowed)
        } else {
            finding
        };
        Ok(vec![finding.group_level().with_evidence(evidence)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixtures::{fires, quiet, scenario};
    use crate::snapshot::Collected;
    use serde_json::json;

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
        let mut snap = scenario("healthy");
        if let Collected::Present(logs) = &mut snap.kube.logs {
            for log in logs.values_mut() {
                *log = log
                    .lines()
                    .filter(|l| !l.contains(r#""level":"error""#))
                    .collect::<Vec<_>>()
                    .join("\n");
            }
        }
        quiet(&LbControllerErrors, &snap);
    }

    #[test]
    fn errors_about_other_objects_are_context_only() {
        // The realistic healthy cluster: recent errors about cms/blog and payments/grpc-gw.
        let findings = fires(&LbControllerErrors, &scenario("healthy"));
        assert_eq!(findings[0].severity, Severity::Info);
        assert!(findings[0].message.contains("cms/blog"), "{}", findings[0].message);
    }

    #[test]
    fn old_errors_about_this_backend_are_context_only() {
        // AccessDenied for this very target group, but two hours before the snapshot.
        let findings = fires(&LbControllerErrors, &scenario("healthy-old-controller-errors"));
        assert_eq!(findings[0].severity, Severity::Info);
        assert!(
            findings[0].message.contains("older than an hour"),
            "{}",
            findings[0].message
        );
        assert_eq!(findings[0].evidence["deniedActions"], json!([]));
    }

    #[test]
    fn a_tenant_deployment_elsewhere_is_not_looked_for_outside_the_collected_scope() {
        // `kubectl get all -n default`: kube-system was never listed, so "no controller"
        // would be a guess.
        let err = crate::checks::fixtures::run(&LbControllerErrors, &scenario("healthy-partial-dump")).unwrap_err();
        assert!(err.0.contains("not collected"), "{err}");
    }

    #[test]
    fn an_error_that_keeps_the_rules_closed_is_critical_and_explains_the_blocked_check() {
        let f = &fires(
            &LbControllerErrors,
            &scenario("controller-security-group-tag-ambiguous"),
        )[0];
        assert_eq!(f.severity, Severity::Critical);
        assert!(f.message.contains("security-group rule"), "{}", f.message);
        assert_eq!(f.explains, ["security-group-blocks-health-check"]);
        let report = crate::diagnose(&scenario("controller-security-group-tag-ambiguous"));
        let sg = report
            .findings
            .iter()
            .find(|f| f.check == "security-group-blocks-health-check")
            .unwrap();
        // The controller's error is itself explained by the ambiguous tags that cause it.
        assert_eq!(sg.explained_by, Some("cluster-security-group-tag-ambiguous"));
        let lbc = report
            .findings
            .iter()
            .find(|f| f.check == "lb-controller-errors")
            .unwrap();
        assert_eq!(lbc.explained_by, Some("cluster-security-group-tag-ambiguous"));
    }

    #[test]
    fn eks_auto_mode_has_no_controller_to_read() {
        let err = crate::checks::fixtures::run(&LbControllerErrors, &scenario("eks-auto-mode-alb")).unwrap_err();
        assert!(err.0.contains("EKS Auto Mode"), "{err}");
    }

    #[test]
    fn inconclusive_without_logs() {
        let mut snap = scenario("healthy");
        snap.kube.logs = Collected::not_collected("forbidden: get pods/log");
        let err = crate::checks::fixtures::run(&LbControllerErrors, &snap).unwrap_err();
        assert!(err.0.contains("forbidden: get pods/log"), "{err}");
    }

    #[test]
    fn names_denied_actions() {
        let (perm, action) = permission_and_action(
            "Reconciler error: api error AccessDenied: User: x is not authorized to perform: elasticloadbalancing:RegisterTargets on resource: y",
        );
        assert!(perm);
        assert_eq!(action.as_deref(), Some("elasticloadbalancing:RegisterTargets"));
        assert_eq!(permission_and_action("Reconciler error: throttled"), (false, None));
    }
}
