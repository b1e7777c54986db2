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
    /// The check ID of the deeper finding that explains this one (set by ranking).
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
            explained_by: None,
        }
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
        });
        self
    }
}

/// `namespace/Kind/name`, the resource form for namespaced Kubernetes objects.
pub fn k8s_resource(namespace: &str, kind: &str, name: &str) -> String {
    format!("{namespace}/{kind}/{name}")
}
