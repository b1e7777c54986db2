//! `service-annotation-invalid`: the NLB annotations of a `LoadBalancer` Service are invalid
//! or inconsistent (load-balancer type, target type, health-check protocol / port / path).
//!
//! # What it checks
//! For target groups the controller (or EKS Auto Mode) builds from a `LoadBalancer` Service
//! (NLB), decided as `pkg/service/model_build_target_group.go` does:
//! - the target type: `aws-load-balancer-nlb-target-type` (or type `nlb-ip`), else the
//!   controller's `--default-target-type`, else the target group's own type; `instance` needs
//!   a NodePort; it must match the existing target group;
//! - the effective health check: `aws-load-balancer-healthcheck-protocol` (compared
//!   upper-cased) is TCP, HTTP or HTTPS, defaulting to TCP on the traffic port, except for
//!   instance targets with `externalTrafficPolicy: Local`, where it defaults to HTTP `/healthz`
//!   on `healthCheckNodePort`; a path with an effective TCP check is ignored (warning);
//!   success codes are within 200-599;
//! - `healthcheck-port`: for instance targets a NodePort or `healthCheckNodePort`; for IP
//!   targets container ports are informational, so an undeclared port is a warning while
//!   targets fail, critical only when the replay was refused there; a name must be a Service
//!   port.
//!
//! A Service the in-tree provider handles (`aws-load-balancer-type: nlb`, no controller
//! loadBalancerClass) is not the controller's and is left alone here. Targets concerned: all.
//!
//! # Why it matters
//! These annotations become the NLB target group's health check. A health-check port that
//! nothing listens on marks every target unhealthy although the pods serve traffic fine.
//!
//! # Example
//! Bad: `aws-load-balancer-healthcheck-port: "9090"` with pods listening only on 80 (IP targets).
//! Good: `aws-load-balancer-healthcheck-port: traffic-port`.
//!
//! # Fix safety
//! Manual: the report gives the `kubectl annotate service` that corrects the value.
//!
//! # References
//! - <https://repost.aws/knowledge-center/eks-resolve-failed-health-check-alb-nlb> (Service annotations, NLB)
//! - <https://kubernetes-sigs.github.io/aws-load-balancer-controller/latest/guide/service/annotations/>
//! - <https://github.com/kubernetes-sigs/aws-load-balancer-controller/blob/main/pkg/service/model_build_target_group.go>

use std::collections::BTreeMap;

use serde_json::json;

use super::ingress_annotation_invalid::undeclared_ip_port;
use super::{shell_quote, Check, CheckContext, CheckMeta, FixSafety, Inconclusive};
use crate::controller;
use crate::finding::{k8s_resource, Finding, Severity};

pub struct ServiceAnnotationInvalid;

static META: CheckMeta = CheckMeta {
    id: "service-annotation-invalid",
    title: "Service NLB annotations invalid",
    runbook_step: "service annotations (NLB)",
    fix: FixSafety::Manual,
};

const PREFIX: &str = "service.beta.kubernetes.io/aws-load-balancer-";

fn valid_nlb_codes(codes: &str) -> bool {
    let in_range = |s: &str| s.trim().parse::<u16>().is_ok_and(|c| (200..=599).contains(&c));
    !codes.trim().is_empty()
        && codes.split(',').all(|part| match part.split_once('-') {
            Some((a, b)) => in_range(a) && in_range(b),
            None => in_range(part),
        })
}

impl Check for ServiceAnnotationInvalid {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    fn run(&self, cx: &CheckContext<'_>) -> Result<Vec<Finding>, Inconclusive> {
        let backend = cx.backend()?;
        if backend.ingress.is_some() {
            return Ok(vec![]); // an Ingress (ALB) target group: ingress-annotation-invalid applies
        }
        let service = cx.service()?;
        match controller::service_owner(service) {
            Some("aws-load-balancer-controller" | "eks-auto-mode") => {}
            // A TargetGroupBinding to a plain Service, another controller, or the in-tree provider.
            _ => return Ok(vec![]),
        }
        let spec = service.spec.as_ref();
        let ns = backend.namespace.as_str();
        let svc = backend.service.as_str();
        let annotations: BTreeMap<String, String> = service.metadata.annotations.clone().unwrap_or_default();
        let get = |name: &str| annotations.get(&format!("{PREFIX}{name}")).map(String::as_str);
        let annotate = |name: &str, value: &str| {
            format!(
                "kubectl -n {ns} annotate service {} {} --overwrite",
                shell_quote(svc),
                shell_quote(&format!("{PREFIX}{name}={value}"))
            )
        };
        let mut problems: Vec<(Severity, &str, String, String)> = Vec::new();

        let tg_type = cx.target_type().ok();
        let configured = get("nlb-target-type")
            .map(str::to_string)
            .or_else(|| (get("type") == Some("nlb-ip")).then(|| "ip".to_string()))
            .or_else(|| cx.controller_config().map(|c| c.default_target_type));
        let target_type = configured
            .clone()
            .or(tg_type.map(str::to_string))
            .unwrap_or_else(|| "instance".into());
        if !matches!(target_type.as_str(), "ip" | "instance") {
            problems.push((
                Severity::Critical,
                "nlb-target-type",
                format!("aws-load-balancer-nlb-target-type {target_type:?} is not ip or instance"),
                annotate("nlb-target-type", "ip"),
            ));
        } else if let (Some(configured), Some(tg_type)) = (&configured, tg_type) {
            if tg_type != configured {
                problems.push((
                    Severity::Warning,
                    "nlb-target-type",
                    format!("the Service's target type is {configured} but the target group's type is {tg_type}: the controller cannot change it in place"),
                    format!("kubectl -n {ns} describe service {}", shell_quote(svc)),
                ));
            }
        }
        if target_type == "instance" && spec.and_then(|s| s.type_.as_deref()) == Some("ClusterIP") {
            problems.push((
                Severity::Critical,
                "nlb-target-type",
                format!("target type instance needs a NodePort but {ns}/{svc} is ClusterIP"),
                annotate("nlb-target-type", "ip"),
            ));
        }
        // The effective health check, with the controller's defaults.
        let local_instance =
            target_type == "instance" && spec.and_then(|s| s.external_traffic_policy.as_deref()) == Some("Local");
        let protocol = get("healthcheck-protocol")
            .map(str::to_ascii_uppercase)
            .unwrap_or_else(|| if local_instance { "HTTP".into() } else { "TCP".into() });
        if !matches!(protocol.as_str(), "TCP" | "HTTP" | "HTTPS") {
            problems.push((
                Severity::Critical,
                "healthcheck-protocol",
                format!("aws-load-balancer-healthcheck-protocol {protocol:?} is not tcp, http or https"),
                annotate("healthcheck-protocol", "tcp"),
            ));
        }
        if protocol == "TCP" && get("healthcheck-path").is_some() {
            problems.push((
                Severity::Warning,
                "healthcheck-path",
                "aws-load-balancer-healthcheck-path is set but the health check is TCP, so the path is ignored".into(),
                annotate("healthcheck-protocol", "http"),
            ));
        }
        if let Some(codes) = get("healthcheck-success-codes") {
            if !valid_nlb_codes(codes) {
                problems.push((
                    Severity::Critical,
                    "healthcheck-success-codes",
                    format!(
                        "aws-load-balancer-healthcheck-success-codes {codes:?} is not a list or range within 200-599"
                    ),
                    annotate("healthcheck-success-codes", "200-399"),
                ));
            }
        }
        if let Some(port) = get("healthcheck-port").filter(|p| *p != "traffic-port") {
            let service_ports = spec.and_then(|s| s.ports.as_deref()).unwrap_or_default();
            match port.parse::<i32>() {
                Ok(n) if target_type == "instance" => {
                    let mut node_ports: Vec<i32> = service_ports.iter().filter_map(|p| p.node_port).collect();
                    node_ports.extend(spec.and_then(|s| s.health_check_node_port));
                    if !node_ports.contains(&n) {
                        problems.push((
                            Severity::Critical,
                            "healthcheck-port",
                            format!("aws-load-balancer-healthcheck-port {port} is not a port the instance targets open (NodePorts {node_ports:?})"),
                            annotate("healthcheck-port", "traffic-port"),
                        ));
                    }
                }
                Ok(n) => {
                    if let Some((severity, message)) = undeclared_ip_port(cx, n)? {
                        problems.push((
                            severity,
                            "healthcheck-port",
                            format!("aws-load-balancer-healthcheck-port {message}"),
                            annotate("healthcheck-port", "traffic-port"),
                        ));
                    }
                }
                Err(_) if !service_ports.iter().any(|p| p.name.as_deref() == Some(port)) => problems.push((
                    Severity::Critical,
                    "healthcheck-port",
                    format!("aws-load-balancer-healthcheck-port {port:?} names no port of the Service"),
                    annotate("healthcheck-port", "traffic-port"),
                )),
                Err(_) => {}
            }
        }

        Ok(problems
            .into_iter()
            .map(|(severity, annotation, message, fix)| {
                let key = format!("{PREFIX}{annotation}");
                Finding::new(
                    META.id,
                    severity,
                    k8s_resource(ns, "Service", svc),
                    format!("Service {ns}/{svc}: {message}"),
                )
                .with_targets(cx.all_target_ids())
                .with_evidence(json!({
                    "annotation": key,
                    "value": annotations.get(&key),
                    "targetType": target_type,
                    "effectiveHealthCheckProtocol": protocol,
                    "targetGroupHealthCheckPort": cx.target_group().ok().and_then(|t| t.health_check_port.clone()),
                }))
                .with_fix(fix, None)
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixtures::{fires, quiet, scenario};

    #[test]
    fn fires_on_a_health_check_port_the_pods_do_not_open() {
        let findings = fires(&ServiceAnnotationInvalid, &scenario("service-annotation-invalid"));
        let f = findings.iter().find(|f| f.evidence["value"] == "9090").unwrap();
        assert_eq!(f.severity, Severity::Critical);
        assert!(f
            .fix
            .as_ref()
            .unwrap()
            .command
            .contains("healthcheck-port=traffic-port"));
    }

    #[test]
    fn quiet_on_a_valid_nlb_service() {
        // Instance targets with externalTrafficPolicy Local: HTTP /healthz on healthCheckNodePort
        // is the controller's own default there.
        quiet(&ServiceAnnotationInvalid, &scenario("nlb-local-by-design"));
    }

    #[test]
    fn without_the_replay_an_undeclared_port_is_only_a_warning() {
        let mut snap = scenario("service-annotation-invalid");
        snap.probe = crate::snapshot::Collected::not_collected("replay off");
        let f = fires(&ServiceAnnotationInvalid, &snap)
            .into_iter()
            .find(|f| f.evidence["value"] == "9090")
            .unwrap();
        assert_eq!(f.severity, Severity::Warning);
        assert!(f.message.contains("informational"), "{}", f.message);
    }

    #[test]
    fn a_path_is_not_ignored_where_the_default_check_is_http() {
        let mut snap = scenario("nlb-local-by-design");
        if let crate::snapshot::Collected::Present(services) = &mut snap.kube.services {
            let a = services[0].metadata.annotations.get_or_insert_with(Default::default);
            a.remove("service.beta.kubernetes.io/aws-load-balancer-healthcheck-protocol");
            a.insert(
                "service.beta.kubernetes.io/aws-load-balancer-healthcheck-path".into(),
                "/healthz".into(),
            );
        }
        quiet(&ServiceAnnotationInvalid, &snap);
    }

    #[test]
    fn not_applicable_to_ingress_target_groups() {
        quiet(&ServiceAnnotationInvalid, &scenario("healthy"));
    }

    #[test]
    fn nlb_success_codes() {
        assert!(valid_nlb_codes("200-399"));
        assert!(!valid_nlb_codes("600"));
    }
}
