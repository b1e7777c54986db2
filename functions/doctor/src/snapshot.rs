//! The Snapshot: everything gathered about one target group, from live APIs, a dump
//! directory, or test fixtures. Checks read nothing else.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ConfigMap, Endpoints, Event, Namespace, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass, NetworkPolicy};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

use crate::arn::TargetGroupArn;
use crate::aws;

/// One gathered item: present, known to be absent, or not collected (and why).
#[derive(Debug, Clone, PartialEq)]
pub enum Collected<T> {
    Present(T),
    Absent,
    NotCollected(String),
}

impl<T> Default for Collected<T> {
    fn default() -> Self {
        Collected::NotCollected("not gathered".into())
    }
}

impl<T> Collected<T> {
    pub fn not_collected(reason: impl Into<String>) -> Self {
        Collected::NotCollected(reason.into())
    }

    /// The value, `None` when absent, or the reason it was not collected.
    pub fn get(&self) -> Result<Option<&T>, &str> {
        match self {
            Collected::Present(v) => Ok(Some(v)),
            Collected::Absent => Ok(None),
            Collected::NotCollected(why) => Err(why),
        }
    }

    pub fn present(&self) -> Option<&T> {
        match self {
            Collected::Present(v) => Some(v),
            _ => None,
        }
    }

    pub fn reason(&self) -> Option<&str> {
        match self {
            Collected::NotCollected(why) => Some(why),
            _ => None,
        }
    }
}

impl<T> Collected<Vec<T>> {
    /// A collected list (absent counts as empty), or the reason it was not collected.
    pub fn items(&self) -> Result<&[T], &str> {
        match self {
            Collected::Present(v) => Ok(v),
            Collected::Absent => Ok(&[]),
            Collected::NotCollected(why) => Err(why),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub target_group_arn: Option<TargetGroupArn>,
    pub region: Option<String>,
    pub account_id: Option<String>,
    /// The cluster the caller named (manifest, event or flag); resolution may find another.
    pub cluster_name: Option<String>,
    /// The moment the diagnosis is about: the alarm's state-change time when an alarm
    /// triggered it, else when the state was gathered (a dump's `collectedAt`, else the newest
    /// timestamp in it). "Now" for judging how recent a restart or a log line is.
    pub as_of: Option<k8s_openapi::jiff::Timestamp>,
    pub aws: AwsState,
    pub kube: KubeState,
    pub probe: Collected<Vec<ProbeResult>>,
    /// Things the gatherer or loader noticed that are not failures (skipped kinds, ...).
    pub notes: Vec<String>,
    /// API calls made while gathering, per service (empty for a dump).
    pub api_calls: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default)]
pub struct AwsState {
    pub target_group: Collected<aws::TargetGroup>,
    pub target_health: Collected<Vec<aws::TargetHealthDescription>>,
    pub tags: Collected<BTreeMap<String, String>>,
    pub load_balancers: Collected<Vec<aws::LoadBalancer>>,
    pub security_groups: Collected<Vec<aws::SecurityGroup>>,
    pub network_acls: Collected<Vec<aws::NetworkAcl>>,
    pub route_tables: Collected<Vec<aws::RouteTable>>,
    pub subnets: Collected<Vec<aws::Subnet>>,
    pub vpcs: Collected<Vec<aws::Vpc>>,
    pub instances: Collected<Vec<aws::Instance>>,
    /// Instance IDs that EC2 reported as not existing (`InvalidInstanceID.NotFound`).
    pub instances_not_found: Vec<String>,
    pub network_interfaces: Collected<Vec<aws::NetworkInterface>>,
    /// The load balancer's own interfaces (description `ELB app/...` or `ELB net/...`): the
    /// addresses its health checks and, without client IP preservation, its traffic come from.
    pub load_balancer_interfaces: Collected<Vec<aws::NetworkInterface>>,
    /// `describe-target-group-attributes` of the target group, by key.
    pub target_group_attributes: Collected<BTreeMap<String, String>>,
    /// `describe-load-balancer-attributes` of the target group's load balancer, by key.
    pub load_balancer_attributes: Collected<BTreeMap<String, String>>,
    /// The entries (CIDRs) of every managed prefix list the security groups and route tables
    /// refer to, by prefix-list ID; a referenced list without an entry was not looked up.
    pub prefix_lists: BTreeMap<String, Collected<Vec<String>>>,
    pub cluster: Collected<aws::Cluster>,
}

impl AwsState {
    /// The managed prefix lists the collected security groups and route tables refer to.
    pub fn referenced_prefix_lists(&self) -> std::collections::BTreeSet<String> {
        let mut ids = std::collections::BTreeSet::new();
        for g in self.security_groups.items().unwrap_or_default() {
            for p in g.ip_permissions.iter().chain(&g.ip_permissions_egress) {
                ids.extend(p.prefix_list_ids.iter().map(|l| l.prefix_list_id.clone()));
            }
        }
        for t in self.route_tables.items().unwrap_or_default() {
            ids.extend(t.routes.iter().filter_map(|r| r.destination_prefix_list_id.clone()));
        }
        ids.retain(|id| !id.is_empty());
        ids
    }
}

#[derive(Debug, Clone, Default)]
pub struct KubeState {
    pub target_group_bindings: Collected<Vec<TargetGroupBinding>>,
    pub services: Collected<Vec<Service>>,
    pub endpoints: Collected<Vec<Endpoints>>,
    pub endpoint_slices: Collected<Vec<EndpointSlice>>,
    pub pods: Collected<Vec<Pod>>,
    pub events: Collected<Vec<Event>>,
    pub ingresses: Collected<Vec<Ingress>>,
    pub ingress_classes: Collected<Vec<IngressClass>>,
    pub ingress_class_params: Collected<Vec<IngressClassParams>>,
    pub nodes: Collected<Vec<Node>>,
    pub namespaces: Collected<Vec<Namespace>>,
    pub deployments: Collected<Vec<Deployment>>,
    pub replica_sets: Collected<Vec<ReplicaSet>>,
    pub daemon_sets: Collected<Vec<DaemonSet>>,
    /// kube-system's `amazon-vpc-cni` and `cilium-config` (when they exist).
    pub config_maps: Collected<Vec<ConfigMap>>,
    pub network_policies: Collected<Vec<NetworkPolicy>>,
    /// Container logs keyed by (namespace, pod name).
    pub logs: Collected<BTreeMap<(String, String), String>>,
    /// What each namespaced kind's collected list covers, by kind name (`Pod`, `Deployment`,
    /// ...). A kind without an entry was listed in every namespace.
    pub scopes: BTreeMap<String, Scope>,
}

/// Which part of a namespaced kind a list covers: each entry is one namespace (or all)
/// with an optional equality label selector, as the list call or the dump file had it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(transparent)]
pub struct Scope(pub Vec<ScopeEntry>);

#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScopeEntry {
    /// `None`: every namespace.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Only objects with these labels were listed.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

impl Scope {
    pub fn all() -> Self {
        Scope(vec![ScopeEntry::default()])
    }

    pub fn namespace(ns: &str, labels: &[(&str, &str)]) -> ScopeEntry {
        ScopeEntry {
            namespace: Some(ns.to_string()),
            labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    /// Whether an object in `namespace` with `labels` would have been in the list.
    pub fn covers(&self, namespace: &str, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().any(|e| {
            e.namespace.as_deref().is_none_or(|n| n == namespace)
                && e.labels.iter().all(|(k, v)| labels.get(k) == Some(v))
        })
    }

    pub fn describe(&self) -> String {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|e| {
                let ns = e.namespace.clone().unwrap_or_else(|| "all namespaces".into());
                if e.labels.is_empty() {
                    ns
                } else {
                    let sel: Vec<String> = e.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    format!("{ns} ({})", sel.join(","))
                }
            })
            .collect();
        if parts.is_empty() {
            "nothing".into()
        } else {
            parts.join(", ")
        }
    }
}

impl KubeState {
    /// The collected objects of `kind` in `namespace` that carry `labels`, or why they were
    /// not collected: the list failed, or it never covered that namespace / those labels
    /// (a dump of `kubectl get all -n shop` says nothing about kube-system).
    pub fn scoped<'a, T>(
        &self,
        kind: &str,
        list: &'a Collected<Vec<T>>,
        namespace: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<&'a [T], String> {
        let items = list.items().map_err(|why| format!("{kind} not collected: {why}"))?;
        match self.scopes.get(kind) {
            Some(scope) if !scope.covers(namespace, labels) => {
                let what = if labels.is_empty() {
                    format!("{kind} in namespace {namespace}")
                } else {
                    let sel: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    format!("{kind} in namespace {namespace} labelled {}", sel.join(","))
                };
                Err(format!("{what} not collected (collected only: {})", scope.describe()))
            }
            _ => Ok(items),
        }
    }
}

/// A TargetGroupBinding: the controller's record of which Service backs which target group.
/// `elbv2.k8s.aws/v1beta1` for the AWS Load Balancer Controller, `eks.amazonaws.com/v1` for
/// EKS Auto Mode's built-in one (same shape).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetGroupBinding {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: TargetGroupBindingSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<serde_json::Value>,
}

impl TargetGroupBinding {
    /// Written by EKS Auto Mode's load balancing (its controller runs outside the cluster).
    pub fn is_auto_mode(&self) -> bool {
        self.api_version
            .as_deref()
            .is_some_and(|v| v.starts_with("eks.amazonaws.com/"))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TargetGroupBindingSpec {
    #[serde(rename = "targetGroupARN")]
    pub target_group_arn: Option<String>,
    pub target_group_name: Option<String>,
    pub target_type: Option<String>,
    pub service_ref: ServiceReference,
    pub node_selector: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>,
    /// The target group is shared with other clusters: the controller only manages the
    /// targets it registered itself (v2.10+).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub multi_cluster_target_group: Option<bool>,
    /// The ingress rules the controller keeps on the targets' security groups; unset when it
    /// manages none (`manage-backend-security-group-rules: "false"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub networking: Option<serde_json::Value>,
}

/// IngressClassParams: `elbv2.k8s.aws/v1beta1` (the controller) or `eks.amazonaws.com/v1`
/// (EKS Auto Mode). Only the fields that change how targets are registered or checked.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IngressClassParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: serde_json::Value,
}

impl IngressClassParams {
    /// `spec.targetType` (`instance` / `ip`): overrides every Ingress annotation of the class.
    pub fn target_type(&self) -> Option<&str> {
        self.spec.get("targetType").and_then(serde_json::Value::as_str)
    }

    /// `spec.group.name`: overrides the Ingresses' `group.name` annotation.
    pub fn group_name(&self) -> Option<&str> {
        self.spec.pointer("/group/name").and_then(serde_json::Value::as_str)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServiceReference {
    pub name: String,
    pub port: Option<k8s_openapi::apimachinery::pkg::util::intstr::IntOrString>,
}

/// One health-check replay result (`probe.json`), the project's own format.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProbeResult {
    pub target_id: String,
    #[serde(default)]
    pub address: Option<String>,
    pub port: u16,
    #[serde(default)]
    pub protocol: Option<String>,
    #[serde(default)]
    pub path: Option<String>,
    pub outcome: ProbeOutcome,
    #[serde(default)]
    pub status_code: Option<u16>,
    #[serde(default)]
    pub latency_ms: Option<u64>,
    #[serde(default)]
    pub detail: Option<String>,
    /// Set on a direct probe of a pod (`namespace/name`) on one of its ports, made to learn
    /// which port the application answers on; unset on the health check's own replay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ProbeOutcome {
    /// An HTTP answer came back (see `status_code`), or the TCP connection opened.
    #[default]
    Response,
    Refused,
    Timeout,
    Error,
}

#[derive(Debug, Default, Deserialize)]
pub struct ProbeFile {
    pub results: Vec<ProbeResult>,
}
