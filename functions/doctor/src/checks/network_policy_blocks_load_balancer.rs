//! `network-policy-blocks-load-balancer`: a NetworkPolicy isolates the target pods and admits
//! neither the load balancer's addresses nor every source on the health-check port.
//!
//! # What it checks
//! IP targets receive the load balancer's packets on the pod itself, so the NetworkPolicies
//! of the pod's namespace decide them (as [`crate::dataplane::evaluate_policies`] does: a pod
//! isolated for ingress by some policy takes a connection only when some rule of some such
//! policy allows it; pod and namespace selectors never match a load balancer, only an
//! `ipBlock` or a rule without `from` does). For each registered pod, the health check from
//! every load balancer address ([`crate::network_path`]), and the traffic port from the load
//! balancer or the declared clients. Who enforces policies is read from the add-ons
//! ([`crate::dataplane::policy_enforcement`]: the VPC CNI network policy agent, Calico,
//! Cilium); policies nothing enforces are inert and not reported.
//!
//! # Why it matters
//! A default-deny policy plus an allow for the app's callers (by pod or namespace selector)
//! silently drops the load balancer, whose packets come from its own addresses: every target
//! fails with `Target.Timeout` while pods, Services and security groups are fine.
//!
//! # Example
//! Bad: `default-deny` (`podSelector: {}`, `policyTypes: [Ingress]`) and `allow-frontend`
//! (`from: [{podSelector: {app: frontend}}]`). Good: another rule `from: [{ipBlock: {cidr:
//! 192.168.0.0/16}}]` on port 80.
//!
//! # Fix safety
//! Manual: a policy is a security decision. The report gives a NetworkPolicy admitting the
//! load balancer's subnets on the port, to review and apply.
//!
//! # References
//! - <https://kubernetes.io/docs/concepts/services-networking/network-policies/>
//! - <https://docs.aws.amazon.com/eks/latest/userguide/cni-network-policy.html>
//! - <https://kubernetes-sigs.github.io/aws-load-balancer-controller/latest/deploy/security_group/>

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;

use super::{pod_name, Check, CheckContext, CheckMeta, FixSafety, Inconclusive};
use crate::dataplane::{evaluate_policies, isolates_for_ingress, policy_enforcement, Enforcement, PolicyVerdict};
use crate::finding::{Finding, Severity};
use crate::network_path::{FlowKind, PathModel, Span};
use crate::target_state::is_failing;

pub struct NetworkPolicyBlocksLoadBalancer;

static META: CheckMeta = CheckMeta {
    id: "network-policy-blocks-load-balancer",
    title: "NetworkPolicy does not admit the load balancer",
    runbook_step: "(beyond)",
    fix: FixSafety::Manual,
};

impl Check for NetworkPolicyBlocksLoadBalancer {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    fn run(&self, cx: &CheckContext<'_>) -> Result<Vec<Finding>, Inconclusive> {
        if cx.target_type()? != "ip" {
            return Ok(vec![]); // instance targets: kube-proxy's source NAT decides what the pod sees
        }
        let ns = cx.backend()?.namespace.clone();
        let policies = cx.scoped("NetworkPolicy", &cx.snapshot.kube.network_policies, &ns, &[])?;
        let enforcement = policy_enforcement(cx);
        if let Enforcement::NotEnforced(_) = enforcement {
            return Ok(vec![]); // inert: nothing drops what they do not allow
        }
        if policies.is_empty() {
            return Ok(vec![]);
        }
        let model = PathModel::new(cx)?;
        let targets = cx.targets()?;
        let mut denied: BTreeMap<String, (Vec<String>, String, u16, FlowKind)> = BTreeMap::new();
        let mut undetermined: BTreeMap<String, String> = BTreeMap::new();
        for t in &targets {
            let Some(pod) = t.pod else { continue };
            if !policies.iter().any(|p| isolates_for_ingress(p, pod)) {
                continue;
            }
            let Ok(end) = model.target_end(t) else { continue };
            for flow in model.flows(t) {
                let sources: Vec<(Span, String, bool)> = match &flow.clients {
                    Some(c) => c.iter().map(|s| (*s, format!("clients {s}"), true)).collect(),
                    None => model
                        .senders(&flow, &end)
                        .into_iter()
                        .map(|a| (a.addresses, a.label(), a.exact()))
                        .collect(),
                };
                for (source, label, exact) in sources {
                    match evaluate_policies(policies, pod, source, flow.protocol, flow.port) {
                        PolicyVerdict::NotIsolated | PolicyVerdict::Allowed { .. } => {}
                        PolicyVerdict::Denied { policies: names } => {
                            let partly = policies
                                .iter()
                                .flat_map(|p| {
                                    p.spec
                                        .iter()
                                        .flat_map(|s| s.ingress.iter().flatten())
                                        .flat_map(|r| r.from.iter().flatten())
                                })
                                .filter_map(|peer| peer.ip_block.as_ref())
                                .filter_map(|b| Span::parse(&b.cidr))
                                .any(|b| b.intersect(source).is_some());
                            if !exact && partly {
                                undetermined.insert(
                                    t.id().to_string(),
                                    format!(
                                        "an ipBlock covers part of {label}: it depends on the load balancer's address"
                                    ),
                                );
                                continue;
                            }
                            denied
                                .entry(t.id().to_string())
                                .or_insert((names, label, flow.port, flow.kind));
                        }
                    }
                }
            }
        }
        if denied.is_empty() {
            if !undetermined.is_empty() {
                return Err(Inconclusive(format!(
                    "the NetworkPolicies could not be decided: {}",
                    undetermined
                        .iter()
                        .map(|(t, w)| format!("{t}: {w}"))
                        .collect::<Vec<_>>()
                        .join("; ")
                )));
            }
            return Ok(vec![]);
        }
        let health_denied: BTreeSet<&String> = denied
            .iter()
            .filter(|(_, (_, _, _, kind))| *kind == FlowKind::HealthCheck)
            .map(|(t, _)| t)
            .collect();
        let failing = targets
            .iter()
            .any(|t| health_denied.contains(&t.id().to_string()) && (is_failing(t.state()) || t.state() == "initial"));
        let Some((names, from, port, kind)) = denied.values().next().cloned() else {
            return Ok(vec![]);
        };
        let enforced = matches!(enforcement, Enforcement::Enforced(_));
        let severity = if failing && enforced {
            Severity::Critical
        } else {
            Severity::Warning
        };
        let selector = cx.selector()?.cloned().unwrap_or_default();
        let cidrs: BTreeSet<String> = model
            .lb_addresses
            .iter()
            .filter_map(|a| {
                cx.snapshot
                    .aws
                    .subnets
                    .items()
                    .ok()?
                    .iter()
                    .find(|s| a.subnet_id.as_deref() == Some(s.subnet_id.as_str()))
                    .and_then(|s| {
                        if model.ipv6 {
                            s.ipv6_cidr_block_association_set
                                .first()
                                .map(|b| b.ipv6_cidr_block.clone())
                        } else {
                            s.cidr_block.clone()
                        }
                    })
            })
            .collect();
        let policy = json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "allow-load-balancer", "namespace": ns},
            "spec": {
                "podSelector": {"matchLabels": selector},
                "policyTypes": ["Ingress"],
                "ingress": [{
                    "from": cidrs.iter().map(|c| json!({"ipBlock": {"cidr": c}})).collect::<Vec<_>>(),
                    "ports": denied.values().map(|(_, _, p, _)| *p).collect::<BTreeSet<_>>().iter().map(|p| json!({"protocol": "TCP", "port": p})).collect::<Vec<_>>(),
                }],
            },
        });
        let pods: BTreeSet<String> = targets
            .iter()
            .filter(|t| denied.contains_key(t.id()))
            .filter_map(|t| t.pod.map(|p| pod_name(p).to_string()))
            .collect();
        Ok(vec![Finding::new(
            META.id,
            severity,
            format!("{ns}/NetworkPolicy/{}", names.first().cloned().unwrap_or_default()),
            format!(
                "NetworkPolicy {} isolates the target pods ({}) and no rule admits the load balancer's {} on tcp {port} from {from}{}",
                names.join(", "),
                pods.into_iter().collect::<Vec<_>>().join(", "),
                kind.noun(),
                match &enforcement {
                    Enforcement::Enforced(by) => format!(" (enforced by {by})"),
                    Enforcement::Unknown(why) => format!(" (if enforced: {why})"),
                    Enforcement::NotEnforced(_) => String::new(),
                }
            ),
        )
        .with_targets(health_denied.iter().map(|t| t.to_string()))
        .with_evidence(json!({
            "enforcement": enforcement,
            "denied": denied.iter().map(|(t, (p, from, port, kind))| json!({
                "target": t, "policies": p, "from": from, "port": port, "flow": kind,
            })).collect::<Vec<_>>(),
            "undetermined": undetermined,
        }))
        .with_fix(
            format!(
                "kubectl apply -f - <<'EOF'\n{}\nEOF",
                serde_yaml_ng::to_string(&policy).unwrap_or_default().trim_end()
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
    fn fires_when_a_default_deny_admits_only_pods() {
        let findings = fires(
            &NetworkPolicyBlocksLoadBalancer,
            &scenario("network-policy-blocks-load-balancer"),
        );
        let f = &findings[0];
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(f.targets.len(), 2);
        assert!(f.message.contains("default-deny"), "{}", f.message);
        assert!(
            f.fix.as_ref().unwrap().command.contains("cidr: 192.168.0.0/19"),
            "{:?}",
            f.fix
        );
    }

    #[test]
    fn quiet_when_a_policy_admits_the_vpc_or_no_policy_exists() {
        quiet(
            &NetworkPolicyBlocksLoadBalancer,
            &scenario("healthy-network-policy-allows-vpc"),
        );
        quiet(&NetworkPolicyBlocksLoadBalancer, &scenario("healthy"));
        quiet(
            &NetworkPolicyBlocksLoadBalancer,
            &scenario("healthy-rollout-ip-readiness-gates"),
        );
    }

    #[test]
    fn policies_nothing_enforces_are_inert() {
        let mut s = scenario("network-policy-blocks-load-balancer");
        if let crate::snapshot::Collected::Present(sets) = &mut s.kube.daemon_sets {
            for ds in sets.iter_mut() {
                if let Some(spec) = ds.spec.as_mut().and_then(|s| s.template.spec.as_mut()) {
                    spec.containers.retain(|c| c.name != "aws-eks-nodeagent");
                }
            }
        }
        if let crate::snapshot::Collected::Present(maps) = &mut s.kube.config_maps {
            maps.clear();
        }
        quiet(&NetworkPolicyBlocksLoadBalancer, &s);
    }
}
