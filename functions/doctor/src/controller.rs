//! The AWS Load Balancer Controller as it decides, shared by the checks: which nodes and
//! pods it registers as targets, and which of its log lines concern a given target group.
//!
//! Sources (kubernetes-sigs/aws-load-balancer-controller):
//! - `pkg/backend/endpoint_utils.go`: instance targets are nodes matching the default
//!   traffic-proxy selector (no `node-role.kubernetes.io/master`, no
//!   `node.kubernetes.io/exclude-from-external-load-balancers`, no
//!   `alpha.service-controller.kubernetes.io/exclude-balancer`, compute type not `fargate`)
//!   plus the binding's `nodeSelector`, without the `ToBeDeletedByClusterAutoscaler` taint or
//!   karpenter's `karpenter.sh/disrupted:NoSchedule`;
//! - `pkg/backend/endpoint_resolver.go`: of those, nodes whose Ready condition is True; IP
//!   targets are the endpoints that are ready, and also the not-ready ones whose pod has
//!   `ContainersReady` on a Ready node and is not terminating (pods waiting on a readiness
//!   gate are registered so the load balancer can check them);
//! - logs: controller-runtime's zap JSON (`{"level","ts","msg",...,"error"}`, `ts` RFC 3339
//!   or epoch seconds in older versions), naming the reconciled object as
//!   `"TargetGroupBinding"/"object": {"name","namespace"}` or `"namespace"`/`"name"`
//!   (an explicit IngressGroup reconciles with an empty namespace and the group's name), and
//!   AWS errors that carry the target group ARN;
//! - `pkg/config/*_config.go`: flags `--ingress-class` (default `alb`), `--default-target-type`
//!   (default `instance`), `--cluster-name`, `--feature-gates`;
//! - `pkg/ingress/group_loader.go`, `class_loader.go`, `class_annotation_matcher.go`: the
//!   `kubernetes.io/ingress.class` annotation, when present, decides alone (it must equal
//!   `--ingress-class`, no IngressClass object needed); else `spec.ingressClassName` or the
//!   default IngressClass must exist with controller `ingress.k8s.aws/alb` (its parameters an
//!   existing `elbv2.k8s.aws` IngressClassParams); an Ingress with no class at all is managed
//!   only when `--ingress-class` is empty;
//! - `pkg/ingress/model_build_target_group.go`: target-group settings come from the Service's
//!   annotations first, then the Ingress's (`MergeStringMap(svc, ing)`); IngressClassParams'
//!   `targetType` overrides both; `healthcheck-protocol` must be exactly `HTTP` or `HTTPS`;
//! - `pkg/service/model_build_target_group.go`: NLB target type from `nlb-target-type` (or
//!   type `nlb-ip`), else `--default-target-type`; an instance-mode `externalTrafficPolicy:
//!   Local` Service defaults to HTTP `/healthz` on `healthCheckNodePort`; the protocol
//!   annotation is compared upper-cased.
//!
//! - `pkg/networking/networking_manager.go` (`resolveEndpointSGForENI`): the security group
//!   the controller adds health-check and traffic rules to on a target's interface is its
//!   only group, else the one group tagged `kubernetes.io/cluster/<cluster-name>`.
//!
//! EKS Auto Mode runs the same logic in the EKS control plane (IngressClass controller
//! `eks.amazonaws.com/alb`, loadBalancerClass `eks.amazonaws.com/nlb`, TargetGroupBindings and
//! IngressClassParams in `eks.amazonaws.com/v1`): no Deployment in the cluster to inspect.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use serde_json::Value;

use crate::kubernetes::{containers_ready, labels, COMPUTE_TYPE_LABEL};

pub const EXCLUDE_FROM_LB_LABEL: &str = "node.kubernetes.io/exclude-from-external-load-balancers";
const EXCLUDE_BALANCER_ALPHA: &str = "alpha.service-controller.kubernetes.io/exclude-balancer";
const MASTER_ROLE: &str = "node-role.kubernetes.io/master";
pub const TO_BE_DELETED_BY_CA: &str = "ToBeDeletedByClusterAutoscaler";
pub const KARPENTER_DISRUPTED: &str = "karpenter.sh/disrupted";

/// How far back a controller log line can still be the cause of an alarm.
pub const LOG_WINDOW: SignedDuration = SignedDuration::from_hours(1);

pub fn node_ready(node: &Node) -> Option<&str> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.status.as_str())
}

/// The node is leaving: a cluster autoscaler or karpenter has marked it for removal, it is
/// cordoned for a drain, or it is being deleted.
pub fn node_is_being_removed(node: &Node) -> Option<&'static str> {
    if node.metadata.deletion_timestamp.is_some() {
        return Some("the Node is being deleted");
    }
    for taint in node.spec.iter().flat_map(|s| s.taints.iter().flatten()) {
        if taint.key == TO_BE_DELETED_BY_CA {
            return Some("Cluster Autoscaler is removing the node (ToBeDeletedByClusterAutoscaler)");
        }
        if taint.key == KARPENTER_DISRUPTED {
            return Some("Karpenter is disrupting the node (karpenter.sh/disrupted)");
        }
    }
    if node.spec.as_ref().and_then(|s| s.unschedulable) == Some(true) {
        return Some("the node is cordoned (a drain, e.g. a node group update)");
    }
    None
}

fn selector_matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let by_label = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let by_expr = selector.match_expressions.iter().flatten().all(|r| {
        let values = r.values.as_deref().unwrap_or_default();
        let v = labels.get(&r.key);
        match r.operator.as_str() {
            "In" => v.is_some_and(|v| values.contains(v)),
            "NotIn" => v.is_none_or(|v| !values.contains(v)),
            "Exists" => v.is_some(),
            "DoesNotExist" => v.is_none(),
            _ => false,
        }
    });
    by_label && by_expr
}

/// Why the controller does not register this node as an instance target, or `None` when
/// it does (`binding_selector`: the TargetGroupBinding's `spec.nodeSelector`).
pub fn node_not_registrable(node: &Node, binding_selector: Option<&LabelSelector>) -> Option<String> {
    let l = labels(&node.metadata);
    for key in [MASTER_ROLE, EXCLUDE_FROM_LB_LABEL, EXCLUDE_BALANCER_ALPHA] {
        if l.contains_key(key) {
            return Some(format!("labelled {key}"));
        }
    }
    if l.get(COMPUTE_TYPE_LABEL).map(String::as_str) == Some("fargate") {
        return Some("a Fargate node (IP targets only)".into());
    }
    if let Some(sel) = binding_selector {
        if !selector_matches(sel, &l) {
            return Some("outside the TargetGroupBinding's nodeSelector".into());
        }
    }
    for taint in node.spec.iter().flat_map(|s| s.taints.iter().flatten()) {
        if taint.key == TO_BE_DELETED_BY_CA || (taint.key == KARPENTER_DISRUPTED && taint.effect == "NoSchedule") {
            return Some(format!("tainted {} (being removed)", taint.key));
        }
    }
    match node_ready(node) {
        Some("True") => None,
        other => Some(format!("not Ready ({})", other.unwrap_or("no Ready condition"))),
    }
}

/// Whether the controller registers this pod (an endpoint of the Service) as an IP target:
/// ready endpoints, and not-ready ones whose containers are ready on a Ready node.
pub fn pod_registrable(pod: &Pod, endpoint_ready: bool, node: Option<&Node>) -> bool {
    if endpoint_ready {
        return true;
    }
    containers_ready(pod) && pod.metadata.deletion_timestamp.is_none() && node.and_then(node_ready) == Some("True")
}

pub const ALB_CLASS_CONTROLLER: &str = "ingress.k8s.aws/alb";
pub const AUTO_MODE_ALB_CLASS_CONTROLLER: &str = "eks.amazonaws.com/alb";
pub const NLB_LOAD_BALANCER_CLASS: &str = "service.k8s.aws/nlb";
pub const AUTO_MODE_NLB_LOAD_BALANCER_CLASS: &str = "eks.amazonaws.com/nlb";
const LEGACY_CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";
const DEFAULT_CLASS_ANNOTATION: &str = "ingressclass.kubernetes.io/is-default-class";

/// The controller's command-line configuration, as its Deployment passes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControllerConfig {
    /// `--ingress-class` (default `alb`; empty means "also Ingresses without any class").
    pub ingress_class: String,
    /// `--default-target-type` (default `instance`).
    pub default_target_type: String,
    pub cluster_name: Option<String>,
    /// `--feature-gates=A=true,B=false`.
    pub feature_gates: BTreeMap<String, bool>,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig {
            ingress_class: "alb".into(),
            default_target_type: "instance".into(),
            cluster_name: None,
            feature_gates: BTreeMap::new(),
        }
    }
}

impl ControllerConfig {
    /// Reads the flags of the controller container (`--flag=value` or `--flag value`).
    pub fn from_deployment(deployment: &Deployment) -> Self {
        let mut config = ControllerConfig::default();
        let containers = deployment
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .map(|s| s.containers.as_slice())
            .unwrap_or_default();
        let container = containers
            .iter()
            .find(|c| c.name == "aws-load-balancer-controller" || c.name == "controller")
            .or(containers.first());
        let args: Vec<&str> = container
            .into_iter()
            .flat_map(|c| c.command.iter().flatten().chain(c.args.iter().flatten()))
            .map(String::as_str)
            .collect();
        let mut i = 0;
        while i < args.len() {
            let (flag, inline) = match args[i].split_once('=') {
                Some((f, v)) => (f, Some(v)),
                None => (args[i], None),
            };
            let value = match inline {
                Some(v) => Some(v.to_string()),
                None if args.get(i + 1).is_some_and(|n| !n.starts_with("--")) => {
                    i += 1;
                    args.get(i).map(|v| v.to_string())
                }
                None => None,
            };
            match (flag, value) {
                ("--ingress-class", Some(v)) => config.ingress_class = v,
                ("--default-target-type", Some(v)) => config.default_target_type = v,
                ("--cluster-name", Some(v)) => config.cluster_name = Some(v),
                ("--feature-gates", Some(v)) => {
                    for gate in v.split(',').filter(|g| !g.is_empty()) {
                        let (name, on) = gate.split_once('=').unwrap_or((gate, "true"));
                        config
                            .feature_gates
                            .insert(name.trim().to_string(), on.trim() == "true");
                    }
                }
                _ => {}
            }
            i += 1;
        }
        config
    }
}

/// How the controller treats an Ingress's class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngressClassVerdict {
    /// Managed by this controller (or by EKS Auto Mode): how it was matched.
    Managed(String),
    /// The controller will not manage it, or fails to load its class: why.
    NotManaged(String),
    /// The class cannot be judged (IngressClasses not collected).
    Unknown(String),
}

/// Classifies an Ingress as the controller's group loader does (see the module docs).
pub fn classify_ingress(
    ingress: &Ingress,
    classes: Result<&[IngressClass], &str>,
    params: Result<&[crate::snapshot::IngressClassParams], &str>,
    config: &ControllerConfig,
) -> IngressClassVerdict {
    use IngressClassVerdict::*;
    if let Some(annotation) = ingress
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(LEGACY_CLASS_ANNOTATION))
    {
        let matches = annotation == &config.ingress_class || (config.ingress_class.is_empty() && annotation == "alb");
        return if matches {
            Managed(format!(
                "annotation {LEGACY_CLASS_ANNOTATION}={annotation} (no IngressClass object needed)"
            ))
        } else {
            NotManaged(format!(
                "annotation {LEGACY_CLASS_ANNOTATION}={annotation:?} does not match the controller's --ingress-class {:?}",
                config.ingress_class
            ))
        };
    }
    let classes = match classes {
        Ok(c) => c,
        Err(why) => return Unknown(format!("IngressClasses not collected: {why}")),
    };
    let named = ingress.spec.as_ref().and_then(|s| s.ingress_class_name.clone());
    let class_name = match named {
        Some(n) => n,
        None => {
            let defaults: Vec<&IngressClass> = classes
                .iter()
                .filter(|c| {
                    c.metadata
                        .annotations
                        .as_ref()
                        .and_then(|a| a.get(DEFAULT_CLASS_ANNOTATION))
                        .map(String::as_str)
                        == Some("true")
                })
                .collect();
            match defaults.as_slice() {
                [] if config.ingress_class.is_empty() => {
                    return Managed("no class, and the controller runs with --ingress-class=\"\" (manages classless Ingresses)".into())
                }
                [] => return NotManaged("no ingressClassName, no kubernetes.io/ingress.class annotation and no default IngressClass: the controller ignores this Ingress".into()),
                [one] => one.metadata.name.clone().unwrap_or_default(),
                _ => return NotManaged("several IngressClasses are marked default: the controller refuses to choose".into()),
            }
        }
    };
    let Some(class) = classes
        .iter()
        .find(|c| c.metadata.name.as_deref() == Some(class_name.as_str()))
    else {
        return NotManaged(format!("IngressClass {class_name:?} does not exist"));
    };
    let spec = class.spec.as_ref();
    let controller = spec.and_then(|s| s.controller.as_deref()).unwrap_or("");
    match controller {
        ALB_CLASS_CONTROLLER | AUTO_MODE_ALB_CLASS_CONTROLLER => {}
        other => {
            return NotManaged(format!(
                "IngressClass {class_name:?} belongs to controller {other:?}, not {ALB_CLASS_CONTROLLER} or {AUTO_MODE_ALB_CLASS_CONTROLLER}"
            ))
        }
    }
    if let Some(p) = spec.and_then(|s| s.parameters.as_ref()) {
        let expected_group = if controller == ALB_CLASS_CONTROLLER {
            "elbv2.k8s.aws"
        } else {
            "eks.amazonaws.com"
        };
        if p.api_group.as_deref() != Some(expected_group) || p.kind != "IngressClassParams" {
            return NotManaged(format!(
                "IngressClass {class_name:?} references parameters {}/{} the controller does not know",
                p.api_group.as_deref().unwrap_or(""),
                p.kind
            ));
        }
        if let Ok(params) = params {
            let found = params.iter().any(|x| {
                x.metadata.name.as_deref() == Some(p.name.as_str())
                    && x.api_version.as_deref().is_none_or(|v| v.starts_with(expected_group))
            });
            if !found {
                return NotManaged(format!(
                    "IngressClassParams {:?} of IngressClass {class_name:?} does not exist",
                    p.name
                ));
            }
        }
    }
    Managed(format!("IngressClass {class_name:?} (controller {controller})"))
}

/// The IngressClassParams that apply to an Ingress through its class, if any.
pub fn params_for<'a>(
    ingress: &Ingress,
    classes: &'a [IngressClass],
    params: &'a [crate::snapshot::IngressClassParams],
) -> Option<&'a crate::snapshot::IngressClassParams> {
    if ingress
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(LEGACY_CLASS_ANNOTATION))
    {
        return None; // annotation-classified Ingresses carry no IngressClass configuration
    }
    let name = ingress.spec.as_ref().and_then(|s| s.ingress_class_name.as_deref())?;
    let class = classes.iter().find(|c| c.metadata.name.as_deref() == Some(name))?;
    let p = class.spec.as_ref()?.parameters.as_ref()?;
    params
        .iter()
        .find(|x| x.metadata.name.as_deref() == Some(p.name.as_str()))
}

/// The annotations the controller reads for an Ingress backend's target group: the
/// Service's win over the Ingress's.
pub fn target_group_annotations(service: &Service, ingress: &Ingress) -> BTreeMap<String, String> {
    let mut merged = ingress.metadata.annotations.clone().unwrap_or_default();
    for (k, v) in service.metadata.annotations.iter().flatten() {
        merged.insert(k.clone(), v.clone());
    }
    merged
}

/// Whether a Service is handled by the controller (or Auto Mode), as its loadBalancerClass
/// or `aws-load-balancer-type` says; `None` for a Service no load balancer controller owns
/// (ClusterIP / NodePort behind a TargetGroupBinding).
pub fn service_owner(service: &Service) -> Option<&'static str> {
    let spec = service.spec.as_ref()?;
    match spec.load_balancer_class.as_deref() {
        Some(NLB_LOAD_BALANCER_CLASS) => return Some("aws-load-balancer-controller"),
        Some(AUTO_MODE_NLB_LOAD_BALANCER_CLASS) => return Some("eks-auto-mode"),
        Some(_) => return Some("another-controller"),
        None => {}
    }
    if spec.type_.as_deref() != Some("LoadBalancer") {
        return None;
    }
    match service
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("service.beta.kubernetes.io/aws-load-balancer-type"))
        .map(String::as_str)
    {
        Some("external" | "nlb-ip") => Some("aws-load-balancer-controller"),
        _ => Some("in-tree"),
    }
}

/// Which target group's objects a log line is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Concerns {
    /// The backend's Service, Ingress, IngressGroup or TargetGroupBinding, or the target group ARN.
    ThisBackend,
    /// Some other object: context for this alarm, never its cause.
    OtherObject(String),
    /// No object at all (credentials, webhook, leader election): it affects every target group.
    Global,
}

/// The objects a log line may name to be about this backend.
#[derive(Debug, Clone, Default)]
pub struct BackendObjects {
    pub namespace: String,
    /// Service, Ingress, TargetGroupBinding names in `namespace`.
    pub names: Vec<String>,
    /// An explicit IngressGroup's name (reconciled with an empty namespace).
    pub ingress_group: Option<String>,
    pub target_group_arn: String,
    pub target_group_name: String,
}

/// One parsed error line of the controller's log.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorLine {
    pub at: Option<Timestamp>,
    pub text: String,
    pub concerns: Concerns,
}

fn json_timestamp(v: &Value) -> Option<Timestamp> {
    match v {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => {
            let secs = n.as_f64()?;
            if !secs.is_finite() || !(0.0..1e11).contains(&secs) {
                return None;
            }
            Timestamp::from_millisecond((secs * 1000.0) as i64).ok()
        }
        _ => None,
    }
}

/// `E1127 03:01:02.123456 ...` (klog): month, day and time, no year; the year is taken from
/// `now` (a line "in the future" is from the previous year).
fn klog_timestamp(line: &str, now: Option<Timestamp>) -> Option<Timestamp> {
    let now = now?;
    let month: i8 = line.get(1..3)?.parse().ok()?;
    let day: i8 = line.get(3..5)?.parse().ok()?;
    let clock = line.get(6..14)?;
    let year = now.to_zoned(k8s_openapi::jiff::tz::TimeZone::UTC).year();
    let at = |y: i16| -> Option<Timestamp> { format!("{y:04}-{month:02}-{day:02}T{clock}Z").parse().ok() };
    let t = at(year)?;
    if t > now + SignedDuration::from_hours(24) {
        at(year - 1)
    } else {
        Some(t)
    }
}

fn names_object(v: &Value, ns: &str, names: &[String]) -> bool {
    let (Some(n), o_ns) = (
        v.get("name").and_then(Value::as_str),
        v.get("namespace").and_then(Value::as_str).unwrap_or(""),
    ) else {
        return false;
    };
    o_ns == ns && names.iter().any(|x| x == n)
}

/// Classifies one log line; `None` when it is not an error line.
pub fn classify(line: &str, backend: Option<&BackendObjects>, now: Option<Timestamp>) -> Option<ErrorLine> {
    let parsed: Option<Value> = line
        .trim_start()
        .starts_with('{')
        .then(|| serde_json::from_str(line.trim()).ok())
        .flatten();
    match parsed {
        Some(v) => {
            if v.get("level").and_then(Value::as_str) != Some("error") {
                return None;
            }
            let msg = v.get("msg").and_then(Value::as_str).unwrap_or("");
            let text = match v.get("error").and_then(Value::as_str) {
                Some(err) => format!("{msg}: {err}"),
                None => msg.to_string(),
            };
            let at = v.get("ts").and_then(json_timestamp);
            let concerns = json_concerns(&v, &text, backend);
            Some(ErrorLine { at, text, concerns })
        }
        None => {
            let is_error = line.contains("level=error")
                || line.starts_with('E') && line.get(1..5).is_some_and(|d| d.bytes().all(|b| b.is_ascii_digit()));
            if !is_error {
                return None;
            }
            let concerns = match backend {
                Some(b) if mentions_backend(line, b) => Concerns::ThisBackend,
                _ if mentions_any_object(line) => Concerns::OtherObject(String::new()),
                _ => Concerns::Global,
            };
            Some(ErrorLine {
                at: klog_timestamp(line, now),
                text: line.to_string(),
                concerns,
            })
        }
    }
}

fn mentions_backend(text: &str, b: &BackendObjects) -> bool {
    (!b.target_group_arn.is_empty() && text.contains(&b.target_group_arn))
        || (!b.target_group_name.is_empty() && text.contains(&format!("targetgroup/{}/", b.target_group_name)))
        || b.names.iter().any(|n| text.contains(&format!("{}/{n}", b.namespace)))
}

fn mentions_any_object(text: &str) -> bool {
    text.contains("arn:aws") || text.contains("targetgroup/") || text.contains("\"namespace\"")
}

fn json_concerns(v: &Value, text: &str, backend: Option<&BackendObjects>) -> Concerns {
    // Every object-valued field naming {name, namespace}, and the flat namespace / name pair.
    let mut objects: Vec<(String, String)> = Vec::new();
    if let Some(map) = v.as_object() {
        for field in map.values() {
            if field.is_object() && field.get("name").is_some() {
                objects.push((
                    field.get("namespace").and_then(Value::as_str).unwrap_or("").to_string(),
                    field.get("name").and_then(Value::as_str).unwrap_or("").to_string(),
                ));
            }
        }
        if let Some(name) = map.get("name").and_then(Value::as_str) {
            objects.push((
                map.get("namespace").and_then(Value::as_str).unwrap_or("").to_string(),
                name.to_string(),
            ));
        }
        if let Some(group) = map.get("ingressGroup").and_then(Value::as_str) {
            let (ns, name) = group.split_once('/').unwrap_or(("", group));
            objects.push((ns.to_string(), name.to_string()));
        }
    }
    let arn_in_text = text.contains("arn:aws") || v.get("arn").is_some();
    let Some(b) = backend else {
        return if objects.is_empty() && !arn_in_text {
            Concerns::Global
        } else {
            Concerns::OtherObject(String::new())
        };
    };
    let ours = objects.iter().any(|(ns, name)| {
        (ns == &b.namespace && b.names.contains(name))
            || (ns.is_empty() && b.ingress_group.as_deref() == Some(name.as_str()))
    }) || v.get("arn").and_then(Value::as_str) == Some(b.target_group_arn.as_str())
        || mentions_backend(text, b)
        || v.as_object().is_some_and(|m| {
            m.values()
                .filter(|f| f.is_object())
                .any(|f| names_object(f, &b.namespace, &b.names))
        });
    if ours {
        Concerns::ThisBackend
    } else if let Some((ns, name)) = objects.first() {
        Concerns::OtherObject(if ns.is_empty() {
            name.clone()
        } else {
            format!("{ns}/{name}")
        })
    } else if arn_in_text {
        Concerns::OtherObject("another AWS resource".into())
    } else {
        Concerns::Global
    }
}

/// Whether a line at `at` is recent enough to cause an alarm observed at `now`. Without a
/// time on either side the line counts as recent (a log tail is recent by construction).
pub fn is_recent(at: Option<Timestamp>, now: Option<Timestamp>) -> bool {
    match (at, now) {
        (Some(at), Some(now)) => now.duration_since(at) <= LOG_WINDOW,
        _ => true,
    }
}

/// The security group the controller manages rules on for an interface carrying `eni_groups`
/// (`resolveEndpointSGForENI`): the only one, else the one tagged for the cluster. `None`
/// when that is ambiguous or the groups' tags were not collected.
pub fn endpoint_security_group(
    eni_groups: &[String],
    groups: &[crate::aws::SecurityGroup],
    cluster: Option<&str>,
) -> Option<String> {
    if let [only] = eni_groups {
        return Some(only.clone());
    }
    let key = format!("kubernetes.io/cluster/{}", cluster?);
    let tagged: Vec<&String> = eni_groups
        .iter()
        .filter(|id| {
            groups
                .iter()
                .find(|g| &&g.group_id == id)
                .is_some_and(|g| g.tags.iter().any(|t| t.key == key))
        })
        .collect();
    match tagged.as_slice() {
        [one] => Some((*one).clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn backend() -> BackendObjects {
        BackendObjects {
            namespace: "shop".into(),
            names: vec!["web".into(), "k8s-shop-web-0a1b2c3d4e".into()],
            ingress_group: Some("public".into()),
            target_group_arn: "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/k8s-shop-web-0a1b2c3d4e/0123456789abcdef".into(),
            target_group_name: "k8s-shop-web-0a1b2c3d4e".into(),
        }
    }

    #[test]
    fn real_reconciler_error_shapes_are_attributed() {
        let b = backend();
        let tgb = r#"{"level":"error","ts":"2026-11-27T02:59:00Z","msg":"Reconciler error","controller":"targetGroupBinding","controllerGroup":"elbv2.k8s.aws","controllerKind":"TargetGroupBinding","TargetGroupBinding":{"name":"k8s-shop-web-0a1b2c3d4e","namespace":"shop"},"namespace":"shop","name":"k8s-shop-web-0a1b2c3d4e","reconcileID":"x","error":"AccessDenied"}"#;
        assert_eq!(classify(tgb, Some(&b), None).unwrap().concerns, Concerns::ThisBackend);
        let other = r#"{"level":"error","ts":1700000000.5,"msg":"Reconciler error","controller":"ingress","object":{"name":"blog","namespace":"cms"},"namespace":"cms","name":"blog","error":"x"}"#;
        let line = classify(other, Some(&b), None).unwrap();
        assert_eq!(line.concerns, Concerns::OtherObject("cms/blog".into()));
        assert_eq!(line.at, Some(Timestamp::from_millisecond(1_700_000_000_500).unwrap()));
        let group = r#"{"level":"error","ts":"2026-11-27T02:59:00Z","msg":"Reconciler error","controller":"ingress","object":{"name":"public"},"namespace":"","name":"public","error":"x"}"#;
        assert_eq!(classify(group, Some(&b), None).unwrap().concerns, Concerns::ThisBackend);
        let creds = r#"{"level":"error","ts":"2026-11-27T02:59:00Z","msg":"failed to refresh credentials","error":"WebIdentityErr: failed to retrieve credentials"}"#;
        assert_eq!(classify(creds, Some(&b), None).unwrap().concerns, Concerns::Global);
        assert_eq!(classify(r#"{"level":"info","msg":"ok"}"#, Some(&b), None), None);
        let by_arn =
            json!({"level": "error", "msg": "x", "error": format!("TargetGroupNotFound: {}", b.target_group_arn)})
                .to_string();
        assert_eq!(
            classify(&by_arn, Some(&b), None).unwrap().concerns,
            Concerns::ThisBackend
        );
    }

    #[test]
    fn klog_lines_take_the_year_of_now() {
        let now: Timestamp = "2027-01-01T00:10:00Z".parse().unwrap();
        let l = classify("E1231 23:59:58.000001       1 run.go:74] boom", None, Some(now)).unwrap();
        assert_eq!(l.at, Some("2026-12-31T23:59:58Z".parse().unwrap()));
        assert!(is_recent(l.at, Some(now)));
        assert!(!is_recent(Some("2026-12-31T20:00:00Z".parse().unwrap()), Some(now)));
        assert!(is_recent(None, Some(now)));
    }

    #[test]
    fn controller_flags_are_read_from_the_deployment() {
        let d: Deployment =
            serde_json::from_value(json!({"spec": {"selector": {}, "template": {"spec": {"containers": [{
                "name": "aws-load-balancer-controller",
                "args": ["--cluster-name=demo", "--ingress-class", "internal-alb", "--default-target-type=ip",
                         "--feature-gates=EnableIPTargetType=true,SubnetsClusterTagCheck=false"]
            }]}}}}))
            .unwrap();
        let c = ControllerConfig::from_deployment(&d);
        assert_eq!(c.ingress_class, "internal-alb");
        assert_eq!(c.default_target_type, "ip");
        assert_eq!(c.cluster_name.as_deref(), Some("demo"));
        assert_eq!(c.feature_gates.get("SubnetsClusterTagCheck"), Some(&false));
        let plain: Deployment = serde_json::from_value(
            json!({"spec": {"selector": {}, "template": {"spec": {"containers": [{"name": "x"}]}}}}),
        )
        .unwrap();
        assert_eq!(ControllerConfig::from_deployment(&plain), ControllerConfig::default());
    }

    #[test]
    fn ingress_classes_are_matched_as_the_group_loader_does() {
        let ing = |v: serde_json::Value| -> Ingress { serde_json::from_value(v).unwrap() };
        let class = |name: &str, controller: &str, params: Option<(&str, &str)>| -> IngressClass {
            let mut spec = json!({"controller": controller});
            if let Some((group, pname)) = params {
                spec["parameters"] = json!({"apiGroup": group, "kind": "IngressClassParams", "name": pname});
            }
            serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).unwrap()
        };
        let cfg = ControllerConfig::default();
        let legacy = ing(json!({"metadata": {"annotations": {"kubernetes.io/ingress.class": "alb"}}}));
        assert!(matches!(
            classify_ingress(&legacy, Ok(&[]), Ok(&[]), &cfg),
            IngressClassVerdict::Managed(_)
        ));
        let other = ing(json!({"metadata": {"annotations": {"kubernetes.io/ingress.class": "nginx"}}}));
        assert!(matches!(
            classify_ingress(&other, Ok(&[]), Ok(&[]), &cfg),
            IngressClassVerdict::NotManaged(_)
        ));
        let auto = ing(json!({"spec": {"ingressClassName": "auto"}}));
        let params: Vec<crate::snapshot::IngressClassParams> = vec![serde_json::from_value(json!({
            "apiVersion": "eks.amazonaws.com/v1", "metadata": {"name": "alb"}, "spec": {"scheme": "internet-facing"}
        }))
        .unwrap()];
        let classes = [class(
            "auto",
            AUTO_MODE_ALB_CLASS_CONTROLLER,
            Some(("eks.amazonaws.com", "alb")),
        )];
        assert!(matches!(
            classify_ingress(&auto, Ok(&classes), Ok(&params), &cfg),
            IngressClassVerdict::Managed(_)
        ));
        assert!(matches!(
            classify_ingress(&auto, Ok(&classes), Ok(&[]), &cfg),
            IngressClassVerdict::NotManaged(_)
        ));
        let missing = ing(json!({"spec": {"ingressClassName": "gone"}}));
        assert!(matches!(
            classify_ingress(&missing, Ok(&classes), Ok(&params), &cfg),
            IngressClassVerdict::NotManaged(_)
        ));
        let classless = ing(json!({"spec": {}}));
        assert!(matches!(
            classify_ingress(&classless, Ok(&[]), Ok(&[]), &cfg),
            IngressClassVerdict::NotManaged(_)
        ));
        let all = ControllerConfig {
            ingress_class: String::new(),
            ..ControllerConfig::default()
        };
        assert!(matches!(
            classify_ingress(&classless, Ok(&[]), Ok(&[]), &all),
            IngressClassVerdict::Managed(_)
        ));
        assert!(matches!(
            classify_ingress(&auto, Err("forbidden"), Ok(&[]), &cfg),
            IngressClassVerdict::Unknown(_)
        ));
    }

    #[test]
    fn node_registration_follows_the_controller() {
        let node = |v: serde_json::Value| -> Node { serde_json::from_value(v).unwrap() };
        let ready = json!({"conditions": [{"type": "Ready", "status": "True"}]});
        assert_eq!(node_not_registrable(&node(json!({"status": ready})), None), None);
        assert!(node_not_registrable(
            &node(json!({"metadata": {"labels": {"eks.amazonaws.com/compute-type": "fargate"}}, "status": ready})),
            None
        )
        .is_some());
        assert!(node_not_registrable(
            &node(json!({"spec": {"taints": [{"key": "karpenter.sh/disrupted", "effect": "NoSchedule"}]}, "status": ready})),
            None
        )
        .is_some());
        let sel: LabelSelector = serde_json::from_value(json!({"matchLabels": {"pool": "edge"}})).unwrap();
        assert!(node_not_registrable(&node(json!({"status": ready})), Some(&sel))
            .unwrap()
            .contains("nodeSelector"));
        assert!(node_not_registrable(
            &node(json!({"status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}})),
            None
        )
        .unwrap()
        .contains("Unknown"));
    }
}
