//! The report: what `diagnose` returns, rendered as JSON (the stable contract) or text.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

use crate::causality::{Causality, RootCause, UnexplainedTarget, NOT_CHECKED};
use crate::finding::{Finding, Severity};
use crate::fix::FixOutcome;
use crate::resolve::{port_text, Backend, Resolution};
use crate::snapshot::{Collected, Snapshot};

/// Bumped only on a breaking change of the JSON shape.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub schema_version: u32,
    pub target_group: TargetGroupSummary,
    pub cluster: Option<String>,
    pub backend: Option<Backend>,
    /// The check ID of the first finding when it is a fault (critical or warning).
    pub root_cause: Option<&'static str>,
    /// Every fault nothing explains, with the failing targets each accounts for; the first
    /// is the root cause. Several roots mean different causes on different targets.
    pub root_causes: Vec<RootCause>,
    /// Failing targets no cause accounts for, and what the tool could not check.
    pub unexplained: Option<Unexplained>,
    pub target_health: TargetHealthSummary,
    pub findings: Vec<Finding>,
    pub inconclusive: Vec<InconclusiveCheck>,
    pub not_collected: Vec<NotCollected>,
    pub notes: Vec<String>,
    /// API calls made while gathering, per service (`{}` for a dump).
    pub api_calls: BTreeMap<String, u64>,
    /// Catalogue fixes considered for this report and what became of each (empty when the
    /// deployment's FIX_MODE is off).
    pub fixes: Vec<FixOutcome>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetGroupSummary {
    pub arn: String,
    pub name: Option<String>,
    pub target_type: Option<String>,
    pub protocol: Option<String>,
    pub port: Option<u16>,
    pub load_balancer: Option<LoadBalancerSummary>,
    pub health_check: Option<HealthCheckSummary>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancerSummary {
    pub arn: String,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub scheme: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheckSummary {
    pub protocol: Option<String>,
    pub port: Option<String>,
    pub path: Option<String>,
    pub matcher: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetHealthSummary {
    pub total: usize,
    pub by_state: BTreeMap<String, usize>,
    pub by_reason: BTreeMap<String, usize>,
    /// Every target is unhealthy: the load balancer fails open and routes to all of them.
    pub fail_open: bool,
    /// What each reason code present means (Elastic Load Balancing API reference).
    pub meanings: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Unexplained {
    pub targets: Vec<UnexplainedTarget>,
    /// What could still be wrong: what the tool cannot see, and the checks that could not decide.
    pub not_checked: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InconclusiveCheck {
    pub check: &'static str,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NotCollected {
    pub item: &'static str,
    pub reason: String,
}

impl Report {
    pub fn build(
        snapshot: &Snapshot,
        resolution: &Resolution,
        causality: Causality,
        inconclusive: Vec<InconclusiveCheck>,
    ) -> Report {
        let Causality {
            findings,
            roots: root_causes,
            unexplained,
        } = causality;
        let arn = snapshot
            .target_group_arn
            .as_ref()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let tg = snapshot.aws.target_group.present();
        let lb = tg.and_then(|tg| {
            snapshot
                .aws
                .load_balancers
                .present()?
                .iter()
                .find(|lb| tg.load_balancer_arns.contains(&lb.load_balancer_arn))
        });
        let target_group = TargetGroupSummary {
            arn,
            name: tg
                .map(|t| t.target_group_name.clone())
                .or_else(|| snapshot.target_group_arn.as_ref().map(|a| a.name.clone())),
            target_type: tg.and_then(|t| t.target_type.clone()),
            protocol: tg.and_then(|t| t.protocol.clone()),
            port: tg.and_then(|t| t.port),
            load_balancer: lb.map(|lb| LoadBalancerSummary {
                arn: lb.load_balancer_arn.clone(),
                kind: lb.kind.clone(),
                scheme: lb.scheme.clone(),
            }),
            health_check: tg.map(|t| HealthCheckSummary {
                protocol: t.health_check_protocol.clone(),
                port: t.health_check_port.clone(),
                path: t.health_check_path.clone(),
                matcher: t
                    .matcher
                    .as_ref()
                    .and_then(|m| m.http_code.clone().or_else(|| m.grpc_code.clone())),
            }),
        };

        let mut health = TargetHealthSummary::default();
        if let Some(targets) = snapshot.aws.target_health.present() {
            health.total = targets.len();
            for t in targets {
                *health.by_state.entry(t.target_health.state.clone()).or_default() += 1;
                if let Some(reason) = &t.target_health.reason {
                    *health.by_reason.entry(reason.clone()).or_default() += 1;
                }
            }
            let failing = targets
                .iter()
                .filter(|t| crate::target_state::is_failing(&t.target_health.state))
                .count();
            health.fail_open = failing > 0 && health.by_state.get("healthy").copied().unwrap_or(0) == 0;
            health.meanings = health
                .by_reason
                .keys()
                .filter_map(|r| crate::target_state::meaning(r).map(|m| (r.clone(), m.to_string())))
                .collect();
        }

        let mut notes = snapshot.notes.clone();
        notes.extend(resolution.notes.iter().cloned());
        if health.fail_open {
            notes.push(
                "every target is unhealthy: the load balancer fails open and still routes requests to all of them"
                    .into(),
            );
        }
        if let Err(why) = &resolution.backend {
            notes.push(format!("Kubernetes backend not resolved: {why}"));
        }
        if tg.is_some_and(|t| t.load_balancer_arns.is_empty()) {
            notes.push(
                "the target group is not attached to any load balancer (its listener rule or Ingress was removed?): nothing health-checks its targets, which stay unused (Target.NotInUse)"
                    .into(),
            );
        }

        let root_cause = findings
            .first()
            .filter(|f| f.severity != Severity::Info)
            .map(|f| f.check);
        let unexplained = (!unexplained.is_empty()).then(|| Unexplained {
            targets: unexplained,
            not_checked: NOT_CHECKED
                .iter()
                .map(|s| s.to_string())
                .chain(
                    inconclusive
                        .iter()
                        .map(|i| format!("{} (inconclusive: {})", i.check, i.reason)),
                )
                .collect(),
        });
        Report {
            schema_version: SCHEMA_VERSION,
            target_group,
            cluster: resolution.cluster.clone(),
            backend: resolution.backend.as_ref().ok().cloned(),
            root_cause,
            root_causes,
            unexplained,
            target_health: health,
            findings,
            inconclusive,
            not_collected: not_collected(snapshot),
            notes,
            api_calls: snapshot.api_calls.clone(),
            fixes: Vec::new(),
        }
    }

    pub fn to_json(&self) -> String {
        // Serializing plain data with string keys cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    pub fn has_severity_at_least(&self, severity: Severity) -> bool {
        self.findings.iter().any(|f| f.severity <= severity)
    }

    /// The terminal rendering for the CLI.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let tg = &self.target_group;
        let _ = writeln!(
            out,
            "Target group {} ({}, {}:{})",
            tg.name.as_deref().unwrap_or("?"),
            tg.target_type.as_deref().unwrap_or("?"),
            tg.protocol.as_deref().unwrap_or("?"),
            tg.port.map_or("?".into(), |p| p.to_string())
        );
        let _ = writeln!(out, "  arn:      {}", tg.arn);
        if let Some(lb) = &tg.load_balancer {
            let _ = writeln!(out, "  lb:       {} ({})", lb.arn, lb.kind.as_deref().unwrap_or("?"));
        }
        if let Some(hc) = &tg.health_check {
            let _ = writeln!(
                out,
                "  check:    {} port {} path {} matcher {}",
                hc.protocol.as_deref().unwrap_or("?"),
                hc.port.as_deref().unwrap_or("?"),
                hc.path.as_deref().unwrap_or("-"),
                hc.matcher.as_deref().unwrap_or("-")
            );
        }
        let _ = writeln!(out, "  cluster:  {}", self.cluster.as_deref().unwrap_or("unknown"));
        match &self.backend {
            Some(b) => {
                let _ = writeln!(
                    out,
                    "  backend:  {}/Service/{} port {}{} (resolved by {})",
                    b.namespace,
                    b.service,
                    b.service_port.as_ref().map_or("?".into(), port_text),
                    b.ingress
                        .as_ref()
                        .map_or(String::new(), |i| format!(" via Ingress {i}")),
                    b.resolved_by
                );
            }
            None => {
                let _ = writeln!(out, "  backend:  not resolved");
            }
        }
        let h = &self.target_health;
        let states: Vec<String> = h.by_state.iter().map(|(k, v)| format!("{v} {k}")).collect();
        let reasons: Vec<String> = h.by_reason.iter().map(|(k, v)| format!("{k} x{v}")).collect();
        let _ = writeln!(
            out,
            "  targets:  {} ({}){}",
            h.total,
            if states.is_empty() {
                "none".into()
            } else {
                states.join(", ")
            },
            if reasons.is_empty() {
                String::new()
            } else {
                format!(": {}", reasons.join(", "))
            }
        );
        out.push('\n');

        let covering: Vec<&RootCause> = self
            .root_causes
            .iter()
            .filter(|r| !r.failing_targets.is_empty())
            .collect();
        if covering.len() > 1 {
            let _ = writeln!(out, "ROOT CAUSES (different causes on different targets)");
            for r in &covering {
                let _ = writeln!(
                    out,
                    "  - {}{}: {} failing target(s): {}",
                    r.check,
                    if r.unexplained { " (unexplained)" } else { "" },
                    r.failing_targets.len(),
                    truncate(&r.failing_targets.join(", "), 160)
                );
            }
            out.push('\n');
        }
        match self.findings.first() {
            None if self.unexplained.is_some() => {
                out.push_str("No finding explains the failing targets (see UNEXPLAINED).\n")
            }
            None => out.push_str("No findings: every check that could decide found nothing wrong.\n"),
            Some(first) => {
                let heading = match self.root_causes.first() {
                    Some(r) if self.root_cause.is_some() && r.unexplained => {
                        "ROOT CAUSE (unexplained: a symptom no cause accounts for)"
                    }
                    _ if self.root_cause.is_some() => "ROOT CAUSE",
                    _ => "FINDINGS",
                };
                let _ = writeln!(out, "{heading}");
                render_finding(&mut out, 1, first);
                if self.findings.len() > 1 {
                    let _ = writeln!(out, "\nOTHER FINDINGS");
                    for (i, f) in self.findings.iter().enumerate().skip(1) {
                        render_finding(&mut out, i + 1, f);
                    }
                }
            }
        }
        if let Some(u) = &self.unexplained {
            let _ = writeln!(out, "\nUNEXPLAINED");
            let targets: Vec<String> = u
                .targets
                .iter()
                .map(|t| format!("{} ({})", t.id, t.reason.as_deref().unwrap_or(&t.state)))
                .collect();
            let _ = writeln!(
                out,
                "  {} failing target(s) no finding accounts for: {}",
                targets.len(),
                truncate(&targets.join(", "), 300)
            );
            let _ = writeln!(out, "  not checked:");
            for n in &u.not_checked {
                let _ = writeln!(out, "  - {n}");
            }
        }
        if !self.inconclusive.is_empty() {
            let _ = writeln!(out, "\nINCONCLUSIVE");
            for i in &self.inconclusive {
                let _ = writeln!(out, "  - {}: {}", i.check, i.reason);
            }
        }
        if !self.not_collected.is_empty() {
            let _ = writeln!(out, "\nNOT COLLECTED");
            for n in &self.not_collected {
                let _ = writeln!(out, "  - {}: {}", n.item, n.reason);
            }
        }
        if !self.api_calls.is_empty() {
            let calls: Vec<String> = self.api_calls.iter().map(|(k, v)| format!("{k} {v}")).collect();
            let _ = writeln!(out, "\nAPI calls: {}", calls.join(", "));
        }
        if !self.fixes.is_empty() {
            let _ = writeln!(out, "\nFIXES");
            for f in &self.fixes {
                let status = serde_json::to_value(f.status).unwrap_or_default();
                let _ = writeln!(
                    out,
                    "  - {} on {}: {}: {}",
                    f.fix_id,
                    f.target,
                    status.as_str().unwrap_or("?"),
                    f.detail
                );
                if let Some(v) = &f.verification {
                    let _ = writeln!(out, "    verification: {v}");
                }
            }
        }
        if !self.notes.is_empty() {
            let _ = writeln!(out, "\nNOTES");
            for n in &self.notes {
                let _ = writeln!(out, "  - {n}");
            }
        }
        out
    }
}

fn render_finding(out: &mut String, n: usize, f: &Finding) {
    let explained = f
        .explained_by
        .map_or(String::new(), |e| format!("  (explained by {e})"));
    let _ = writeln!(
        out,
        "{n:>3}. [{}] {}  {}{explained}",
        f.severity.as_str(),
        f.check,
        f.resource
    );
    let _ = writeln!(out, "     {}", f.message);
    if !f.targets.is_empty() {
        let _ = writeln!(out, "     concerns: {}", truncate(&f.targets.join(", "), 160));
    }
    for (k, v) in &f.evidence {
        let text = match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let _ = writeln!(out, "       {k}: {}", truncate(&text, 160));
    }
    if let Some(fix) = &f.fix {
        let id = fix.fix_id.map_or(String::new(), |id| format!(" [fix: {id}]"));
        let _ = writeln!(out, "     fix{id}: {}", fix.command);
        if let Some(proof) = &fix.proof {
            let who = if fix.unattended == Some(true) {
                "may run unattended"
            } else {
                "needs approval"
            };
            let _ = writeln!(out, "     proof ({who}): {proof}");
        }
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        format!("{}...", s.chars().take(max).collect::<String>())
    }
}

fn not_collected(snapshot: &Snapshot) -> Vec<NotCollected> {
    fn push<T>(out: &mut Vec<NotCollected>, item: &'static str, c: &Collected<T>) {
        if let Some(reason) = c.reason() {
            out.push(NotCollected {
                item,
                reason: reason.to_string(),
            });
        }
    }
    let (a, k) = (&snapshot.aws, &snapshot.kube);
    let mut out = Vec::new();
    push(&mut out, "target group", &a.target_group);
    push(&mut out, "target health", &a.target_health);
    push(&mut out, "target group tags", &a.tags);
    push(&mut out, "load balancers", &a.load_balancers);
    push(&mut out, "security groups", &a.security_groups);
    push(&mut out, "network ACLs", &a.network_acls);
    push(&mut out, "route tables", &a.route_tables);
    push(&mut out, "subnets", &a.subnets);
    push(&mut out, "VPCs", &a.vpcs);
    push(&mut out, "EC2 instances", &a.instances);
    push(&mut out, "network interfaces", &a.network_interfaces);
    push(&mut out, "EKS cluster", &a.cluster);
    push(&mut out, "TargetGroupBindings", &k.target_group_bindings);
    push(&mut out, "Services", &k.services);
    push(&mut out, "Endpoints", &k.endpoints);
    push(&mut out, "EndpointSlices", &k.endpoint_slices);
    push(&mut out, "Pods", &k.pods);
    push(&mut out, "Events", &k.events);
    push(&mut out, "Ingresses", &k.ingresses);
    push(&mut out, "IngressClasses", &k.ingress_classes);
    push(&mut out, "IngressClassParams", &k.ingress_class_params);
    push(&mut out, "ReplicaSets", &k.replica_sets);
    push(&mut out, "Nodes", &k.nodes);
    push(&mut out, "Namespaces", &k.namespaces);
    push(&mut out, "Deployments", &k.deployments);
    push(&mut out, "DaemonSets", &k.daemon_sets);
    push(&mut out, "container logs", &k.logs);
    push(&mut out, "health-check replay", &snapshot.probe);
    out
}
