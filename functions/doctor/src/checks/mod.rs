//! The check catalogue: one file per check, one trait, one registry.
//!
//! A check is a pure function of the [`Snapshot`] (through [`CheckContext`]): it returns its
//! findings, or [`Inconclusive`] saying what it needed and did not have. IDs are a public
//! contract (see DESIGN.md); once released they are never renamed.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::api::core::v1::{Node, Pod, Service, ServicePort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::aws::{Instance, LoadBalancer, TargetGroup, TargetHealthDescription};
use crate::finding::Finding;
use crate::resolve::{port_text, Backend, Resolution};
use crate::snapshot::Snapshot;
use crate::{kubernetes, target_state};

mod app_listens_on_loopback;
mod cluster_security_group_tag_ambiguous;
mod endpoints_missing;
mod external_traffic_policy_local;
mod fargate_instance_target;
mod health_check_protocol_version_mismatch;
mod health_check_response_mismatch;
mod health_check_unreachable;
mod ingress_annotation_invalid;
mod kube_proxy_replacement_nodeport_broken;
mod kube_proxy_unhealthy;
mod lb_controller_errors;
mod load_balancer_internal_error;
mod network_acl_blocks_traffic;
mod network_policy_blocks_load_balancer;
mod nlb_hairpin_client_ip_preservation;
mod node_security_groups_mismatch;
mod pod_not_ready;
mod readiness_gate_not_injected;
mod route_table_missing_local_route;
mod security_group_blocks_health_check;
mod selector_matches_no_pods;
mod service_annotation_invalid;
mod service_handled_by_legacy_provider;
mod target_in_disabled_az;
mod target_instance_not_running;
mod target_ip_family_mismatch;
mod target_port_mismatch;
mod target_registration_drift;

/// Every check, in catalogue order.
pub fn registry() -> &'static [&'static dyn Check] {
    &[
        &pod_not_ready::PodNotReady,
        &selector_matches_no_pods::SelectorMatchesNoPods,
        &endpoints_missing::EndpointsMissing,
        &external_traffic_policy_local::ExternalTrafficPolicyLocal,
        &node_security_groups_mismatch::NodeSecurityGroupsMismatch,
        &target_port_mismatch::TargetPortMismatch,
        &lb_controller_errors::LbControllerErrors,
        &ingress_annotation_invalid::IngressAnnotationInvalid,
        &service_annotation_invalid::ServiceAnnotationInvalid,
        &health_check_response_mismatch::HealthCheckResponseMismatch,
        &health_check_unreachable::HealthCheckUnreachable,
        &security_group_blocks_health_check::SecurityGroupBlocksHealthCheck,
        &network_acl_blocks_traffic::NetworkAclBlocksTraffic,
        &route_table_missing_local_route::RouteTableMissingLocalRoute,
        &kube_proxy_unhealthy::KubeProxyUnhealthy,
        &target_registration_drift::TargetRegistrationDrift,
        &target_in_disabled_az::TargetInDisabledAz,
        &target_instance_not_running::TargetInstanceNotRunning,
        &load_balancer_internal_error::LoadBalancerInternalError,
        &network_policy_blocks_load_balancer::NetworkPolicyBlocksLoadBalancer,
        &app_listens_on_loopback::AppListensOnLoopback,
        &target_ip_family_mismatch::TargetIpFamilyMismatch,
        &health_check_protocol_version_mismatch::HealthCheckProtocolVersionMismatch,
        &kube_proxy_replacement_nodeport_broken::KubeProxyReplacementNodeportBroken,
        &cluster_security_group_tag_ambiguous::ClusterSecurityGroupTagAmbiguous,
        &fargate_instance_target::FargateInstanceTarget,
        &service_handled_by_legacy_provider::ServiceHandledByLegacyProvider,
        &readiness_gate_not_injected::ReadinessGateNotInjected,
        &nlb_hairpin_client_ip_preservation::NlbHairpinClientIpPreservation,
    ]
}

pub fn find(id: &str) -> Option<&'static dyn Check> {
    registry().iter().copied().find(|c| c.meta().id == id)
}

pub trait Check: Send + Sync {
    fn meta(&self) -> &'static CheckMeta;
    fn run(&self, cx: &CheckContext<'_>) -> Result<Vec<Finding>, Inconclusive>;
}

#[derive(Debug)]
pub struct CheckMeta {
    /// Stable kebab-case ID, named after the problem detected.
    pub id: &'static str,
    pub title: &'static str,
    /// The step of AWS's manual runbook this automates, or "(beyond)".
    pub runbook_step: &'static str,
    pub fix: FixSafety,
}

/// Whether a fix exists and how safe it is to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FixSafety {
    /// The finding carries a command for a person; no automated fix.
    Manual,
    /// A catalogue fix, applied only after a person approves it.
    ApprovalOnly(&'static str),
    /// A catalogue fix that may run unattended where the deployment's policy allows it.
    Unattended(&'static str),
}

impl FixSafety {
    pub fn fix_id(self) -> Option<&'static str> {
        match self {
            FixSafety::Manual => None,
            FixSafety::ApprovalOnly(id) | FixSafety::Unattended(id) => Some(id),
        }
    }
}

impl fmt::Display for FixSafety {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FixSafety::Manual => f.write_str("manual"),
            FixSafety::ApprovalOnly(id) => write!(f, "{id} (approval only)"),
            FixSafety::Unattended(id) => write!(f, "{id} (may run unattended)"),
        }
    }
}

/// Why a check could not decide: what it needed and did not have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inconclusive(pub String);

impl Inconclusive {
    pub fn new(reason: impl Into<String>) -> Self {
        Inconclusive(reason.into())
    }
}

impl fmt::Display for Inconclusive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Turns "not collected: why" into an Inconclusive naming what was missing.
fn missing(what: &str, why: &str) -> Inconclusive {
    Inconclusive(format!("{what} not collected: {why}"))
}

/// What every check reads: the Snapshot, the resolved backend, and derived lookups.
pub struct CheckContext<'a> {
    pub snapshot: &'a Snapshot,
    pub resolution: &'a Resolution,
}

/// A registered target with what is known about where it lives.
#[derive(Debug, Clone)]
pub struct TargetInfo<'a> {
    pub health: &'a TargetHealthDescription,
    /// The EC2 instance behind it (the target itself, or the node hosting the pod IP).
    pub instance: Option<&'a Instance>,
    pub node: Option<&'a Node>,
    /// For IP targets, the pod holding the address.
    pub pod: Option<&'a Pod>,
}

impl TargetInfo<'_> {
    pub fn id(&self) -> &str {
        &self.health.target.id
    }
    pub fn state(&self) -> &str {
        &self.health.target_health.state
    }
    pub fn reason(&self) -> Option<&str> {
        self.health.target_health.reason.as_deref()
    }
    pub fn node_name(&self) -> Option<&str> {
        self.node.and_then(|n| n.metadata.name.as_deref())
    }
    pub fn label(&self) -> String {
        match self.node_name() {
            Some(node) if node != self.id() => format!("{} ({node})", self.id()),
            _ => self.id().to_string(),
        }
    }
}

impl<'a> CheckContext<'a> {
    pub fn new(snapshot: &'a Snapshot, resolution: &'a Resolution) -> Self {
        CheckContext { snapshot, resolution }
    }

    pub fn arn(&self) -> String {
        self.snapshot
            .target_group_arn
            .as_ref()
            .map(|a| a.to_string())
            .unwrap_or_default()
    }

    pub fn target_group(&self) -> Result<&'a TargetGroup, Inconclusive> {
        match self.snapshot.aws.target_group.get() {
            Ok(Some(tg)) => Ok(tg),
            Ok(None) => Err(Inconclusive::new("the target group does not exist")),
            Err(why) => Err(missing("target group", why)),
        }
    }

    pub fn target_type(&self) -> Result<&'a str, Inconclusive> {
        let tg = self.target_group()?;
        Ok(tg.target_type.as_deref().unwrap_or("instance"))
    }

    pub fn target_health(&self) -> Result<&'a [TargetHealthDescription], Inconclusive> {
        self.snapshot
            .aws
            .target_health
            .items()
            .map_err(|why| missing("target health", why))
    }

    /// The load balancer in front of the target group, when collected.
    pub fn load_balancer(&self) -> Result<&'a LoadBalancer, Inconclusive> {
        let tg = self.target_group()?;
        let lbs = self
            .snapshot
            .aws
            .load_balancers
            .items()
            .map_err(|why| missing("load balancer", why))?;
        lbs.iter()
            .find(|lb| tg.load_balancer_arns.contains(&lb.load_balancer_arn))
            .or_else(|| (tg.load_balancer_arns.is_empty() && lbs.len() == 1).then(|| &lbs[0]))
            .ok_or_else(|| Inconclusive::new("the target group's load balancer is not in the collected load balancers"))
    }

    /// `application` or `network`, from the load balancer or else the target group protocol.
    pub fn lb_type(&self) -> Result<&'a str, Inconclusive> {
        if let Ok(lb) = self.load_balancer() {
            if let Some(kind) = lb.kind.as_deref() {
                return Ok(kind);
            }
        }
        let tg = self.target_group()?;
        Ok(match tg.protocol.as_deref() {
            Some("HTTP" | "HTTPS") => "application",
            Some("GENEVE") => "gateway",
            _ => "network",
        })
    }

    pub fn backend(&self) -> Result<&'a Backend, Inconclusive> {
        self.resolution
            .backend
            .as_ref()
            .map_err(|why| Inconclusive(format!("Kubernetes backend not resolved: {why}")))
    }

    /// The backend Service; `Ok(None)` when it was looked for and does not exist.
    pub fn service_opt(&self) -> Result<Option<&'a Service>, Inconclusive> {
        let backend = self.backend()?;
        let services = self
            .snapshot
            .kube
            .services
            .items()
            .map_err(|why| missing("Services", why))?;
        Ok(services.iter().find(|s| {
            s.metadata.namespace.as_deref() == Some(backend.namespace.as_str())
                && s.metadata.name.as_deref() == Some(backend.service.as_str())
        }))
    }

    pub fn service(&self) -> Result<&'a Service, Inconclusive> {
        let backend = self.backend()?;
        self.service_opt()?.ok_or_else(|| {
            Inconclusive(format!(
                "Service {}/{} does not exist",
                backend.namespace, backend.service
            ))
        })
    }

    /// The Service port the target group serves.
    pub fn service_port(&self) -> Result<&'a ServicePort, Inconclusive> {
        let backend = self.backend()?;
        let service = self.service()?;
        let ports = service
            .spec
            .as_ref()
            .and_then(|s| s.ports.as_deref())
            .unwrap_or_default();
        let found = match &backend.service_port {
            Some(IntOrString::Int(n)) => ports.iter().find(|p| p.port == *n),
            Some(IntOrString::String(name)) => ports.iter().find(|p| p.name.as_deref() == Some(name.as_str())),
            None if ports.len() == 1 => ports.first(),
            None => None,
        };
        found.ok_or_else(|| match &backend.service_port {
            Some(p) => Inconclusive(format!(
                "Service {}/{} has no port {}",
                backend.namespace,
                backend.service,
                port_text(p)
            )),
            None => Inconclusive(format!(
                "Service {}/{} has {} ports and the target group's is not known",
                backend.namespace,
                backend.service,
                ports.len()
            )),
        })
    }

    /// The Service's selector; `None` when it has none (Endpoints managed by hand).
    pub fn selector(&self) -> Result<Option<&'a BTreeMap<String, String>>, Inconclusive> {
        let service = self.service()?;
        Ok(service
            .spec
            .as_ref()
            .and_then(|s| s.selector.as_ref())
            .filter(|s| !s.is_empty()))
    }

    /// "Now" for this snapshot (see [`Snapshot::as_of`]).
    pub fn now(&self) -> Option<k8s_openapi::jiff::Timestamp> {
        self.snapshot.as_of
    }

    /// The collected objects of `kind` in `namespace` with `labels`, or Inconclusive when
    /// the list failed or never covered that namespace (see [`crate::snapshot::Scope`]).
    pub fn scoped<T>(
        &self,
        kind: &str,
        list: &'a crate::snapshot::Collected<Vec<T>>,
        namespace: &str,
        labels: &[(&str, &str)],
    ) -> Result<&'a [T], Inconclusive> {
        let labels: BTreeMap<String, String> = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        self.snapshot
            .kube
            .scoped(kind, list, namespace, &labels)
            .map_err(Inconclusive)
    }

    /// Every pod of the backend's namespace, terminal ones included.
    pub fn namespace_pods(&self) -> Result<Vec<&'a Pod>, Inconclusive> {
        let backend = self.backend()?;
        let pods = self.scoped("Pod", &self.snapshot.kube.pods, &backend.namespace, &[])?;
        Ok(pods
            .iter()
            .filter(|p| p.metadata.namespace.as_deref() == Some(backend.namespace.as_str()))
            .collect())
    }

    /// Pods the Service selects (by its selector) that can be endpoints: not terminal
    /// (Failed / Evicted / Succeeded pods never are), not being deleted.
    pub fn selected_pods(&self) -> Result<Vec<&'a Pod>, Inconclusive> {
        let Some(selector) = self.selector()? else {
            return Ok(Vec::new());
        };
        Ok(self
            .namespace_pods()?
            .into_iter()
            .filter(|p| kubernetes::is_live(p))
            .filter(|p| labels_match(selector, p.metadata.labels.as_ref()))
            .collect())
    }

    /// Selected pods that are terminal (evicted, failed, completed): never backends, kept
    /// for evidence.
    pub fn terminal_selected_pods(&self) -> Vec<&'a Pod> {
        let (Ok(Some(selector)), Ok(pods)) = (self.selector(), self.namespace_pods()) else {
            return Vec::new();
        };
        pods.into_iter()
            .filter(|p| kubernetes::is_terminal(p))
            .filter(|p| labels_match(selector, p.metadata.labels.as_ref()))
            .collect()
    }

    pub fn nodes(&self) -> Result<&'a [Node], Inconclusive> {
        self.snapshot.kube.nodes.items().map_err(|why| missing("Nodes", why))
    }

    pub fn instances(&self) -> Result<&'a [Instance], Inconclusive> {
        self.snapshot
            .aws
            .instances
            .items()
            .map_err(|why| missing("EC2 instances", why))
    }

    pub fn node_by_name(&self, name: &str) -> Option<&'a Node> {
        self.snapshot
            .kube
            .nodes
            .items()
            .ok()?
            .iter()
            .find(|n| n.metadata.name.as_deref() == Some(name))
    }

    pub fn node_for_instance(&self, instance_id: &str) -> Option<&'a Node> {
        self.snapshot
            .kube
            .nodes
            .items()
            .ok()?
            .iter()
            .find(|n| node_instance_id(n) == Some(instance_id))
    }

    pub fn instance_by_id(&self, id: &str) -> Option<&'a Instance> {
        self.snapshot
            .aws
            .instances
            .items()
            .ok()?
            .iter()
            .find(|i| i.instance_id == id)
    }

    /// The live pod holding `ip` (terminal pods release their address).
    pub fn pod_by_ip(&self, ip: &str) -> Option<&'a Pod> {
        let pods = self.snapshot.kube.pods.items().ok()?;
        pods.iter()
            .filter(|p| kubernetes::is_live(p))
            .find(|p| pod_ips(p).any(|a| a == ip) && !is_host_network(p))
    }

    /// Every registered target, with the instance, node and (IP targets) pod behind it.
    pub fn targets(&self) -> Result<Vec<TargetInfo<'a>>, Inconclusive> {
        let health = self.target_health()?;
        let ip_mode = self.target_type()? == "ip";
        Ok(health
            .iter()
            .map(|h| {
                if ip_mode {
                    let pod = self.pod_by_ip(&h.target.id);
                    let node = pod
                        .and_then(|p| p.spec.as_ref()?.node_name.as_deref())
                        .and_then(|n| self.node_by_name(n));
                    let instance = node.and_then(node_instance_id).and_then(|id| self.instance_by_id(id));
                    TargetInfo {
                        health: h,
                        instance,
                        node,
                        pod,
                    }
                } else {
                    TargetInfo {
                        health: h,
                        instance: self.instance_by_id(&h.target.id),
                        node: self.node_for_instance(&h.target.id),
                        pod: None,
                    }
                }
            })
            .collect())
    }

    /// The port the health check connects to for this target.
    pub fn health_check_port(&self, target: &TargetHealthDescription) -> Option<u16> {
        self.target_group().ok()?.health_check_port_for(&target.target)
    }

    /// Targets whose failing health check is expected: `externalTrafficPolicy: Local`,
    /// instance targets, the check on `healthCheckNodePort`, and no ready pod on the node.
    pub fn failing_by_design(&self, target: &TargetInfo<'_>) -> bool {
        let Ok(service) = self.service() else { return false };
        let Some(spec) = service.spec.as_ref() else {
            return false;
        };
        if spec.external_traffic_policy.as_deref() != Some("Local") || self.target_type().ok() != Some("instance") {
            return false;
        }
        let Some(hc_node_port) = spec.health_check_node_port else {
            return false;
        };
        if self.health_check_port(target.health).map(i32::from) != Some(hc_node_port) {
            return false;
        }
        let Some(node) = target.node_name() else { return false };
        let Ok(pods) = self.selected_pods() else { return false };
        !pods.iter().any(|p| pod_node(p) == Some(node) && is_pod_ready(p))
    }

    /// Health-check replay results, leaving out targets that fail by design and targets the
    /// load balancer itself reports healthy (a replay failing where the load balancer succeeds
    /// says more about where the replay ran from than about the target).
    pub fn probe_results(&self) -> Vec<&'a crate::snapshot::ProbeResult> {
        self.all_probe_results()
            .into_iter()
            .filter(|p| p.pod.is_none())
            .collect()
    }

    /// Direct probes of pods on their ports (see [`crate::snapshot::ProbeResult::pod`]).
    pub fn pod_probe_results(&self) -> Vec<&'a crate::snapshot::ProbeResult> {
        self.snapshot
            .probe
            .items()
            .unwrap_or_default()
            .iter()
            .filter(|p| p.pod.is_some())
            .collect()
    }

    fn all_probe_results(&self) -> Vec<&'a crate::snapshot::ProbeResult> {
        let by_design: Vec<String> = self
            .targets()
            .unwrap_or_default()
            .iter()
            .filter(|t| self.failing_by_design(t) || t.state() == "healthy")
            .map(|t| t.id().to_string())
            .collect();
        self.snapshot
            .probe
            .items()
            .unwrap_or_default()
            .iter()
            .filter(|p| !by_design.contains(&p.target_id))
            .collect()
    }

    /// The targets failing their health checks that need explaining (`unhealthy`, or an
    /// NLB's `unhealthy.draining`), leaving out those failing by design.
    pub fn failing_targets(&self) -> Result<Vec<TargetInfo<'a>>, Inconclusive> {
        Ok(self
            .targets()?
            .into_iter()
            .filter(|t| target_state::is_failing(t.state()))
            .filter(|t| !self.failing_by_design(t))
            .collect())
    }

    /// The AWS Load Balancer Controller's flags, from its Deployment when it was collected.
    pub fn controller_config(&self) -> Option<crate::controller::ControllerConfig> {
        let deployments = self.snapshot.kube.deployments.items().ok()?;
        deployments
            .iter()
            .find(|d| {
                d.metadata.name.as_deref() == Some("aws-load-balancer-controller")
                    || d.metadata
                        .labels
                        .as_ref()
                        .and_then(|l| l.get("app.kubernetes.io/name"))
                        .map(String::as_str)
                        == Some("aws-load-balancer-controller")
            })
            .map(crate::controller::ControllerConfig::from_deployment)
    }

    /// Every registered target ID (a finding about the whole target group concerns them all).
    pub fn all_target_ids(&self) -> Vec<String> {
        self.target_health()
            .map(|h| h.iter().map(|t| t.target.id.clone()).collect())
            .unwrap_or_default()
    }

    /// The IDs of the targets on the named nodes (instance targets: the node's instance;
    /// IP targets: pods on the node).
    pub fn target_ids_on_nodes(&self, nodes: &std::collections::BTreeSet<String>) -> Vec<String> {
        self.targets()
            .unwrap_or_default()
            .iter()
            .filter(|t| t.node_name().is_some_and(|n| nodes.contains(n)))
            .map(|t| t.id().to_string())
            .collect()
    }
}

pub fn labels_match(selector: &BTreeMap<String, String>, labels: Option<&BTreeMap<String, String>>) -> bool {
    selector.iter().all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

/// `aws:///us-east-1a/i-0abc` -> `i-0abc`.
pub fn node_instance_id(node: &Node) -> Option<&str> {
    let provider = node.spec.as_ref()?.provider_id.as_deref()?;
    provider
        .strip_prefix("aws://")
        .and_then(|rest| rest.rsplit('/').next())
        .filter(|id| id.starts_with("i-"))
}

pub fn pod_node(pod: &Pod) -> Option<&str> {
    pod.spec.as_ref()?.node_name.as_deref()
}

pub fn pod_name(pod: &Pod) -> &str {
    pod.metadata.name.as_deref().unwrap_or("?")
}

fn is_host_network(pod: &Pod) -> bool {
    pod.spec.as_ref().and_then(|s| s.host_network).unwrap_or(false)
}

pub use crate::kubernetes::is_pod_ready;

/// Every address of the pod (`podIPs`, dual-stack included, else `podIP`).
pub fn pod_ips(pod: &Pod) -> impl Iterator<Item = &str> {
    let status = pod.status.as_ref();
    let many: Vec<&str> = status
        .and_then(|s| s.pod_ips.as_ref())
        .map(|ips| ips.iter().map(|i| i.ip.as_str()).collect())
        .unwrap_or_default();
    let one = status.and_then(|s| s.pod_ip.as_deref());
    let fallback = if many.is_empty() { one } else { None };
    many.into_iter().chain(fallback)
}

pub fn is_node_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Every container port of the pod: (name, number).
pub fn container_ports(pod: &Pod) -> Vec<(Option<&str>, i32)> {
    pod.spec
        .iter()
        .flat_map(|s| &s.containers)
        .flat_map(|c| c.ports.iter().flatten())
        .map(|p| (p.name.as_deref(), p.container_port))
        .collect()
}

/// At most `max` characters of `s`, with `...` when cut.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        format!("{}...", s.chars().take(max).collect::<String>())
    }
}

/// Shell-quotes a JSON patch for a `kubectl patch -p` command line.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
pub(crate) mod fixtures;

#[cfg(test)]
mod tests;
