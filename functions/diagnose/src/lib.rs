//! The diagnose Lambda: a CloudWatch `UnHealthyHostCount` alarm (EventBridge, SNS, or a
//! direct `{"targetGroupArn"}`) in; the diagnosis out to SNS and Slack, and back as the
//! response. `main` only wires; [`handle`] is a plain async fn, called directly in tests.

use std::io::Write;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use doctor::arn::TargetGroupArn;
use doctor::fix::apply::{self as fix_apply, Writers};
use doctor::fix::{self, FixMode, FixPolicy, FixStatus};
use doctor::gather::aws::AwsClients;
use doctor::gather::eks_auth::ClusterClients;
use doctor::gather::probe::{replay, ReplayOptions};
use doctor::gather::{gather, KubeAccess, Limits};
use doctor::notify::{self, Delivery};
use doctor::trigger::{self, Alarm, MetricRef, Trigger, TriggerError};
use doctor::Report;
use lambda_runtime::{Diagnostic, LambdaEvent};
use secrecy::SecretString;
use serde_json::{json, Value};

/// Deployment settings, from the function's environment.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub sns_topic_arn: Option<String>,
    /// Secrets Manager secret holding the Slack webhook URL (plain, or JSON `{"url": ...}`).
    pub slack_secret_arn: Option<String>,
    /// SSM SecureString parameter holding the Slack webhook URL.
    pub slack_ssm_parameter: Option<String>,
    /// Publish the AWS Chatbot custom-notification schema instead of plain text.
    pub chatbot_format: bool,
    pub notify_on_recovery: bool,
    pub allowed_accounts: Vec<String>,
    pub allowed_clusters: Vec<String>,
    /// FIX_MODE (`off`, the default, `dry-run`, `auto`), ALLOWED_NAMESPACES, MAX_FIX_WRITES,
    /// FIX_COOLDOWN_SECONDS, FIX_VERIFY_SECONDS.
    pub fix: FixPolicy,
    /// A FIX_MODE that is not one of the modes: fixes stay off and every report says why.
    pub fix_mode_error: Option<String>,
    /// REMEDIATE_FUNCTION_NAME: where a person approves an approval-only fix.
    pub remediate_function: Option<String>,
    /// HEALTH_CHECK_REPLAY: replay each target's health check from the function (it must run
    /// in the VPC, with the targets admitting its security group on the health-check port).
    pub health_check_replay: bool,
    /// Kept free at the end of the invocation for notifications.
    pub deadline_margin: Duration,
}

impl Settings {
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Settings {
        let list = |k: &str| -> Vec<String> {
            get(k)
                .map(|v| {
                    v.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
        };
        let flag = |k: &str| get(k).is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes"));
        let nonempty = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        let number = |k: &str| get(k).and_then(|v| v.trim().parse::<u64>().ok());
        let defaults = FixPolicy::default();
        let fix_mode = get("FIX_MODE").unwrap_or_default().parse::<FixMode>();
        Settings {
            sns_topic_arn: nonempty("SNS_TOPIC_ARN"),
            slack_secret_arn: nonempty("SLACK_WEBHOOK_SECRET_ARN"),
            slack_ssm_parameter: nonempty("SLACK_WEBHOOK_SSM_PARAMETER"),
            chatbot_format: flag("CHATBOT_FORMAT"),
            notify_on_recovery: flag("NOTIFY_ON_RECOVERY"),
            allowed_accounts: list("ALLOWED_ACCOUNTS"),
            allowed_clusters: list("ALLOWED_CLUSTERS"),
            fix: FixPolicy {
                mode: fix_mode.clone().unwrap_or_default(),
                allowed_namespaces: list("ALLOWED_NAMESPACES"),
                max_writes: number("MAX_FIX_WRITES").unwrap_or(defaults.max_writes as u64) as usize,
                cooldown: number("FIX_COOLDOWN_SECONDS").map_or(defaults.cooldown, Duration::from_secs),
                verify_for: number("FIX_VERIFY_SECONDS").map_or(defaults.verify_for, Duration::from_secs),
            },
            fix_mode_error: fix_mode.err(),
            remediate_function: nonempty("REMEDIATE_FUNCTION_NAME"),
            health_check_replay: flag("HEALTH_CHECK_REPLAY"),
            deadline_margin: Duration::from_millis(
                get("DEADLINE_MARGIN_MS").and_then(|v| v.parse().ok()).unwrap_or(3000),
            ),
        }
    }

    pub fn from_env() -> Settings {
        Settings::from_lookup(|k| std::env::var(k).ok())
    }

    fn mode(&self) -> &str {
        match self.fix.mode {
            FixMode::Off => "report-only",
            FixMode::DryRun => "fix dry-run",
            FixMode::Auto => "fix auto",
        }
    }
}

/// Clients built once per container and reused across warm invocations.
pub struct Ctx {
    pub settings: Settings,
    pub aws: AwsClients,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub sns: aws_sdk_sns::Client,
    pub ssm: aws_sdk_ssm::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
    pub clusters: ClusterClients,
    slack_url: tokio::sync::OnceCell<SecretString>,
}

impl Ctx {
    pub fn new(config: &aws_config::SdkConfig, settings: Settings) -> Ctx {
        Ctx {
            settings,
            aws: AwsClients::new(config),
            cloudwatch: aws_sdk_cloudwatch::Client::new(config),
            sns: aws_sdk_sns::Client::new(config),
            ssm: aws_sdk_ssm::Client::new(config),
            secrets: aws_sdk_secretsmanager::Client::new(config),
            clusters: ClusterClients::new(),
            slack_url: tokio::sync::OnceCell::new(),
        }
    }

    /// The webhook URL, read once per container (a failed read is retried next time).
    async fn slack_url(&self) -> Result<Option<&SecretString>, String> {
        let s = &self.settings;
        if s.slack_secret_arn.is_none() && s.slack_ssm_parameter.is_none() {
            return Ok(None);
        }
        self.slack_url
            .get_or_try_init(|| async {
                let raw = if let Some(arn) = &s.slack_secret_arn {
                    let out = self
                        .secrets
                        .get_secret_value()
                        .secret_id(arn)
                        .send()
                        .await
                        .map_err(|e| {
                            format!(
                                "secretsmanager:GetSecretValue {arn}: {}",
                                aws_sdk_secretsmanager::error::DisplayErrorContext(&e)
                            )
                        })?;
                    out.secret_string().unwrap_or_default().to_string()
                } else {
                    let name = s.slack_ssm_parameter.as_deref().unwrap_or_default();
                    let out = self
                        .ssm
                        .get_parameter()
                        .name(name)
                        .with_decryption(true)
                        .send()
                        .await
                        .map_err(|e| {
                            format!(
                                "ssm:GetParameter {name}: {}",
                                aws_sdk_ssm::error::DisplayErrorContext(&e)
                            )
                        })?;
                    out.parameter().and_then(|p| p.value()).unwrap_or_default().to_string()
                };
                // The secret may hold the URL itself or JSON with a `url` / `webhookUrl` key.
                let url = serde_json::from_str::<Value>(&raw)
                    .ok()
                    .and_then(|v| {
                        v.get("url")
                            .or_else(|| v.get("webhookUrl"))
                            .and_then(Value::as_str)
                            .map(str::to_string)
                    })
                    .unwrap_or(raw);
                if !(url.starts_with("https://") || url.starts_with("http://")) {
                    return Err("the Slack webhook secret does not hold a URL".to_string());
                }
                Ok(SecretString::from(url))
            })
            .await
            .map(Some)
    }
}

/// Errors the function returns, each with a stable `errorType`.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error(transparent)]
    Trigger(#[from] TriggerError),
    #[error("refused: {0}")]
    NotAllowed(String),
    /// A composite alarm fired but its children could not be read: failing the invocation
    /// sends the event to the on-failure destination instead of dropping it.
    #[error("composite alarm {alarm}: cannot resolve its triggering alarms: {reason}")]
    CompositeUnresolved { alarm: String, reason: String },
}

impl From<HandlerError> for Diagnostic {
    fn from(e: HandlerError) -> Diagnostic {
        let error_type = match &e {
            HandlerError::Trigger(t) => t.error_type(),
            HandlerError::NotAllowed(_) => "NotAllowed",
            HandlerError::CompositeUnresolved { .. } => "CompositeAlarmUnresolved",
        };
        Diagnostic {
            error_type: error_type.into(),
            error_message: e.to_string(),
        }
    }
}

/// The time left for gathering: the invocation's deadline minus the margin (60 s when
/// there is no deadline, as in local tests).
pub fn limits(deadline: SystemTime, margin: Duration) -> Limits {
    let remaining = deadline.duration_since(SystemTime::now()).unwrap_or_default();
    if deadline <= UNIX_EPOCH + Duration::from_secs(1) {
        return Limits::within(Duration::from_secs(60));
    }
    Limits::within(remaining.saturating_sub(margin).max(Duration::from_secs(1)))
}

pub async fn handle(ctx: &Ctx, event: LambdaEvent<Value>) -> Result<Value, HandlerError> {
    let started = Instant::now();
    let trigger = match trigger::parse(&event.payload) {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(error_type = e.error_type(), error = %e, "event rejected");
            return Err(e.into());
        }
    };
    let (alarm, targets) = match trigger {
        Trigger::Skip { reason, alarm } => {
            tracing::info!(alarm = alarm.as_ref().map(|a| a.name.as_str()), reason = %reason, "skipped");
            return Ok(json!({ "status": "skipped", "reason": reason, "alarm": alarm }));
        }
        Trigger::Recovered { target_group, alarm } => return Ok(recovered(ctx, &alarm, target_group).await),
        Trigger::Diagnose {
            target_group,
            cluster,
            alarm,
        } => (alarm, vec![(target_group, cluster)]),
        Trigger::Composite { alarm, children } => {
            let tgs = match resolve_composite(ctx, &alarm, &children).await {
                Ok(tgs) => tgs,
                Err(reason) => {
                    let e = HandlerError::CompositeUnresolved {
                        alarm: alarm.name.clone(),
                        reason,
                    };
                    tracing::error!(error_type = "CompositeAlarmUnresolved", error = %e, "event not processed");
                    return Err(e);
                }
            };
            if tgs.is_empty() {
                let reason = format!(
                    "composite alarm {}: no triggering child alarm is on a target group's {}",
                    alarm.name, "UnHealthyHostCount"
                );
                tracing::info!(alarm = %alarm.name, reason = %reason, "skipped");
                return Ok(json!({ "status": "skipped", "reason": reason, "alarm": alarm }));
            }
            (Some(alarm), tgs.into_iter().map(|t| (t, None)).collect())
        }
    };
    let s = &ctx.settings;
    for (tg, _) in &targets {
        if !s.allowed_accounts.is_empty() && !s.allowed_accounts.contains(&tg.account) {
            let why = format!("account {} is not in ALLOWED_ACCOUNTS", tg.account);
            tracing::warn!(target_group = %tg, reason = %why, "refused");
            return Err(HandlerError::NotAllowed(why));
        }
    }
    let mut reports = Vec::new();
    let mut deliveries = Vec::new();
    // A composite alarm can name several target groups: the cap is per invocation.
    let mut writes_left = s.fix.max_writes;
    for (tg, cluster) in targets {
        let limits = limits(event.context.deadline(), s.deadline_margin);
        let mut snapshot = gather_snapshot(ctx, &tg, cluster, limits).await;
        // The diagnosis is about the moment the alarm fired ("the hour before the alarm").
        if let Some(at) = alarm.as_ref().and_then(|a| a.state_changed_at()) {
            snapshot.as_of = Some(at);
        }
        let mut report = doctor::diagnose(&snapshot);
        if let Some(cluster) = &report.cluster {
            if !s.allowed_clusters.is_empty() && !s.allowed_clusters.contains(cluster) {
                let why = format!("cluster {cluster} is not in ALLOWED_CLUSTERS");
                tracing::warn!(target_group = %tg, reason = %why, "refused");
                return Err(HandlerError::NotAllowed(why));
            }
        }
        if let Some(why) = &s.fix_mode_error {
            report.notes.push(format!("fixes off: {why}"));
        }
        let run = FixRun {
            tg: &tg,
            alarm: alarm.as_ref().map(|a| a.name.as_str()),
            limits: &limits,
            approved: None,
            writes_left,
        };
        writes_left = writes_left.saturating_sub(run_fixes(ctx, &snapshot, &mut report, run).await);
        let delivered = notify_report(ctx, &report, alarm.as_ref(), &tg).await;
        let failures = delivered.iter().filter(|d| !d.ok).count();
        tracing::info!(
            alarm = alarm.as_ref().map(|a| a.name.as_str()),
            target_group = %tg,
            cluster = report.cluster.as_deref(),
            root_cause = report.root_cause,
            findings = report.findings.len(),
            duration_ms = started.elapsed().as_millis() as u64,
            api_calls = %json!(report.api_calls),
            notification_failures = failures,
            fixes = %json!(report.fixes.iter().map(|f| (f.fix_id, f.status)).collect::<Vec<_>>()),
            "diagnosis summary"
        );
        emit_metrics(&report, failures);
        deliveries.extend(delivered);
        reports.push(serde_json::to_value(&report).unwrap_or(Value::Null));
    }
    Ok(json!({ "status": "diagnosed", "alarm": alarm, "reports": reports, "deliveries": deliveries }))
}

/// Gathers the Snapshot for one target group, with the health-check replay when the
/// deployment turned it on.
pub async fn gather_snapshot(
    ctx: &Ctx,
    tg: &TargetGroupArn,
    cluster: Option<String>,
    limits: Limits,
) -> doctor::Snapshot {
    let mut snapshot = gather(&ctx.aws, KubeAccess::Eks(&ctx.clusters), tg, cluster, limits).await;
    if ctx.settings.health_check_replay {
        snapshot.probe = replay(&snapshot, &ReplayOptions::default(), &limits).await;
    }
    snapshot
}

/// One fix run: for which target group, why, and within what.
pub struct FixRun<'a> {
    pub tg: &'a TargetGroupArn,
    /// The alarm name (or "approved by ..."), recorded in the cooldown annotation.
    pub alarm: Option<&'a str>,
    pub limits: &'a Limits,
    /// The remediate function: only this fix, a person's approval standing in for
    /// `unattended`; only then is an EC2 writer passed.
    pub approved: Option<&'a str>,
    /// Writes still allowed in this invocation (MAX_FIX_WRITES less those already made).
    pub writes_left: usize,
}

/// Plans the catalogue fixes the report offers and, as FIX_MODE allows, runs them through
/// every guard; when something was written, re-reads target health until healthy or the
/// verification time is spent. The outcome of each lands in `report.fixes`. Returns the
/// number of writes attempted (each counts against MAX_FIX_WRITES, whatever its outcome).
pub async fn run_fixes(ctx: &Ctx, snapshot: &doctor::Snapshot, report: &mut Report, run: FixRun<'_>) -> usize {
    let FixRun {
        tg,
        alarm,
        limits,
        approved,
        writes_left,
    } = run;
    let policy = &FixPolicy {
        max_writes: writes_left,
        ..ctx.settings.fix.clone()
    };
    let mut fixes = fix::plan(report, policy, approved);
    // ALLOWED_CLUSTERS was checked against the resolved cluster: without one, nothing is
    // written (not even the AWS-side fix, which needs no Kubernetes client).
    if report.cluster.is_none() {
        for f in fixes.iter_mut().filter(|f| f.status == FixStatus::Planned) {
            f.status = FixStatus::NotAllowed;
            f.detail = "no EKS cluster resolved for the target group: fixes need a known, allowed cluster".into();
        }
    }
    if let Some(function) = &ctx.settings.remediate_function {
        for f in fixes.iter_mut().filter(|f| f.status == FixStatus::AwaitingApproval) {
            let payload = json!({
                "targetGroupArn": tg.to_string(),
                "clusterName": report.cluster,
                "fixId": f.fix_id,
                "approvedBy": "YOUR-NAME",
            });
            f.detail.push_str(&format!(
                "; to approve: aws lambda invoke --function-name {function} --cli-binary-format raw-in-base64-out --payload '{payload}' /dev/stdout"
            ));
        }
    }
    if fixes.iter().any(|f| f.status == FixStatus::Planned) {
        let kube = match &report.cluster {
            Some(cluster) => {
                ctx.clusters
                    .client_for(&ctx.aws, cluster, &snapshot.aws.cluster, limits)
                    .await
            }
            None => Err("no cluster resolved".to_string()),
        };
        let writers = Writers {
            kube: kube.as_ref().map_err(Clone::clone),
            ec2: approved.map(|_| &ctx.aws.ec2),
            alarm,
            now: SystemTime::now(),
        };
        fix_apply::apply_and_verify(
            &mut fixes,
            policy,
            &writers,
            &ctx.aws.elbv2,
            &tg.to_string(),
            Some(limits.deadline),
        )
        .await;
    }
    let attempted = fixes
        .iter()
        .filter(|f| f.status != FixStatus::NotAllowed && f.status != FixStatus::AwaitingApproval)
        .count();
    report.fixes = fixes;
    attempted
}

/// A composite alarm's triggering children, through `cloudwatch:DescribeAlarms`, to the
/// target groups of those that are `UnHealthyHostCount` alarms.
async fn resolve_composite(ctx: &Ctx, alarm: &Alarm, children: &[String]) -> Result<Vec<TargetGroupArn>, String> {
    let names: Vec<String> = children
        .iter()
        .filter_map(|arn| arn.rsplit(':').next().map(str::to_string))
        .collect();
    let out = match ctx
        .cloudwatch
        .describe_alarms()
        .set_alarm_names(Some(names))
        .send()
        .await
    {
        Ok(out) => out,
        Err(e) => {
            return Err(format!(
                "cloudwatch:DescribeAlarms: {}",
                aws_sdk_cloudwatch::error::DisplayErrorContext(&e)
            ))
        }
    };
    let mut tgs = Vec::new();
    for child in out.metric_alarms() {
        let dims = |d: &[aws_sdk_cloudwatch::types::Dimension]| -> Vec<(String, String)> {
            d.iter()
                .map(|x| {
                    (
                        x.name().unwrap_or_default().to_string(),
                        x.value().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        };
        let mut metrics = Vec::new();
        if let Some(name) = child.metric_name() {
            metrics.push(MetricRef {
                namespace: child.namespace().unwrap_or_default().into(),
                name: name.into(),
                dimensions: dims(child.dimensions()),
            });
        }
        for m in child.metrics() {
            if let Some(metric) = m.metric_stat().and_then(|s| s.metric()) {
                metrics.push(MetricRef {
                    namespace: metric.namespace().unwrap_or_default().into(),
                    name: metric.metric_name().unwrap_or_default().into(),
                    dimensions: dims(metric.dimensions()),
                });
            }
        }
        if let Ok(Some(tg)) = trigger::target_group_of(&metrics, alarm) {
            if !tgs.contains(&tg) {
                tgs.push(tg);
            }
        }
    }
    Ok(tgs)
}

/// One notification, ready for every channel.
pub struct Outgoing<'a> {
    pub subject: String,
    pub sns_message: String,
    pub attributes: Vec<(&'a str, String)>,
    pub slack: Value,
}

/// Sends to SNS and Slack concurrently; each channel independent of the other.
pub async fn deliver(ctx: &Ctx, out: Outgoing<'_>) -> Vec<Delivery> {
    let sns = async {
        let topic = ctx.settings.sns_topic_arn.as_deref()?;
        Some(publish(ctx, topic, &out.subject, &out.sns_message, &out.attributes).await)
    };
    let slack = async {
        match ctx.slack_url().await {
            Ok(Some(url)) => Some(notify::post_slack(url, &out.slack).await),
            Ok(None) => None,
            Err(e) => Some(Delivery {
                channel: "slack",
                ok: false,
                attempts: 0,
                detail: e,
            }),
        }
    };
    let (sns, slack) = tokio::join!(sns, slack);
    let delivered: Vec<Delivery> = [sns, slack].into_iter().flatten().collect();
    for d in delivered.iter().filter(|d| !d.ok) {
        tracing::warn!(channel = d.channel, attempts = d.attempts, detail = %d.detail, "notification failed");
    }
    delivered
}

async fn notify_report(ctx: &Ctx, report: &Report, alarm: Option<&Alarm>, tg: &TargetGroupArn) -> Vec<Delivery> {
    let cx = notify::Context {
        alarm,
        region: &tg.region,
        mode: ctx.settings.mode(),
    };
    let sns_message = if ctx.settings.chatbot_format {
        notify::chatbot_message(report, &cx).to_string()
    } else {
        notify::sns_body(report, &cx)
    };
    let out = Outgoing {
        subject: notify::sns_subject(report, &cx),
        sns_message,
        attributes: notify::sns_attributes(report),
        slack: notify::slack_message(report, &cx),
    };
    deliver(ctx, out).await
}

async fn publish(ctx: &Ctx, topic: &str, subject: &str, message: &str, attributes: &[(&str, String)]) -> Delivery {
    let mut request = ctx.sns.publish().topic_arn(topic).subject(subject).message(message);
    for (name, value) in attributes {
        let attr = aws_sdk_sns::types::MessageAttributeValue::builder()
            .data_type("String")
            .string_value(value)
            .build();
        if let Ok(attr) = attr {
            request = request.message_attributes(*name, attr);
        }
    }
    match request.send().await {
        Ok(out) => Delivery {
            channel: "sns",
            ok: true,
            attempts: 1,
            detail: out.message_id().unwrap_or_default().to_string(),
        },
        Err(e) => Delivery {
            channel: "sns",
            ok: false,
            attempts: 1,
            detail: format!("{}", aws_sdk_sns::error::DisplayErrorContext(&e)),
        },
    }
}

async fn recovered(ctx: &Ctx, alarm: &Alarm, tg: Option<TargetGroupArn>) -> Value {
    if !ctx.settings.notify_on_recovery {
        tracing::info!(alarm = %alarm.name, "recovered; recovery notes are off");
        return json!({ "status": "recovered", "alarm": alarm, "deliveries": [] });
    }
    let text = notify::recovered_text(alarm, tg.as_ref().map(|t| t.name.as_str()));
    let out = Outgoing {
        subject: notify::clean_subject(&format!("[eks-lb-doctor] recovered: {}", alarm.name)),
        sns_message: text.clone(),
        attributes: vec![("rootCause", "recovered".into())],
        slack: json!({ "text": text }),
    };
    let deliveries = deliver(ctx, out).await;
    tracing::info!(alarm = %alarm.name, "recovered");
    json!({ "status": "recovered", "alarm": alarm, "deliveries": deliveries })
}

/// CloudWatch Embedded Metric Format: one JSON line on stdout, which CloudWatch Logs turns
/// into metrics (diagnoses run, root causes by check, notification failures). This is the
/// metrics channel, not logging, hence stdout directly.
fn emit_metrics(report: &Report, notification_failures: usize) {
    let line = json!({
        "_aws": {
            "Timestamp": SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0),
            "CloudWatchMetrics": [{
                "Namespace": "EksLbDoctor",
                "Dimensions": [["RootCause"]],
                "Metrics": [
                    { "Name": "Diagnoses", "Unit": "Count" },
                    { "Name": "NotificationFailures", "Unit": "Count" },
                    { "Name": "FixesApplied", "Unit": "Count" }
                ]
            }]
        },
        "RootCause": report.root_cause.unwrap_or("none"),
        "Diagnoses": 1,
        "NotificationFailures": notification_failures,
        "FixesApplied": report.fixes.iter().filter(|f| f.status == FixStatus::Applied).count(),
    });
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
}

/// JSON logs when `AWS_LAMBDA_LOG_FORMAT=JSON`, at `AWS_LAMBDA_LOG_LEVEL` (else `RUST_LOG`,
/// else info).
pub fn init_logging() {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .ok()
        .map(|l| l.to_ascii_lowercase())
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| "info".into());
    let filter = tracing_subscriber::EnvFilter::try_new(level).unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time();
    if std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json")) {
        builder.json().with_current_span(false).init();
    } else {
        builder.with_ansi(false).init();
    }
}
