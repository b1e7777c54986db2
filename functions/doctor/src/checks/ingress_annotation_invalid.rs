//! `ingress-annotation-invalid`: the Ingress's class or `alb.ingress.kubernetes.io/*`
//! health-check / target-type annotations are invalid or inconsistent with the Service.
//!
//! # What it checks
//! For target groups created from an Ingress (ALB): the IngressClass exists and belongs to
//! `ingress.k8s.aws/alb`; `healthcheck-path` starts with `/`; `success-codes` is a valid
//! list or range within 200-499; `healthcheck-port` is `traffic-port`, a port the targets
//! actually open (a NodePort of the Service for instance targets, a containerPort for IP
//! targets) or a Service port name; `healthcheck-protocol` is HTTP or HTTPS; `target-type` is
//! `instance` or `ip`, `instance` only with a NodePort / LoadBalancer Service, and matches the
//! existing target group. Annotations on the Service override the Ingress's, as the
//! controller applies them.
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
//! Manual: the report gives the `kubectl annotate` / `kubectl patch` that corrects the value.
//! (Health-check path and success codes that the app answers wrongly are the catalogue fix
//! `set-alb-health-check` of `health-check-response-mismatch`.)
//!
//! # References
//! - <https://repost.aws/knowledge-center/eks-resolve-failed-health-check-alb-nlb> (Ingress annotations)
//! - <https://kubernetes-sigs.github.io/aws-load-balancer-controller/latest/guide/ingress/annotations/>

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::Ingress;
use serde_json::json;

use super::{container_ports, shell_quote, Check, CheckContext, CheckMeta, FixSafety, Inconclusive};
use crate::finding::{k8s_resource, Finding, Severity};

pub struct IngressAnnotationInvalid;

static META: CheckMeta = CheckMeta {
    id: "ingress-annotation-invalid",
    title: "Ingress class or ALB annotations invalid",
    runbook_step: "ingress annotations (ALB)",
    fix: FixSafety::Manual,
};

const PREFIX: &str = "alb.ingress.kubernetes.io/";
const ALB_CONTROLLER: &str = "ingress.k8s.aws/alb";

/// Whether `codes` is a valid ALB HTTP matcher: `200`, `200,302`, `200-399` within 200-499.
pub(crate) fn valid_success_codes(codes: &str) -> bool {
    let in_range = |s: &str| s.trim().parse::<u16>().is_ok_and(|c| (200..=499).contains(&c));
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
        // Service annotations override the Ingress's for target-group settings.
        let mut annotations: BTreeMap<String, String> = ingress.metadata.annotations.clone().unwrap_or_default();
        for (k, v) in service.metadata.annotations.iter().flatten() {
            if k.starts_with(PREFIX) {
                annotations.insert(k.clone(), v.clone());
            }
        }
        let get = |name: &str| annotations.get(&format!("{PREFIX}{name}")).map(String::as_str);
        let annotate = |name: &str, value: &str| {
            format!("kubectl -n {ns} annotate ingress {ingress_name} {PREFIX}{name}={value} --overwrite")
        };
        let mut problems = Vec::new();

        class_problems(cx, ingress, ns, ingress_name, &mut problems);

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
        if let Some(codes) = get("success-codes") {
            let grpc = get("backend-protocol-version").is_some_and(|v| v.eq_ignore_ascii_case("GRPC"));
            if !grpc && !valid_success_codes(codes) {
                problems.push(Problem {
                    severity: Severity::Critical,
                    annotation: "success-codes",
                    value: Some(codes.into()),
                    message: format!("success-codes {codes:?} is not a list or range of HTTP codes within 200-499"),
                    fix: annotate("success-codes", "200"),
                });
            }
        }
        if let Some(proto) = get("healthcheck-protocol") {
            if !matches!(proto.to_ascii_uppercase().as_str(), "HTTP" | "HTTPS") {
                problems.push(Problem {
                    severity: Severity::Critical,
                    annotation: "healthcheck-protocol",
                    value: Some(proto.into()),
                    message: format!("healthcheck-protocol {proto:?} is not HTTP or HTTPS"),
                    fix: annotate("healthcheck-protocol", "HTTP"),
                });
            }
        }

        let spec = service.spec.as_ref();
        let service_type = spec.and_then(|s| s.type_.as_deref()).unwrap_or("ClusterIP");
        let target_type = get("target-type").unwrap_or("instance");
        match target_type {
            "instance" | "ip" => {}
            other => problems.push(Problem {
                severity: Severity::Critical,
                annotation: "target-type",
                value: Some(other.into()),
                message: format!("target-type {other:?} is not instance or ip"),
                fix: annotate("target-type", "ip"),
            }),
        }
        if target_type == "instance" && service_type == "ClusterIP" {
            problems.push(Problem {
                severity: Severity::Critical,
                annotation: "target-type",
                value: Some("instance".into()),
                message: format!(
                    "target-type instance needs a NodePort or LoadBalancer Service but {}/{} is ClusterIP",
                    ns, backend.service
                ),
                fix: annotate("target-type", "ip"),
            });
        }
        if let Ok(tg_type) = cx.target_type() {
            if matches!(target_type, "instance" | "ip") && tg_type != target_type {
                problems.push(Problem {
                    severity: Severity::Warning,
                    annotation: "target-type",
                    value: Some(target_type.into()),
                    message: format!("target-type is {target_type} but the target group's type is {tg_type}: the controller cannot change it in place"),
                    fix: format!("kubectl -n {ns} describe ingress {ingress_name}"),
                });
            }
        }

        if let Some(port) = get("healthcheck-port").filter(|p| *p != "traffic-port") {
            let service_ports = spec.and_then(|s| s.ports.as_deref()).unwrap_or_default();
            let ok = match port.parse::<i32>() {
                Ok(n) if target_type == "instance" => {
                    service_ports.iter().any(|p| p.node_port == Some(n))
                        || spec.and_then(|s| s.health_check_node_port) == Some(n)
                }
                Ok(n) => cx
                    .selected_pods()?
                    .iter()
                    .flat_map(|p| container_ports(p))
                    .any(|(_, c)| c == n),
                Err(_) => service_ports.iter().any(|p| p.name.as_deref() == Some(port)),
            };
            if !ok {
                let opens = if target_type == "instance" {
                    let mut node_ports: Vec<String> = service_ports
                        .iter()
                        .filter_map(|p| p.node_port)
                        .map(|n| n.to_string())
                        .collect();
                    if let Some(hc) = spec.and_then(|s| s.health_check_node_port) {
                        node_ports.push(hc.to_string());
                    }
                    format!(
                        "the Service's NodePorts are {}",
                        if node_ports.is_empty() {
                            "none".into()
                        } else {
                            node_ports.join(", ")
                        }
                    )
                } else {
                    let mut ports: Vec<i32> = cx
                        .selected_pods()?
                        .iter()
                        .flat_map(|p| container_ports(p))
                        .map(|(_, c)| c)
                        .collect();
                    ports.sort();
                    ports.dedup();
                    format!(
                        "the pods' containerPorts are {}",
                        ports.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", ")
                    )
                };
                problems.push(Problem {
                    severity: Severity::Critical,
                    annotation: "healthcheck-port",
                    value: Some(port.into()),
                    message: format!("healthcheck-port {port} is not a port the {target_type} targets open ({opens})"),
                    fix: annotate("healthcheck-port", "traffic-port"),
                });
            }
        }

        Ok(problems
            .into_iter()
            .map(|p| {
                Finding::new(
                    META.id,
                    p.severity,
                    k8s_resource(ns, "Ingress", ingress_name),
                    format!("Ingress {ns}/{ingress_name}: {}", p.message),
                )
                .with_targets(cx.all_target_ids())
                .with_evidence(json!({
                    "annotation": format!("{PREFIX}{}", p.annotation),
                    "value": p.value,
                    "targetType": target_type,
                    "serviceType": service_type,
                    "targetGroupHealthCheckPort": cx.target_group().ok().and_then(|t| t.health_check_port.clone()),
                }))
                .with_fix(p.fix, None)
            })
            .collect())
    }
}

fn class_problems(cx: &CheckContext<'_>, ingress: &Ingress, ns: &str, name: &str, problems: &mut Vec<Problem>) {
    let Ok(classes) = cx.snapshot.kube.ingress_classes.items() else {
        return; // IngressClasses not collected: the class cannot be judged
    };
    let patch = shell_quote(&json!({ "spec": { "ingressClassName": "alb" } }).to_string());
    let fix = format!("kubectl -n {ns} patch ingress {name} -p {patch}");
    let class_name = ingress
        .spec
        .as_ref()
        .and_then(|s| s.ingress_class_name.clone())
        .or_else(|| {
            ingress
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("kubernetes.io/ingress.class"))
                .cloned()
        });
    let Some(class_name) = class_name else {
        let default_alb = classes.iter().any(|c| {
            c.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("ingressclass.kubernetes.io/is-default-class"))
                .map(String::as_str)
                == Some("true")
                && c.spec.as_ref().and_then(|s| s.controller.as_deref()) == Some(ALB_CONTROLLER)
        });
        if !default_alb {
            problems.push(Problem {
                severity: Severity::Critical,
                annotation: "ingress.class",
                value: None,
                message: "no ingressClassName and no default ALB IngressClass: the controller ignores this Ingress"
                    .into(),
                fix,
            });
        }
        return;
    };
    match classes
        .iter()
        .find(|c| c.metadata.name.as_deref() == Some(class_name.as_str()))
    {
        None if class_name == "alb" && classes.is_empty() => {}
        None => problems.push(Problem {
            severity: Severity::Critical,
            annotation: "ingress.class",
            value: Some(class_name.clone()),
            message: format!("IngressClass {class_name:?} does not exist"),
            fix,
        }),
        Some(c) => {
            let controller = c.spec.as_ref().and_then(|s| s.controller.as_deref()).unwrap_or("");
            if controller != ALB_CONTROLLER {
                problems.push(Problem {
                    severity: Severity::Critical,
                    annotation: "ingress.class",
                    value: Some(class_name.clone()),
                    message: format!(
                        "IngressClass {class_name:?} belongs to controller {controller:?}, not {ALB_CONTROLLER}"
                    ),
                    fix,
                });
            }
        }
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
            .ends_with("healthcheck-port=traffic-port --overwrite"));
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
    fn success_codes_syntax() {
        for ok in ["200", "200,302", "200-399", "200-299,404"] {
            assert!(valid_success_codes(ok), "{ok}");
        }
        for bad in ["", "2xx", "100", "500", "399-200", "200-600", "200,,302"] {
            assert!(!valid_success_codes(bad), "{bad}");
        }
    }
}
