//! Notifications: the report rendered for Slack (Block Kit, within Slack's limits), for SNS
//! (a subject, a plain-text body for email, message attributes, and optionally the AWS
//! Chatbot custom-notification schema), and their delivery. Each channel is independent:
//! one failing never blocks another. Secrets (the webhook URL) never reach a log line.

use std::time::Duration;

use serde_json::{json, Value};

use crate::finding::{Finding, Severity};
use crate::report::Report;
use crate::trigger::Alarm;

/// Slack's limits: 50 blocks a message, 3,000 characters a section text; the whole message
/// is kept well under its 13,000-character guidance.
pub const SLACK_MAX_BLOCKS: usize = 50;
pub const SLACK_MAX_SECTION: usize = 3000;
pub const SLACK_MAX_TOTAL: usize = 12_000;
pub const SNS_MAX_SUBJECT: usize = 100;

/// What the notification is about, beyond the report.
#[derive(Debug, Clone, Default)]
pub struct Context<'a> {
    pub alarm: Option<&'a Alarm>,
    pub region: &'a str,
    /// `report-only`, or the fix mode the deployment runs in.
    pub mode: &'a str,
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

fn colour(severity: Option<Severity>) -> &'static str {
    match severity {
        Some(Severity::Critical) => "#d00000",
        Some(Severity::Warning) => "#f2c744",
        Some(Severity::Info) => "#439fe0",
        None => "#2eb67d",
    }
}

/// A one-line summary: "root cause: <check> on <resource>" or "no fault found".
pub fn summary(report: &Report) -> String {
    let tg = report.target_group.name.as_deref().unwrap_or("target group");
    match report.findings.first() {
        Some(f) if report.root_cause.is_some() => format!("{tg}: {} ({})", f.check, f.severity.as_str()),
        Some(f) => format!("{tg}: no fault found ({} {})", f.check, f.severity.as_str()),
        None => format!("{tg}: no fault found"),
    }
}

fn finding_text(f: &Finding, with_evidence: bool) -> String {
    let mut text = format!(
        "*{}* `{}` on `{}`\n{}",
        f.severity.as_str().to_uppercase(),
        f.check,
        f.resource,
        f.message
    );
    if with_evidence && !f.evidence.is_empty() {
        let evidence: Vec<String> = f
            .evidence
            .iter()
            .map(|(k, v)| format!("• {k}: {}", truncate(&v.to_string(), 300)))
            .collect();
        text.push_str("\n*Evidence*\n");
        text.push_str(&evidence.join("\n"));
    }
    truncate(&text, SLACK_MAX_SECTION)
}

fn section(text: String) -> Value {
    json!({ "type": "section", "text": { "type": "mrkdwn", "text": truncate(&text, SLACK_MAX_SECTION) } })
}

/// The Slack incoming-webhook payload: fallback text, a severity-coloured attachment with
/// the header, root cause, evidence and fix, the other findings (the tail truncated with
/// "and N more", never the root cause), what could not be collected, and context.
pub fn slack_message(report: &Report, cx: &Context<'_>) -> Value {
    let first = report.findings.first();
    let mut blocks = vec![json!({
        "type": "header",
        "text": { "type": "plain_text", "text": truncate(&format!("Unhealthy targets: {}", report.target_group.name.as_deref().unwrap_or("target group")), 150) }
    })];
    let unexplained_root = report.root_cause.is_some() && report.root_causes.first().is_some_and(|r| r.unexplained);
    match first {
        Some(f) => {
            let label = if unexplained_root {
                "Root cause (unexplained: a symptom no cause accounts for)"
            } else if report.root_cause.is_some() {
                "Root cause"
            } else {
                "Finding"
            };
            blocks.push(section(format!("*{label}*\n{}", finding_text(f, true))));
            if let Some(fix) = &f.fix {
                let id = fix.fix_id.map_or(String::new(), |id| format!(" (safe fix `{id}`)"));
                let proof = match (&fix.proof, fix.unattended) {
                    (Some(p), Some(true)) => format!("\n_may run unattended: {}_", truncate(p, 300)),
                    (Some(p), _) => format!("\n_needs approval: {}_", truncate(p, 300)),
                    _ => String::new(),
                };
                blocks.push(section(format!(
                    "*Fix*{id}\n```{}```{proof}",
                    truncate(&fix.command, SLACK_MAX_SECTION - 400)
                )));
            }
        }
        None if report.unexplained.is_some() => blocks.push(section(
            "No finding explains the failing targets (see *Unexplained*).".into(),
        )),
        None => blocks.push(section(
            "No fault found: every check that could decide found nothing wrong.".into(),
        )),
    }
    if let Some(text) = roots_text(report) {
        blocks.push(section(text));
    }
    if let Some(u) = &report.unexplained {
        let targets: Vec<String> = u
            .targets
            .iter()
            .map(|t| format!("`{}` ({})", t.id, t.reason.as_deref().unwrap_or(&t.state)))
            .collect();
        let not_checked: Vec<String> = u.not_checked.iter().take(6).map(|n| format!("• {n}")).collect();
        blocks.push(section(format!(
            "*Unexplained*: {} failing target(s) no finding accounts for: {}\n*Not checked*\n{}",
            targets.len(),
            truncate(&targets.join(", "), 600),
            not_checked.join("\n")
        )));
    }
    if !report.fixes.is_empty() {
        blocks.push(section(truncate(
            &format!("*Safe fixes*\n{}", fixes_text(report).join("\n")),
            SLACK_MAX_SECTION,
        )));
    }
    let mut context = vec![format!("target group `{}`", report.target_group.arn)];
    if let Some(a) = cx.alarm {
        context.push(format!("alarm *{}* ({})", a.name, a.state));
    }
    context.push(format!("region {}", cx.region));
    context.push(format!("mode {}", cx.mode));
    let health = &report.target_health;
    context.push(format!(
        "targets {}: {}",
        health.total,
        health
            .by_state
            .iter()
            .map(|(k, v)| format!("{v} {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let tail = vec![
        json!({ "type": "divider" }),
        json!({ "type": "context", "elements": context.iter().take(10).map(|c| json!({ "type": "mrkdwn", "text": truncate(c, 300) })).collect::<Vec<_>>() }),
    ];
    let not_collected = (!report.not_collected.is_empty()).then(|| {
        let items: Vec<String> = report
            .not_collected
            .iter()
            .map(|n| format!("• {}: {}", n.item, n.reason))
            .collect();
        section(format!("*Not collected*\n{}", items.join("\n")))
    });

    // Budget for the other findings: what is left after the fixed blocks.
    let fixed_len = |blocks: &[Value]| blocks.iter().map(|b| b.to_string().len()).sum::<usize>();
    let reserved = fixed_len(&tail) + not_collected.as_ref().map_or(0, |b| b.to_string().len()) + 600;
    let others: Vec<&Finding> = report.findings.iter().skip(1).collect();
    let mut shown = 0;
    if !others.is_empty() {
        blocks.push(section("*Other findings*".into()));
    }
    for f in &others {
        let block = section(finding_text(f, false));
        let over_blocks = blocks.len() + 1 + tail.len() + usize::from(not_collected.is_some()) + 1 > SLACK_MAX_BLOCKS;
        let over_chars = fixed_len(&blocks) + block.to_string().len() + reserved > SLACK_MAX_TOTAL;
        if over_blocks || over_chars {
            break;
        }
        blocks.push(block);
        shown += 1;
    }
    if shown < others.len() {
        blocks.push(section(format!(
            "_and {} more finding(s): see the full report_",
            others.len() - shown
        )));
    }
    blocks.extend(not_collected);
    blocks.extend(tail);
    let text = match (cx.alarm, first) {
        (Some(a), _) => format!("{}: {}", a.name, summary(report)),
        (None, _) => summary(report),
    };
    json!({
        "text": truncate(&text, 300),
        "attachments": [{ "color": colour(first.map(|f| f.severity)), "blocks": blocks }],
    })
}

/// When different causes explain different failing targets: one line per root.
fn roots_text(report: &Report) -> Option<String> {
    let covering: Vec<String> = report
        .root_causes
        .iter()
        .filter(|r| !r.failing_targets.is_empty())
        .map(|r| {
            format!(
                "• `{}`{}: {} failing target(s): {}",
                r.check,
                if r.unexplained { " (unexplained)" } else { "" },
                r.failing_targets.len(),
                truncate(&r.failing_targets.join(", "), 300)
            )
        })
        .collect();
    (covering.len() > 1).then(|| format!("*Different causes on different targets*\n{}", covering.join("\n")))
}

/// One line per catalogue fix: what it is, on what, and what became of it.
fn fixes_text(report: &Report) -> Vec<String> {
    report
        .fixes
        .iter()
        .map(|f| {
            let status = serde_json::to_value(f.status).unwrap_or_default();
            let verified = f.verification.as_deref().map_or(String::new(), |v| format!(" ({v})"));
            format!(
                "• `{}` on {}: *{}*: {}{verified}",
                f.fix_id,
                f.target,
                status.as_str().unwrap_or("?"),
                f.detail
            )
        })
        .collect()
}

/// SNS subject (at most 100 characters, as SNS requires): the root cause and the target
/// group first (they always fit: IDs and target group names are short), the alarm if room.
pub fn sns_subject(report: &Report, cx: &Context<'_>) -> String {
    let tg = report.target_group.name.as_deref().unwrap_or("target group");
    let mut subject = match report.root_cause {
        Some(check) => format!("[eks-lb-doctor] {check} on {tg}"),
        None => format!("[eks-lb-doctor] no fault found on {tg}"),
    };
    if let Some(a) = cx.alarm {
        let with_alarm = format!("{subject} ({})", a.name);
        if with_alarm.chars().count() <= SNS_MAX_SUBJECT {
            subject = with_alarm;
        }
    }
    clean_subject(&subject)
}

/// An SNS subject from any text: printable ASCII only (no control characters, no
/// newlines), at most 100 characters.
pub fn clean_subject(subject: &str) -> String {
    let clean: String = subject
        .chars()
        .map(|c| if c.is_ascii() && !c.is_control() { c } else { ' ' })
        .collect();
    if clean.len() <= SNS_MAX_SUBJECT {
        clean
    } else {
        format!("{}...", &clean[..SNS_MAX_SUBJECT - 3])
    }
}

/// The plain-text body for email subscribers.
pub fn sns_body(report: &Report, cx: &Context<'_>) -> String {
    let mut body = String::new();
    if let Some(a) = cx.alarm {
        body.push_str(&format!(
            "Alarm {} is {} ({}).\n{}\n\n",
            a.name,
            a.state,
            a.time.as_deref().unwrap_or("time unknown"),
            a.reason.as_deref().unwrap_or("")
        ));
    }
    body.push_str(&report.to_text());
    body.push_str(&format!("\nRegion {}, mode {}.\n", cx.region, cx.mode));
    body
}

/// Message attributes for SNS subscription filter policies.
pub fn sns_attributes(report: &Report) -> Vec<(&'static str, String)> {
    let mut out = vec![];
    if let Some(c) = &report.cluster {
        out.push(("cluster", c.clone()));
    }
    if let Some(b) = &report.backend {
        out.push(("namespace", b.namespace.clone()));
    }
    out.push(("rootCause", report.root_cause.unwrap_or("none").to_string()));
    out.push((
        "severity",
        report
            .findings
            .first()
            .map_or("none", |f| f.severity.as_str())
            .to_string(),
    ));
    out
}

/// The AWS Chatbot custom-notification schema, so SNS -> Chatbot -> Slack renders well.
pub fn chatbot_message(report: &Report, cx: &Context<'_>) -> Value {
    let first = report.findings.first();
    let mut description = first.map_or("No fault found.".to_string(), |f| {
        format!("*{}*: {}", f.check, f.message)
    });
    if report.findings.len() > 1 {
        description.push_str(&format!("\n{} more finding(s).", report.findings.len() - 1));
    }
    for line in fixes_text(report) {
        description.push('\n');
        description.push_str(&line);
    }
    let next_steps: Vec<String> = first
        .and_then(|f| f.fix.as_ref())
        .map(|fix| vec![format!("`{}`", truncate(&fix.command, 900))])
        .unwrap_or_default();
    json!({
        "version": "1.0",
        "source": "custom",
        "content": {
            "textType": "client-markdown",
            "title": truncate(&summary(report), 250),
            "description": truncate(&description, 8000),
            "nextSteps": next_steps,
        },
        "metadata": {
            "threadId": report.target_group.arn,
            "summary": truncate(&summary(report), 250),
            "additionalContext": { "region": cx.region, "alarm": cx.alarm.map(|a| a.name.clone()) },
        },
    })
}

/// A short "recovered" note (alarm back to OK).
pub fn recovered_text(alarm: &Alarm, target_group: Option<&str>) -> String {
    format!(
        "Recovered: alarm {} is OK again{}.",
        alarm.name,
        target_group.map_or(String::new(), |tg| format!(" for {tg}"))
    )
}

/// Outcome of one delivery, for the response and the logs.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    pub channel: &'static str,
    pub ok: bool,
    pub attempts: u32,
    pub detail: String,
}

/// Posts to a Slack incoming webhook with bounded retries (3 attempts, on transport errors,
/// 429 and 5xx). The URL is a secret: errors never include it.
pub async fn post_slack(url: &secrecy::SecretString, payload: &Value) -> Delivery {
    use secrecy::ExposeSecret;
    let body = payload.to_string();
    let mut last = String::new();
    for attempt in 1..=3u32 {
        match post_json(url.expose_secret(), &body).await {
            Ok(status) if (200..300).contains(&status) => {
                return Delivery {
                    channel: "slack",
                    ok: true,
                    attempts: attempt,
                    detail: format!("HTTP {status}"),
                }
            }
            Ok(status) if status == 429 || status >= 500 => last = format!("HTTP {status}"),
            Ok(status) => {
                return Delivery {
                    channel: "slack",
                    ok: false,
                    attempts: attempt,
                    detail: format!("HTTP {status}"),
                }
            }
            Err(e) => last = e,
        }
        tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
    }
    Delivery {
        channel: "slack",
        ok: false,
        attempts: 3,
        detail: last,
    }
}

async fn post_json(url: &str, body: &str) -> Result<u16, String> {
    use http_body_util::{BodyExt, Full};
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .build();
    let client: hyper_util::client::legacy::Client<_, Full<bytes::Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build(connector);
    let request = http::Request::post(url)
        .header("content-type", "application/json")
        .body(Full::new(bytes::Bytes::from(body.to_string())))
        .map_err(|_| "the webhook URL is not a valid URL".to_string())?;
    let response = tokio::time::timeout(Duration::from_secs(5), client.request(request))
        .await
        .map_err(|_| "timed out after 5s".to_string())?
        // hyper's error may embed the URI: keep only its kind.
        .map_err(|e| {
            format!(
                "request failed ({})",
                if e.is_connect() { "connect" } else { "transport" }
            )
        })?;
    let status = response.status().as_u16();
    let _ = response.into_body().collect().await;
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::Finding;

    fn big_report(n: usize) -> Report {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/scenarios/selector-matches-no-pods");
        let mut report = crate::diagnose(&crate::dump::load(&path).unwrap());
        for i in report.findings.len()..n {
            report.findings.push(
                Finding::new(
                    "health-check-unreachable",
                    Severity::Warning,
                    format!("i-{i:017}"),
                    "x".repeat(400),
                )
                .with_evidence(json!({ "detail": "y".repeat(500) })),
            );
        }
        report
    }

    #[test]
    fn slack_stays_within_limits_and_keeps_the_root_cause() {
        let report = big_report(60);
        let alarm = Alarm {
            name: "a".into(),
            state: "ALARM".into(),
            ..Default::default()
        };
        let msg = slack_message(
            &report,
            &Context {
                alarm: Some(&alarm),
                region: "us-east-1",
                mode: "report-only",
            },
        );
        let blocks = msg["attachments"][0]["blocks"].as_array().unwrap();
        assert!(blocks.len() <= SLACK_MAX_BLOCKS, "{} blocks", blocks.len());
        assert!(
            msg.to_string().len() <= SLACK_MAX_TOTAL,
            "{} chars",
            msg.to_string().len()
        );
        for b in blocks {
            if let Some(t) = b["text"]["text"].as_str() {
                assert!(t.chars().count() <= SLACK_MAX_SECTION);
            }
        }
        assert!(blocks[1]["text"]["text"]
            .as_str()
            .unwrap()
            .contains("selector-matches-no-pods"));
        let more = blocks
            .iter()
            .filter_map(|b| b["text"]["text"].as_str())
            .find(|t| t.contains("more finding"));
        assert!(more.is_some_and(|t| t.starts_with("_and ")), "{more:?}");
        assert_eq!(msg["attachments"][0]["color"], "#d00000");
    }

    #[test]
    fn sns_subject_is_short_and_single_line() {
        let report = big_report(3);
        let alarm = Alarm {
            name: "n".repeat(300),
            state: "ALARM".into(),
            ..Default::default()
        };
        let s = sns_subject(
            &report,
            &Context {
                alarm: Some(&alarm),
                region: "us-east-1",
                mode: "report-only",
            },
        );
        assert!(s.chars().count() <= SNS_MAX_SUBJECT);
        assert!(!s.contains('\n'));
        assert!(s.contains("selector-matches-no-pods"), "{s}");
        assert!(s.is_ascii());
        let attrs = sns_attributes(&report);
        assert!(attrs.contains(&("rootCause", "selector-matches-no-pods".to_string())));
        assert!(attrs.contains(&("namespace", "default".to_string())));
        let chatbot = chatbot_message(&report, &Context::default());
        assert_eq!(chatbot["version"], "1.0");
        assert_eq!(chatbot["content"]["textType"], "client-markdown");
        assert_eq!(chatbot["metadata"]["threadId"], report.target_group.arn);
    }
}
