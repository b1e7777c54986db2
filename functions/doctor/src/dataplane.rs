//! The cluster's data plane as the add-ons that run it decide: what forwards NodePorts to
//! pods (kube-proxy, or a CNI replacing it), what enforces NetworkPolicies, and how a
//! NetworkPolicy decides a connection to a pod.
//!
//! Sources:
//! - NetworkPolicy semantics, <https://kubernetes.io/docs/concepts/services-networking/network-policies/>:
//!   a pod is isolated for ingress when some policy selecting it has `Ingress` in
//!   `policyTypes` (or, with `policyTypes` unset, always); then a connection is allowed only
//!   when some rule of some such policy allows it: a rule with no `from` allows every source,
//!   an `ipBlock` allows its CIDR minus `except`, pod and namespace selectors match pods only
//!   (a load balancer is not a pod); a rule with no `ports` allows every port, a named port is
//!   the pod's container port of that name, `endPort` makes a range, protocol defaults to TCP.
//! - VPC CNI network policy: enforced by the network policy agent container of the `aws-node`
//!   DaemonSet (`aws-eks-nodeagent`; image `aws-network-policy-agent`) when it runs with
//!   `--enable-network-policy=true` (the add-on's `enableNetworkPolicy`), with the
//!   `amazon-vpc-cni` ConfigMap's `enable-network-policy-controller: "true"`
//!   (<https://docs.aws.amazon.com/eks/latest/userguide/cni-network-policy.html>); Calico
//!   (`calico-node`) and Cilium (`cilium`) enforce them whenever they run.
//! - Cilium's kube-proxy replacement: `kube-proxy-replacement` in the `cilium-config`
//!   ConfigMap (`true`, or the older `strict` / `partial`), with no kube-proxy DaemonSet
//!   (<https://docs.cilium.io/en/stable/network/kubernetes/kubeproxy-free/>).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicyPort};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;

use crate::checks::CheckContext;
use crate::network_path::{Protocol, Span};

pub const VPC_CNI_CONFIG: &str = "amazon-vpc-cni";
pub const CILIUM_CONFIG: &str = "cilium-config";

/// Whether NetworkPolicies are enforced, and by what.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", content = "by", rename_all = "camelCase")]
pub enum Enforcement {
    Enforced(String),
    NotEnforced(String),
    Unknown(String),
}

fn daemon_sets<'a>(cx: &CheckContext<'a>) -> Result<&'a [DaemonSet], String> {
    cx.snapshot
        .kube
        .daemon_sets
        .items()
        .map_err(|why| format!("DaemonSets not collected: {why}"))
}

fn config_map<'a>(cx: &CheckContext<'a>, name: &str) -> Option<&'a ConfigMap> {
    cx.snapshot
        .kube
        .config_maps
        .items()
        .ok()?
        .iter()
        .find(|c| c.metadata.name.as_deref() == Some(name))
}

fn config_value<'a>(cx: &CheckContext<'a>, map: &str, key: &str) -> Option<&'a str> {
    config_map(cx, map)?.data.as_ref()?.get(key).map(String::as_str)
}

fn named<'a>(sets: &'a [DaemonSet], names: &[&str]) -> Option<&'a DaemonSet> {
    sets.iter()
        .find(|d| d.metadata.name.as_deref().is_some_and(|n| names.contains(&n)))
}

/// The VPC CNI network policy agent's `--enable-network-policy` flag, when the container runs.
fn policy_agent_flag(aws_node: &DaemonSet) -> Option<bool> {
    let containers = &aws_node.spec.as_ref()?.template.spec.as_ref()?.containers;
    let agent = containers
        .iter()
        .find(|c| c.name == "aws-eks-nodeagent" || c.name == "aws-network-policy-agent")?;
    let args = agent.args.iter().flatten().chain(agent.command.iter().flatten());
    let mut enabled = false;
    for a in args {
        if let Some(v) = a.strip_prefix("--enable-network-policy=") {
            enabled = v.eq_ignore_ascii_case("true");
        }
    }
    Some(enabled)
}

/// Who enforces NetworkPolicies in the cluster, as far as the collected add-ons show.
pub fn policy_enforcement(cx: &CheckContext<'_>) -> Enforcement {
    let sets = match daemon_sets(cx) {
        Ok(s) => s,
        Err(why) => return Enforcement::Unknown(why),
    };
    if named(sets, &["calico-node"]).is_some() {
        return Enforcement::Enforced("Calico (calico-node)".into());
    }
    if named(sets, &["cilium"]).is_some() {
        return Enforcement::Enforced("Cilium".into());
    }
    let controller = config_value(cx, VPC_CNI_CONFIG, "enable-network-policy-controller");
    let agent = named(sets, &["aws-node"]).and_then(policy_agent_flag);
    if agent == Some(true) || controller == Some("true") {
        return Enforcement::Enforced("the VPC CNI network policy agent (aws-node)".into());
    }
    // "Not enforced" needs every place an engine would run to have been looked at.
    for ns in ["kube-system", "calico-system"] {
        if let Err(why) = cx.scoped("DaemonSet", &cx.snapshot.kube.daemon_sets, ns, &[]) {
            return Enforcement::Unknown(why.0);
        }
    }
    match (named(sets, &["aws-node"]), agent) {
        (Some(_), Some(false)) => Enforcement::NotEnforced(
            "aws-node's network policy agent runs with --enable-network-policy=false, and no Calico or Cilium runs"
                .into(),
        ),
        (Some(_), _) => {
            Enforcement::NotEnforced("aws-node runs no network policy agent, and no Calico or Cilium runs".into())
        }
        (None, _) => Enforcement::Unknown("no aws-node, calico-node or cilium DaemonSet found".into()),
    }
}

/// What forwards a node's NodePorts to pods.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "by", content = "detail", rename_all = "camelCase")]
pub enum NodePortForwarder {
    KubeProxy,
    /// A CNI replacing kube-proxy (its name and the setting that says so).
    Replacement(String),
    Unknown(String),
}

pub fn node_port_forwarder(cx: &CheckContext<'_>) -> NodePortForwarder {
    let sets = match daemon_sets(cx) {
        Ok(s) => s,
        Err(why) => return NodePortForwarder::Unknown(why),
    };
    if named(sets, &["kube-proxy"]).is_some() {
        return NodePortForwarder::KubeProxy;
    }
    match config_value(cx, CILIUM_CONFIG, "kube-proxy-replacement") {
        Some(v @ ("true" | "strict" | "partial")) => {
            NodePortForwarder::Replacement(format!("Cilium (cilium-config kube-proxy-replacement: {v})"))
        }
        _ if named(sets, &["cilium"]).is_some() => {
            NodePortForwarder::Replacement("Cilium (no kube-proxy DaemonSet; cilium-config not collected)".into())
        }
        _ => NodePortForwarder::Unknown("no kube-proxy DaemonSet and no known replacement".into()),
    }
}

// ------------------------------------------------------------------ NetworkPolicy decisions

/// Whether a label selector matches labels (`matchLabels` and `matchExpressions`; an empty
/// selector matches everything).
pub fn selector_matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let by_labels = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let by_expressions = selector.match_expressions.iter().flatten().all(|e| {
        let values = e.values.as_deref().unwrap_or_default();
        match e.operator.as_str() {
            "In" => labels.get(&e.key).is_some_and(|v| values.contains(v)),
            "NotIn" => labels.get(&e.key).is_none_or(|v| !values.contains(v)),
            "Exists" => labels.contains_key(&e.key),
            "DoesNotExist" => !labels.contains_key(&e.key),
            _ => false, // an unknown operator selects nothing (the API server rejects it)
        }
    });
    by_labels && by_expressions
}

/// Whether `policy` isolates `pod` for ingress.
pub fn isolates_for_ingress(policy: &NetworkPolicy, pod: &Pod) -> bool {
    let Some(spec) = &policy.spec else { return false };
    if policy.metadata.namespace != pod.metadata.namespace {
        return false;
    }
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    let selected = spec.pod_selector.as_ref().is_none_or(|s| selector_matches(s, &labels));
    let ingress = match &spec.policy_types {
        Some(types) => types.iter().any(|t| t == "Ingress"),
        None => true,
    };
    selected && ingress
}

fn port_matches(p: &NetworkPolicyPort, pod: &Pod, protocol: Protocol, port: u16) -> bool {
    let proto = p.protocol.as_deref().unwrap_or("TCP");
    if !proto.eq_ignore_ascii_case(protocol.name()) {
        return false;
    }
    match &p.port {
        None => true,
        Some(IntOrString::Int(n)) => {
            let end = p.end_port.unwrap_or(*n);
            i32::from(port) >= *n && i32::from(port) <= end
        }
        Some(IntOrString::String(name)) => {
            crate::kubernetes::resolve_target_port(pod, &IntOrString::String(name.clone()))
                .is_some_and(|n| n == i32::from(port))
        }
    }
}

/// The decision of the NetworkPolicies on a connection from `source` to `pod`'s `port`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "verdict", rename_all = "camelCase")]
pub enum PolicyVerdict {
    /// No policy isolates the pod for ingress.
    NotIsolated,
    Allowed {
        policy: String,
    },
    /// Isolated and no rule allows it: the policies that isolate the pod.
    Denied {
        policies: Vec<String>,
    },
}

pub fn evaluate_policies(
    policies: &[NetworkPolicy],
    pod: &Pod,
    source: Span,
    protocol: Protocol,
    port: u16,
) -> PolicyVerdict {
    let isolating: Vec<&NetworkPolicy> = policies.iter().filter(|p| isolates_for_ingress(p, pod)).collect();
    if isolating.is_empty() {
        return PolicyVerdict::NotIsolated;
    }
    for policy in &isolating {
        let name = policy.metadata.name.clone().unwrap_or_default();
        for rule in policy
            .spec
            .as_ref()
            .and_then(|s| s.ingress.as_ref())
            .into_iter()
            .flatten()
        {
            let ports_ok = match &rule.ports {
                None => true,
                Some(ports) if ports.is_empty() => true,
                Some(ports) => ports.iter().any(|p| port_matches(p, pod, protocol, port)),
            };
            if !ports_ok {
                continue;
            }
            let from_ok = match &rule.from {
                None => true,
                Some(peers) if peers.is_empty() => true,
                Some(peers) => peers.iter().any(|peer| {
                    let Some(block) = &peer.ip_block else { return false };
                    let Some(cidr) = Span::parse(&block.cidr) else {
                        return false;
                    };
                    cidr.contains(source)
                        && !block
                            .except
                            .iter()
                            .flatten()
                            .filter_map(|e| Span::parse(e))
                            .any(|e| e.intersect(source).is_some())
                }),
            };
            if from_ok {
                return PolicyVerdict::Allowed { policy: name };
            }
        }
    }
    let mut names: Vec<String> = isolating
        .iter()
        .map(|p| p.metadata.name.clone().unwrap_or_default())
        .collect();
    names.sort();
    PolicyVerdict::Denied { policies: names }
}
