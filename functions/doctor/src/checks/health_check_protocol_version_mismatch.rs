//! `health-check-protocol-version-mismatch`: an HTTP/2 or gRPC target group health-checks a
//! port that speaks HTTP/1.1 only.
//!
//! # What it checks
//! A target group with `ProtocolVersion` `HTTP2` or `GRPC` sends its health checks in that
//! protocol. When its targets fail while the port demonstrably answers HTTP/1.1, the version
//! is the difference: the health-check replay (HTTP/1.1) got an answer the matcher accepts
//! (HTTP2), or, for gRPC, the replay got a plain HTTP answer or the pods' own readiness probe
//! is an `httpGet` on that port and nothing (port name, `appProtocol`, a `grpc` probe) says
//! gRPC.
//!
//! # Why it matters
//! `alb.ingress.kubernetes.io/backend-protocol-version: GRPC` (or `HTTP2`) on a Service whose
//! pods speak HTTP/1.1 makes every health check fail although a `curl` from inside the VPC
//! succeeds: the on-call engineer sees a healthy app and unhealthy targets.
//!
//! # Example
//! Bad: target group `ProtocolVersion: GRPC`, health check `/AWS.ALB/healthcheck`, pods serve
//! a REST API on 8080 with an `httpGet` readiness probe. Good: `HTTP1`, or a gRPC server.
//!
//! # Fix safety
//! Manual: the protocol version of a target group cannot change; the controller replaces the
//! target group when the annotation changes. The report gives the annotation.
//!
//! # References
//! - <https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-target-groups.html#target-group-protocol-version>
//! - <https://kubernetes-sigs.github.io/aws-load-balancer-controller/latest/guide/ingress/annotations/#backend-protocol-version>

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::json;

use super::health_check_response_mismatch::answered_with_a_code;
use super::{shell_quote, Check, CheckContext, CheckMeta, FixSafety, Inconclusive};
use crate::finding::{Finding, Severity};
use crate::kubernetes::{app_containers, is_pod_ready, resolve_target_port};
use crate::snapshot::ProbeOutcome;

pub struct HealthCheckProtocolVersionMismatch;

static META: CheckMeta = CheckMeta {
    id: "health-check-protocol-version-mismatch",
    title: "HTTP/2 or gRPC health check on an HTTP/1.1 port",
    runbook_step: "manual check, HTTP",
    fix: FixSafety::Manual,
};

/// Whether a matcher like `200-399` or `200,202` accepts `code`.
fn matcher_accepts(matcher: &str, code: u16) -> bool {
    matcher.split(',').any(|part| match part.trim().split_once('-') {
        Some((lo, hi)) => {
            lo.trim().parse::<u16>().is_ok_and(|lo| lo <= code) && hi.trim().parse::<u16>().is_ok_and(|hi| code <= hi)
        }
        None => part.trim().parse::<u16>() == Ok(code),
    })
}

impl Check for HealthCheckProtocolVersionMismatch {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    fn run(&self, cx: &CheckContext<'_>) -> Result<Vec<Finding>, Inconclusive> {
        let tg = cx.target_group()?;
        let version = match tg.protocol_version.as_deref() {
            Some(v @ ("HTTP2" | "GRPC")) => v,
            _ => return Ok(vec![]),
        };
        // An answer with a code (HTTP or gRPC) means the port spoke the protocol: not this.
        let failing: Vec<_> = cx
            .failing_targets()?
            .into_iter()
            .filter(|t| !answered_with_a_code(t.reason(), t.health.target_health.description.as_deref()))
            .collect();
        if failing.is_empty() {
            return Ok(vec![]);
        }
        let failing_ids: Vec<String> = failing.iter().map(|t| t.id().to_string()).collect();
        let matcher = tg
            .matcher
            .as_ref()
            .and_then(|m| m.http_code.clone())
            .unwrap_or_else(|| "200".into());
        // The replay speaks HTTP/1.1: an accepted answer there is the port speaking it.
        let replay: Vec<_> = cx
            .probe_results()
            .into_iter()
            .filter(|p| failing_ids.contains(&p.target_id) && p.outcome == ProbeOutcome::Response)
            .filter(|p| p.status_code.is_some())
            .collect();
        let replay_ok: Vec<_> = replay
            .iter()
            .filter(|p| version == "GRPC" || p.status_code.is_some_and(|c| matcher_accepts(&matcher, c)))
            .collect();
        // For gRPC: the pods' own readiness is an HTTP/1.1 GET on the port, and nothing says gRPC.
        let mut http_probe = None;
        if version == "GRPC" && replay_ok.is_empty() {
            let port = cx.service_port().ok();
            let pods = cx.selected_pods().unwrap_or_default();
            let target_port = port.and_then(|p| p.target_port.clone().or(Some(IntOrString::Int(p.port))));
            let grpc_hint = port.is_some_and(|p| {
                p.app_protocol
                    .as_deref()
                    .is_some_and(|a| a.contains("grpc") || a.contains("h2c"))
                    || p.name.as_deref().is_some_and(|n| n.contains("grpc"))
            });
            for pod in pods.iter().filter(|p| is_pod_ready(p)) {
                let Some(tp) = &target_port else { break };
                let Some(port) = resolve_target_port(pod, tp) else {
                    continue;
                };
                let Some(spec) = &pod.spec else { continue };
                for c in app_containers(spec) {
                    let grpc_named = c
                        .ports
                        .iter()
                        .flatten()
                        .any(|p| p.container_port == port && p.name.as_deref().is_some_and(|n| n.contains("grpc")));
                    let Some(probe) = &c.readiness_probe else { continue };
                    if probe.grpc.is_some() || grpc_named || grpc_hint {
                        continue;
                    }
                    let on_port = probe.http_get.as_ref().is_some_and(|h| match &h.port {
                        IntOrString::Int(n) => *n == port,
                        IntOrString::String(name) => {
                            resolve_target_port(pod, &IntOrString::String(name.clone())) == Some(port)
                        }
                    });
                    if on_port {
                        http_probe = Some(format!(
                            "pod {}'s readiness probe is an HTTP/1.1 GET {} on port {port}, and it is Ready",
                            pod.metadata.name.as_deref().unwrap_or_default(),
                            probe
                                .http_get
                                .as_ref()
                                .and_then(|h| h.path.clone())
                                .unwrap_or_else(|| "/".into())
                        ));
                    }
                }
                if http_probe.is_some() {
                    break;
                }
            }
        }
        if replay_ok.is_empty() && http_probe.is_none() {
            return Ok(vec![]);
        }
        let evidence_text = match replay_ok.first() {
            Some(p) => format!(
                "the HTTP/1.1 replay of the health check got {} from {}",
                p.status_code.unwrap_or_default(),
                p.address.as_deref().unwrap_or(&p.target_id)
            ),
            None => http_probe.clone().unwrap_or_default(),
        };
        let backend = cx.backend()?;
        let (object, ns) = match &backend.ingress {
            Some(ing) => (format!("ingress/{ing}"), backend.namespace.clone()),
            None => (format!("service/{}", backend.service), backend.namespace.clone()),
        };
        Ok(vec![Finding::new(
            META.id,
            Severity::Critical,
            cx.arn(),
            format!(
                "the target group health-checks with {} but the port speaks HTTP/1.1: {evidence_text}; the load balancer's {} health checks fail on {} target(s)",
                if version == "GRPC" { "gRPC" } else { "HTTP/2" },
                version,
                failing_ids.len()
            ),
        )
        .with_targets(failing_ids.clone())
        .with_evidence(json!({
            "protocolVersion": version,
            "healthCheckPath": tg.health_check_path,
            "matcher": tg.matcher,
            "replay": replay_ok.iter().map(|p| json!({"target": p.target_id, "status": p.status_code})).collect::<Vec<_>>(),
            "readinessProbe": http_probe,
        }))
        .with_fix(
            format!(
                "kubectl -n {} annotate {} {} --overwrite",
                shell_quote(&ns),
                shell_quote(&object),
                shell_quote("alb.ingress.kubernetes.io/backend-protocol-version=HTTP1")
            ),
            None,
        )])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixtures::{fires, quiet, scenario};

    #[test]
    fn matchers_accept_ranges_and_lists() {
        assert!(matcher_accepts("200-399", 302));
        assert!(matcher_accepts("200,202", 202));
        assert!(!matcher_accepts("200", 404));
    }

    #[test]
    fn fires_for_grpc_on_an_http_port() {
        let findings = fires(
            &HealthCheckProtocolVersionMismatch,
            &scenario("health-check-protocol-version-mismatch"),
        );
        assert!(findings[0].message.contains("gRPC"), "{}", findings[0].message);
        assert_eq!(findings[0].targets.len(), 2);
    }

    #[test]
    fn quiet_for_http1_and_for_a_real_grpc_service() {
        quiet(&HealthCheckProtocolVersionMismatch, &scenario("healthy"));
        quiet(&HealthCheckProtocolVersionMismatch, &scenario("grpc-health-check-code"));
    }
}
