//! Resolution: from the target group to its Kubernetes backend.
//!
//! Order of authority: a TargetGroupBinding whose `spec.targetGroupARN` is this target group
//! (the controller's own record), then the controller's tags (`service.k8s.aws/*`,
//! `ingress.k8s.aws/*`), then the legacy in-tree `kubernetes.io/service-name` tag. An Ingress
//! backend is followed to its Service. Ambiguity or absence is an error with the reason, and
//! disagreement between sources is kept as a note; nothing is guessed silently.

use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;

use crate::snapshot::Snapshot;

pub const TAG_CLUSTER: &str = "elbv2.k8s.aws/cluster";
pub const TAG_SERVICE_STACK: &str = "service.k8s.aws/stack";
pub const TAG_SERVICE_RESOURCE: &str = "service.k8s.aws/resource";
pub const TAG_INGRESS_STACK: &str = "ingress.k8s.aws/stack";
pub const TAG_INGRESS_RESOURCE: &str = "ingress.k8s.aws/resource";
pub const TAG_LEGACY_SERVICE: &str = "kubernetes.io/service-name";
const TAG_LEGACY_CLUSTER_PREFIX: &str = "kubernetes.io/cluster/";

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Backend {
    pub namespace: String,
    pub service: String,
    /// The Service port the target group serves (number or name), when known.
    #[serde(serialize_with = "serialize_port")]
    pub service_port: Option<IntOrString>,
    /// The Ingress (same namespace) whose rule created the target group, if any.
    pub ingress: Option<String>,
    pub target_group_binding: Option<String>,
    pub resolved_by: ResolvedBy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ResolvedBy {
    TargetGroupBinding,
    ServiceTags,
    IngressTags,
    LegacyServiceNameTag,
}

impl std::fmt::Display for ResolvedBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ResolvedBy::TargetGroupBinding => "its TargetGroupBinding",
            ResolvedBy::ServiceTags => "the service.k8s.aws tags",
            ResolvedBy::IngressTags => "the ingress.k8s.aws tags",
            ResolvedBy::LegacyServiceNameTag => "the legacy kubernetes.io/service-name tag",
        })
    }
}

fn serialize_port<S: serde::Serializer>(port: &Option<IntOrString>, s: S) -> Result<S::Ok, S::Error> {
    match port {
        Some(IntOrString::Int(n)) => s.serialize_i32(*n),
        Some(IntOrString::String(name)) => s.serialize_str(name),
        None => s.serialize_none(),
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Resolution {
    pub cluster: Option<String>,
    pub backend: Result<Backend, String>,
    pub notes: Vec<String>,
}

pub fn port_from_str(s: &str) -> IntOrString {
    s.parse::<i32>()
        .map_or_else(|_| IntOrString::String(s.to_string()), IntOrString::Int)
}

pub fn port_text(port: &IntOrString) -> String {
    match port {
        IntOrString::Int(n) => n.to_string(),
        IntOrString::String(s) => s.clone(),
    }
}

pub fn resolve(snapshot: &Snapshot) -> Resolution {
    let mut notes = Vec::new();
    let tags = snapshot.aws.tags.present().cloned().unwrap_or_default();
    let cluster = resolve_cluster(snapshot, &tags, &mut notes);
    let from_tags = backend_from_tags(snapshot, &tags);
    let arn = snapshot
        .target_group_arn
        .as_ref()
        .map(|a| a.to_string())
        .unwrap_or_default();

    let backend = match snapshot.kube.target_group_bindings.items() {
        Ok(bindings) => {
            let matching: Vec<_> = bindings
                .iter()
                .filter(|b| b.spec.target_group_arn.as_deref() == Some(arn.as_str()))
                .collect();
            match matching.as_slice() {
                [] => from_tags,
                [tgb] => {
                    let namespace = tgb.metadata.namespace.clone().unwrap_or_else(|| "default".into());
                    let mut backend = Backend {
                        namespace,
                        service: tgb.spec.service_ref.name.clone(),
                        service_port: tgb.spec.service_ref.port.clone(),
                        ingress: None,
                        target_group_binding: tgb.metadata.name.clone(),
                        resolved_by: ResolvedBy::TargetGroupBinding,
                    };
                    match from_tags {
                        Ok(tagged)
                            if (tagged.namespace.as_str(), tagged.service.as_str())
                                != (backend.namespace.as_str(), backend.service.as_str()) =>
                        {
                            notes.push(format!(
                                "target group tags point at {}/{} but TargetGroupBinding {} binds {}/{}; the binding wins",
                                tagged.namespace,
                                tagged.service,
                                backend.target_group_binding.as_deref().unwrap_or("?"),
                                backend.namespace,
                                backend.service
                            ));
                        }
                        Ok(tagged) => backend.ingress = tagged.ingress,
                        Err(_) => {}
                    }
                    if backend.ingress.is_none() {
                        backend.ingress = ingress_for_service(snapshot, &backend);
                    }
                    Ok(backend)
                }
                many => Err(format!(
                    "{} TargetGroupBindings claim this target group ({}); resolve the duplicate",
                    many.len(),
                    many.iter()
                        .map(|b| format!(
                            "{}/{}",
                            b.metadata.namespace.as_deref().unwrap_or("?"),
                            b.metadata.name.as_deref().unwrap_or("?")
                        ))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            }
        }
        Err(why) => from_tags.map_err(|e| format!("{e}; TargetGroupBindings not collected: {why}")),
    };
    Resolution {
        cluster,
        backend,
        notes,
    }
}

fn resolve_cluster(
    snapshot: &Snapshot,
    tags: &std::collections::BTreeMap<String, String>,
    notes: &mut Vec<String>,
) -> Option<String> {
    let tagged = tags.get(TAG_CLUSTER).cloned().or_else(|| {
        tags.keys()
            .find_map(|k| k.strip_prefix(TAG_LEGACY_CLUSTER_PREFIX))
            .map(str::to_string)
    });
    let eks = snapshot.aws.cluster.present().map(|c| c.name.clone());
    let named = snapshot.cluster_name.clone();
    for (source, other) in [("the request", &named), ("eks describe-cluster", &eks)] {
        if let (Some(t), Some(o)) = (&tagged, other) {
            if t != o {
                notes.push(format!("target group is tagged for cluster {t} but {source} names {o}"));
            }
        }
    }
    tagged.or(named).or(eks)
}

fn split_ns_name(s: &str) -> Option<(&str, &str)> {
    s.split_once('/')
        .filter(|(ns, name)| !ns.is_empty() && !name.is_empty())
}

fn backend_from_tags(
    snapshot: &Snapshot,
    tags: &std::collections::BTreeMap<String, String>,
) -> Result<Backend, String> {
    if let Some(stack) = tags.get(TAG_SERVICE_STACK) {
        let (ns, name) = split_ns_name(stack)
            .ok_or_else(|| format!("tag {TAG_SERVICE_STACK}={stack:?} is not <namespace>/<name>"))?;
        let port = tags
            .get(TAG_SERVICE_RESOURCE)
            .and_then(|r| r.strip_prefix(&format!("{ns}/{name}:")))
            .map(port_from_str);
        return Ok(Backend {
            namespace: ns.into(),
            service: name.into(),
            service_port: port,
            ingress: None,
            target_group_binding: None,
            resolved_by: ResolvedBy::ServiceTags,
        });
    }
    if let Some(resource) = tags.get(TAG_INGRESS_RESOURCE) {
        return backend_from_ingress_resource(snapshot, tags.get(TAG_INGRESS_STACK).map(String::as_str), resource);
    }
    if let Some(legacy) = tags.get(TAG_LEGACY_SERVICE) {
        let (ns, name) = split_ns_name(legacy)
            .ok_or_else(|| format!("tag {TAG_LEGACY_SERVICE}={legacy:?} is not <namespace>/<name>"))?;
        return Ok(Backend {
            namespace: ns.into(),
            service: name.into(),
            service_port: tags.get("kubernetes.io/service-port").map(|p| port_from_str(p)),
            ingress: None,
            target_group_binding: None,
            resolved_by: ResolvedBy::LegacyServiceNameTag,
        });
    }
    Err(format!(
        "no TargetGroupBinding names this target group and it carries none of the tags {TAG_SERVICE_STACK}, {TAG_INGRESS_RESOURCE}, {TAG_LEGACY_SERVICE}"
    ))
}

/// `ingress.k8s.aws/resource` is `<ns>/<ingress>-<service>:<port>`. Hyphens make that
/// ambiguous, so match it against the Ingresses' actual backends when they were collected.
fn backend_from_ingress_resource(snapshot: &Snapshot, stack: Option<&str>, resource: &str) -> Result<Backend, String> {
    let (ns, rest) = split_ns_name(resource).ok_or_else(|| {
        format!("tag {TAG_INGRESS_RESOURCE}={resource:?} is not <namespace>/<ingress>-<service>:<port>")
    })?;
    let (ing_svc, port) = rest
        .rsplit_once(':')
        .ok_or_else(|| format!("tag {TAG_INGRESS_RESOURCE}={resource:?} has no :<port>"))?;
    let backend = |ingress: &str, service: &str| Backend {
        namespace: ns.into(),
        service: service.into(),
        service_port: Some(port_from_str(port)),
        ingress: Some(ingress.into()),
        target_group_binding: None,
        resolved_by: ResolvedBy::IngressTags,
    };
    if let Ok(ingresses) = snapshot.kube.ingresses.items() {
        let mut found: Vec<(String, String)> = Vec::new();
        for ing in ingresses.iter().filter(|i| i.metadata.namespace.as_deref() == Some(ns)) {
            let ing_name = ing.metadata.name.clone().unwrap_or_default();
            for (svc, svc_port) in ingress_backends(ing) {
                if format!("{ing_name}-{svc}") == ing_svc && port_text(&svc_port) == port {
                    found.push((ing_name.clone(), svc));
                }
            }
        }
        found.sort();
        found.dedup();
        match found.as_slice() {
            [(ing, svc)] => return Ok(backend(ing, svc)),
            [] => {}
            many => {
                return Err(format!(
                    "tag {TAG_INGRESS_RESOURCE}={resource:?} matches several Ingress backends: {}",
                    many.iter()
                        .map(|(i, s)| format!("{i} -> {s}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            }
        }
    }
    // Fall back on the stack tag: for an implicit group it is `<ns>/<ingress>`.
    if let Some((stack_ns, ingress)) = stack.and_then(split_ns_name) {
        if stack_ns == ns {
            if let Some(service) = ing_svc.strip_prefix(&format!("{ingress}-")) {
                return Ok(backend(ingress, service));
            }
        }
    }
    Err(format!(
        "tag {TAG_INGRESS_RESOURCE}={resource:?} matches no Ingress backend in namespace {ns}"
    ))
}

/// Every (service, port) an Ingress routes to, its default backend included.
pub fn ingress_backends(ing: &Ingress) -> Vec<(String, IntOrString)> {
    let mut out = Vec::new();
    let Some(spec) = &ing.spec else { return out };
    let mut push = |b: &k8s_openapi::api::networking::v1::IngressBackend| {
        if let Some(svc) = &b.service {
            let port = svc.port.as_ref().and_then(|p| {
                p.number
                    .map(IntOrString::Int)
                    .or_else(|| p.name.clone().map(IntOrString::String))
            });
            if let Some(port) = port {
                out.push((svc.name.clone(), port));
            }
        }
    };
    if let Some(b) = &spec.default_backend {
        push(b);
    }
    for rule in spec.rules.iter().flatten() {
        for path in rule.http.iter().flat_map(|h| &h.paths) {
            push(&path.backend);
        }
    }
    out
}

/// The one Ingress of the namespace that routes to the backend's Service and port.
fn ingress_for_service(snapshot: &Snapshot, backend: &Backend) -> Option<String> {
    let ingresses = snapshot.kube.ingresses.items().ok()?;
    let mut names: Vec<String> = ingresses
        .iter()
        .filter(|i| i.metadata.namespace.as_deref() == Some(backend.namespace.as_str()))
        .filter(|i| {
            ingress_backends(i)
                .iter()
                .any(|(svc, port)| svc == &backend.service && backend.service_port.as_ref().is_none_or(|p| p == port))
        })
        .filter_map(|i| i.metadata.name.clone())
        .collect();
    names.dedup();
    (names.len() == 1).then(|| names.remove(0))
}
