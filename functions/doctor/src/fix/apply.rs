//! Applies planned fixes with every guard, and verifies target health afterwards.
//!
//! For a Kubernetes fix, in order: read the live object; the precondition the diagnosis
//! saw must still hold; the cooldown annotation on the object must not name the same fix
//! within the cooldown; the API server's dry run (`dryRun=All`) must accept the patch; then
//! the patch is written, conditional on the resourceVersion just read (a concurrent change
//! is a 409, never a silent overwrite), with the cooldown annotation in the same write.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{json, Value};
use tokio::time::Instant;

use aws_sdk_ec2::error::ProvideErrorMetadata;

use super::{FixMode, FixOutcome, FixPolicy, FixStatus};
use crate::finding::FixAction;

/// Annotation on the changed object: which fix, when (unix seconds), for which alarm.
pub const COOLDOWN_ANNOTATION: &str = "eks-lb-doctor.io/last-fix";
const FIELD_MANAGER: &str = "eks-lb-doctor";

/// What the writes go through. A missing client leaves its fixes failed with the reason.
pub struct Writers<'a> {
    pub kube: Result<&'a kube::Client, String>,
    /// Only the remediate function has one (the diagnose role cannot write to AWS).
    pub ec2: Option<&'a aws_sdk_ec2::Client>,
    /// The alarm that triggered the fix, recorded in the cooldown annotation.
    pub alarm: Option<&'a str>,
    pub now: SystemTime,
}

/// Runs the guards and the writes for every `Planned` outcome, in order.
pub async fn apply(outcomes: &mut [FixOutcome], policy: &FixPolicy, writers: &Writers<'_>) {
    for outcome in outcomes.iter_mut().filter(|o| o.status == FixStatus::Planned) {
        let (status, detail) = match &outcome.change {
            FixAction::PatchObject { .. } | FixAction::RolloutRestart { .. } => match &writers.kube {
                Ok(client) => apply_kube(client, outcome, policy, writers).await,
                Err(why) => (FixStatus::Failed, format!("Kubernetes API not reached: {why}")),
            },
            FixAction::AuthorizeIngress { .. } => match writers.ec2 {
                Some(ec2) => apply_ingress_rule(ec2, &outcome.change, policy.mode).await,
                None => (
                    FixStatus::Failed,
                    "no EC2 writer here: approval-only AWS fixes run in the remediate function".into(),
                ),
            },
        };
        tracing::info!(
            fix = outcome.fix_id,
            target = %outcome.target,
            status = ?status,
            detail = %detail,
            "fix"
        );
        outcome.status = status;
        outcome.detail = detail;
    }
}

/// [`apply`], then, when something was written, [`verify`] (every 5 s for the policy's
/// `verify_for`, cut at `deadline` if given) with its verdict on each write.
pub async fn apply_and_verify(
    outcomes: &mut [FixOutcome],
    policy: &FixPolicy,
    writers: &Writers<'_>,
    elbv2: &aws_sdk_elasticloadbalancingv2::Client,
    target_group_arn: &str,
    deadline: Option<Instant>,
) {
    apply(outcomes, policy, writers).await;
    if !outcomes.iter().any(|f| f.status == FixStatus::Applied) {
        return;
    }
    let verify_for = match deadline {
        Some(d) => policy.verify_for.min(d.saturating_duration_since(Instant::now())),
        None => policy.verify_for,
    };
    let verdict = verify(elbv2, target_group_arn, verify_for, Duration::from_secs(5)).await;
    for f in outcomes.iter_mut().filter(|f| f.status == FixStatus::Applied) {
        f.verification = Some(verdict.clone());
    }
}

fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn api_for(client: &kube::Client, api_version: &str, kind: &str, namespace: &str) -> Api<DynamicObject> {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind));
    Api::namespaced_with(client.clone(), namespace, &resource)
}

fn kube_error(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) => format!("{} ({})", status.message, status.code),
        other => other.to_string(),
    }
}

async fn apply_kube(
    client: &kube::Client,
    outcome: &FixOutcome,
    policy: &FixPolicy,
    writers: &Writers<'_>,
) -> (FixStatus, String) {
    let (api_version, kind, namespace, name, change_patch, expect) = match &outcome.change {
        FixAction::PatchObject {
            api_version,
            resource_kind,
            namespace,
            name,
            patch,
            expect,
        } => (
            *api_version,
            *resource_kind,
            namespace,
            name,
            patch.clone(),
            Some(expect),
        ),
        FixAction::RolloutRestart {
            api_version,
            resource_kind,
            namespace,
            name,
        } => {
            // What `kubectl rollout restart` writes.
            let at = k8s_openapi::jiff::Timestamp::from_second(unix_seconds(writers.now) as i64)
                .map(|t| t.to_string())
                .unwrap_or_default();
            let patch = json!({ "spec": { "template": { "metadata": { "annotations": {
                "kubectl.kubernetes.io/restartedAt": at } } } } });
            (*api_version, *resource_kind, namespace, name, patch, None)
        }
        FixAction::AuthorizeIngress { .. } => return (FixStatus::Failed, "not a Kubernetes change".into()),
    };
    let api = api_for(client, api_version, kind, namespace);
    let live = match api.get(name).await {
        Ok(obj) => obj,
        Err(e) => {
            return (
                FixStatus::Failed,
                format!("get {kind} {namespace}/{name}: {}", kube_error(&e)),
            )
        }
    };
    let live_json = serde_json::to_value(&live).unwrap_or_default();

    for (pointer, want) in expect.into_iter().flatten() {
        let now = live_json.pointer(pointer).cloned().unwrap_or(Value::Null);
        if &now != want {
            return (
                FixStatus::PreconditionFailed,
                format!("{kind} {namespace}/{name} changed since the diagnosis: {pointer} is {now}, was {want}"),
            );
        }
    }

    let now = unix_seconds(writers.now);
    if let Some(last) = live
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(COOLDOWN_ANNOTATION))
        .and_then(|v| serde_json::from_str::<Value>(v).ok())
    {
        let at = last["at"].as_u64().unwrap_or(0);
        if last["fix"] == outcome.fix_id && now.saturating_sub(at) < policy.cooldown.as_secs() {
            return (
                FixStatus::Cooldown,
                format!(
                    "{} was applied to {kind} {namespace}/{name} {} s ago (alarm {}); cooldown {} s",
                    outcome.fix_id,
                    now.saturating_sub(at),
                    last["alarm"].as_str().unwrap_or("none"),
                    policy.cooldown.as_secs()
                ),
            );
        }
    }

    let record = json!({ "fix": outcome.fix_id, "at": now, "alarm": writers.alarm }).to_string();
    let mut patch = change_patch;
    merge(
        &mut patch,
        json!({ "metadata": {
            "resourceVersion": live.metadata.resource_version,
            "annotations": { COOLDOWN_ANNOTATION: record },
        } }),
    );
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PatchParams::default()
    };
    if let Err(e) = api
        .patch(name, &params.clone().dry_run(), &Patch::Strategic(&patch))
        .await
    {
        return (
            FixStatus::DryRunFailed,
            format!("the API server refused the dry run: {}", kube_error(&e)),
        );
    }
    if policy.mode != FixMode::Auto {
        return (
            FixStatus::DryRunPassed,
            format!(
                "dry run accepted by the API server; FIX_MODE={} wrote nothing",
                mode_name(policy.mode)
            ),
        );
    }
    match api.patch(name, &params, &Patch::Strategic(&patch)).await {
        Ok(_) => (
            FixStatus::Applied,
            format!("patched {kind} {namespace}/{name}: {}", compact(&patch)),
        ),
        Err(e) => (
            FixStatus::Failed,
            format!("patch {kind} {namespace}/{name}: {}", kube_error(&e)),
        ),
    }
}

type Ec2Error = aws_sdk_ec2::error::SdkError<
    aws_sdk_ec2::operation::authorize_security_group_ingress::AuthorizeSecurityGroupIngressError,
    aws_sdk_ec2::config::http::HttpResponse,
>;

/// EC2's own dry run first (`DryRunOperation` means it would succeed), then the rule.
async fn apply_ingress_rule(ec2: &aws_sdk_ec2::Client, change: &FixAction, mode: FixMode) -> (FixStatus, String) {
    let FixAction::AuthorizeIngress {
        group_id,
        protocol,
        port,
        source_group_id,
        source_cidrs,
    } = change
    else {
        return (FixStatus::Failed, "not a security-group change".into());
    };
    if source_group_id.is_none() && source_cidrs.is_empty() {
        return (FixStatus::Failed, "the change names no source".into());
    }
    let source = match source_group_id {
        Some(g) => g.clone(),
        None => source_cidrs.join(", "),
    };
    let source_group_id = &source;
    let description = "eks-lb-doctor: load balancer health check";
    let request = |dry_run: bool| {
        let mut permission = aws_sdk_ec2::types::IpPermission::builder()
            .ip_protocol(protocol)
            .from_port(i32::from(*port))
            .to_port(i32::from(*port));
        if let FixAction::AuthorizeIngress {
            source_group_id: Some(g),
            ..
        } = change
        {
            permission = permission.user_id_group_pairs(
                aws_sdk_ec2::types::UserIdGroupPair::builder()
                    .group_id(g)
                    .description(description)
                    .build(),
            );
        } else {
            for cidr in source_cidrs {
                permission = permission.ip_ranges(
                    aws_sdk_ec2::types::IpRange::builder()
                        .cidr_ip(cidr)
                        .description(description)
                        .build(),
                );
            }
        }
        ec2.authorize_security_group_ingress()
            .group_id(group_id)
            .ip_permissions(permission.build())
            .dry_run(dry_run)
            .send()
    };
    let code = |e: &Ec2Error| {
        e.as_service_error()
            .and_then(|s| s.code())
            .unwrap_or_default()
            .to_string()
    };
    let describe = |e: &Ec2Error| format!("{}", aws_sdk_ec2::error::DisplayErrorContext(e));
    match request(true).await {
        Err(e) if code(&e) == "DryRunOperation" => {}
        Err(e) if code(&e) == "InvalidPermission.Duplicate" => {
            return (
                FixStatus::PreconditionFailed,
                format!("{group_id} already admits {source_group_id} on {protocol} {port}"),
            )
        }
        Err(e) => {
            return (
                FixStatus::DryRunFailed,
                format!("EC2 refused the dry run: {}", describe(&e)),
            )
        }
        // EC2 answers a dry run with the DryRunOperation error; success means the endpoint
        // ignored DryRun and may have written the rule: never reported as a clean write.
        Ok(_) => {
            let what = format!("{protocol} {port} from {source_group_id}");
            return (
                FixStatus::Failed,
                format!("the EC2 endpoint ignored DryRun: check {group_id} for a rule {what}"),
            );
        }
    }
    if mode != FixMode::Auto {
        return (
            FixStatus::DryRunPassed,
            format!("EC2 accepted the dry run; FIX_MODE={} wrote nothing", mode_name(mode)),
        );
    }
    match request(false).await {
        Ok(_) => (
            FixStatus::Applied,
            format!("authorized {source_group_id} on {group_id} {protocol} {port}"),
        ),
        Err(e) if code(&e) == "InvalidPermission.Duplicate" => (
            FixStatus::PreconditionFailed,
            format!("{group_id} already admits {source_group_id} on {protocol} {port}"),
        ),
        Err(e) => (FixStatus::Failed, describe(&e)),
    }
}

fn mode_name(mode: FixMode) -> &'static str {
    match mode {
        FixMode::Off => "off",
        FixMode::DryRun => "dry-run",
        FixMode::Auto => "auto",
    }
}

fn compact(v: &Value) -> String {
    let mut v = v.clone();
    if let Some(md) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        md.remove("resourceVersion");
    }
    v.to_string()
}

/// RFC 7386 merge of `patch` into `target` (objects merge, anything else replaces).
fn merge(target: &mut Value, patch: Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                merge(t.entry(k).or_insert(Value::Null), v);
            }
        }
        (t, p) => *t = p,
    }
}

/// Re-reads target health until every target is healthy or `verify_for` is spent. Polls
/// every `every`; reports the last states seen.
pub async fn verify(
    elbv2: &aws_sdk_elasticloadbalancingv2::Client,
    target_group_arn: &str,
    verify_for: Duration,
    every: Duration,
) -> String {
    let started = Instant::now();
    let until = started + verify_for;
    loop {
        let states = match elbv2
            .describe_target_health()
            .target_group_arn(target_group_arn)
            .send()
            .await
        {
            Ok(out) => out
                .target_health_descriptions()
                .iter()
                .map(|d| {
                    d.target_health()
                        .and_then(|h| h.state())
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_else(|| "unknown".into())
                })
                .collect::<Vec<_>>(),
            Err(e) => {
                return format!(
                    "could not re-read target health: {}",
                    aws_sdk_elasticloadbalancingv2::error::DisplayErrorContext(&e)
                )
            }
        };
        let healthy = states.iter().filter(|s| *s == "healthy").count();
        if !states.is_empty() && healthy == states.len() {
            return format!(
                "all {} target(s) healthy after {} s",
                states.len(),
                started.elapsed().as_secs()
            );
        }
        if Instant::now() + every > until {
            return format!(
                "{healthy} of {} target(s) healthy after {} s; health checks need interval x threshold to pass: watch the target group",
                states.len(),
                started.elapsed().as_secs()
            );
        }
        tokio::time::sleep(every).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_adds_metadata_next_to_the_change() {
        let mut patch = json!({ "spec": { "externalTrafficPolicy": "Cluster" } });
        merge(
            &mut patch,
            json!({ "metadata": { "resourceVersion": "7", "annotations": { COOLDOWN_ANNOTATION: "x" } } }),
        );
        assert_eq!(
            patch,
            json!({ "spec": { "externalTrafficPolicy": "Cluster" },
                    "metadata": { "resourceVersion": "7", "annotations": { COOLDOWN_ANNOTATION: "x" } } })
        );
        assert!(!compact(&patch).contains("resourceVersion"));
    }
}
