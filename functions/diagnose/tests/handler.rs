//! The handler called directly (no Lambda runtime), on the paths that need no AWS call:
//! rejected, skipped and refused events, with their stable error types. The full path (AWS
//! and Kubernetes stand-ins, SNS and Slack delivery) runs in tests/e2e under the Lambda
//! Runtime API emulator.

use std::path::Path;

use diagnose_fn::{handle, Ctx, Settings};
use doctor::fix::FixMode;
use lambda_runtime::{Context, Diagnostic, LambdaEvent};
use serde_json::Value;

fn event(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events").join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

async fn ctx(settings: Settings) -> Ctx {
    // Nothing listens on 127.0.0.1:9: any AWS call these paths made would fail loudly.
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(doctor::gather::aws::https_client())
        .endpoint_url("http://127.0.0.1:9")
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .load()
        .await;
    Ctx::new(&config, settings)
}

async fn run(settings: Settings, payload: Value) -> Result<Value, Diagnostic> {
    let ctx = ctx(settings).await;
    handle(&ctx, LambdaEvent::new(payload, Context::default()))
        .await
        .map_err(Diagnostic::from)
}

#[tokio::test]
async fn every_sample_event_parses() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("example-") && n.ends_with(".json"))
        .collect();
    names.sort();
    assert!(names.len() >= 10, "{names:?}");
    for name in names {
        let parsed = doctor::trigger::parse(&event(&name));
        let rejected = name.contains("malformed");
        assert_eq!(parsed.is_err(), rejected, "{name}: {parsed:?}");
    }
}

#[tokio::test]
async fn malformed_and_unsupported_events_are_errors_with_stable_types() {
    let err = run(Settings::default(), event("example-malformed-event.json"))
        .await
        .unwrap_err();
    assert_eq!(err.error_type, "UnsupportedEvent");
    let err = run(Settings::default(), Value::Array(vec![])).await.unwrap_err();
    assert_eq!(err.error_type, "MalformedEvent");
    let err = run(
        Settings::default(),
        serde_json::json!({"targetGroupArn": "arn:aws:nope"}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.error_type, "InvalidTargetGroupArn");
}

#[tokio::test]
async fn other_metrics_and_insufficient_data_are_skipped_with_a_reason() {
    for name in [
        "example-eventbridge-other-metric.json",
        "example-eventbridge-insufficient-data.json",
    ] {
        let out = run(Settings::default(), event(name)).await.unwrap();
        assert_eq!(out["status"], "skipped", "{name}");
        assert!(out["reason"].as_str().is_some_and(|r| !r.is_empty()), "{name}");
    }
}

#[tokio::test]
async fn recovery_without_notes_is_acknowledged() {
    let out = run(Settings::default(), event("example-eventbridge-alb-ok.json"))
        .await
        .unwrap();
    assert_eq!(out["status"], "recovered");
    assert_eq!(out["deliveries"], serde_json::json!([]));
}

#[tokio::test]
async fn accounts_outside_the_allow_list_are_refused() {
    let settings =
        Settings::from_lookup(|k| (k == "ALLOWED_ACCOUNTS").then(|| "111111111111, 222222222222".to_string()));
    let err = run(settings, event("example-eventbridge-alb-alarm.json"))
        .await
        .unwrap_err();
    assert_eq!(err.error_type, "NotAllowed");
    assert!(err.error_message.contains("123456789012"), "{}", err.error_message);
}

#[test]
fn settings_read_the_environment_shape() {
    let s = Settings::from_lookup(|k| match k {
        "SNS_TOPIC_ARN" => Some("arn:aws:sns:us-east-1:123456789012:t".into()),
        "NOTIFY_ON_RECOVERY" => Some("true".into()),
        "ALLOWED_CLUSTERS" => Some("a,b".into()),
        "SLACK_WEBHOOK_SSM_PARAMETER" => Some("".into()),
        _ => None,
    });
    assert_eq!(s.sns_topic_arn.as_deref(), Some("arn:aws:sns:us-east-1:123456789012:t"));
    assert!(s.notify_on_recovery && !s.chatbot_format);
    assert_eq!(s.allowed_clusters, vec!["a", "b"]);
    assert_eq!(s.slack_ssm_parameter, None);
    assert_eq!(s.fix.mode, FixMode::Off, "report-only unless FIX_MODE says otherwise");
    assert!(s.fix.allowed_namespaces.is_empty() && s.fix_mode_error.is_none());
    assert!(!s.health_check_replay, "the replay is opt-in");
    assert!(Settings::from_lookup(|k| (k == "HEALTH_CHECK_REPLAY").then(|| "true".into())).health_check_replay);
}

#[test]
fn fix_settings_parse_and_a_bad_mode_stays_off_with_the_reason() {
    let s = Settings::from_lookup(|k| match k {
        "FIX_MODE" => Some("auto".into()),
        "ALLOWED_NAMESPACES" => Some("shop, kube-system".into()),
        "MAX_FIX_WRITES" => Some("2".into()),
        "FIX_COOLDOWN_SECONDS" => Some("600".into()),
        _ => None,
    });
    assert_eq!(s.fix.mode, FixMode::Auto);
    assert_eq!(s.fix.allowed_namespaces, vec!["shop", "kube-system"]);
    assert_eq!((s.fix.max_writes, s.fix.cooldown.as_secs()), (2, 600));
    let bad = Settings::from_lookup(|k| (k == "FIX_MODE").then(|| "yolo".to_string()));
    assert_eq!(bad.fix.mode, FixMode::Off);
    assert!(bad.fix_mode_error.as_deref().unwrap_or_default().contains("yolo"));
}

#[tokio::test]
async fn a_composite_alarm_whose_children_cannot_be_read_is_an_error_not_a_skip() {
    // CloudWatch is unreachable here (127.0.0.1:9): the event must fail loudly.
    let err = run(Settings::default(), event("example-eventbridge-composite-alarm.json"))
        .await
        .unwrap_err();
    assert_eq!(err.error_type, "CompositeAlarmUnresolved");
    assert!(
        err.error_message.contains("alb-instance-service-down"),
        "{}",
        err.error_message
    );
}
