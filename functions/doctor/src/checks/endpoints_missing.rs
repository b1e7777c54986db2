//! `endpoints-missing`: the Service has no ready endpoint address for the target group's port.
//!
//! # What it checks
//! The EndpointSlices labelled `kubernetes.io/service-name=<service>` (or, when no slices
//! were collected, the legacy Endpoints object): how many addresses are ready for the
//! Service port the target group serves. Also fires when the Service itself is gone. Not-ready
//! addresses of pods that wait only on the load balancer's readiness gate
//! (`target-health.elbv2.k8s.aws/...`, IP targets) are registered by the controller and turn
//! ready when the load balancer finds them healthy: a consequence, not a cause, so the
//! check stays quiet. The finding concerns every target.
//!
//! # Why it matters
//! The load balancer reaches pods only through these addresses: the AWS Load Balancer
//! Controller registers them as IP targets, and kube-proxy forwards NodePort traffic to
//! them. No ready address means every health check fails (`Endpoints: <none>` in
//! `kubectl describe service`).
//!
//! # Example
//! Bad: `Endpoints: <none>`, or only `notReadyAddresses`. Good: `Endpoints: 192.168.72.31:80,192.168.101.44:80`.
//!
//! # Fix safety
//! Manual. Missing endpoints are usually a symptom (selector, pods, ports), and ranking
//! marks them as explained by the deeper finding; alone, the fix is in the Service or its
//! hand-managed Endpoints.
//!
//! # References
//! - <https://repost.aws/knowledge-center/eks-resolve-failed-health-check-alb-nlb> (missing endpoints)
//! - <https://kubernetes.io/docs/concepts/services-networking/endpoint-slices/>

use serde_json::json;

use super::{shell_quote, Check, CheckContext, CheckMeta, FixSafety, Inconclusive};
use crate::finding::{k8s_resource, Finding, Severity};

pub struct EndpointsMissing;

static META: CheckMeta = CheckMeta {
    id: "endpoints-missing",
    title: "Service has no ready endpoints for the port",
    runbook_step: "missing endpoints",
    fix: FixSafety::Manual,
};

/// Ready and not-ready addresses for one port name.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Addresses {
    pub ready: Vec<String>,
    pub not_ready: Vec<String>,
    pub source: &'static str,
}

/// Addresses of the backend Service for the port named `port_name` ("" when unnamed).
pub(crate) fn service_addresses(
    cx: &CheckContext<'_>,
    namespace: &str,
    service: &str,
    port_name: &str,
) -> Result<Addresses, Inconclusive> {
    let kube = &cx.snapshot.kube;
    if let Ok(slices) = kube.endpoint_slices.items() {
        let mine: Vec<_> = slices
            .iter()
            .filter(|s| s.metadata.namespace.as_deref() == Some(namespace))
            .filter(|s| {
                s.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get("kubernetes.io/service-name"))
                    .map(String::as_str)
                    == Some(service)
            })
            .collect();
        if !mine.is_empty() {
            let mut out = Addresses {
                source: "EndpointSlice",
                ..Default::default()
            };
            for slice in mine {
                let has_port = slice
                    .ports
                    .iter()
                    .flatten()
                    .any(|p| p.name.as_deref().unwrap_or("") == port_name);
                if !has_port {
                    continue;
                }
                for ep in &slice.endpoints {
                    let ready = ep.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true);
                    let bucket = if ready { &mut out.ready } else { &mut out.not_ready };
                    bucket.extend(ep.addresses.iter().cloned());
                }
            }
            return Ok(out);
        }
    }
    match kube.endpoints.items() {
        Ok(all) => {
            let mut out = Addresses {
                source: "Endpoints",
                ..Default::default()
            };
            let object = all.iter().find(|e| {
                e.metadata.namespace.as_deref() == Some(namespace) && e.metadata.name.as_deref() == Some(service)
            });
            for subset in object.iter().flat_map(|e| e.subsets.iter().flatten()) {
                if !subset
                    .ports
                    .iter()
                    .flatten()
                    .any(|p| p.name.as_deref().unwrap_or("") == port_name)
                {
                    continue;
                }
                out.ready
                    .extend(subset.addresses.iter().flatten().map(|a| a.ip.clone()));
                out.not_ready
                    .extend(subset.not_ready_addresses.iter().flatten().map(|a| a.ip.clone()));
            }
            Ok(out)
        }
        Err(why) => Err(Inconclusive(format!(
            "neither EndpointSlices nor Endpoints of the Service were collected: {why}"
        ))),
    }
}

impl Check for EndpointsMissing {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    fn run(&self, cx: &CheckContext<'_>) -> Result<Vec<Finding>, Inconclusive> {
        let backend = cx.backend()?;
        let ns = &backend.namespace;
        let resource = k8s_resource(ns, "Service", &backend.service);
        if cx.service_opt()?.is_none() {
            let via = match &backend.target_group_binding {
                Some(tgb) => format!("TargetGroupBinding {ns}/{tgb}"),
                None => "the target group's tags".to_string(),
            };
            return Ok(vec![Finding::new(
                META.id,
                Severity::Critical,
                resource,
                format!(
                    "Service {ns}/{} named by {via} does not exist, so it has no endpoints",
                    backend.service
                ),
            )
            .with_targets(cx.all_target_ids())
            .with_evidence(json!({ "service": backend.service, "namespace": ns, "referencedBy": via }))
            .with_fix(
                format!("kubectl -n {ns} get service {}", shell_quote(&backend.service)),
                None,
            )]);
        }
        let port = cx.service_port()?;
        let port_name = port.name.as_deref().unwrap_or("");
        let addrs = service_addresses(cx, ns, &backend.service, port_name)?;
        if !addrs.ready.is_empty() {
            return Ok(vec![]);
        }
        // IP targets behind the controller's readiness gate: the pods are registered and
        // become ready endpoints only once the load balancer finds them healthy. Their
        // endpoints being not ready is the health check's verdict, not a reason for it.
        let gated: Vec<&str> = cx
            .selected_pods()
            .unwrap_or_default()
            .into_iter()
            .filter(|p| crate::kubernetes::waits_only_on_lb_gate(p))
            .flat_map(super::pod_ips)
            .collect();
        if addrs.not_ready.iter().any(|a| gated.contains(&a.as_str())) {
            return Ok(vec![]);
        }
        let port_label = if port_name.is_empty() {
            port.port.to_string()
        } else {
            format!("{} ({port_name})", port.port)
        };
        let mut message = if addrs.not_ready.is_empty() {
            format!(
                "Service {ns}/{} has no endpoints for port {port_label} (Endpoints: <none>)",
                backend.service
            )
        } else {
            format!(
                "Service {ns}/{} has no ready endpoint for port {port_label}; {} address(es) are not ready",
                backend.service,
                addrs.not_ready.len()
            )
        };
        if cx.selector()?.is_none() {
            message.push_str(
                "; the Service has no selector, so Kubernetes never fills its endpoints: they must be managed by hand",
            );
        }
        Ok(vec![Finding::new(META.id, Severity::Critical, resource, message)
            .with_targets(cx.all_target_ids())
            .with_evidence(json!({
                "source": addrs.source,
                "port": port.port,
                "portName": port.name,
                "readyAddresses": addrs.ready,
                "notReadyAddresses": addrs.not_ready,
                "selector": cx.selector()?,
            }))
            .with_fix(
                format!(
                    "kubectl -n {ns} get endpointslices -l {} -o wide",
                    shell_quote(&format!("kubernetes.io/service-name={}", backend.service))
                ),
                None,
            )])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixtures::{fires, quiet, scenario, services_mut};

    #[test]
    fn fires_on_a_selectorless_service_without_endpoints() {
        let findings = fires(&EndpointsMissing, &scenario("endpoints-missing"));
        assert_eq!(findings[0].severity, Severity::Critical);
        assert!(findings[0].message.contains("no selector"), "{}", findings[0].message);
    }

    #[test]
    fn fires_when_addresses_are_only_not_ready() {
        let findings = fires(&EndpointsMissing, &scenario("pod-not-ready"));
        assert!(findings[0].message.contains("not ready"), "{}", findings[0].message);
        assert_eq!(findings[0].evidence["notReadyAddresses"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn fires_when_the_service_is_gone() {
        let mut snap = scenario("healthy");
        services_mut(&mut snap).clear();
        let findings = fires(&EndpointsMissing, &snap);
        assert!(
            findings[0].message.contains("does not exist"),
            "{}",
            findings[0].message
        );
    }

    #[test]
    fn quiet_with_ready_endpoints() {
        quiet(&EndpointsMissing, &scenario("healthy"));
        quiet(&EndpointsMissing, &scenario("healthy-multiport-named-rollout"));
    }

    #[test]
    fn pods_waiting_only_on_the_readiness_gate_are_no_missing_endpoint() {
        // Every pod waits on its gate: the endpoints are not ready because the load balancer
        // has not passed them yet, the consequence of its health check, not a cause.
        let mut snap = scenario("healthy-rollout-ip-readiness-gates");
        if let crate::snapshot::Collected::Present(slices) = &mut snap.kube.endpoint_slices {
            for ep in slices.iter_mut().flat_map(|s| s.endpoints.iter_mut()) {
                if let Some(c) = ep.conditions.as_mut() {
                    c.ready = Some(false);
                }
            }
        }
        if let crate::snapshot::Collected::Present(pods) = &mut snap.kube.pods {
            for p in pods.iter_mut() {
                for c in p.status.as_mut().unwrap().conditions.iter_mut().flatten() {
                    if c.type_.starts_with("target-health.elbv2.k8s.aws/") {
                        c.status = "False".into();
                    }
                    if c.type_ == "Ready" {
                        c.status = "False".into();
                    }
                }
            }
        }
        quiet(&EndpointsMissing, &snap);
    }
}
