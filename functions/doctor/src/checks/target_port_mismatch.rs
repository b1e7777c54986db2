//! `target-port-mismatch`: the Service sends traffic to a `targetPort` the pods do not
//! answer on.
//!
//! # What it checks
//! The Service port the target group serves and its `targetPort` (a number, a name, or
//! unset meaning "same as port"), resolved per selected pod as Kubernetes resolves it:
//! - a **named** `targetPort` that no container of a pod declares: Kubernetes creates no
//!   endpoint for that pod (the EndpointSlice controller skips it), so it is never a target;
//! - a **numeric** `targetPort` needs no declaration: declared container ports are
//!   informational, and an application may listen on an undeclared port (a sidecar's
//!   declared ports say nothing about the app). A number that the application containers do
//!   not declare (ports, or their readiness / liveness probe ports; sidecars left out) is only
//!   a hint, and only when the health checks fail by refusal or time-out: a healthy target
//!   proves the port answers, and the check stays quiet.
//!
//! The evidence decides the severity and the fix: the health-check replay refusing on the
//! current port while a direct probe of the pods answers on exactly one other port is
//! proof (critical, unattended fix); a passing readiness probe on exactly one other port
//! vouches for it (warning, fix for approval); declarations alone give a warning and the
//! command to find out. Targets concerned: IP targets of the pods concerned; every instance
//! target (each node forwards to the same `targetPort`).
//!
//! # Why it matters
//! Traffic is forwarded to `podIP:targetPort`. If nothing listens there the connection is
//! refused, and every health check fails although the pods are Running and Ready (their
//! readiness probe checks the right port). Endpoints still list the pods, which hides it.
//!
//! # Example
//! Bad: `targetPort: 8080`, the app listens on 80; the replay is refused on 8080 and answers
//! on 80. Good: `targetPort: 80`, or `targetPort: http` with a container port named `http`;
//! also good: `targetPort: 80` with no declared port and an Istio sidecar declaring 15090,
//! the targets healthy.
//!
//! # Fix safety
//! Catalogue fix `set-target-port`: patch the Service port's `targetPort` to the port the
//! pods answer on. Unattended only when the replay proved it (current port refused, exactly
//! one candidate answered); for approval when only the readiness probe vouches for the
//! candidate; otherwise no fix, only the command that finds out.
//!
//! # References
//! - <https://repost.aws/knowledge-center/eks-resolve-failed-health-check-alb-nlb> (targetPort vs containerPort)
//! - <https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/pod-v1/#ports> (container ports are informational)
//! - <https://kubernetes.io/docs/concepts/services-networking/service/#field-spec-ports>

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{json, Map};

use super::{is_pod_ready, pod_ips, pod_name, shell_quote, Check, CheckContext, CheckMeta, FixSafety, Inconclusive};
use crate::finding::{k8s_resource, Finding, FixAction, Severity};
use crate::kubernetes;
use crate::resolve::port_text;
use crate::snapshot::ProbeOutcome;

pub struct TargetPortMismatch;

static META: CheckMeta = CheckMeta {
    id: "target-port-mismatch",
    title: "Service targetPort matches no containerPort",
    runbook_step: "targetPort",
    fix: FixSafety::Unattended("set-target-port"),
};

/// Reasons that mean "could not connect" (a closed port), as opposed to a wrong answer.
const CONNECT_REASONS: &[&str] = &["Target.FailedHealthChecks", "Target.Timeout"];

/// What the probes and the pods say about one candidate port.
struct Evidence {
    /// The health-check replay or a direct pod probe was refused on the current port.
    current_refused: bool,
    /// Candidate ports a direct pod probe answered on.
    answered: BTreeSet<i32>,
    /// Candidate ports a passing readiness probe checks.
    readiness: BTreeSet<i32>,
}

impl Check for TargetPortMismatch {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    fn run(&self, cx: &CheckContext<'_>) -> Result<Vec<Finding>, Inconclusive> {
        let backend = cx.backend()?;
        let port = cx.service_port()?;
        let pods = cx.selected_pods()?;
        if pods.is_empty() {
            return Err(Inconclusive::new(
                "the Service selects no pod, so there is no container to compare",
            ));
        }
        let target = port.target_port.clone().unwrap_or(IntOrString::Int(port.port));
        let ns = &backend.namespace;
        let ip_mode = cx.target_type()? == "ip";
        let registered = cx.all_target_ids();
        let service = cx.service()?;
        let index = service
            .spec
            .as_ref()
            .and_then(|s| s.ports.as_ref())
            .and_then(|ps| ps.iter().position(|p| p == port))
            .unwrap_or(0);
        let pod_targets = |ps: &[&Pod]| -> Vec<String> {
            if ip_mode {
                ps.iter()
                    .flat_map(|p| pod_ips(p))
                    .filter(|ip| registered.iter().any(|r| r == ip))
                    .map(str::to_string)
                    .collect()
            } else {
                registered.clone()
            }
        };

        if let IntOrString::String(name) = &target {
            let unresolved: Vec<&Pod> = pods
                .iter()
                .copied()
                .filter(|p| kubernetes::resolve_target_port(p, &target).is_none())
                .collect();
            if unresolved.is_empty() {
                return Ok(vec![]); // each pod declares the name (possibly as different numbers)
            }
            let all = unresolved.len() == pods.len();
            let declared: BTreeSet<i32> = unresolved.iter().flat_map(|p| kubernetes::app_ports(p)).collect();
            let finding = Finding::new(
                META.id,
                if all { Severity::Critical } else { Severity::Warning },
                k8s_resource(ns, "Service", &backend.service),
                format!(
                    "Service {ns}/{} port {} targets the named port {name:?}, which {} of {} selected pods do not declare: Kubernetes creates no endpoint for them ({})",
                    backend.service,
                    port.port,
                    unresolved.len(),
                    pods.len(),
                    unresolved.iter().map(|p| pod_name(p)).collect::<Vec<_>>().join(", ")
                ),
            )
            .with_targets(if all && !ip_mode { registered.clone() } else { pod_targets(&unresolved) })
            .with_evidence(json!({
                "servicePort": port.port,
                "targetPort": name,
                "podsWithoutThePort": unresolved.iter().map(|p| pod_name(p)).collect::<Vec<_>>(),
                "declaredAppPorts": declared,
            }));
            return Ok(vec![self.offer_fix(
                cx,
                finding,
                &target,
                index,
                port.port,
                port.protocol.as_deref(),
                &pods,
                true,
            )]);
        }

        // Numeric: a healthy target on the traffic port proves the port answers.
        let IntOrString::Int(number) = target else {
            return Ok(vec![]);
        };
        let targets = cx.targets()?;
        let checks_traffic_port = cx
            .target_group()?
            .health_check_port
            .as_deref()
            .is_none_or(|p| p == "traffic-port");
        if checks_traffic_port && targets.iter().any(|t| t.state() == "healthy") {
            return Ok(vec![]);
        }
        let declared: BTreeSet<i32> = pods.iter().flat_map(|p| kubernetes::app_ports(p)).collect();
        if declared.contains(&number) {
            return Ok(vec![]);
        }
        let evidence = self.evidence(cx, number, &pods);
        let failing_connect: Vec<String> = cx
            .failing_targets()?
            .iter()
            .filter(|t| t.reason().is_some_and(|r| CONNECT_REASONS.contains(&r)))
            .map(|t| t.id().to_string())
            .collect();
        if failing_connect.is_empty() && !evidence.current_refused {
            return Ok(vec![]); // nothing fails to connect: an undeclared port is fine
        }
        let severity = if evidence.current_refused && evidence.answered.len() == 1 {
            Severity::Critical
        } else {
            Severity::Warning
        };
        let concerned: Vec<String> = if ip_mode {
            failing_connect.clone()
        } else {
            registered.clone()
        };
        let finding = Finding::new(
            META.id,
            severity,
            k8s_resource(ns, "Service", &backend.service),
            format!(
                "Service {ns}/{} port {} sends traffic to targetPort {number}, which the application containers do not declare ({}){}",
                backend.service,
                port.port,
                if declared.is_empty() {
                    "they declare no port".to_string()
                } else {
                    format!("they declare {}", declared.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", "))
                },
                match (evidence.current_refused, evidence.answered.iter().next()) {
                    (true, Some(c)) if evidence.answered.len() == 1 => format!(": the replay is refused on {number} and the pods answer on {c}"),
                    (true, _) => format!(": the replay is refused on {number}"),
                    _ => ": health checks fail to connect; declared ports are informational, so confirm with the command below".to_string(),
                }
            ),
        )
        .with_targets(concerned)
        .with_evidence(json!({
            "servicePort": port.port,
            "targetPort": number,
            "declaredAppPorts": declared,
            "replayRefusedOnTargetPort": evidence.current_refused,
            "podProbesAnsweredOn": evidence.answered,
            "readinessProbePorts": evidence.readiness,
            "failingToConnect": failing_connect,
        }));
        Ok(vec![self.offer_fix(
            cx,
            finding,
            &target,
            index,
            port.port,
            port.protocol.as_deref(),
            &pods,
            false,
        )])
    }
}

impl TargetPortMismatch {
    fn evidence(&self, cx: &CheckContext<'_>, current: i32, pods: &[&Pod]) -> Evidence {
        let checks_traffic_port = cx
            .target_group()
            .ok()
            .and_then(|tg| tg.health_check_port.as_deref())
            .is_none_or(|p| p == "traffic-port");
        let target_refused =
            checks_traffic_port && cx.probe_results().iter().any(|p| p.outcome == ProbeOutcome::Refused);
        let pod_probes = cx.pod_probe_results();
        let pod_refused = pod_probes
            .iter()
            .any(|p| i32::from(p.port) == current && p.outcome == ProbeOutcome::Refused);
        let answered = pod_probes
            .iter()
            .filter(|p| i32::from(p.port) != current && p.outcome == ProbeOutcome::Response)
            .map(|p| i32::from(p.port))
            .collect();
        let readiness = pods
            .iter()
            .filter(|p| is_pod_ready(p))
            .filter_map(|p| kubernetes::readiness_probe_port(p))
            .filter(|p| *p != current)
            .collect();
        Evidence {
            current_refused: target_refused || pod_refused,
            answered,
            readiness,
        }
    }

    /// Attaches the `set-target-port` fix when one candidate port is known, with the proof
    /// the evidence gives (see the module docs).
    #[allow(clippy::too_many_arguments)]
    fn offer_fix(
        &self,
        cx: &CheckContext<'_>,
        finding: Finding,
        current: &IntOrString,
        index: usize,
        service_port: i32,
        protocol: Option<&str>,
        pods: &[&Pod],
        named: bool,
    ) -> Finding {
        let Ok(backend) = cx.backend() else { return finding };
        let ns = &backend.namespace;
        let number = match current {
            IntOrString::Int(n) => *n,
            IntOrString::String(_) => -1,
        };
        let evidence = self.evidence(cx, number, pods);
        let (candidate, unattended, proof) = if evidence.current_refused && evidence.answered.len() == 1 {
            let c = evidence.answered.iter().next().copied();
            (
                c,
                true,
                format!(
                    "the replay was refused on targetPort {} and a direct probe of the pods answered only on {}",
                    port_text(current),
                    c.unwrap_or_default()
                ),
            )
        } else if evidence.answered.len() == 1 {
            let c = evidence.answered.iter().next().copied();
            (
                c,
                false,
                format!(
                    "a direct probe of the pods answered on {}, but nothing showed the current port refusing",
                    c.unwrap_or_default()
                ),
            )
        } else if evidence.readiness.len() == 1 && (named || evidence.answered.is_empty()) {
            let c = evidence.readiness.iter().next().copied();
            (
                c,
                false,
                format!(
                    "the pods' passing readiness probe checks port {}; no replay proved it, so a person approves",
                    c.unwrap_or_default()
                ),
            )
        } else {
            (None, false, String::new())
        };
        let Some(value) = candidate else {
            let pod = pods.first().map(|p| pod_name(p)).unwrap_or("POD");
            return finding.with_fix(
                format!(
                    "kubectl -n {ns} exec {} -- sh -c 'ss -ltnp || netstat -ltnp'  # which port does the app listen on?",
                    shell_quote(pod)
                ),
                None,
            );
        };
        let patch =
            json!([{ "op": "replace", "path": format!("/spec/ports/{index}/targetPort"), "value": value }]).to_string();
        // Strategic merge keyed by port number: the one Service port changes, the others stay.
        let mut port_patch = json!({ "port": service_port, "targetPort": value });
        if let Some(protocol) = protocol {
            port_patch["protocol"] = json!(protocol);
        }
        finding
            .with_fix(
                format!(
                    "kubectl -n {ns} patch service {} --type=json -p {}",
                    shell_quote(&backend.service),
                    shell_quote(&patch)
                ),
                META.fix.fix_id(),
            )
            .with_action(FixAction::PatchObject {
                api_version: "v1",
                resource_kind: "Service",
                namespace: ns.clone(),
                name: backend.service.clone(),
                patch: json!({ "spec": { "ports": [port_patch] } }),
                expect: Map::from_iter([
                    (format!("/spec/ports/{index}/port"), json!(service_port)),
                    (
                        format!("/spec/ports/{index}/targetPort"),
                        serde_json::to_value(current).unwrap_or_default(),
                    ),
                ]),
            })
            .with_proof(unattended, proof)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixtures::{fires, pods_mut, quiet, scenario};
    use crate::snapshot::{Collected, ProbeResult};

    fn probe(target: &str, port: u16, outcome: ProbeOutcome, pod: Option<&str>) -> ProbeResult {
        ProbeResult {
            target_id: target.into(),
            address: Some(target.into()),
            port,
            outcome,
            status_code: (outcome == ProbeOutcome::Response).then_some(200),
            pod: pod.map(str::to_string),
            ..Default::default()
        }
    }

    #[test]
    fn fires_with_an_unattended_fix_when_the_replay_proves_it() {
        let findings = fires(&TargetPortMismatch, &scenario("target-port-mismatch"));
        let f = &findings[0];
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(f.evidence["targetPort"], 8080);
        let fix = f.fix.as_ref().unwrap();
        assert_eq!(fix.fix_id, Some("set-target-port"));
        assert_eq!(fix.unattended, Some(true), "{:?}", fix.proof);
        assert!(
            fix.command.contains(r#""path":"/spec/ports/0/targetPort","value":80"#),
            "{}",
            fix.command
        );
    }

    #[test]
    fn without_the_replay_it_is_a_warning_and_the_fix_waits_for_approval() {
        let mut snap = scenario("target-port-mismatch");
        snap.probe = Collected::not_collected("replay off");
        let findings = fires(&TargetPortMismatch, &snap);
        assert_eq!(findings[0].severity, Severity::Warning);
        let fix = findings[0].fix.as_ref().unwrap();
        // The readiness probe on 80 vouches for the candidate: offered, not unattended.
        assert_eq!(fix.fix_id, Some("set-target-port"));
        assert_eq!(fix.unattended, Some(false));
    }

    #[test]
    fn two_answering_ports_mean_no_unattended_fix() {
        let mut snap = scenario("target-port-mismatch");
        if let Collected::Present(results) = &mut snap.probe {
            results.push(probe("192.168.72.31", 9090, ProbeOutcome::Response, Some("default/x")));
        }
        let findings = fires(&TargetPortMismatch, &snap);
        let fix = findings[0].fix.as_ref().unwrap();
        assert_ne!(fix.unattended, Some(true));
    }

    #[test]
    fn quiet_when_target_port_matches() {
        quiet(&TargetPortMismatch, &scenario("healthy"));
    }

    #[test]
    fn quiet_with_an_undeclared_app_port_and_a_sidecar_while_targets_are_healthy() {
        // The issue's example: the app declares no port (it listens on 80 anyway), an
        // Istio-style sidecar declares 15090. Healthy targets prove port 80 answers.
        let mut snap = scenario("healthy");
        for pod in pods_mut(&mut snap) {
            let spec = pod.spec.as_mut().unwrap();
            if spec.containers[0].name != "nginx" {
                continue;
            }
            spec.containers[0].ports = None;
            spec.containers[0].readiness_probe = None;
            spec.containers.push(k8s_openapi::api::core::v1::Container {
                name: "istio-proxy".into(),
                image: Some("docker.io/istio/proxyv2:1.24.1".into()),
                ports: Some(vec![k8s_openapi::api::core::v1::ContainerPort {
                    container_port: 15090,
                    name: Some("http-envoy-prom".into()),
                    ..Default::default()
                }]),
                ..Default::default()
            });
        }
        quiet(&TargetPortMismatch, &snap);
        let report = crate::diagnose(&snap);
        assert!(
            report.findings.iter().all(|f| f.severity != Severity::Critical),
            "{:#?}",
            report.findings
        );
        assert!(report
            .findings
            .iter()
            .all(|f| f.fix.as_ref().and_then(|x| x.fix_id).is_none()));
    }

    #[test]
    fn a_named_port_no_pod_declares_is_critical() {
        let mut snap = scenario("healthy");
        if let Collected::Present(svcs) = &mut snap.kube.services {
            for s in svcs.iter_mut() {
                s.spec.as_mut().unwrap().ports.as_mut().unwrap()[0].target_port =
                    Some(IntOrString::String("web".into()));
            }
        }
        let findings = fires(&TargetPortMismatch, &snap);
        assert_eq!(findings[0].severity, Severity::Critical);
        assert!(findings[0].message.contains("\"web\""), "{}", findings[0].message);
    }
}
