//! Loads a dump directory (DESIGN.md "Dump directory") into a [`Snapshot`]: AWS CLI v2 JSON
//! under `aws/`, any `kubectl get -o json|yaml` output under `k8s/`, container logs under
//! `k8s/logs/<namespace>/<pod>.log`, and an optional `probe.json`. A missing file means
//! "not collected", never a failure; a file that does not parse is an error naming it.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

use crate::arn::TargetGroupArn;
use crate::aws;
use crate::error::{Error, Result};
use crate::snapshot::{Collected, KubeState, ProbeFile, Scope, ScopeEntry, Snapshot};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Manifest {
    target_group_arn: Option<String>,
    region: Option<String>,
    account_id: Option<String>,
    cluster_name: Option<String>,
    /// When the dump was taken (RFC 3339); else the newest timestamp found in it.
    collected_at: Option<String>,
    /// What each namespaced kind's list covered (as `collect` writes it); else inferred
    /// from the files: the namespaces their objects are in.
    #[serde(default)]
    kube_scope: BTreeMap<String, Scope>,
}

/// Reads the dump at `dir`.
pub fn load(dir: &Path) -> Result<Snapshot> {
    fs::read_dir(dir).map_err(|source| Error::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    let manifest_path = dir.join("manifest.json");
    let manifest: Manifest = parse_json(&manifest_path, &read(&manifest_path)?)?;
    let arn_text = manifest
        .target_group_arn
        .ok_or_else(|| Error::ManifestMissingTargetGroup {
            path: manifest_path.clone(),
        })?;
    let arn = TargetGroupArn::parse(&arn_text)?;

    let collected_at = match &manifest.collected_at {
        Some(text) => Some(text.parse::<k8s_openapi::jiff::Timestamp>().map_err(|e| Error::Parse {
            path: manifest_path.clone(),
            format: "JSON",
            line: 0,
            column: 0,
            message: format!("collectedAt {text:?} is not an RFC 3339 timestamp: {e}"),
        })?),
        None => None,
    };
    let mut snapshot = Snapshot {
        as_of: collected_at,
        region: manifest.region.or_else(|| Some(arn.region.clone())),
        account_id: manifest.account_id.or_else(|| Some(arn.account.clone())),
        cluster_name: manifest.cluster_name,
        target_group_arn: Some(arn.clone()),
        ..Snapshot::default()
    };
    load_aws(dir, &arn_text, &mut snapshot)?;
    load_kube(dir, &mut snapshot, manifest.kube_scope)?;

    let probe_path = dir.join("probe.json");
    snapshot.probe = if probe_path.exists() {
        let probe: ProbeFile = parse_json(&probe_path, &read(&probe_path)?)?;
        Collected::Present(probe.results)
    } else {
        Collected::not_collected("health-check replay not run (no probe.json in dump)")
    };
    Ok(snapshot)
}

fn read(path: &Path) -> Result<String> {
    fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn parse_json<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| Error::Parse {
        path: path.to_path_buf(),
        format: "JSON",
        line: e.line(),
        column: e.column(),
        message: strip_location(&e.to_string()),
    })
}

/// serde_json appends " at line L column C"; the error already says where.
fn strip_location(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// Loads `aws/<file>` if present: `None` means "not in dump".
fn aws_file<T: DeserializeOwned>(dir: &Path, file: &str) -> Result<Option<T>> {
    let path = dir.join("aws").join(file);
    if !path.exists() {
        return Ok(None);
    }
    let text = read(&path)?;
    if text.trim().is_empty() {
        return Ok(None);
    }
    parse_json(&path, &text).map(Some)
}

fn collected<T, U>(dir: &Path, file: &str, pick: impl FnOnce(T) -> U) -> Result<Collected<U>>
where
    T: DeserializeOwned,
{
    Ok(match aws_file::<T>(dir, file)? {
        Some(out) => Collected::Present(pick(out)),
        None => Collected::not_collected(format!("not in dump: aws/{file}")),
    })
}

fn load_aws(dir: &Path, arn: &str, snapshot: &mut Snapshot) -> Result<()> {
    let state = &mut snapshot.aws;
    let tg_file = "elbv2-describe-target-groups.json";
    state.target_group = match aws_file::<aws::DescribeTargetGroupsOutput>(dir, tg_file)? {
        Some(out) => {
            let known: Vec<String> = out.target_groups.iter().map(|t| t.target_group_arn.clone()).collect();
            match out.target_groups.into_iter().find(|t| t.target_group_arn == arn) {
                Some(tg) => Collected::Present(tg),
                None => {
                    return Err(Error::UnknownTargetGroup {
                        arn: arn.to_string(),
                        detail: format!("aws/{tg_file} lists {}", list_or_none(&known)),
                    })
                }
            }
        }
        None => Collected::not_collected(format!("not in dump: aws/{tg_file}")),
    };
    state.target_health = collected(
        dir,
        "elbv2-describe-target-health.json",
        |o: aws::DescribeTargetHealthOutput| o.target_health_descriptions,
    )?;
    let tags_file = "elbv2-describe-tags.json";
    state.tags = match aws_file::<aws::DescribeTagsOutput>(dir, tags_file)? {
        Some(out) => match out.tag_descriptions.into_iter().find(|d| d.resource_arn == arn) {
            Some(d) => Collected::Present(d.tags.into_iter().map(|t| (t.key, t.value)).collect()),
            None => Collected::not_collected(format!("aws/{tags_file} holds no tags for the target group")),
        },
        None => Collected::not_collected(format!("not in dump: aws/{tags_file}")),
    };
    state.load_balancers = collected(
        dir,
        "elbv2-describe-load-balancers.json",
        |o: aws::DescribeLoadBalancersOutput| o.load_balancers,
    )?;
    state.security_groups = collected(
        dir,
        "ec2-describe-security-groups.json",
        |o: aws::DescribeSecurityGroupsOutput| o.security_groups,
    )?;
    state.network_acls = collected(
        dir,
        "ec2-describe-network-acls.json",
        |o: aws::DescribeNetworkAclsOutput| o.network_acls,
    )?;
    state.route_tables = collected(
        dir,
        "ec2-describe-route-tables.json",
        |o: aws::DescribeRouteTablesOutput| o.route_tables,
    )?;
    state.subnets = collected(dir, "ec2-describe-subnets.json", |o: aws::DescribeSubnetsOutput| {
        o.subnets
    })?;
    state.vpcs = collected(dir, "ec2-describe-vpcs.json", |o: aws::DescribeVpcsOutput| o.vpcs)?;
    state.instances = match aws_file::<aws::DescribeInstancesOutput>(dir, "ec2-describe-instances.json")? {
        Some(out) => {
            state.instances_not_found = out.instance_ids_not_found;
            Collected::Present(out.reservations.into_iter().flat_map(|r| r.instances).collect())
        }
        None => Collected::not_collected("not in dump: aws/ec2-describe-instances.json"),
    };
    state.network_interfaces = collected(
        dir,
        "ec2-describe-network-interfaces.json",
        |o: aws::DescribeNetworkInterfacesOutput| o.network_interfaces,
    )?;
    // The load balancer's own interfaces: their own file (the collector's), else the ones
    // a VPC-wide describe-network-interfaces listed with the load balancer's description.
    state.load_balancer_interfaces = match aws_file::<aws::DescribeNetworkInterfacesOutput>(dir, LB_INTERFACES_FILE)? {
        Some(out) => Collected::Present(out.network_interfaces),
        None => {
            let in_main: Vec<aws::NetworkInterface> = state
                .network_interfaces
                .items()
                .unwrap_or_default()
                .iter()
                .filter(|e| {
                    e.description
                        .as_deref()
                        .is_some_and(|d| d.starts_with("ELB app/") || d.starts_with("ELB net/"))
                })
                .cloned()
                .collect();
            if in_main.is_empty() {
                Collected::not_collected(format!("not in dump: aws/{LB_INTERFACES_FILE}"))
            } else {
                Collected::Present(in_main)
            }
        }
    };
    state.target_group_attributes = collected(
        dir,
        "elbv2-describe-target-group-attributes.json",
        |o: aws::DescribeTargetGroupAttributesOutput| attributes(o.attributes),
    )?;
    state.load_balancer_attributes = collected(
        dir,
        "elbv2-describe-load-balancer-attributes.json",
        |o: aws::DescribeLoadBalancerAttributesOutput| attributes(o.attributes),
    )?;
    for id in state.referenced_prefix_lists() {
        // An ID is untrusted text: only a well-formed one names a file.
        let well_formed = id.starts_with("pl-") && id[3..].chars().all(|c| c.is_ascii_alphanumeric());
        let file = format!("{PREFIX_LIST_DIR}/{id}.json");
        let entries = if well_formed {
            collected(dir, &file, |o: aws::GetManagedPrefixListEntriesOutput| {
                o.entries.into_iter().map(|e| e.cidr).collect::<Vec<_>>()
            })?
        } else {
            Collected::not_collected(format!("malformed prefix-list ID {id:?}"))
        };
        state.prefix_lists.insert(id, entries);
    }
    state.cluster = match aws_file::<aws::DescribeClusterOutput>(dir, "eks-describe-cluster.json")? {
        Some(aws::DescribeClusterOutput { cluster: Some(c) }) => Collected::Present(c),
        Some(_) => Collected::Absent,
        None => Collected::not_collected("not in dump: aws/eks-describe-cluster.json"),
    };
    Ok(())
}

/// `aws ec2 describe-network-interfaces --filters Name=description,Values="ELB app/NAME/ID"`.
pub const LB_INTERFACES_FILE: &str = "ec2-describe-network-interfaces-load-balancer.json";
/// `aws ec2 get-managed-prefix-list-entries --prefix-list-id ID`, one file per list.
pub const PREFIX_LIST_DIR: &str = "ec2-get-managed-prefix-list-entries";

fn attributes(list: Vec<aws::Attribute>) -> BTreeMap<String, String> {
    list.into_iter().map(|a| (a.key, a.value)).collect()
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "no target groups".into()
    } else {
        items.join(", ")
    }
}

/// The kinds the Snapshot holds, with the names `kubectl` accepts for them; a file whose
/// name is one of these holds that kind even when its `List` is empty.
const KINDS: &[(&str, &[&str])] = &[
    (
        "TargetGroupBinding",
        &["targetgroupbindings", "targetgroupbinding", "tgb"],
    ),
    ("Service", &["services", "service", "svc"]),
    ("Endpoints", &["endpoints", "ep"]),
    ("EndpointSlice", &["endpointslices", "endpointslice"]),
    ("Pod", &["pods", "pod", "po"]),
    ("Event", &["events", "event", "ev"]),
    ("Ingress", &["ingresses", "ingress", "ing"]),
    ("IngressClass", &["ingressclasses", "ingressclass"]),
    ("IngressClassParams", &["ingressclassparams"]),
    ("Node", &["nodes", "node", "no"]),
    ("Namespace", &["namespaces", "namespace", "ns"]),
    ("Deployment", &["deployments", "deployment", "deploy"]),
    ("ReplicaSet", &["replicasets", "replicaset", "rs"]),
    ("DaemonSet", &["daemonsets", "daemonset", "ds"]),
    ("ConfigMap", &["configmaps", "configmap", "cm"]),
    ("NetworkPolicy", &["networkpolicies", "networkpolicy", "netpol"]),
];

/// The API groups each kind is read from (the group part of `apiVersion`).
fn expected_group(kind: &str) -> &'static [&'static str] {
    match kind {
        "TargetGroupBinding" | "IngressClassParams" => &["elbv2.k8s.aws", "eks.amazonaws.com"],
        "EndpointSlice" => &["discovery.k8s.io"],
        // events.k8s.io/v1 is converted to the core shape on load.
        "Event" => &["", "events.k8s.io"],
        "Ingress" | "IngressClass" | "NetworkPolicy" => &["networking.k8s.io"],
        "Deployment" | "DaemonSet" | "ReplicaSet" => &["apps"],
        _ => &[""],
    }
}

/// Kinds without a namespace: collected or not, there is no scope to track.
const CLUSTER_SCOPED: &[&str] = &["Node", "Namespace", "IngressClass", "IngressClassParams"];

/// Keys whose values are timestamps of something the cluster observed.
const TIMESTAMP_KEYS: &[&str] = &[
    "lastTimestamp",
    "eventTime",
    "lastHeartbeatTime",
    "lastTransitionTime",
    "startedAt",
    "finishedAt",
    "creationTimestamp",
];

#[derive(Default)]
struct KubeObjects {
    by_kind: BTreeMap<&'static str, Vec<(PathBuf, Value)>>,
    hinted: BTreeSet<&'static str>,
    skipped: BTreeMap<String, usize>,
    /// Per kind, the namespaces its objects were found in.
    namespaces: BTreeMap<&'static str, BTreeSet<String>>,
    newest: Option<k8s_openapi::jiff::Timestamp>,
}

/// The newest timestamp under `value` (see [`TIMESTAMP_KEYS`]).
fn newest_timestamp(value: &Value, newest: &mut Option<k8s_openapi::jiff::Timestamp>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if let (true, Some(text)) = (TIMESTAMP_KEYS.contains(&k.as_str()), v.as_str()) {
                    if let Ok(t) = text.parse::<k8s_openapi::jiff::Timestamp>() {
                        if newest.is_none_or(|n| t > n) {
                            *newest = Some(t);
                        }
                    }
                } else {
                    newest_timestamp(v, newest);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| newest_timestamp(v, newest)),
        _ => {}
    }
}

fn load_kube(dir: &Path, snapshot: &mut Snapshot, declared_scope: BTreeMap<String, Scope>) -> Result<()> {
    let k8s = dir.join("k8s");
    if !k8s.is_dir() {
        snapshot.kube = KubeState::all_not_collected("dump has no k8s/ directory");
        return Ok(());
    }
    let mut files: Vec<PathBuf> = fs::read_dir(&k8s)
        .map_err(|source| Error::Read {
            path: k8s.clone(),
            source,
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && matches!(ext(p).as_deref(), Some("json" | "yaml" | "yml")))
        .collect();
    files.sort();

    let mut objects = KubeObjects::default();
    for path in &files {
        let text = read(path)?;
        let docs = if ext(path).as_deref() == Some("json") {
            if text.trim().is_empty() {
                vec![]
            } else {
                vec![parse_json::<Value>(path, &text)?]
            }
        } else {
            parse_yaml_documents(path, &text)?
        };
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        let is_empty_list = docs
            .iter()
            .all(|d| d.get("items").and_then(Value::as_array).is_some_and(|a| a.is_empty()));
        if is_empty_list {
            for (kind, names) in KINDS {
                if stem
                    .split(|c: char| !c.is_ascii_alphanumeric())
                    .any(|t| names.contains(&t))
                {
                    objects.hinted.insert(kind);
                }
            }
        }
        for doc in docs {
            newest_timestamp(&doc, &mut objects.newest);
            flatten_into(path, doc, None, &mut objects);
        }
    }
    if snapshot.as_of.is_none() {
        snapshot.as_of = objects.newest;
    }
    if !objects.skipped.is_empty() {
        let kinds: Vec<String> = objects.skipped.iter().map(|(k, n)| format!("{k} ({n})")).collect();
        snapshot.notes.push(format!(
            "skipped Kubernetes objects of kinds this tool does not read: {}",
            kinds.join(", ")
        ));
    }

    let kube = &mut snapshot.kube;
    kube.target_group_bindings = typed(&objects, "TargetGroupBinding")?;
    kube.services = typed(&objects, "Service")?;
    kube.endpoints = typed(&objects, "Endpoints")?;
    kube.endpoint_slices = typed(&objects, "EndpointSlice")?;
    kube.pods = typed(&objects, "Pod")?;
    kube.events = typed(&objects, "Event")?;
    kube.ingresses = typed(&objects, "Ingress")?;
    kube.ingress_classes = typed(&objects, "IngressClass")?;
    kube.ingress_class_params = typed(&objects, "IngressClassParams")?;
    kube.nodes = typed(&objects, "Node")?;
    kube.namespaces = typed(&objects, "Namespace")?;
    kube.deployments = typed(&objects, "Deployment")?;
    kube.replica_sets = typed(&objects, "ReplicaSet")?;
    kube.daemon_sets = typed(&objects, "DaemonSet")?;
    kube.config_maps = typed(&objects, "ConfigMap")?;
    kube.network_policies = typed(&objects, "NetworkPolicy")?;
    kube.logs = load_logs(&k8s.join("logs"))?;
    // Scope: declared by the manifest, else the namespaces the kind's objects are in (an
    // empty List in a file named after the kind says "listed everywhere, none found").
    for (kind, _) in KINDS {
        if CLUSTER_SCOPED.contains(kind) {
            continue;
        }
        let scope = match declared_scope.get(*kind) {
            Some(scope) => scope.clone(),
            None if objects.hinted.contains(kind) => continue,
            None => match objects.namespaces.get(kind) {
                Some(namespaces) => Scope(
                    namespaces
                        .iter()
                        .map(|ns| ScopeEntry {
                            namespace: Some(ns.clone()),
                            labels: BTreeMap::new(),
                        })
                        .collect(),
                ),
                None => continue, // not collected at all: the Collected says so
            },
        };
        kube.scopes.insert(kind.to_string(), scope);
    }
    Ok(())
}

fn ext(path: &Path) -> Option<String> {
    path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase)
}

fn parse_yaml_documents(path: &Path, text: &str) -> Result<Vec<Value>> {
    let mut docs = Vec::new();
    for doc in serde_yaml_ng::Deserializer::from_str(text) {
        let value = Value::deserialize(doc).map_err(|e| {
            let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
            Error::Parse {
                path: path.to_path_buf(),
                format: "YAML",
                line,
                column,
                message: e.to_string(),
            }
        })?;
        if !value.is_null() {
            docs.push(value);
        }
    }
    Ok(docs)
}

/// Unpacks `List`s (kubectl's, and typed ones like `PodList` whose items carry no kind).
fn flatten_into(path: &Path, mut doc: Value, inherited: Option<(&str, &str)>, out: &mut KubeObjects) {
    if let Some((api_version, kind)) = inherited {
        if let Some(obj) = doc.as_object_mut() {
            obj.entry("apiVersion").or_insert_with(|| api_version.into());
            obj.entry("kind").or_insert_with(|| kind.into());
        }
    }
    let kind = doc.get("kind").and_then(Value::as_str).unwrap_or("").to_string();
    let api_version = doc.get("apiVersion").and_then(Value::as_str).unwrap_or("").to_string();
    if let Some(items) = doc.get_mut("items").and_then(Value::as_array_mut).map(std::mem::take) {
        let item_kind = kind.strip_suffix("List").filter(|k| !k.is_empty()).map(str::to_string);
        for item in items {
            let inherit = item_kind.as_deref().map(|k| (api_version.as_str(), k));
            flatten_into(path, item, inherit, out);
        }
        return;
    }
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    if kind == "Event" && group == "events.k8s.io" {
        doc = core_event(doc);
    }
    match KINDS.iter().find(|(k, _)| *k == kind) {
        Some((k, _)) if expected_group(k).contains(&group) => {
            if let Some(ns) = doc.pointer("/metadata/namespace").and_then(Value::as_str) {
                out.namespaces.entry(k).or_default().insert(ns.to_string());
            }
            out.by_kind.entry(k).or_default().push((path.to_path_buf(), doc));
        }
        _ => {
            let label = if kind.is_empty() {
                "(no kind)".to_string()
            } else {
                format!("{api_version} {kind}")
            };
            *out.skipped.entry(label).or_default() += 1;
        }
    }
}

/// An `events.k8s.io/v1` Event (`kubectl get events.events.k8s.io -o json`) in the core/v1
/// shape the checks read: `regarding` is `involvedObject`, `note` is `message`, the
/// deprecated timestamps and counts fill the old fields.
fn core_event(mut doc: Value) -> Value {
    if let Some(o) = doc.as_object_mut() {
        for (from, to) in [
            ("regarding", "involvedObject"),
            ("note", "message"),
            ("deprecatedFirstTimestamp", "firstTimestamp"),
            ("deprecatedLastTimestamp", "lastTimestamp"),
            ("deprecatedCount", "count"),
            ("deprecatedSource", "source"),
        ] {
            if let Some(v) = o.remove(from) {
                o.entry(to).or_insert(v);
            }
        }
        o.insert("apiVersion".into(), "v1".into());
    }
    doc
}

fn typed<T: DeserializeOwned>(objects: &KubeObjects, kind: &'static str) -> Result<Collected<Vec<T>>> {
    let Some(values) = objects.by_kind.get(kind) else {
        return Ok(if objects.hinted.contains(kind) {
            Collected::Present(Vec::new())
        } else {
            Collected::not_collected(format!("no file under k8s/ holds {kind} objects"))
        });
    };
    values
        .iter()
        .map(|(path, value)| {
            T::deserialize(value).map_err(|e| Error::Shape {
                path: path.clone(),
                message: format!("{kind} {}: {e}", object_name(value)),
            })
        })
        .collect::<Result<Vec<T>>>()
        .map(Collected::Present)
}

fn object_name(value: &Value) -> String {
    let meta = value.get("metadata");
    let field = |f: &str| meta.and_then(|m| m.get(f)).and_then(Value::as_str);
    match (field("namespace"), field("name")) {
        (Some(ns), Some(name)) => format!("{ns}/{name}"),
        (None, Some(name)) => name.to_string(),
        _ => "(unnamed)".to_string(),
    }
}

fn load_logs(logs: &Path) -> Result<Collected<BTreeMap<(String, String), String>>> {
    if !logs.is_dir() {
        return Ok(Collected::not_collected("no container logs in dump (k8s/logs/)"));
    }
    let mut out = BTreeMap::new();
    let read_dir = |p: &Path| {
        fs::read_dir(p).map_err(|source| Error::Read {
            path: p.to_path_buf(),
            source,
        })
    };
    for ns_entry in read_dir(logs)? {
        let ns_path = ns_entry
            .map_err(|source| Error::Read {
                path: logs.to_path_buf(),
                source,
            })?
            .path();
        if !ns_path.is_dir() {
            continue;
        }
        let namespace = ns_path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        for pod_entry in read_dir(&ns_path)? {
            let path = pod_entry
                .map_err(|source| Error::Read {
                    path: ns_path.clone(),
                    source,
                })?
                .path();
            if ext(&path).as_deref() != Some("log") {
                continue;
            }
            let pod = path
                .file_stem()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_string();
            // Logs are evidence, not structure: tolerate bytes that are not UTF-8.
            let bytes = fs::read(&path).map_err(|source| Error::Read {
                path: path.clone(),
                source,
            })?;
            out.insert((namespace.clone(), pod), String::from_utf8_lossy(&bytes).into_owned());
        }
    }
    Ok(Collected::Present(out))
}

impl KubeState {
    pub fn all_not_collected(reason: &str) -> Self {
        let nc = || reason.to_string();
        KubeState {
            target_group_bindings: Collected::NotCollected(nc()),
            services: Collected::NotCollected(nc()),
            endpoints: Collected::NotCollected(nc()),
            endpoint_slices: Collected::NotCollected(nc()),
            pods: Collected::NotCollected(nc()),
            events: Collected::NotCollected(nc()),
            ingresses: Collected::NotCollected(nc()),
            ingress_classes: Collected::NotCollected(nc()),
            ingress_class_params: Collected::NotCollected(nc()),
            nodes: Collected::NotCollected(nc()),
            namespaces: Collected::NotCollected(nc()),
            deployments: Collected::NotCollected(nc()),
            replica_sets: Collected::NotCollected(nc()),
            daemon_sets: Collected::NotCollected(nc()),
            config_maps: Collected::NotCollected(nc()),
            network_policies: Collected::NotCollected(nc()),
            logs: Collected::NotCollected(nc()),
            scopes: BTreeMap::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0123456789abcdef";

    fn dump_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(
            tmp.path().join("manifest.json"),
            format!(r#"{{"targetGroupArn": "{ARN}"}}"#),
        )
        .unwrap();
        for (rel, text) in files {
            let path = tmp.path().join(rel);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        }
        tmp
    }

    #[test]
    fn reads_yaml_documents_typed_lists_and_skips_unknown_kinds() {
        let yaml = "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop}\nspec: {selector: {app: web}}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: cfg, namespace: shop}\n";
        // A typed list as the API returns it: items carry no kind of their own.
        let pod_list = r#"{"apiVersion": "v1", "kind": "PodList", "items": [{"metadata": {"name": "web-1", "namespace": "shop"}}]}"#;
        let tmp = dump_with(&[
            ("k8s/svc.yaml", yaml),
            ("k8s/pods.json", pod_list),
            ("k8s/tgb.json", r#"{"apiVersion":"v1","kind":"List","items":[]}"#),
        ]);
        let snap = load(tmp.path()).unwrap();
        assert_eq!(
            snap.kube.services.items().unwrap()[0].metadata.name.as_deref(),
            Some("web")
        );
        assert_eq!(
            snap.kube.pods.items().unwrap()[0].metadata.name.as_deref(),
            Some("web-1")
        );
        // The empty List in a file named after the kind means "collected, none".
        assert_eq!(snap.kube.target_group_bindings.items().unwrap().len(), 0);
        assert!(snap
            .kube
            .nodes
            .reason()
            .unwrap()
            .contains("no file under k8s/ holds Node"));
        assert!(
            snap.notes.iter().any(|n| n.contains("v1 Secret (1)")),
            "{:?}",
            snap.notes
        );
    }

    #[test]
    fn missing_aws_files_are_not_collected() {
        let tmp = dump_with(&[]);
        let snap = load(tmp.path()).unwrap();
        assert_eq!(
            snap.aws.target_group.reason(),
            Some("not in dump: aws/elbv2-describe-target-groups.json")
        );
        assert!(snap.kube.pods.reason().unwrap().contains("no k8s/ directory"));
        assert!(snap.probe.reason().is_some());
    }

    #[test]
    fn a_known_kind_of_the_wrong_shape_names_the_object() {
        let bad = r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "n"}, "spec": {"containers": "nope"}}"#;
        let tmp = dump_with(&[("k8s/p.json", bad)]);
        let err = load(tmp.path()).unwrap_err().to_string();
        assert!(err.contains("p.json") && err.contains("Pod n/p"), "{err}");
    }

    #[test]
    fn logs_are_keyed_by_namespace_and_pod() {
        let tmp = dump_with(&[("k8s/logs/kube-system/kube-proxy-abc.log", "E1127 boom\n")]);
        let snap = load(tmp.path()).unwrap();
        let logs = snap.kube.logs.present().unwrap();
        assert_eq!(
            logs.get(&("kube-system".into(), "kube-proxy-abc".into()))
                .map(String::as_str),
            Some("E1127 boom\n")
        );
    }
}
