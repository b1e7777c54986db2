//! Findings: what a check reports.

use serde::Serialize;
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Critical,
    Warning,
    Info,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

/// The exact command a person would run, and the safe-catalogue fix ID when one exists.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Fix {
    pub command: String,
    pub fix_id: Option<&'static str>,
    /// The catalogue fix's change, machine-readable: what [`crate::fix`] applies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<FixAction>,
    /// Whether the evidence proves this change right and unable to make things worse, so
    /// that it may run without a person (where the catalogue and the deployment allow
    /// unattended fixes at all). Unset means not proven: a person approves.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unattended: Option<bool>,
    /// What the evidence showed, or what proof is missing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proof: Option<String>,
}

/// One change a catalogue fix makes. Each carries the precondition that makes it safe to
/// apply later: the value the diagnosis saw, re-checked against the live object first.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum FixAction {
    /// A strategic-merge patch of one namespaced Kubernetes object.
    PatchObject {
        api_version: &'static str,
        resource_kind: &'static str,
        namespace: String,
        name: String,
        patch: Value,
        /// `(JSON pointer, value)` pairs the live object must still hold.
        expect: Map<String, Value>,
    },
    /// `kubectl rollout restart` of a workload (the pod template's restartedAt annotation).
    RolloutRestart {
        api_version: &'static str,
        resource_kind: &'static str,
        namespace: String,
        name: String,
    },
    /// One ingress rule on a security group: from the load balancer's group, or, for a
    /// Network Load Balancer without security groups, from its addresses.
    AuthorizeIngress {
        group_id: String,
        protocol: String,
        port: u16,
        #[serde(skip_serializing_if = "Option::is_none")]
        source_group_id: Option<String>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        source_cidrs: Vec<String>,
    },
}

impl FixAction {
    /// `namespace/Kind/name`, or the security group ID.
    pub fn target(&self) -> String {
        match self {
            FixAction::PatchObject {
                resource_kind,
                namespace,
                name,
                ..
            }
            | FixAction::RolloutRestart {
                resource_kind,
                namespace,
                name,
                ..
            } => k8s_resource(namespace, resource_kind, name),
            FixAction::AuthorizeIngress { group_id, .. } => group_id.clone(),
        }
    }

    /// The Kubernetes namespace the change is in (None for AWS changes).
    pub fn namespace(&self) -> Option<&str> {
        match self {
            FixAction::PatchObject { namespace, .. } | FixAction::RolloutRestart { namespace, .. } => Some(namespace),
            FixAction::AuthorizeIngress { .. } => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    pub check: &'static str,
    pub severity: Severity,
    /// An ARN or AWS ID, or `namespace/Kind/name` (`Kind/name` when cluster-scoped).
    pub resource: String,
    pub message: String,
    pub evidence: Map<String, Value>,
    pub fix: Option<Fix>,
    /// The registered targets (target IDs) this finding concerns; empty when it concerns
    /// the target group as a whole. Causality explains per target (see [`crate::causality`]).
    pub targets: Vec<String>,
    /// The finding concerns the target group as a whole (the controller that keeps its
    /// registrations): it explains its listed consequences on any target, but is no direct
    /// cause of a target's failure. A finding with no targets that is not group-level
    /// concerns no target at all (a side warning).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub group_level: bool,
    /// When set, the only checks this finding may explain (a narrower claim than its
    /// check's entry in `causality::EXPLAINED_BY`: controller errors about security-group
    /// rules explain a blocked health check, not stale registrations).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub explains: Vec<&'static str>,
    /// The check ID of the deeper finding that explains this one (set by causality).
    pub explained_by: Option<&'static str>,
}

impl Finding {
    pub fn new(
        check: &'static str,
        severity: Severity,
        resource: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Finding {
            check,
            severity,
            resource: resource.into(),
            message: message.into(),
            evidence: Map::new(),
            fix: None,
            targets: Vec::new(),
            group_level: false,
            explains: Vec::new(),
            explained_by: None,
        }
    }

    /// The registered targets this finding concerns (sorted, each once).
    pub fn with_targets(mut self, targets: impl IntoIterator<Item = String>) -> Self {
        self.targets = targets.into_iter().collect();
        self.targets.sort();
        self.targets.dedup();
        self
    }

    /// Sets the evidence; `value` must be a JSON object (anything else is stored under "value").
    pub fn with_evidence(mut self, value: Value) -> Self {
        self.evidence = match value {
            Value::Object(map) => map,
            other => Map::from_iter([("value".to_string(), other)]),
        };
        self
    }

    pub fn with_fix(mut self, command: impl Into<String>, fix_id: Option<&'static str>) -> Self {
        self.fix = Some(Fix {
            command: command.into(),
            fix_id,
            action: None,
            unattended: None,
            proof: None,
        });
        self
    }

    /// Marks the finding as concerning the target group as a whole (see `group_level`).
    pub fn group_level(mut self) -> Self {
        self.group_level = true;
        self
    }

    /// Narrows what this finding may explain to these checks (see `explains`).
    pub fn explaining(mut self, checks: &[&'static str]) -> Self {
        self.explains = checks.to_vec();
        self
    }

    /// Records what the evidence proves about the fix set by [`Finding::with_fix`]:
    /// `unattended` only when it shows the change is right and cannot make things worse.
    pub fn with_proof(mut self, unattended: bool, proof: impl Into<String>) -> Self {
        if let Some(fix) = &mut self.fix {
            fix.unattended = Some(unattended);
            fix.proof = Some(proof.into());
        }
        self
    }

    /// Attaches the machine-readable change to the fix set by [`Finding::with_fix`].
    pub fn with_action(mut self, action: impl Into<Option<FixAction>>) -> Self {
        if let Some(fix) = &mut self.fix {
            fix.action = action.into();
        }
        self
    }
}

/// `namespace/Kind/name`, the resource form for namespaced Kubernetes objects.
pub fn k8s_resource(namespace: &str, kind: &str, name: &str) -> String {
    format!("{namespace}/{kind}/{name}")
}
