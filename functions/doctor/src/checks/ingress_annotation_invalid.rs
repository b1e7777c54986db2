//! `ingress-annotation-invalid`: the Ingress's class or `alb.ingress.kubernetes.io/*`
//! health-check / target-type annotations are invalid or inconsistent with the Service.
//!
//! # What it checks
//! For target groups created from an Ingress (ALB), decided as the controller decides
//! (`crate::controller`, from its source):
//! - the class: the `kubernetes.io/ingress.class` annotation alone (matched against the
//!   controller's `--ingress-class`, no IngressClass object needed), else the IngressClass
//!   (named or default) must exist with controller `ingress.k8s.aws/alb` (or EKS Auto Mode's
//!   `eks.amazonaws.com/alb`) and existing IngressClassParams of the right API group;
//! - the effective settings: the Service's `alb.ingress.kubernetes.io/*` annotations win over
//!   the Ingress's, and IngressClassParams' `targetType` over both; the target type defaults
//!   to the controller's `--default-target-type` (else the target group's own type);
//! - `healthcheck-path` starts with `/`; `success-codes` is a list or range within 200-499
//!   (gRPC: 0-99 when `backend-protocol-version` is GRPC); `healthcheck-protocol` is exactly
//!   `HTTP` or `HTTPS` (the controller compares case-sensitively); `target-type` is `instance`
//!   or `ip`, `instance` only with a NodePort / LoadBalancer Service;
//! - `healthcheck-port`: a number is used as is (for instance targets it must be a NodePort
//!   or the `healthCheckNodePort`; for IP targets container ports are informational, so an
//!   undeclared one is only a warning while targets fail), a name must be a Service port (IP
//!   targets: with a numeric `targetPort`).
//!
//! Targets concerned: all of them (the settings are the target group's).
//!
//! # Why it matters
//! The controller turns these annotations into the target group's health check. A port
//! nobody listens on, or a wrong class (the controller ignores the Ingress), leaves targets
//! unhealthy or never registered, with nothing wrong in the pods.
//!
//! # Example
//! Bad: `alb.ingress.kubernetes.io/healthcheck-port: "8081"` with pods on 80 and NodePort 30080.
//! Good: `healthcheck-port: traffic-port`.
//!
//! # Fix safety
//! Manual: the report gives the `kubectl annotate` / `kubectl patch` that corrects the value,
//! on the object that holds the effective value (the Service when it carries the annotation).
//! (Health-check path and success codes that the app answers wrongly are the catalogue fix
//! `set-alb-health-check` of `health-check-response-mismatch`.)
//!
//! # References
//! - <https://repost.aws/knowledge-center/eks-resolve-failed-health-check-alb-nlb> (Ingress annotations)
//! - <https://kubernetes-sigs.github.io/aws-load-balancer-controller/latest/guide/ingress/annotations/>
//! - <https://github.com/kubernetes-sigs/aws-load-balancer-controller/blob/main/pkg/ingress/model_build_target_group.go>
//! - <https://github.com/kubernetes-sigs/aws-load-balancer-controller/blob/main/pkg/ingress/group_loader.go>
//! - <https://docs.aws.amazon.com/eks/latest/userguide/auto-configure-alb.html> (EKS Auto Mode classes)

use serde_json::json;

use super::{shell_quote, Check, CheckContext, CheckMeta, FixSafety, Inconclusive};
use crate::controller::{self, IngressClassVerdict};
use crate::finding::{k8s_resource, Finding, Severity};
use crate::kubernetes;

pub struct IngressAnnotationInvalid;

static META: CheckMeta = CheckMeta {
    id: "ingress-annotation-invalid",
    title: "Ingress class or ALB annotations invalid",
    runbook_step: "ingress annotations (ALB)",
    fix: FixSafety::Manual,
};

const PREFIX: &str = "alb.ingress.kubernetes.io/";

/// Whether `codes` is a valid ALB HTTP matcher: `200`, `200,302`, `200-399` within 200-499.
pub(crate) fn valid_success_codes(codes: &str) -> bool {
    valid_codes(codes, 200..=499)
}

fn valid_codes(codes: &str, range: std::ops::RangeInclusive<u16>) -> bool {
    let in_range = |s: &str| s.trim().parse::<u16>().is_ok_and(|c| range.contains(&c));
    !codes.trim().is_empty()
        && codes.split(',').all(|part| match part.split_once('-') {
            Some((a, b)) => in_range(a) && in_range(b) && a.trim().parse::<u16>().ok() <= b.trim().parse::<u16>().ok(),
            None => in_range(part),
        })
}

struct Problem {
    severity: Severity,
    annotation: &'static str,
    value: Option<String>,
    message: String,
    fix: String,
}

impl Check for IngressAnnotationInvalid {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    fn run(&self, cx: &CheckContext<'_>) -> Result<Vec<Finding>, Inconclusive> {
        let backend = cx.backend()?;
        let Some(ingress_name) = backend.ingress.as_deref() else {
            return Ok(vec![]); // not an Ingress-managed target group
        };
        let ns = backend.namespace.as_str();
        let ingresses = cx
            .snapshot
            .kube
            .ingresses
            .items()
            .map_err(|why| Inconclusive(format!("Ingresses not collected: {why}")))?;
        let Some(ingress) = ingresses
            .iter()
            .find(|i| i.metadata.namespace.as_deref() == Some(ns) && i.metadata.name.as_deref() == Some(ingress_name))
        else {
            return Err(Inconclusive(format!(
                "Ingress {ns}/{ingress_name} named by the target group's tags was not found"
            )));
        };
        let service = cx.service()?;
        let annotations = controller::target_group_annotations(service, ingress);
        let on_service = |name: &str| {
            service
                .metadata
                .annotations
                .as_ref()
                .is_some_and(|a| a.contains_key(&format!("{PREFIX}{name}")))
        };
        let get = |name: &str| annotations.get(&format!("{PREFIX}{name}")).map(String::as_str);
        // The fix goes to the object whose annotation the controller reads.
        let annotate = |name: &str, value: &str| {
            let (kind, object) = if on_service(name) {
                ("service", backend.service.as_str())
            } else {
                ("ingress", ingress_name)
            };
            format!(
                "kubectl -n {ns} annotate {kind} {} {} --overwrite",
                shell_quote(object),
                shell_quote(&format!("{PREFIX}{name}={value}"))
            )
        };
        let mut problems = Vec::new();
        let config = cx.controller_config();
        let classes = cx.snapshot.kube.ingress_classes.items();
        let params = cx.snapshot.kube.ingress_class_params.items();
        if let IngressClassVerdict::NotManaged(why) =
            controller::classify_ingress(ingress, classes, params, &config.clone().unwrap_or_default())
        {
            problems.push(Problem {
                severity: Severity::Critical,
                annotation: "ingress.class",
                value: ingress.spec.as_ref().and_then(|s| s.ingress_class_name.clone()),
                message: format!("{why}: the controller does not manage this Ingress, so it keeps nothing of the target group in sync"),
                fix: format!("kubectl get ingressclass && kubectl -n {ns} get ingress {} -o yaml", shell_quote(ingress_name)),
            });
        }

        if let Some(path) = get("healthcheck-path") {
            if !path.starts_with('/') {
                problems.push(Problem {
                    severity: Severity::Critical,
                    annotation: "healthcheck-path",
                    value: Some(path.into()),
                    message: format!("healthcheck-path {path:?} does not start with /"),
                    fix: annotate("healthcheck-path", &format!("/{path}")),
                });
            }
        }
        let grpc = get("backend-protocol-version") == Some("GRPC");
        if let Some(codes) = get("success-codes") {
            let (ok, range) = if grpc {
                (valid_codes(codes, 0..=99), "0-99 (gRPC)")
            } else {
                (valid_success_codes(codes), "200-499")
            };
            if !ok {
                problems.push(Problem {
                    severity: Severity::Critical,
                    annotation: "success-codes",
                    value: Some(codes.into()),
                    message: format!("success-codes {codes:?} is not a list or range within {range}"),
                    fix: annotate("success-codes", if grpc { "0" } else { "200" }),
                });
            }
        }
        if let Some(proto) = get("healthcheck-protocol") {
            // pkg/ingress/model_build_target_group.go: exactly "HTTP" or "HTTPS".
            if !matches!(proto, "HTTP" | "HTTPS") {
                let upper = proto.to_ascii_uppercase();
                let hint = if matches!(upper.as_str(), "HTTP" | "HTTPS") {
                    " (the controller compares case-sensitively)"
                } else {
                    ""
                };
                problems.push(Problem {
                    severity: Severity::Critical,
                    annotation: "healthcheck-protocol",
                    value: Some(proto.into()),
                    message: format!("healthcheck-protocol {proto:?} is not HTTP or HTTPS{hint}: the controller refuses to build the target group"),
                    fix: annotate("healthcheck-protocol", if upper == "HTTPS" { "HTTPS" } else { "HTTP" }),
                });
            }
        }

        let spec = service.spec.as_ref();
        let service_type = spec.and_then(|s| s.type_.as_deref()).unwrap_or("ClusterIP");
        // Target type as the controller builds it: IngressClassParams > annotation > flag.
        let class_params = match (classes, params) {
            (Ok(c), Ok(p)) => controller::params_for(ingress, c, p),
            _ => None,
        };
        let (configured, source): (Option<String>, String) = if let Some(t) = class_params.and_then(|p| p.target_type())
        {
            (Some(t.to_string()), "IngressClassParams targetType".into())
        } else if let Some(t) = get("target-type") {
            (Some(t.to_string()), "the target-type annotation".into())
        } else if let Some(c) = &config {
            (
                Some(c.default_target_type.clone()),
                "the controller's --default-target-type".into(),
            )
        } else {
            (
                None,
                "the target group's own type (the controller's flags were not collected)".into(),
            )
        };
        let tg_type = cx.target_type().ok();
        let target_type = configured
            .clone()
            .or(tg_type.map(str::to_string))
            .unwrap_or_else(|| "instance".into());
        match target_type.as_str() {
            "instance" | "ip" => {}
            other => problems.push(Problem {
                severity: Severity::Critical,
                annotation: "target-type",
                value: Some(other.into()),
                message: format!("target-type {other:?} (from {source}) is not instance or ip"),
                fix: annotate("target-type", "ip"),
            }),
        }
        if target_type == "instance" && service_type == "ClusterIP" {
            problems.push(Problem {
                severity: Severity::Critical,
                annotation: "target-type",
                value: Some("instance".into()),
                message: format!(
                    "target-type instance (from {source}) needs a NodePort or LoadBalancer Service but {ns}/{} is ClusterIP",
                    backend.service
                ),
                fix: annotate("target-type", "ip"),
            });
        }
        if let (Some(configured), Some(tg_type)) = (&configured, tg_type) {
            if matches!(configured.as_str(), "instance" | "ip") && tg_type != configured {
                problems.push(Problem {
                    severity: Severity::Warning,
                    annotation: "target-type",
                    value: Some(configured.clone()),
                    message: format!("target-type is {configured} (from {source}) but the target group's type is {tg_type}: the controller cannot change it in place"),
                    fix: format!("kubectl -n {ns} describe ingress {}", shell_quote(ingress_name)),
                });
            }
        }

        if let Some(port) = get("healthcheck-port").filter(|p| *p != "traffic-port") {
            problems.extend(health_check_port_problem(cx, port, &target_type, &annotate)?);
        }

        Ok(problems
            .into_iter()
            .map(|p| {
                let holder = if on_service(p.annotation) {
                    k8s_resource(ns, "Service", &backend.service)
                } else {
                    k8s_resource(ns, "Ingress", ingress_name)
                };
                Finding::new(
                    META.id,
                    p.severity,
                    holder,
                    format!("Ingress {ns}/{ingress_name}: {}", p.message),
                )
                .with_targets(cx.all_target_ids())
                .with_evidence(json!({
                    "annotation": format!("{PREFIX}{}", p.annotation),
                    "value": p.value,
                    "setOn": if on_service(p.annotation) { "Service" } else { "Ingress" },
                    "targetType": target_type,
                    "targetTypeFrom": source,
                    "serviceType": service_type,
                    "targetGroupHealthCheckPort": cx.target_group().ok().and_then(|t| t.health_check_port.clone()),
                }))
                .with_fix(p.fix, None)
            })
            .collect())
    }
}

/// A numeric health-check port on IP targets that the pods' application containers neither
/// declare nor probe: container ports are informational, so this is a hint (warning) while
/// targets fail, and proven (critical) when the replay was refused on that port.
pub(crate) fn undeclared_ip_port(cx: &CheckContext<'_>, n: i32) -> Result<Option<(Severity, String)>, Inconclusive> {
    let pods = cx.selected_pods()?;
    let mut declared: Vec<i32> = pods.iter().flat_map(|p| kubernetes::app_ports(p)).collect();
    declared.sort_unstable();
    declared.dedup();
    if declared.contains(&n) || cx.failing_targets()?.is_empty() {
        return Ok(None);
    }
    let refused = cx
        .probe_results()
        .iter()
        .any(|p| i32::from(p.port) == n && p.outcome == crate::snapshot::ProbeOutcome::Refused);
    let listed = declared.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", ");
    Ok(Some(if refused {
        (
            Severity::Critical,
            format!(
                "{n} is refused by the pods (health-check replay) and is not a port they declare or probe ({listed})"
            ),
        )
    } else {
        (
            Severity::Warning,
            format!("{n} is not a port the pods declare or probe ({listed}) and targets fail; declared ports are informational, so confirm the app listens there"),
        )
    }))
}

/// `healthcheck-port` as the controller resolves it (`buildTargetGroupHealthCheckPort`).
fn health_check_port_problem(
    cx: &CheckContext<'_>,
    port: &str,
    target_type: &str,
    annotate: &dyn Fn(&str, &str) -> String,
) -> Result<Option<Problem>, Inconclusive> {
    let service = cx.service()?;
    let spec = service.spec.as_ref();
    let service_ports = spec.and_then(|s| s.ports.as_deref()).unwrap_or_default();
    let problem = |severity, message: String| Problem {
        severity,
        annotation: "healthcheck-port",
        value: Some(port.into()),
        message,
        fix: annotate("healthcheck-port", "traffic-port"),
    };
    match port.parse::<i32>() {
        Ok(n) if target_type == "instance" => {
            let mut node_ports: Vec<i32> = service_ports.iter().filter_map(|p| p.node_port).collect();
            node_ports.extend(spec.and_then(|s| s.health_check_node_port));
            if node_ports.contains(&n) {
                return Ok(None);
            }
            Ok(Some(problem(
                Severity::Critical,
                format!(
                    "healthcheck-port {port} is not a port the instance targets open (the Service's NodePorts are {})",
                    if node_ports.is_empty() {
                        "none".to_string()
                    } else {
                        node_ports.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", ")
                    }
                ),
            )))
        }
        Ok(n) => {
            // Container ports are informational: undeclared is only a hint, and only while
            // targets fail.
            Ok(undeclared_ip_port(cx, n)?.map(|(severity, message)| problem(severity, format!("healthcheck-port {message}"))))
        }
        Err(_) => match service_ports.iter().find(|p| p.name.as_deref() == Some(port)) {
            None => Ok(Some(problem(
                Severity::Critical,
                format!("healthcheck-port {port:?} names no port of the Service: the controller fails to resolve it"),
            ))),
            Some(p) if target_type == "ip" && matches!(p.target_port, Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(_))) => Ok(Some(problem(
                Severity::Critical,
                format!("healthcheck-port {port:?} names a Service port whose targetPort is a name: the controller cannot use a named healthCheckPort for IP targets then"),
            ))),
            Some(_) => Ok(None),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixtures::{fires, quiet, scenario};
    use crate::snapshot::Collected;

    #[test]
    fn fires_on_a_health_check_port_nothing_opens() {
        let findings = fires(&IngressAnnotationInvalid, &scenario("ingress-annotation-invalid"));
        let f = findings
            .iter()
            .find(|f| f.evidence["annotation"] == "alb.ingress.kubernetes.io/healthcheck-port")
            .unwrap();
        assert_eq!(f.severity, Severity::Critical);
        assert!(f.message.contains("8081"), "{}", f.message);
        assert!(f
            .fix
            .as_ref()
            .unwrap()
            .command
            .ends_with("'alb.ingress.kubernetes.io/healthcheck-port=traffic-port' --overwrite"));
    }

    #[test]
    fn fires_on_a_class_of_another_controller() {
        let mut snap = scenario("healthy");
        if let Collected::Present(classes) = &mut snap.kube.ingress_classes {
            classes[0].spec.as_mut().unwrap().controller = Some("k8s.io/ingress-nginx".into());
        }
        let findings = fires(&IngressAnnotationInvalid, &snap);
        assert!(findings[0].message.contains("ingress-nginx"), "{}", findings[0].message);
    }

    #[test]
    fn quiet_on_valid_annotations() {
        quiet(&IngressAnnotationInvalid, &scenario("healthy"));
    }

    #[test]
    fn quiet_where_the_controller_builds_ip_targets_for_a_cluster_ip_service() {
        // --default-target-type=ip, and IngressClassParams targetType ip overriding a stale
        // target-type: instance annotation.
        quiet(
            &IngressAnnotationInvalid,
            &scenario("controller-default-target-type-ip"),
        );
        quiet(
            &IngressAnnotationInvalid,
            &scenario("ingressclassparams-target-type-ip"),
        );
        quiet(&IngressAnnotationInvalid, &scenario("named-target-port-tg-port-1"));
    }

    #[test]
    fn quiet_on_the_legacy_class_annotation_and_on_eks_auto_mode() {
        quiet(&IngressAnnotationInvalid, &scenario("legacy-ingress-class-annotation"));
        quiet(&IngressAnnotationInvalid, &scenario("eks-auto-mode-alb"));
    }

    #[test]
    fn the_instance_default_with_a_cluster_ip_service_is_refused() {
        // Without the flag, the controller's default is instance: a ClusterIP Service fails.
        let mut snap = scenario("controller-default-target-type-ip");
        if let Collected::Present(deployments) = &mut snap.kube.deployments {
            for d in deployments.iter_mut() {
                let c = &mut d.spec.as_mut().unwrap().template.spec.as_mut().unwrap().containers[0];
                if let Some(args) = c.args.as_mut() {
                    args.retain(|a| !a.starts_with("--default-target-type"));
                }
            }
        }
        let findings = fires(&IngressAnnotationInvalid, &snap);
        assert!(
            findings.iter().any(|f| f.message.contains("needs a NodePort")),
            "{findings:#?}"
        );
    }

    #[test]
    fn a_lowercase_protocol_is_refused_as_the_controller_compares_case_sensitively() {
        let mut snap = scenario("healthy");
        if let Collected::Present(ingresses) = &mut snap.kube.ingresses {
            ingresses[0]
                .metadata
                .annotations
                .as_mut()
                .unwrap()
                .insert("alb.ingress.kubernetes.io/healthcheck-protocol".into(), "http".into());
        }
        let f = &fires(&IngressAnnotationInvalid, &snap)[0];
        assert!(f.message.contains("case-sensitively"), "{}", f.message);
        assert!(f.fix.as_ref().unwrap().command.contains("healthcheck-protocol=HTTP"));
    }

    #[test]
    fn a_service_annotation_wins_and_its_fix_goes_to_the_service() {
        let mut snap = scenario("ingress-annotation-invalid");
        // Move the bad port to the Service and give the Ingress a good one: the Service wins.
        if let Collected::Present(ingresses) = &mut snap.kube.ingresses {
            ingresses[0].metadata.annotations.as_mut().unwrap().insert(
                "alb.ingress.kubernetes.io/healthcheck-port".into(),
                "traffic-port".into(),
            );
        }
        if let Collected::Present(services) = &mut snap.kube.services {
            services[0].metadata.annotations = Some(
                [(
                    "alb.ingress.kubernetes.io/healthcheck-port".to_string(),
                    "8081".to_string(),
                )]
                .into(),
            );
        }
        let f = fires(&IngressAnnotationInvalid, &snap)
            .into_iter()
            .find(|f| f.evidence["annotation"] == "alb.ingress.kubernetes.io/healthcheck-port")
            .unwrap();
        assert_eq!(f.evidence["setOn"], "Service");
        assert!(
            f.fix
                .as_ref()
                .unwrap()
                .command
                .contains("annotate service 'alb-instance'"),
            "{:?}",
            f.fix
        );
    }

    #[test]
    fn success_codes_syntax() {
        for ok in ["200", "200,302", "200-399", "200-299,404"] {
            assert!(valid_success_codes(ok), "{ok}");
        }
        for bad in ["", "2xx", "100", "500", "399-200", "200-600", "200,,302"] {
            assert!(!valid_success_codes(bad), "{bad}");
        }
    }
}
