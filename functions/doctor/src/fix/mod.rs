//! Safe fixes: the catalogue, the policy that decides what may run, and the guarded apply.
//!
//! Planning is pure: a ranked report and a policy in, one decision per catalogue fix out.
//! Applying ([`apply`]) is I/O and runs every guard every time: the namespace allow-list
//! and the cap on writes (here), then on the live object the diagnosis's precondition, the
//! cooldown recorded on the object, a server-side dry run, the write, and verification.

pub mod apply;

use std::str::FromStr;
use std::time::Duration;

use serde::Serialize;

use crate::finding::{FixAction, Severity};
use crate::report::Report;

/// One fix of the safe catalogue (DESIGN.md "Safe fixes"). IDs are a public contract.
#[derive(Debug)]
pub struct CatalogueFix {
    pub id: &'static str,
    /// The check whose finding it answers.
    pub answers: &'static str,
    pub change: &'static str,
    pub blast_radius: &'static str,
    /// May run without a person's approval where the deployment's policy allows it, and
    /// then only when the finding's evidence meets `proof`.
    pub unattended: bool,
    /// What the evidence must show before the fix may run unattended (README "Safe fixes").
    pub proof: &'static str,
}

pub static CATALOGUE: &[CatalogueFix] = &[
    CatalogueFix {
        id: "set-external-traffic-policy-cluster",
        answers: "external-traffic-policy-local",
        change: "patch Service spec.externalTrafficPolicy: Cluster",
        blast_radius: "one Service; client source IPs are no longer preserved",
        unattended: true,
        proof: "Nodes collected, so the nodes without a ready pod are known; the health check goes to the traffic port (not healthCheckNodePort, the by-design case); at least one registered node fails for lack of a local ready pod",
    },
    CatalogueFix {
        id: "set-target-port",
        answers: "target-port-mismatch",
        change: "patch the Service port's targetPort to the one port the pods answer on",
        blast_radius: "one Service port",
        unattended: true,
        proof: "the health-check replay found the current targetPort refusing on the pods and exactly one candidate port answering; declared container ports alone are informational (offered for approval only when the pods' passing readiness probe vouches for the candidate)",
    },
    CatalogueFix {
        id: "restart-kube-proxy",
        answers: "kube-proxy-unhealthy",
        change: "rollout restart of DaemonSet kube-system/kube-proxy",
        blast_radius: "every node's kube-proxy, one at a time (the DaemonSet's rolling update)",
        unattended: true,
        proof: "kube-proxy pods exist on the nodes behind failing targets and are failing now (not Ready, or restarted within the last 10 minutes); a node that runs no kube-proxy pod is not helped by a restart",
    },
    CatalogueFix {
        id: "set-alb-health-check",
        answers: "health-check-response-mismatch",
        change: "Ingress annotation alb.ingress.kubernetes.io/healthcheck-path or success-codes",
        blast_radius: "the health check of every target group the Ingress owns",
        unattended: false,
        proof: "never unattended",
    },
    CatalogueFix {
        id: "authorize-health-check-ingress",
        answers: "security-group-blocks-health-check",
        change: "one security-group rule from the load balancer's group on the port",
        blast_radius: "one ingress rule on the targets' security group",
        unattended: false,
        proof: "never unattended",
    },
];

pub fn catalogue_fix(id: &str) -> Option<&'static CatalogueFix> {
    CATALOGUE.iter().find(|f| f.id == id)
}

/// `FIX_MODE`: what the deployment allows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FixMode {
    /// Report only (the default): no fix is planned.
    #[default]
    Off,
    /// Every guard runs, the server's dry run included; nothing is written.
    DryRun,
    /// Unattended fixes are applied; approval-only fixes wait for a person.
    Auto,
}

impl FromStr for FixMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "off" | "" => Ok(FixMode::Off),
            "dry-run" | "dryrun" => Ok(FixMode::DryRun),
            "auto" => Ok(FixMode::Auto),
            other => Err(format!("FIX_MODE {other:?} is not one of off, dry-run, auto")),
        }
    }
}

/// The deployment's fix policy.
#[derive(Debug, Clone)]
pub struct FixPolicy {
    pub mode: FixMode,
    /// Namespaces a fix may touch (`*`: all). Empty: none, so Kubernetes fixes stay offered.
    pub allowed_namespaces: Vec<String>,
    /// Writes per invocation.
    pub max_writes: usize,
    /// A fix is not applied again to the same object within this time.
    pub cooldown: Duration,
    /// Time allowed for target health to recover after a write.
    pub verify_for: Duration,
}

impl Default for FixPolicy {
    fn default() -> Self {
        FixPolicy {
            mode: FixMode::Off,
            allowed_namespaces: Vec::new(),
            max_writes: 1,
            cooldown: Duration::from_secs(3600),
            verify_for: Duration::from_secs(45),
        }
    }
}

impl FixPolicy {
    pub fn namespace_allowed(&self, namespace: &str) -> bool {
        self.allowed_namespaces.iter().any(|n| n == "*" || n == namespace)
    }
}

/// Where a fix stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FixStatus {
    /// Passed the policy; the live-object guards come next.
    Planned,
    /// Approval-only: offered to a person, not applied.
    AwaitingApproval,
    /// The policy refused it (namespace, write cap).
    NotAllowed,
    /// The object changed since the diagnosis: the fix no longer fits it.
    PreconditionFailed,
    /// The same fix was applied to the object recently.
    Cooldown,
    /// FIX_MODE=dry-run and the API accepted the dry run; nothing was written.
    DryRunPassed,
    /// The API refused the dry run; nothing was written.
    DryRunFailed,
    Applied,
    Failed,
}

/// One catalogue fix for one finding, and what became of it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FixOutcome {
    pub fix_id: &'static str,
    pub check: &'static str,
    /// `namespace/Kind/name` or a security group ID.
    pub target: String,
    pub status: FixStatus,
    pub detail: String,
    /// The change, exactly as applied (or as it would be).
    pub change: FixAction,
    /// Target health after the write, when a write happened.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification: Option<String>,
}

/// One decision per catalogue fix the report offers, in rank order. With `approved`, only
/// that fix ID is considered and a person's approval stands in for `unattended`.
pub fn plan(report: &Report, policy: &FixPolicy, approved: Option<&str>) -> Vec<FixOutcome> {
    let mut out: Vec<FixOutcome> = Vec::new();
    if policy.mode == FixMode::Off {
        return out;
    }
    let mut writes = 0;
    for finding in &report.findings {
        // Only faults that nothing deeper explains: fixing a symptom would mask the cause.
        if finding.severity == Severity::Info || finding.explained_by.is_some() {
            continue;
        }
        let Some(fix) = &finding.fix else { continue };
        let (Some(id), Some(action)) = (fix.fix_id, fix.action.clone()) else {
            continue;
        };
        let Some(entry) = catalogue_fix(id) else { continue };
        if approved.is_some_and(|a| a != id) {
            continue;
        }
        let target = action.target();
        if out.iter().any(|o| o.fix_id == id && o.target == target) {
            continue;
        }
        let proven = fix.unattended == Some(true);
        let (status, detail) = if !entry.unattended && approved != Some(id) {
            (
                FixStatus::AwaitingApproval,
                format!("approval only: {} ({})", entry.change, entry.blast_radius),
            )
        } else if !proven && approved != Some(id) {
            (
                FixStatus::AwaitingApproval,
                format!(
                    "not proven safe to run unattended: {}; approve it if you agree",
                    fix.proof.as_deref().unwrap_or(entry.proof)
                ),
            )
        } else if let Some(ns) = action.namespace().filter(|ns| !policy.namespace_allowed(ns)) {
            (
                FixStatus::NotAllowed,
                format!("namespace {ns} is not in ALLOWED_NAMESPACES"),
            )
        } else if writes >= policy.max_writes {
            (
                FixStatus::NotAllowed,
                format!("at most {} write(s) per invocation (MAX_FIX_WRITES)", policy.max_writes),
            )
        } else {
            writes += 1;
            (FixStatus::Planned, entry.change.to_string())
        };
        out.push(FixOutcome {
            fix_id: id,
            check: finding.check,
            target,
            status,
            detail,
            change: action,
            verification: None,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::registry;
    use crate::checks::FixSafety;

    fn report(name: &str) -> Report {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/scenarios")
            .join(name);
        crate::diagnose(&crate::dump::load(&dir).expect("scenario loads"))
    }

    fn policy(mode: FixMode, namespaces: &[&str]) -> FixPolicy {
        FixPolicy {
            mode,
            allowed_namespaces: namespaces.iter().map(|s| s.to_string()).collect(),
            ..FixPolicy::default()
        }
    }

    #[test]
    fn catalogue_matches_the_checks_that_offer_each_fix() {
        for fix in CATALOGUE {
            let check =
                crate::checks::find(fix.answers).unwrap_or_else(|| panic!("{}: no check {}", fix.id, fix.answers));
            let want = if fix.unattended {
                FixSafety::Unattended(fix.id)
            } else {
                FixSafety::ApprovalOnly(fix.id)
            };
            assert_eq!(check.meta().fix, want, "{}", fix.id);
        }
        for check in registry() {
            if let Some(id) = check.meta().fix.fix_id() {
                assert!(
                    catalogue_fix(id).is_some(),
                    "{} offers {id}, not in the catalogue",
                    check.meta().id
                );
            }
        }
    }

    #[test]
    fn off_plans_nothing() {
        assert!(plan(
            &report("external-traffic-policy-local"),
            &policy(FixMode::Off, &["*"]),
            None
        )
        .is_empty());
    }

    #[test]
    fn unattended_fix_is_planned_in_an_allowed_namespace_only() {
        let r = report("external-traffic-policy-local");
        let planned = plan(&r, &policy(FixMode::Auto, &["*"]), None);
        assert_eq!(planned.len(), 1, "{planned:#?}");
        assert_eq!(planned[0].fix_id, "set-external-traffic-policy-cluster");
        assert_eq!(planned[0].status, FixStatus::Planned);
        let ns = r.backend.as_ref().unwrap().namespace.clone();
        assert_eq!(
            plan(&r, &policy(FixMode::DryRun, &[&ns]), None)[0].status,
            FixStatus::Planned
        );
        let refused = plan(&r, &policy(FixMode::Auto, &["other"]), None);
        assert_eq!(refused[0].status, FixStatus::NotAllowed);
        assert!(refused[0].detail.contains(&ns), "{}", refused[0].detail);
        // No allow-list at all: nothing Kubernetes-side may be touched.
        assert_eq!(
            plan(&r, &policy(FixMode::Auto, &[]), None)[0].status,
            FixStatus::NotAllowed
        );
    }

    #[test]
    fn approval_only_fix_waits_unless_approved() {
        let r = report("security-group-blocks-health-check");
        let offered = plan(&r, &policy(FixMode::Auto, &["*"]), None);
        assert_eq!(offered.len(), 1, "{offered:#?}");
        assert_eq!(offered[0].status, FixStatus::AwaitingApproval);
        let approved = plan(&r, &policy(FixMode::Auto, &[]), Some("authorize-health-check-ingress"));
        assert_eq!(approved[0].status, FixStatus::Planned, "an AWS change has no namespace");
        assert!(plan(&r, &policy(FixMode::Auto, &["*"]), Some("restart-kube-proxy")).is_empty());
    }

    #[test]
    fn healthy_and_by_design_reports_plan_nothing() {
        for name in ["healthy", "nlb-local-by-design"] {
            assert!(
                plan(&report(name), &policy(FixMode::Auto, &["*"]), None).is_empty(),
                "{name}"
            );
        }
    }

    #[test]
    fn write_cap_and_explained_findings() {
        let mut r = report("external-traffic-policy-local");
        let mut second = r.findings[0].clone();
        second.resource = "other/Service/web".into();
        if let Some(FixAction::PatchObject { namespace, .. }) = second.fix.as_mut().and_then(|f| f.action.as_mut()) {
            *namespace = "other".into();
        }
        r.findings.push(second.clone());
        let planned = plan(&r, &policy(FixMode::Auto, &["*"]), None);
        assert_eq!(
            planned.iter().map(|p| p.status).collect::<Vec<_>>(),
            [FixStatus::Planned, FixStatus::NotAllowed]
        );
        assert!(planned[1].detail.contains("MAX_FIX_WRITES"));
        r.findings.last_mut().unwrap().explained_by = Some("pod-not-ready");
        assert_eq!(plan(&r, &policy(FixMode::Auto, &["*"]), None).len(), 1);
    }

    #[test]
    fn fix_mode_parses_and_refuses_garbage() {
        assert_eq!("dry-run".parse::<FixMode>(), Ok(FixMode::DryRun));
        assert_eq!("AUTO".parse::<FixMode>(), Ok(FixMode::Auto));
        assert_eq!("".parse::<FixMode>(), Ok(FixMode::Off));
        assert!("yes".parse::<FixMode>().unwrap_err().contains("off, dry-run, auto"));
    }
}
