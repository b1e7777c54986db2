//! `target-port-mismatch`: the Service `targetPort` matches no `containerPort` of the pods.
//!
//! # What it checks
//! The Service port the target group serves: its `targetPort` (a number, a name, or unset
//! meaning "same as port") against the declared container ports of every selected pod.
//! A numeric targetPort must equal some `containerPort`; a named one must equal a port name.
//!
//! # Why it matters
//! Traffic is forwarded to `podIP:targetPort`. If nothing listens there the connection is
//! refused, and every health check fails although the pods are Running and Ready (their
//! readiness probe checks the right port). Endpoints still list the pods, which hides it.
//!
//! # Example
//! Bad: `targetPort: 8080`, `containerPort: 80`. Good: `targetPort: 80` or `targetPort: http`
//! with a container port named `http`.
//!
//! # Fix safety
//! Catalogue fix `set-target-port`: patch the Service port's `targetPort` to the one container
//! port the pods expose; may run unattended only when there is exactly one candidate,
//! otherwise the report lists the candidates and leaves the choice to a person.
//!
//! # References
//! - <https://repost.aws/knowledge-center/eks-resolve-failed-health-check-alb-nlb> (targetPort vs containerPort)
//! - <https://kubernetes.io/docs/concepts/services-networking/service/#field-spec-ports>

use std::collections::BTreeSet;

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{json, Map};

use super::{container_ports, shell_quote, Check, CheckContext, CheckMeta, FixSafety, Inconclusive};
use crate::finding::{k8s_resource, Finding, FixAction, Severity};
use crate::resolve::port_text;

pub struct TargetPortMismatch;

static META: CheckMeta = CheckMeta {
    id: "target-port-mismatch",
    title: "Service targetPort matches no containerPort",
    runbook_step: "targetPort",
    fix: FixSafety::Unattended("set-target-port"),
};

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
                "the Service selects no pod, so there is no containerPort to compare",
            ));
        }
        let declared: BTreeSet<(Option<&str>, i32)> = pods.iter().flat_map(|p| container_ports(p)).collect();
        if declared.is_empty() {
            return Err(Inconclusive::new(
                "the selected pods declare no containerPort (declaring ports is optional, so a listener cannot be ruled out)",
            ));
        }
        let target = port.target_port.clone().unwrap_or(IntOrString::Int(port.port));
        let matches = match &target {
            IntOrString::Int(n) => declared.iter().any(|(_, p)| p == n),
            IntOrString::String(name) => declared.iter().any(|(n, _)| *n == Some(name.as_str())),
        };
        if matches {
            return Ok(vec![]);
        }
        let numbers: BTreeSet<i32> = declared.iter().map(|(_, n)| *n).collect();
        let ns = &backend.namespace;
        let index = cx
            .service()?
            .spec
            .as_ref()
            .and_then(|s| s.ports.as_ref())
            .and_then(|ps| ps.iter().position(|p| p == port))
            .unwrap_or(0);
        let declared_text: Vec<String> = declared
            .iter()
            .map(|(n, p)| n.map_or(p.to_string(), |n| format!("{p} ({n})")))
            .collect();
        let finding = Finding::new(
            META.id,
            Severity::Critical,
            k8s_resource(ns, "Service", &backend.service),
            format!(
                "Service {ns}/{} port {} sends traffic to targetPort {} but the selected pods expose containerPort {}",
                backend.service,
                port.port,
                port_text(&target),
                declared_text.join(", ")
            ),
        )
        .with_evidence(json!({
            "servicePort": port.port,
            "targetPort": port_text(&target),
            "containerPorts": declared.iter().map(|(n, p)| json!({ "name": n, "containerPort": p })).collect::<Vec<_>>(),
            "candidates": numbers,
        }));
        Ok(vec![if numbers.len() == 1 {
            let value = *numbers.iter().next().unwrap_or(&port.port);
            let patch = json!([{ "op": "replace", "path": format!("/spec/ports/{index}/targetPort"), "value": value }])
                .to_string();
            // Strategic merge keyed by port number: the one Service port changes, the others stay.
            let mut port_patch = json!({ "port": port.port, "targetPort": value });
            if let Some(protocol) = &port.protocol {
                port_patch["protocol"] = json!(protocol);
            }
            finding
                .with_fix(
                    format!(
                        "kubectl -n {ns} patch service {} --type=json -p {}",
                        backend.service,
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
                        (format!("/spec/ports/{index}/port"), json!(port.port)),
                        (
                            format!("/spec/ports/{index}/targetPort"),
                            serde_json::to_value(&target).unwrap_or_default(),
                        ),
                    ]),
                })
        } else {
            finding.with_fix(
                format!(
                    "kubectl -n {ns} edit service {}  # set spec.ports[{index}].targetPort to one of {}",
                    backend.service,
                    numbers.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(", ")
                ),
                None,
            )
        }])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixtures::{fires, pods_mut, quiet, scenario};

    #[test]
    fn fires_on_8080_vs_80_with_the_single_candidate_fix() {
        let findings = fires(&TargetPortMismatch, &scenario("target-port-mismatch"));
        let f = &findings[0];
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(f.evidence["targetPort"], "8080");
        let fix = f.fix.as_ref().unwrap();
        assert_eq!(fix.fix_id, Some("set-target-port"));
        assert!(
            fix.command.contains(r#""path":"/spec/ports/0/targetPort","value":80"#),
            "{}",
            fix.command
        );
    }

    #[test]
    fn two_candidates_means_no_unattended_fix() {
        let mut snap = scenario("target-port-mismatch");
        for pod in pods_mut(&mut snap) {
            let c = &mut pod.spec.as_mut().unwrap().containers[0];
            c.ports
                .get_or_insert_with(Vec::new)
                .push(k8s_openapi::api::core::v1::ContainerPort {
                    container_port: 9090,
                    name: Some("metrics".into()),
                    ..Default::default()
                });
        }
        let findings = fires(&TargetPortMismatch, &snap);
        assert_eq!(findings[0].fix.as_ref().unwrap().fix_id, None);
    }

    #[test]
    fn quiet_when_target_port_matches() {
        quiet(&TargetPortMismatch, &scenario("healthy"));
    }
}
