//! The remediate Lambda: applies one catalogue fix a person approved. The request names the
//! fix and the target group, nothing else: the function gathers and diagnoses again, and the
//! fix runs only if the current diagnosis still offers it, through every guard of
//! [`doctor::fix`] (policy, precondition, cooldown, dry run, verification). The outcome goes
//! to SNS / Slack like a diagnosis. Invoked directly: the diagnose report prints the command.
//!
//! It reuses the diagnose function's settings and clients ([`diagnose_fn::Ctx`]); its own
//! IAM role adds the one AWS write an approval-only fix needs.

use diagnose_fn::{deliver, gather_snapshot, limits, run_fixes, Ctx, FixRun, Outgoing};
use doctor::arn::TargetGroupArn;
use doctor::fix::{catalogue_fix, FixMode, CATALOGUE};
use doctor::notify;
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde::Deserialize;
use serde_json::{json, Value};

/// `{"targetGroupArn": "...", "fixId": "...", "approvedBy": "..."}` (+ optional `clusterName`,
/// as in a direct diagnose invocation).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Approval {
    pub target_group_arn: String,
    pub fix_id: String,
    pub approved_by: String,
    #[serde(default)]
    pub cluster_name: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RemediateError {
    #[error("malformed approval: {0}")]
    Malformed(String),
    #[error("refused: {0}")]
    NotAllowed(String),
}

impl From<RemediateError> for Diagnostic {
    fn from(e: RemediateError) -> Diagnostic {
        let error_type = match &e {
            RemediateError::Malformed(_) => "MalformedApproval",
            RemediateError::NotAllowed(_) => "NotAllowed",
        };
        Diagnostic {
            error_type: error_type.into(),
            error_message: e.to_string(),
        }
    }
}

/// Checks the request's shape; says what was expected when it is wrong.
pub fn parse(payload: &Value) -> Result<(Approval, TargetGroupArn), RemediateError> {
    let approval: Approval = serde_json::from_value(payload.clone()).map_err(|e| {
        RemediateError::Malformed(format!(
            "{e}; expected {{\"targetGroupArn\": \"arn:...\", \"fixId\": \"...\", \"approvedBy\": \"...\"}}"
        ))
    })?;
    let arn =
        TargetGroupArn::parse(&approval.target_group_arn).map_err(|e| RemediateError::Malformed(e.to_string()))?;
    if catalogue_fix(&approval.fix_id).is_none() {
        let ids: Vec<&str> = CATALOGUE.iter().map(|f| f.id).collect();
        return Err(RemediateError::Malformed(format!(
            "unknown fix {:?}; the catalogue: {}",
            approval.fix_id,
            ids.join(", ")
        )));
    }
    if approval.approved_by.trim().is_empty() {
        return Err(RemediateError::Malformed(
            "approvedBy is empty: an approval names who approved it".into(),
        ));
    }
    Ok((approval, arn))
}

pub async fn handle(ctx: &Ctx, event: LambdaEvent<Value>) -> Result<Value, RemediateError> {
    let (approval, tg) = parse(&event.payload).inspect_err(|e| tracing::warn!(error = %e, "approval rejected"))?;
    let s = &ctx.settings;
    let refuse = |why: String| {
        tracing::warn!(fix = %approval.fix_id, target_group = %tg, reason = %why, "refused");
        Err(RemediateError::NotAllowed(why))
    };
    if s.fix.mode == FixMode::Off {
        return refuse("FIX_MODE is off: this deployment applies no fixes".into());
    }
    if !s.allowed_accounts.is_empty() && !s.allowed_accounts.contains(&tg.account) {
        return refuse(format!("account {} is not in ALLOWED_ACCOUNTS", tg.account));
    }
    let limits = limits(event.context.deadline(), s.deadline_margin);
    let snapshot = gather_snapshot(ctx, &tg, approval.cluster_name.clone(), limits).await;
    let mut report = doctor::diagnose(&snapshot);
    if let Some(cluster) = &report.cluster {
        if !s.allowed_clusters.is_empty() && !s.allowed_clusters.contains(cluster) {
            return refuse(format!("cluster {cluster} is not in ALLOWED_CLUSTERS"));
        }
    }
    let approved_as = format!("approved by {}", approval.approved_by.trim());
    let run = FixRun {
        tg: &tg,
        alarm: Some(&approved_as),
        limits: &limits,
        approved: Some(&approval.fix_id),
        writes_left: s.fix.max_writes,
    };
    run_fixes(ctx, &snapshot, &mut report, run).await;
    let (status, detail) = match report.fixes.first() {
        Some(f) => (
            serde_json::to_value(f.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            f.detail.clone(),
        ),
        None => (
            "not-applicable".to_string(),
            format!(
                "the current diagnosis does not offer {} (root cause now: {})",
                approval.fix_id,
                report.root_cause.unwrap_or("none")
            ),
        ),
    };
    tracing::info!(
        fix = %approval.fix_id,
        approved_by = %approval.approved_by,
        target_group = %tg,
        status = %status,
        detail = %detail,
        "remediation"
    );
    let cx = notify::Context {
        alarm: None,
        region: &tg.region,
        mode: &approved_as,
    };
    let out = Outgoing {
        subject: notify::clean_subject(&format!(
            "[eks-lb-doctor] fix {} {status}: {}",
            approval.fix_id, tg.name
        )),
        sns_message: format!(
            "Fix {} for target group {tg}, {approved_as}: {status}: {detail}\n\n{}",
            approval.fix_id,
            report.to_text()
        ),
        attributes: vec![("fixId", approval.fix_id.clone()), ("fixStatus", status.clone())],
        slack: notify::slack_message(&report, &cx),
    };
    let deliveries = deliver(ctx, out).await;
    Ok(json!({
        "status": status,
        "detail": detail,
        "fixId": approval.fix_id,
        "approvedBy": approval.approved_by,
        "targetGroupArn": tg.to_string(),
        "fixes": report.fixes,
        "rootCause": report.root_cause,
        "deliveries": deliveries,
    }))
}
