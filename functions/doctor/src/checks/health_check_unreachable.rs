//! `health-check-unreachable`: the health check cannot connect: refused or timed out.
//!
//! # What it checks
//! Unhealthy targets whose reason is `Target.Timeout` (no answer in time) or
//! `Target.FailedHealthChecks` (connection refused / reset, or the NLB's check failed), and
//! health-check replay results (`probe.json`) that were refused, timed out or errored.
//! Targets that are draining, still in their initial checks, or failing by design
//! (`externalTrafficPolicy: Local` checked on `healthCheckNodePort`) are left out.
//! `Elb.InternalError` is the load balancer's own failure (`load-balancer-internal-error`);
//! an NLB's `Target.FailedHealthChecks` that carries response codes answered (a mismatch,
//! `health-check-response-mismatch`). The manual check follows the protocol: `curl -k` for
//! HTTPS (the load balancer does not verify target certificates), `grpcurl` for gRPC.
//! Targets concerned: the failing ones. It is a symptom: a root only for targets no cause
//! explains, and then the report lists them as unexplained with what was not checked.
//!
//! # Why it matters
//! This is the symptom the alarm is about. On its own it says "nothing answers on that
//! port"; ranking places it under the deeper finding that explains it (security group, ACL,
//! kube-proxy, ports, pods). When it is the only finding, the cause is inside the pod or the
//! node (the app not listening on the node's interface, a host firewall, an overloaded node).
//!
//! # Example
//! Bad: `Target.Timeout: Request timed out` on every target. Good: all targets `healthy`.
//!
//! # Fix safety
//! Manual: the report gives the runbook's manual check (`curl` / `nc` to the target on the
//! health-check port, from inside the VPC) to run next.
//!
//! # References
//! - <https://repost.aws/knowledge-center/eks-resolve-failed-health-check-alb-nlb> (manual TCP check)
//! - <https://docs.aws.amazon.com/elasticloadbalancing/latest/application/target-group-health-checks.html#target-health-reason-codes>

use serde_json::json;

use super::health_check_response_mismatch::{answered_with_a_code, is_grpc};
use super::{shell_quote, Check, CheckContext, CheckMeta, FixSafety, Inconclusive};
use crate::finding::{Finding, Severity};
use crate::snapshot::ProbeOutcome;

pub struct HealthCheckUnreachable;

static META: CheckMeta = CheckMeta {
    id: "health-check-unreachable",
    title: "Health check refused or timed out",
    runbook_step: "manual check, TCP",
    fix: FixSafety::Manual,
};

const CONNECT_REASONS: &[&str] = &["Target.Timeout", "Target.FailedHealthChecks"];

impl Check for HealthCheckUnreachable {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    fn run(&self, cx: &CheckContext<'_>) -> Result<Vec<Finding>, Inconclusive> {
        let tg = cx.target_group()?;
        let all = cx.targets()?;
        // An NLB's FailedHealthChecks with codes answered: health-check-response-mismatch.
        let failing: Vec<_> = cx
            .failing_targets()?
            .into_iter()
            .filter(|t| t.reason().is_some_and(|r| CONNECT_REASONS.contains(&r)))
            .filter(|t| !answered_with_a_code(t.reason(), t.health.target_health.description.as_deref()))
            .collect();
        let probes: Vec<_> = cx
            .probe_results()
            .into_iter()
            .filter(|p| p.outcome != ProbeOutcome::Response)
            .collect();
        if failing.is_empty() && probes.is_empty() {
            return Ok(vec![]);
        }
        let protocol = tg.health_check_protocol.as_deref().unwrap_or("TCP");
        let path = tg.health_check_path.as_deref().unwrap_or("/");
        let mut reasons: Vec<&str> = failing.iter().filter_map(|t| t.reason()).collect();
        reasons.sort();
        reasons.dedup();
        let first = failing.first();
        let address = first
            .map(|t| match (t.instance, cx.target_type().unwrap_or("instance")) {
                (Some(i), "instance") => i.private_ip_address.clone().unwrap_or_else(|| t.id().to_string()),
                _ => t.id().to_string(),
            })
            .or_else(|| {
                probes
                    .first()
                    .map(|p| p.address.clone().unwrap_or_else(|| p.target_id.clone()))
            })
            .unwrap_or_default();
        let port = first
            .and_then(|t| cx.health_check_port(t.health))
            .or_else(|| probes.first().map(|p| p.port))
            .map_or("?".to_string(), |p| p.to_string());
        // An IPv6 address in a URL or host:port takes brackets; nc takes it bare.
        let host = if address.contains(':') {
            format!("[{address}]")
        } else {
            address.clone()
        };
        // The load balancer does not verify the target's certificate: neither does `-k`.
        let manual = if is_grpc(tg) {
            format!("grpcurl -plaintext -max-time 5 {host}:{port} list")
        } else if protocol == "HTTPS" {
            format!(
                "curl -skv --max-time 5 {}",
                shell_quote(&format!("https://{host}:{port}{path}"))
            )
        } else if protocol == "HTTP" {
            format!(
                "curl -sv --max-time 5 {}",
                shell_quote(&format!("http://{host}:{port}{path}"))
            )
        } else {
            format!("nc -vz -w 5 {address} {port}")
        };
        let count = failing.len().max(probes.len());
        let detail = if reasons.is_empty() {
            "the health-check replay could not connect".to_string()
        } else {
            reasons.join(", ")
        };
        Ok(vec![Finding::new(
            META.id,
            Severity::Critical,
            tg.target_group_arn.clone(),
            format!(
                "{count} of {} target(s) fail the {protocol} health check on port {port}: {detail}",
                all.len()
            ),
        )
        .with_targets(
            failing
                .iter()
                .map(|t| t.id().to_string())
                .chain(probes.iter().map(|p| p.target_id.clone())),
        )
        .with_evidence(json!({
            "healthCheckProtocol": protocol,
            "healthCheckPort": tg.health_check_port,
            "targets": failing.iter().map(|t| json!({
                "id": t.id(),
                "node": t.node_name(),
                "reason": t.reason(),
                "description": t.health.target_health.description,
            })).collect::<Vec<_>>(),
            "probe": probes.iter().map(|p| json!({
                "target": p.target_id, "port": p.port, "outcome": p.outcome, "detail": p.detail,
            })).collect::<Vec<_>>(),
        }))
        .with_fix(format!("{manual}  # from a host or pod inside the VPC"), None)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixtures::{fires, quiet, scenario};

    #[test]
    fn fires_on_timeouts() {
        let findings = fires(&HealthCheckUnreachable, &scenario("health-check-unreachable"));
        assert!(findings[0].message.starts_with("2 of 2"), "{}", findings[0].message);
        assert!(
            findings[0].message.contains("Target.Timeout"),
            "{}",
            findings[0].message
        );
        assert!(findings[0]
            .fix
            .as_ref()
            .unwrap()
            .command
            .starts_with("curl -sv --max-time 5 'http://192.168."));
    }

    #[test]
    fn quiet_when_healthy() {
        quiet(&HealthCheckUnreachable, &scenario("healthy"));
    }

    #[test]
    fn quiet_when_failing_by_design() {
        quiet(&HealthCheckUnreachable, &scenario("nlb-local-by-design"));
    }

    #[test]
    fn quiet_when_an_nlb_target_answered_with_a_wrong_code() {
        quiet(&HealthCheckUnreachable, &scenario("nlb-http-health-check-404"));
    }

    #[test]
    fn an_https_check_is_tried_without_verifying_the_certificate() {
        let mut snap = scenario("health-check-unreachable");
        if let crate::snapshot::Collected::Present(tg) = &mut snap.aws.target_group {
            tg.health_check_protocol = Some("HTTPS".into());
        }
        let f = &fires(&HealthCheckUnreachable, &snap)[0];
        assert!(f.fix.as_ref().unwrap().command.starts_with("curl -skv"), "{:?}", f.fix);
    }
}
