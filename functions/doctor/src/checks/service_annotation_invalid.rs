//! `service-annotation-invalid`: the NLB annotations of a `LoadBalancer` Service are invalid
//! or inconsistent (load-balancer type, target type, health-check protocol / port / path).
//!
//! # What it checks
//! For target groups created from a Service (NLB): `aws-load-balancer-type` is `external`
//! (AWS Load Balancer Controller), `nlb-ip` (its deprecated form) or `nlb` (in-tree);
//! `aws-load-balancer-nlb-target-type` is `ip` or `instance` and matches the target group;
//! `aws-load-balancer-healthcheck-protocol` is TCP, HTTP or HTTPS; `healthcheck-port` is
//! `traffic-port` or a port the targets open (a containerPort for IP targets, a NodePort or
//! the `healthCheckNodePort` for instance targets); a `healthcheck-path` with a TCP check
//! (ignored) and success codes outside 200-599 are flagged.
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

use std::collections::BTreeMap;

use serde_json::json;

use super::{container_ports, Check, CheckContext, CheckMeta, FixSafety, Inconclusive};
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
        let spec = service.spec.as_ref();
        if spec.and_then(|s| s.type_.as_deref()) != Some("LoadBalancer") {
            return Ok(vec![]); // a TargetGroupBinding to a plain Service: no NLB annotations in play
        }
        let ns = backend.namespace.as_str();
        let svc = backend.service.as_str();
        let annotations: BTreeMap<String, String> = service.metadata.annotations.clone().unwrap_or_default();
        let get = |name: &str| annotations.get(&format!("{PREFIX}{name}")).map(String::as_str);
        let annotate = |name: &str, value: &str| {
            format!("kubectl -n {ns} annotate service {svc} {PREFIX}{name}={value} --overwrite")
        };
        let mut problems: Vec<(Severity, &str, String, String)> = Vec::new();

        if let Some(t) = get("type") {
            if !matches!(t, "external" | "nlb-ip" | "nlb") {
                problems.push((
                    Severity::Critical,
                    "type",
                    format!("aws-load-balancer-type {t:?} is not external, nlb-ip or nlb"),
                    annotate("type", "external"),
                ));
            }
        }
        let target_type = get("nlb-target-type")
            .map(str::to_string)
            .or_else(|| (get("type") == Some("nlb-ip")).then(|| "ip".to_string()));
        let target_type = target_type.unwrap_or_else(|| cx.target_type().unwrap_or("instance").to_string());
        if !matches!(target_type.as_str(), "ip" | "instance") {
            problems.push((
                Severity::Critical,
                "nlb-target-type",
                format!("aws-load-balancer-nlb-target-type {target_type:?} is not ip or instance"),
                annotate("nlb-target-type", "ip"),
            ));
        } else if let Ok(tg_type) = cx.target_type() {
            if tg_type != target_type {
                problems.push((
                    Severity::Warning,
                    "nlb-target-type",
                    format!("aws-load-balancer-nlb-target-type is {target_type} but the target group's type is {tg_type}: the controller cannot change it in place"),
                    format!("kubectl -n {ns} describe service {svc}"),
                ));
            }
        }
        let protocol = get("healthcheck-protocol").map(str::to_ascii_uppercase);
        if let Some(p) = &protocol {
            if !matches!(p.as_str(), "TCP" | "HTTP" | "HTTPS") {
                problems.push((
                    Severity::Critical,
                    "healthcheck-protocol",
                    format!("aws-load-balancer-healthcheck-protocol {p:?} is not tcp, http or https"),
                    annotate("healthcheck-protocol", "tcp"),
                ));
            }
        }
        if protocol.as_deref().is_none_or(|p| p == "TCP") && get("healthcheck-path").is_some() {
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
            let (ok, opens) = match port.parse::<i32>() {
                Ok(n) if target_type == "instance" => {
                    let mut node_ports: Vec<i32> = service_ports.iter().filter_map(|p| p.node_port).collect();
                    node_ports.extend(spec.and_then(|s| s.health_check_node_port));
                    (node_ports.contains(&n), format!("NodePorts {node_ports:?}"))
                }
                Ok(n) => {
                    let mut ports: Vec<i32> = cx
                        .selected_pods()?
                        .iter()
                        .flat_map(|p| container_ports(p))
                        .map(|(_, c)| c)
                        .collect();
                    ports.sort();
                    ports.dedup();
                    (ports.contains(&n), format!("containerPorts {ports:?}"))
                }
                Err(_) => (
                    service_ports.iter().any(|p| p.name.as_deref() == Some(port)),
                    "no Service port of that name".into(),
                ),
            };
            if !ok {
                problems.push((
                    Severity::Critical,
                    "healthcheck-port",
                    format!("aws-load-balancer-healthcheck-port {port} is not a port the {target_type} targets open ({opens})"),
                    annotate("healthcheck-port", "traffic-port"),
                ));
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
        quiet(&ServiceAnnotationInvalid, &scenario("nlb-local-by-design"));
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
