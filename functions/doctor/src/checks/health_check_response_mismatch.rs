//! `health-check-response-mismatch`: the health-check path answers with a status code the
//! target group's matcher does not accept.
//!
//! # What it checks
//! Unhealthy targets whose reason is `Target.ResponseCodeMismatch` (the codes are read from
//! the description, e.g. `Health checks failed with these codes: [404]`), and health-check
//! replay results (`probe.json`) whose HTTP status falls outside the matcher.
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
//! Catalogue fix `set-alb-health-check` (Ingress annotations `healthcheck-path` /
//! `success-codes`), approval only: the suggested path is the pods' own readiness-probe
//! path when they have one, which is known to answer while the pod is Ready.
//!
//! # References
//! - <https://repost.aws/knowledge-center/eks-resolve-failed-health-check-alb-nlb> (manual check with curl)
//! - <https://docs.aws.amazon.com/elasticloadbalancing/latest/application/target-group-health-checks.html#target-health-reason-codes>

use serde_json::{json, Map};

use super::{Check, CheckContext, CheckMeta, FixSafety, Inconclusive};
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
        let matcher = tg
            .matcher
            .as_ref()
            .and_then(|m| m.http_code.clone())
            .unwrap_or_else(|| "200".into());
        let path = tg.health_check_path.clone().unwrap_or_else(|| "/".into());
        let mut codes: Vec<u16> = Vec::new();
        let mut targets: Vec<String> = Vec::new();
        let mut ids: Vec<String> = Vec::new();
        for t in cx.failing_targets()? {
            if t.reason() == Some("Target.ResponseCodeMismatch") {
                codes.extend(codes_in(t.health.target_health.description.as_deref().unwrap_or("")));
                targets.push(t.label());
                ids.push(t.id().to_string());
            }
        }
        let probes: Vec<_> = cx
            .probe_results()
            .into_iter()
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
            Some(b) if b.ingress.is_some() => {
                let ingress = b.ingress.clone().unwrap_or_default();
                let key = format!("alb.ingress.kubernetes.io/{annotation}");
                let current = cx.snapshot.kube.ingresses.present().and_then(|list| {
                    list.iter()
                        .find(|i| {
                            i.metadata.name.as_deref() == Some(&ingress)
                                && i.metadata.namespace.as_deref() == Some(&b.namespace)
                        })
                        .and_then(|i| i.metadata.annotations.as_ref()?.get(&key).cloned())
                });
                action = Some(FixAction::PatchObject {
                    api_version: "networking.k8s.io/v1",
                    resource_kind: "Ingress",
                    namespace: b.namespace.clone(),
                    name: ingress.clone(),
                    patch: json!({ "metadata": { "annotations": { &key: value } } }),
                    expect: Map::from_iter([(
                        format!("/metadata/annotations/{}", key.replace('~', "~0").replace('/', "~1")),
                        json!(current),
                    )]),
                });
                (
                    format!(
                        "kubectl -n {} annotate ingress {ingress} {key}={value} --overwrite",
                        b.namespace
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
                        "kubectl -n {} annotate service {} service.beta.kubernetes.io/aws-load-balancer-{nlb_annotation}={value} --overwrite",
                        b.namespace, b.service
                    ),
                    None,
                )
            }
            None => {
                let flag = if redirects {
                    "--matcher HttpCode=200-399".to_string()
                } else {
                    format!("--health-check-path {value}")
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
            format!(
                "health check {} {path} answers [{codes_text}] but the matcher accepts {matcher} on {} target(s)",
                tg.health_check_protocol.as_deref().unwrap_or("HTTP"),
                targets.len()
            ),
        )
        .with_targets(ids)
        .with_evidence(json!({
            "healthCheckPath": path,
            "matcher": matcher,
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
            fix.command.contains("alb.ingress.kubernetes.io/healthcheck-path=/ "),
            "{}",
            fix.command
        );
    }

    #[test]
    fn quiet_when_targets_are_healthy() {
        quiet(&HealthCheckResponseMismatch, &scenario("healthy"));
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
