//! `health-check-response-mismatch`: the health-check path answers with a status code the
//! target group's matcher does not accept.
//!
//! # What it checks
//! Unhealthy targets that answered with a code the matcher refuses: `Target.ResponseCodeMismatch`
//! on an ALB, and on an NLB `Target.FailedHealthChecks` whose description carries the codes
//! (ResponseCodeMismatch is ALB-only; the codes are read from the description, e.g. `Health
//! checks failed with these codes: [404]`); and health-check replay results (`probe.json`)
//! whose HTTP status falls outside the matcher. gRPC target groups (`ProtocolVersion: GRPC`)
//! are judged against their `GrpcCode` matcher, never against HTTP codes, and the HTTP/1.1
//! replay is not used for them. Targets concerned: those that answered wrongly.
//!
//! # Why it matters
//! The pod is up and answering, just not with what the load balancer expects: a wrong
//! `healthcheck-path` (404), a redirect to HTTPS or a login page (301/302), or an app that
//! answers 401 without credentials. The load balancer marks it unhealthy anyway.
//!
//! # Example
//! Bad: health-check path `/healthz`, app serves only `/` -> `[404]`. Good: path `/` (or the
//! pods' readiness-probe path) and matcher `200`; or matcher `200-399` for a redirecting app.
//!
//! # Fix safety
//! Catalogue fix `set-alb-health-check` (annotation `healthcheck-path` / `success-codes`),
//! approval only: the suggested path is the pods' own readiness-probe path when they have
//! one, which is known to answer while the pod is Ready. The annotation is patched on the
//! object the controller reads it from (the Service when it carries one: the controller
//! merges the Service's annotations over the Ingress's), with that object's current value as
//! the precondition. NLB and gRPC target groups get the command, not the catalogue fix.
//!
//! # References
//! - <https://repost.aws/knowledge-center/eks-resolve-failed-health-check-alb-nlb> (manual check with curl)
//! - <https://docs.aws.amazon.com/elasticloadbalancing/latest/application/target-group-health-checks.html#target-health-reason-codes>
//! - <https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_TargetHealth.html> (ResponseCodeMismatch is ALB-only)
//! - <https://github.com/kubernetes-sigs/aws-load-balancer-controller/blob/main/pkg/ingress/model_build_target_group.go> (Service annotations first)

use serde_json::{json, Map};

use super::{shell_quote, Check, CheckContext, CheckMeta, FixSafety, Inconclusive};
use crate::finding::{Finding, FixAction, Severity};
use crate::snapshot::ProbeOutcome;

pub struct HealthCheckResponseMismatch;

static META: CheckMeta = CheckMeta {
    id: "health-check-response-mismatch",
    title: "Health-check path answers an unexpected status code",
    runbook_step: "manual check, HTTP",
    fix: FixSafety::ApprovalOnly("set-alb-health-check"),
};

/// Whether `code` satisfies an ALB/NLB matcher like `200`, `200,302` or `200-399`.
pub(crate) fn matcher_accepts(matcher: &str, code: u16) -> bool {
    matcher.split(',').any(|part| match part.split_once('-') {
        Some((a, b)) => {
            a.trim().parse::<u16>().is_ok_and(|a| a <= code) && b.trim().parse::<u16>().is_ok_and(|b| code <= b)
        }
        None => part.trim().parse::<u16>() == Ok(code),
    })
}

/// The target answered, with a code the matcher refused: ALB reports
/// `Target.ResponseCodeMismatch`; an NLB's HTTP check reports `Target.FailedHealthChecks` with
/// the codes in the description (ResponseCodeMismatch is ALB-only).
pub(crate) fn answered_with_a_code(reason: Option<&str>, description: Option<&str>) -> bool {
    match reason {
        Some("Target.ResponseCodeMismatch") => true,
        Some("Target.FailedHealthChecks") => !codes_in(description.unwrap_or("")).is_empty(),
        _ => false,
    }
}

pub(crate) fn is_grpc(tg: &crate::aws::TargetGroup) -> bool {
    tg.protocol_version.as_deref() == Some("GRPC") || tg.matcher.as_ref().is_some_and(|m| m.grpc_code.is_some())
}

/// `Health checks failed with these codes: [404, 502]` -> [404, 502].
pub(crate) fn codes_in(description: &str) -> Vec<u16> {
    description
        .split_once('[')
        .and_then(|(_, rest)| rest.split_once(']'))
        .map(|(codes, _)| codes.split(',').filter_map(|c| c.trim().parse().ok()).collect())
        .unwrap_or_default()
}

impl Check for HealthCheckResponseMismatch {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    fn run(&self, cx: &CheckContext<'_>) -> Result<Vec<Finding>, Inconclusive> {
        let tg = cx.target_group()?;
        // gRPC target groups match gRPC status codes (`GrpcCode`, default 12 on the ALB
        // console, "0" from the controller), HTTP ones HTTP codes.
        let grpc = is_grpc(tg);
        let matcher = tg
            .matcher
            .as_ref()
            .and_then(|m| if grpc { m.grpc_code.clone() } else { m.http_code.clone() })
            .unwrap_or_else(|| if grpc { "12".into() } else { "200".into() });
        let path = tg.health_check_path.clone().unwrap_or_else(|| "/".into());
        let mut codes: Vec<u16> = Vec::new();
        let mut targets: Vec<String> = Vec::new();
        let mut ids: Vec<String> = Vec::new();
        for t in cx.failing_targets()? {
            if answered_with_a_code(t.reason(), t.health.target_health.description.as_deref()) {
                codes.extend(codes_in(t.health.target_health.description.as_deref().unwrap_or("")));
                targets.push(t.label());
                ids.push(t.id().to_string());
            }
        }
        // The replay speaks HTTP/1.1: its codes say nothing about a gRPC matcher.
        let probes: Vec<_> = cx
            .probe_results()
            .into_iter()
            .filter(|_| !grpc)
            .filter(|p| p.outcome == ProbeOutcome::Response)
            .filter(|p| p.status_code.is_some_and(|c| !matcher_accepts(&matcher, c)))
            .collect();
        for p in &probes {
            codes.extend(p.status_code);
            if !ids.contains(&p.target_id) {
                targets.push(p.target_id.clone());
                ids.push(p.target_id.clone());
            }
        }
        if targets.is_empty() {
            return Ok(vec![]);
        }
        codes.sort();
        codes.dedup();
        let codes_text = codes.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(", ");

        // Prefer the pods' readiness-probe path: it answers whenever the pod is Ready.
        let readiness_path = cx.selected_pods().ok().and_then(|pods| {
            pods.iter()
                .flat_map(|p| p.spec.iter().flat_map(|s| &s.containers))
                .find_map(|c| c.readiness_probe.as_ref()?.http_get.as_ref()?.path.clone())
        });
        let redirects = !codes.is_empty() && codes.iter().all(|c| (300..400).contains(c));
        let (annotation, value) = if redirects {
            ("success-codes", "200-399".to_string())
        } else {
            (
                "healthcheck-path",
                readiness_path
                    .clone()
                    .filter(|p| *p != path)
                    .unwrap_or_else(|| "/".into()),
            )
        };
        let backend = cx.backend().ok();
        let mut action = None;
        let (fix, fix_id) = match backend {
            _ if grpc => (
                format!(
                    "grpcurl -plaintext <pod-ip>:<port> list  # which services does the app implement? the check calls {path} and accepts gRPC codes {matcher}"
                ),
                None,
            ),
            Some(b) if b.ingress.is_some() => {
                let ingress = b.ingress.clone().unwrap_or_default();
                let key = format!("alb.ingress.kubernetes.io/{annotation}");
                // The controller reads the Service's annotation first: patch whichever object
                // holds the effective value, with the precondition read from that object.
                let service_value = cx
                    .service()
                    .ok()
                    .and_then(|svc| svc.metadata.annotations.as_ref()?.get(&key).cloned());
                let (api_version, kind, name, current) = match service_value {
                    Some(v) => ("v1", "Service", b.service.clone(), Some(v)),
                    None => {
                        let current = cx.snapshot.kube.ingresses.present().and_then(|list| {
                            list.iter()
                                .find(|i| {
                                    i.metadata.name.as_deref() == Some(&ingress)
                                        && i.metadata.namespace.as_deref() == Some(&b.namespace)
                                })
                                .and_then(|i| i.metadata.annotations.as_ref()?.get(&key).cloned())
                        });
                        ("networking.k8s.io/v1", "Ingress", ingress.clone(), current)
                    }
                };
                action = Some(FixAction::PatchObject {
                    api_version,
                    resource_kind: kind,
                    namespace: b.namespace.clone(),
                    name: name.clone(),
                    patch: json!({ "metadata": { "annotations": { &key: value } } }),
                    expect: Map::from_iter([(
                        format!("/metadata/annotations/{}", key.replace('~', "~0").replace('/', "~1")),
                        json!(current),
                    )]),
                });
                (
                    format!(
                        "kubectl -n {} annotate {} {} {} --overwrite",
                        b.namespace,
                        kind.to_ascii_lowercase(),
                        shell_quote(&name),
                        shell_quote(&format!("{key}={value}"))
                    ),
                    META.fix.fix_id(),
                )
            }
            Some(b) => {
                let nlb_annotation = if redirects {
                    "healthcheck-success-codes"
                } else {
                    "healthcheck-path"
                };
                (
                    format!(
                        "kubectl -n {} annotate service {} {} --overwrite",
                        b.namespace,
                        shell_quote(&b.service),
                        shell_quote(&format!("service.beta.kubernetes.io/aws-load-balancer-{nlb_annotation}={value}"))
                    ),
                    None,
                )
            }
            None => {
                let flag = if redirects {
                    "--matcher HttpCode=200-399".to_string()
                } else {
                    format!("--health-check-path {}", shell_quote(&value))
                };
                (
                    format!(
                        "aws elbv2 modify-target-group --target-group-arn {} {flag}",
                        tg.target_group_arn
                    ),
                    None,
                )
            }
        };
        Ok(vec![Finding::new(
            META.id,
            Severity::Critical,
            tg.target_group_arn.clone(),
            if grpc {
                format!(
                    "gRPC health check {path} answers gRPC status [{codes_text}] but the matcher accepts gRPC codes {matcher} on {} target(s)",
                    targets.len()
                )
            } else {
                format!(
                    "health check {} {path} answers [{codes_text}] but the matcher accepts {matcher} on {} target(s)",
                    tg.health_check_protocol.as_deref().unwrap_or("HTTP"),
                    targets.len()
                )
            },
        )
        .with_targets(ids)
        .with_evidence(json!({
            "healthCheckPath": path,
            "matcher": matcher,
            "matcherKind": if grpc { "GrpcCode" } else { "HttpCode" },
            "codes": codes,
            "targets": targets,
            "probeResults": probes.len(),
            "readinessProbePath": readiness_path,
        }))
        .with_fix(fix, fix_id)
        .with_action(action)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixtures::{fires, quiet, scenario};

    #[test]
    fn fires_on_404_from_the_health_check_path() {
        let findings = fires(
            &HealthCheckResponseMismatch,
            &scenario("health-check-response-mismatch"),
        );
        let f = &findings[0];
        assert_eq!(f.evidence["codes"], json!([404]));
        assert_eq!(f.evidence["healthCheckPath"], "/healthz");
        let fix = f.fix.as_ref().unwrap();
        assert_eq!(fix.fix_id, Some("set-alb-health-check"));
        assert!(
            fix.command.contains("'alb.ingress.kubernetes.io/healthcheck-path=/' "),
            "{}",
            fix.command
        );
    }

    #[test]
    fn quiet_when_targets_are_healthy() {
        quiet(&HealthCheckResponseMismatch, &scenario("healthy"));
        quiet(&HealthCheckResponseMismatch, &scenario("named-target-port-tg-port-1"));
    }

    #[test]
    fn the_fix_patches_the_service_when_it_holds_the_effective_annotation() {
        let f = &fires(
            &HealthCheckResponseMismatch,
            &scenario("service-healthcheck-annotation-override"),
        )[0];
        let fix = f.fix.as_ref().unwrap();
        assert!(
            fix.command
                .starts_with("kubectl -n default annotate service 'alb-instance'"),
            "{}",
            fix.command
        );
        match fix.action.as_ref().unwrap() {
            FixAction::PatchObject {
                resource_kind, expect, ..
            } => {
                assert_eq!(*resource_kind, "Service");
                assert_eq!(
                    expect["/metadata/annotations/alb.ingress.kubernetes.io~1healthcheck-path"],
                    json!("/healthz"),
                    "the precondition is the Service's current value"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_nlb_reports_wrong_codes_as_failed_health_checks() {
        let f = &fires(&HealthCheckResponseMismatch, &scenario("nlb-http-health-check-404"))[0];
        assert_eq!(f.evidence["codes"], json!([404]));
        assert_eq!(f.targets.len(), 2);
    }

    #[test]
    fn grpc_is_judged_against_its_grpc_matcher() {
        let f = &fires(&HealthCheckResponseMismatch, &scenario("grpc-health-check-code"))[0];
        assert_eq!(f.evidence["matcherKind"], "GrpcCode");
        assert_eq!(f.evidence["matcher"], "0");
        assert!(f.fix.as_ref().unwrap().fix_id.is_none(), "no catalogue fix for gRPC");
        // Answering 0 where 0 is expected is healthy, whatever HTTP would say.
        let mut snap = scenario("grpc-health-check-code");
        if let crate::snapshot::Collected::Present(health) = &mut snap.aws.target_health {
            for t in health.iter_mut() {
                t.target_health = Default::default();
                t.target_health.state = "healthy".into();
            }
        }
        quiet(&HealthCheckResponseMismatch, &snap);
    }

    #[test]
    fn matcher_and_code_parsing() {
        assert!(matcher_accepts("200-399", 302));
        assert!(matcher_accepts("200,302", 302));
        assert!(!matcher_accepts("200", 404));
        assert_eq!(
            codes_in("Health checks failed with these codes: [404, 502]"),
            vec![404, 502]
        );
        assert!(codes_in("Health checks failed").is_empty());
    }
}
