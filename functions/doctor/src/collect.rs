//! Writes a Snapshot as a dump directory (DESIGN.md format): the files the AWS CLI and
//! kubectl would print, so `diagnose --dump` on it decides exactly as the live run did.
//! Items that were not collected get no file (the loader reports them "not collected").

use std::fs;
use std::path::Path;

use serde::Serialize;
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::snapshot::{Collected, Snapshot};

fn write(dir: &Path, rel: &str, text: &str) -> Result<()> {
    let path = dir.join(rel);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|source| Error::Read {
            path: parent.to_path_buf(),
            source,
        })?;
    }
    fs::write(&path, text).map_err(|source| Error::Read { path, source })
}

fn pretty(value: &Value) -> String {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    text
}

fn to_value<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// `{"Key": [items]}` for a collected list; nothing for an uncollected one.
fn aws_list<T: Serialize>(dir: &Path, file: &str, key: &str, c: &Collected<Vec<T>>) -> Result<()> {
    if let Ok(items) = c.items() {
        write(dir, &format!("aws/{file}"), &pretty(&json!({ key: to_value(&items) })))?;
    }
    Ok(())
}

/// A kubectl `List` of one kind (`k8s/<plural>.json`); an empty List still records
/// "collected, none".
fn kube_list<T: Serialize>(dir: &Path, plural: &str, c: &Collected<Vec<T>>, patch: impl Fn(&mut Value)) -> Result<()> {
    if let Ok(items) = c.items() {
        let items: Vec<Value> = items
            .iter()
            .map(|i| {
                let mut v = to_value(i);
                patch(&mut v);
                v
            })
            .collect();
        let list = json!({ "apiVersion": "v1", "kind": "List", "items": items, "metadata": { "resourceVersion": "" } });
        write(dir, &format!("k8s/{plural}.json"), &pretty(&list))?;
    }
    Ok(())
}

pub fn write_dump(snapshot: &Snapshot, dir: &Path) -> Result<()> {
    let arn = snapshot
        .target_group_arn
        .as_ref()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let cluster = crate::resolve::resolve(snapshot).cluster;
    write(
        dir,
        "manifest.json",
        &pretty(&json!({
            "targetGroupArn": arn,
            "region": snapshot.region,
            "accountId": snapshot.account_id,
            "clusterName": cluster,
            "collectedAt": snapshot.as_of.map(|t| t.to_string()),
            "kubeScope": snapshot.kube.scopes,
        })),
    )?;
    let a = &snapshot.aws;
    match &a.target_group {
        Collected::Present(tg) => write(
            dir,
            "aws/elbv2-describe-target-groups.json",
            &pretty(&json!({ "TargetGroups": [to_value(tg)] })),
        )?,
        Collected::Absent => write(
            dir,
            "aws/elbv2-describe-target-groups.json",
            &pretty(&json!({ "TargetGroups": [] })),
        )?,
        Collected::NotCollected(_) => {}
    }
    aws_list(
        dir,
        "elbv2-describe-target-health.json",
        "TargetHealthDescriptions",
        &a.target_health,
    )?;
    if let Some(tags) = a.tags.present() {
        let tags: Vec<Value> = tags.iter().map(|(k, v)| json!({ "Key": k, "Value": v })).collect();
        write(
            dir,
            "aws/elbv2-describe-tags.json",
            &pretty(&json!({ "TagDescriptions": [{ "ResourceArn": arn, "Tags": tags }] })),
        )?;
    }
    aws_list(
        dir,
        "elbv2-describe-load-balancers.json",
        "LoadBalancers",
        &a.load_balancers,
    )?;
    aws_list(
        dir,
        "ec2-describe-security-groups.json",
        "SecurityGroups",
        &a.security_groups,
    )?;
    aws_list(dir, "ec2-describe-network-acls.json", "NetworkAcls", &a.network_acls)?;
    aws_list(dir, "ec2-describe-route-tables.json", "RouteTables", &a.route_tables)?;
    aws_list(dir, "ec2-describe-subnets.json", "Subnets", &a.subnets)?;
    aws_list(dir, "ec2-describe-vpcs.json", "Vpcs", &a.vpcs)?;
    if let Ok(instances) = a.instances.items() {
        let reservations: Vec<Value> = instances
            .iter()
            .map(|i| json!({ "Instances": [to_value(i)] }))
            .collect();
        let mut out = json!({ "Reservations": reservations });
        if !a.instances_not_found.is_empty() {
            out["InstanceIdsNotFound"] = json!(a.instances_not_found);
        }
        write(dir, "aws/ec2-describe-instances.json", &pretty(&out))?;
    }
    aws_list(
        dir,
        "ec2-describe-network-interfaces.json",
        "NetworkInterfaces",
        &a.network_interfaces,
    )?;
    aws_list(
        dir,
        crate::dump::LB_INTERFACES_FILE,
        "NetworkInterfaces",
        &a.load_balancer_interfaces,
    )?;
    let attribute_list = |m: &std::collections::BTreeMap<String, String>| {
        let list: Vec<Value> = m.iter().map(|(k, v)| json!({ "Key": k, "Value": v })).collect();
        pretty(&json!({ "Attributes": list }))
    };
    if let Some(attrs) = a.target_group_attributes.present() {
        write(
            dir,
            "aws/elbv2-describe-target-group-attributes.json",
            &attribute_list(attrs),
        )?;
    }
    if let Some(attrs) = a.load_balancer_attributes.present() {
        write(
            dir,
            "aws/elbv2-describe-load-balancer-attributes.json",
            &attribute_list(attrs),
        )?;
    }
    for (id, entries) in &a.prefix_lists {
        let well_formed = id.starts_with("pl-") && id[3..].chars().all(|c| c.is_ascii_alphanumeric());
        if let (true, Some(entries)) = (well_formed, entries.present()) {
            let entries: Vec<Value> = entries.iter().map(|c| json!({ "Cidr": c })).collect();
            write(
                dir,
                &format!("aws/{}/{id}.json", crate::dump::PREFIX_LIST_DIR),
                &pretty(&json!({ "Entries": entries })),
            )?;
        }
    }
    match &a.cluster {
        Collected::Present(c) => write(
            dir,
            "aws/eks-describe-cluster.json",
            &pretty(&json!({ "cluster": to_value(c) })),
        )?,
        Collected::Absent => write(
            dir,
            "aws/eks-describe-cluster.json",
            &pretty(&json!({ "cluster": null })),
        )?,
        Collected::NotCollected(_) => {}
    }

    let k = &snapshot.kube;
    let none = |_: &mut Value| {};
    kube_list(dir, "targetgroupbindings", &k.target_group_bindings, |v| {
        if let Some(o) = v.as_object_mut() {
            o.entry("apiVersion").or_insert_with(|| "elbv2.k8s.aws/v1beta1".into());
            o.insert("kind".into(), "TargetGroupBinding".into());
        }
    })?;
    kube_list(dir, "services", &k.services, none)?;
    kube_list(dir, "endpoints", &k.endpoints, none)?;
    kube_list(dir, "endpointslices", &k.endpoint_slices, none)?;
    kube_list(dir, "pods", &k.pods, none)?;
    kube_list(dir, "events", &k.events, none)?;
    kube_list(dir, "ingresses", &k.ingresses, none)?;
    kube_list(dir, "ingressclasses", &k.ingress_classes, none)?;
    kube_list(dir, "ingressclassparams", &k.ingress_class_params, |v| {
        if let Some(o) = v.as_object_mut() {
            o.entry("apiVersion").or_insert_with(|| "elbv2.k8s.aws/v1beta1".into());
            o.insert("kind".into(), "IngressClassParams".into());
        }
    })?;
    kube_list(dir, "nodes", &k.nodes, none)?;
    kube_list(dir, "namespaces", &k.namespaces, none)?;
    kube_list(dir, "deployments", &k.deployments, none)?;
    kube_list(dir, "replicasets", &k.replica_sets, none)?;
    kube_list(dir, "daemonsets", &k.daemon_sets, none)?;
    kube_list(dir, "configmaps", &k.config_maps, none)?;
    kube_list(dir, "networkpolicies", &k.network_policies, none)?;
    if let Some(logs) = k.logs.present() {
        fs::create_dir_all(dir.join("k8s/logs")).map_err(|source| Error::Read {
            path: dir.join("k8s/logs"),
            source,
        })?;
        for ((ns, pod), text) in logs {
            write(dir, &format!("k8s/logs/{ns}/{pod}.log"), text)?;
        }
    }
    if let Ok(results) = snapshot.probe.items() {
        write(dir, "probe.json", &pretty(&json!({ "results": to_value(&results) })))?;
    }
    Ok(())
}
