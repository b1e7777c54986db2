//! Kubernetes side of gathering, with kube + k8s-openapi. Scoped to what the checks need:
//! the backend's namespace (never a cluster-wide pod list), the controller's and
//! kube-proxy's pods by label, the nodes. A 403 becomes "not collected: forbidden: <verb>
//! <resource>", a 404 "absent"; neither aborts the run.

use std::collections::{BTreeMap, BTreeSet};

use futures::future::join_all;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ConfigMap, Endpoints, Event, Namespace, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass, NetworkPolicy};
use kube::api::{Api, DynamicObject, ListParams, LogParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::Client;
use serde::de::DeserializeOwned;

use super::{bounded, ApiCalls, Limits};
use crate::checks::{labels_match, node_instance_id};
// Read by name only: infra/k8s/rbac.yaml grants just these two ConfigMaps.
use crate::dataplane::{CILIUM_CONFIG, VPC_CNI_CONFIG};
use crate::snapshot::{Collected, IngressClassParams, KubeState, Scope, Snapshot, TargetGroupBinding};

const CONTROLLER_LABEL: (&str, &str) = ("app.kubernetes.io/name", "aws-load-balancer-controller");
const KUBE_PROXY_LABEL: (&str, &str) = ("k8s-app", "kube-proxy");

fn selector((k, v): (&str, &str)) -> String {
    format!("{k}={v}")
}
const LOG_TAIL_LINES: i64 = 200;

/// One API call's outcome: the value, absent (404), or why it was not collected.
fn outcome<T>(what: &str, result: Result<T, kube::Error>) -> Collected<T> {
    match result {
        Ok(v) => Collected::Present(v),
        Err(kube::Error::Api(status)) if status.code == 404 => Collected::Absent,
        Err(kube::Error::Api(status)) if status.code == 403 => Collected::NotCollected(format!("forbidden: {what}")),
        Err(kube::Error::Api(status)) if status.code == 401 => {
            Collected::NotCollected(format!("unauthorized: {what} (the cluster rejected the credentials)"))
        }
        Err(e) => Collected::NotCollected(format!("{what}: {e}")),
    }
}

async fn call<T, F>(calls: &ApiCalls, limits: &Limits, what: String, fut: F) -> Collected<T>
where
    F: std::future::Future<Output = Result<T, kube::Error>>,
{
    calls.add("kubernetes");
    match bounded(limits, &what, async { Ok(fut.await) }).await {
        Ok(result) => outcome(&what, result),
        Err(timeout) => Collected::NotCollected(timeout),
    }
}

async fn list<K>(api: Api<K>, lp: ListParams, calls: &ApiCalls, limits: &Limits, what: String) -> Collected<Vec<K>>
where
    K: Clone + DeserializeOwned + std::fmt::Debug,
{
    match call(calls, limits, what, api.list(&lp)).await {
        Collected::Present(list) => Collected::Present(list.items),
        Collected::Absent => Collected::Present(Vec::new()),
        Collected::NotCollected(why) => Collected::NotCollected(why),
    }
}

/// A custom resource list: its objects that parse (the rest are noted), none when the CRD is
/// not installed (404: the API server does not know the resource).
struct CustomList<T> {
    kind: &'static str,
    objects: Collected<Vec<DynamicObject>>,
    _type: std::marker::PhantomData<T>,
}

impl<T: DeserializeOwned> CustomList<T> {
    fn into_collected(self, notes: &mut Vec<String>) -> Collected<Vec<T>> {
        match self.objects {
            Collected::Present(objects) => {
                let mut out = Vec::new();
                for o in objects {
                    match serde_json::to_value(&o).and_then(serde_json::from_value::<T>) {
                        Ok(t) => out.push(t),
                        Err(e) => notes.push(format!(
                            "{} {} skipped: {e}",
                            self.kind,
                            o.metadata.name.as_deref().unwrap_or("?")
                        )),
                    }
                }
                Collected::Present(out)
            }
            Collected::Absent => Collected::Present(Vec::new()),
            Collected::NotCollected(why) => Collected::NotCollected(why),
        }
    }
}

async fn list_custom<T>(
    client: &Client,
    (group, version, kind, plural): (&str, &str, &'static str, &str),
    calls: &ApiCalls,
    limits: &Limits,
) -> CustomList<T> {
    let resource = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural);
    let objects = list(
        Api::<DynamicObject>::all_with(client.clone(), &resource),
        ListParams::default(),
        calls,
        limits,
        format!("list {plural}.{group}"),
    )
    .await;
    CustomList {
        kind,
        objects,
        _type: std::marker::PhantomData,
    }
}

/// Several partial lists of one kind: all must succeed, or the kind is not collected
/// (a half list would make checks see "no such pod" where there is one).
fn merge<T>(parts: Vec<Collected<Vec<T>>>) -> Collected<Vec<T>> {
    let mut out = Vec::new();
    for part in parts {
        match part {
            Collected::Present(items) => out.extend(items),
            Collected::Absent => {}
            Collected::NotCollected(why) => return Collected::NotCollected(why),
        }
    }
    Collected::Present(out)
}

fn one<T>(c: Collected<T>) -> Collected<Vec<T>> {
    match c {
        Collected::Present(v) => Collected::Present(vec![v]),
        Collected::Absent => Collected::Present(Vec::new()),
        Collected::NotCollected(why) => Collected::NotCollected(why),
    }
}

pub async fn gather(
    client: &Client,
    aws_side: &Snapshot,
    calls: &ApiCalls,
    limits: &Limits,
) -> (KubeState, Vec<String>) {
    let mut notes = Vec::new();
    // Phase 1: what resolution and the cluster-wide checks need. TargetGroupBindings and
    // IngressClassParams exist in two API groups: the controller's and EKS Auto Mode's.
    let (
        (tgbs, tgbs_auto, params, params_auto, classes, nodes, deployments, daemon_sets, proxies),
        (calico_daemon_sets, vpc_cni_config, cilium_config),
    ) = tokio::join!(
        async {
            tokio::join!(
                list_custom::<TargetGroupBinding>(
                    client,
                    ("elbv2.k8s.aws", "v1beta1", "TargetGroupBinding", "targetgroupbindings"),
                    calls,
                    limits
                ),
                list_custom::<TargetGroupBinding>(
                    client,
                    ("eks.amazonaws.com", "v1", "TargetGroupBinding", "targetgroupbindings"),
                    calls,
                    limits
                ),
                list_custom::<IngressClassParams>(
                    client,
                    ("elbv2.k8s.aws", "v1beta1", "IngressClassParams", "ingressclassparams"),
                    calls,
                    limits
                ),
                list_custom::<IngressClassParams>(
                    client,
                    ("eks.amazonaws.com", "v1", "IngressClassParams", "ingressclassparams"),
                    calls,
                    limits
                ),
                list(
                    Api::<IngressClass>::all(client.clone()),
                    ListParams::default(),
                    calls,
                    limits,
                    "list ingressclasses".into()
                ),
                list(
                    Api::<Node>::all(client.clone()),
                    ListParams::default(),
                    calls,
                    limits,
                    "list nodes".into()
                ),
                list(
                    Api::<Deployment>::all(client.clone()),
                    ListParams::default().labels(&selector(CONTROLLER_LABEL)),
                    calls,
                    limits,
                    "list deployments".into()
                ),
                // Every DaemonSet of kube-system: kube-proxy, aws-node (and its network policy
                // agent), or a CNI replacing them (Cilium).
                list(
                    Api::<DaemonSet>::namespaced(client.clone(), "kube-system"),
                    ListParams::default(),
                    calls,
                    limits,
                    "list daemonsets in kube-system".into()
                ),
                list(
                    Api::<Pod>::namespaced(client.clone(), "kube-system"),
                    ListParams::default().labels(&selector(KUBE_PROXY_LABEL)),
                    calls,
                    limits,
                    "list pods in kube-system".into()
                ),
            )
        },
        async {
            let config_maps = Api::<ConfigMap>::namespaced(client.clone(), "kube-system");
            tokio::join!(
                // Calico installed by the Tigera operator.
                list(
                    Api::<DaemonSet>::namespaced(client.clone(), "calico-system"),
                    ListParams::default(),
                    calls,
                    limits,
                    "list daemonsets in calico-system".into()
                ),
                // The VPC CNI's and Cilium's settings (network policy, kube-proxy replacement).
                call(
                    calls,
                    limits,
                    "get configmaps in kube-system".into(),
                    config_maps.get(VPC_CNI_CONFIG)
                ),
                call(
                    calls,
                    limits,
                    "get configmaps in kube-system".into(),
                    config_maps.get(CILIUM_CONFIG)
                ),
            )
        }
    );
    let daemon_sets = merge(vec![daemon_sets, calico_daemon_sets]);
    let config_maps = merge(vec![one(vpc_cni_config), one(cilium_config)]);
    let mut skipped = Vec::new();
    let tgbs = merge(vec![
        tgbs.into_collected(&mut skipped),
        tgbs_auto.into_collected(&mut skipped),
    ]);
    let params = merge(vec![
        params.into_collected(&mut skipped),
        params_auto.into_collected(&mut skipped),
    ]);
    notes.extend(skipped);

    let mut partial = aws_side.clone();
    partial.kube.target_group_bindings = tgbs.clone();
    let resolution = crate::resolve::resolve(&partial);

    let mut state = KubeState {
        target_group_bindings: tgbs,
        ingress_class_params: params,
        ingress_classes: classes,
        nodes,
        deployments,
        daemon_sets,
        config_maps,
        ..KubeState::all_not_collected("not gathered")
    };
    // What each list covered, so that a check never reads "absent" outside it.
    state.scopes.insert(
        "Deployment".into(),
        Scope(vec![crate::snapshot::ScopeEntry {
            namespace: None,
            labels: [CONTROLLER_LABEL]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }]),
    );
    state.scopes.insert(
        "DaemonSet".into(),
        Scope(vec![
            Scope::namespace("kube-system", &[]),
            Scope::namespace("calico-system", &[]),
        ]),
    );
    state
        .scopes
        .insert("ConfigMap".into(), Scope(vec![Scope::namespace("kube-system", &[])]));

    let backend = match &resolution.backend {
        Ok(b) => b.clone(),
        Err(why) => {
            let reason = format!("the Kubernetes backend is not resolved: {why}");
            state.services = Collected::not_collected(reason.clone());
            state.endpoints = Collected::not_collected(reason.clone());
            state.endpoint_slices = Collected::not_collected(reason.clone());
            state.ingresses = Collected::not_collected(reason.clone());
            state.events = Collected::not_collected(reason.clone());
            state.namespaces = Collected::not_collected(reason.clone());
            state.network_policies = Collected::not_collected(reason.clone());
            state.pods = Collected::not_collected(reason.clone());
            state.logs = Collected::not_collected(reason);
            return (state, notes);
        }
    };
    let ns = backend.namespace.as_str();

    // Phase 2: the backend's namespace, and the controller's pods.
    let controller_selectors: Vec<(String, BTreeMap<String, String>)> = state
        .deployments
        .present()
        .into_iter()
        .flatten()
        .filter_map(|d| {
            let labels = d.spec.as_ref()?.selector.match_labels.clone()?;
            Some((d.metadata.namespace.clone()?, labels))
        })
        .collect();
    let controller_pods = join_all(controller_selectors.iter().map(|(cns, labels)| {
        let selector = labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        list(
            Api::<Pod>::namespaced(client.clone(), cns),
            ListParams::default().labels(&selector),
            calls,
            limits,
            format!("list pods in {cns}"),
        )
    }));
    let (services_api, endpoints_api) = (
        Api::<Service>::namespaced(client.clone(), ns),
        Api::<Endpoints>::namespaced(client.clone(), ns),
    );
    let namespaces_api = Api::<Namespace>::all(client.clone());
    let (service, endpoints, slices, pods, ingresses, events, namespace, controller_pods, replica_sets, policies) = tokio::join!(
        call(
            calls,
            limits,
            format!("get services in {ns}"),
            services_api.get(&backend.service)
        ),
        call(
            calls,
            limits,
            format!("get endpoints in {ns}"),
            endpoints_api.get(&backend.service)
        ),
        list(
            Api::<EndpointSlice>::namespaced(client.clone(), ns),
            ListParams::default().labels(&format!("kubernetes.io/service-name={}", backend.service)),
            calls,
            limits,
            format!("list endpointslices.discovery.k8s.io in {ns}")
        ),
        // The namespace's pods (not only the selected ones: near-miss hints need the rest).
        list(
            Api::<Pod>::namespaced(client.clone(), ns),
            ListParams::default(),
            calls,
            limits,
            format!("list pods in {ns}")
        ),
        list(
            Api::<Ingress>::namespaced(client.clone(), ns),
            ListParams::default(),
            calls,
            limits,
            format!("list ingresses.networking.k8s.io in {ns}")
        ),
        list(
            Api::<Event>::namespaced(client.clone(), ns),
            ListParams::default().fields("type=Warning"),
            calls,
            limits,
            format!("list events in {ns}")
        ),
        call(calls, limits, "get namespaces".to_string(), namespaces_api.get(ns)),
        controller_pods,
        // A workload that cannot create its pods shows on its ReplicaSet.
        list(
            Api::<ReplicaSet>::namespaced(client.clone(), ns),
            ListParams::default(),
            calls,
            limits,
            format!("list replicasets.apps in {ns}")
        ),
        list(
            Api::<NetworkPolicy>::namespaced(client.clone(), ns),
            ListParams::default(),
            calls,
            limits,
            format!("list networkpolicies.networking.k8s.io in {ns}")
        ),
    );
    state.replica_sets = replica_sets;
    state.network_policies = policies;
    for kind in [
        "Service",
        "Endpoints",
        "EndpointSlice",
        "Ingress",
        "Event",
        "ReplicaSet",
        "NetworkPolicy",
    ] {
        state.scopes.insert(kind.into(), Scope(vec![Scope::namespace(ns, &[])]));
    }
    let mut pod_scope = vec![
        Scope::namespace(ns, &[]),
        Scope::namespace("kube-system", &[KUBE_PROXY_LABEL]),
    ];
    for (cns, labels) in &controller_selectors {
        pod_scope.push(crate::snapshot::ScopeEntry {
            namespace: Some(cns.clone()),
            labels: labels.clone(),
        });
    }
    state.scopes.insert("Pod".into(), Scope(pod_scope));
    state.services = one(service);
    state.endpoints = one(endpoints);
    state.endpoint_slices = slices;
    state.ingresses = ingresses;
    state.events = events;
    state.namespaces = one(namespace);
    let controller_pods = merge(controller_pods);
    let mut pod_parts = vec![pods, proxies];
    pod_parts.push(controller_pods.clone());
    // The backend may live in kube-system too: keep each pod once.
    state.pods = match merge(pod_parts) {
        Collected::Present(mut pods) => {
            let mut seen = BTreeSet::new();
            pods.retain(|p| seen.insert((p.metadata.namespace.clone(), p.metadata.name.clone())));
            Collected::Present(pods)
        }
        other => other,
    };

    // Phase 3: log tails of the controller's pods and of kube-proxy on the target nodes.
    let target_nodes = target_node_names(aws_side, &state);
    let mut log_pods: Vec<(String, String)> = controller_pods
        .present()
        .into_iter()
        .flatten()
        .filter_map(|p| Some((p.metadata.namespace.clone()?, p.metadata.name.clone()?)))
        .collect();
    if let Some(all) = state.pods.present() {
        let kube_proxy: BTreeMap<String, String> = [("k8s-app".to_string(), "kube-proxy".to_string())].into();
        log_pods.extend(
            all.iter()
                .filter(|p| labels_match(&kube_proxy, p.metadata.labels.as_ref()))
                .filter(|p| {
                    let node = p.spec.as_ref().and_then(|s| s.node_name.clone());
                    target_nodes.is_empty() || node.is_some_and(|n| target_nodes.contains(&n))
                })
                .filter_map(|p| Some((p.metadata.namespace.clone()?, p.metadata.name.clone()?))),
        );
    }
    let logs = join_all(log_pods.iter().map(|(pns, pod)| {
        let lp = LogParams {
            tail_lines: Some(LOG_TAIL_LINES),
            ..LogParams::default()
        };
        let api = Api::<Pod>::namespaced(client.clone(), pns);
        async move {
            let got = call(calls, limits, format!("get pods/log in {pns}"), async {
                api.logs(pod, &lp).await
            })
            .await;
            ((pns.clone(), pod.clone()), got)
        }
    }))
    .await;
    let mut map = BTreeMap::new();
    let mut failures = Vec::new();
    for (key, got) in logs {
        match got {
            Collected::Present(text) => {
                map.insert(key, text);
            }
            Collected::Absent => {}
            Collected::NotCollected(why) => failures.push(why),
        }
    }
    state.logs = if map.is_empty() && !failures.is_empty() {
        Collected::NotCollected(failures.remove(0))
    } else {
        notes.extend(
            failures
                .into_iter()
                .map(|f| format!("a container log was not collected: {f}")),
        );
        Collected::Present(map)
    };
    (state, notes)
}

/// Names of the nodes behind the targets (instance targets via providerID).
fn target_node_names(aws_side: &Snapshot, state: &KubeState) -> BTreeSet<String> {
    let ids: BTreeSet<&str> = aws_side
        .aws
        .target_health
        .present()
        .into_iter()
        .flatten()
        .map(|t| t.target.id.as_str())
        .collect();
    state
        .nodes
        .present()
        .into_iter()
        .flatten()
        .filter(|n| node_instance_id(n).is_some_and(|id| ids.contains(id)))
        .filter_map(|n| n.metadata.name.clone())
        .collect()
}
