//! Snapshots of the rendered notifications for the seed scenario: the Slack Block Kit
//! payload, the SNS subject, email body and attributes, and the AWS Chatbot schema.

use std::path::Path;

use doctor::notify::{chatbot_message, slack_message, sns_attributes, sns_body, sns_subject, Context};
use doctor::trigger::Alarm;

fn report() -> doctor::Report {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/scenarios/selector-matches-no-pods");
    doctor::diagnose(&doctor::dump::load(&path).unwrap())
}

fn alarm() -> Alarm {
    Alarm {
        name: "alb-instance-unhealthy-hosts".into(),
        arn: Some("arn:aws:cloudwatch:us-east-1:123456789012:alarm:alb-instance-unhealthy-hosts".into()),
        account: "123456789012".into(),
        region: "us-east-1".into(),
        partition: "aws".into(),
        state: "ALARM".into(),
        reason: Some("Threshold Crossed: 1 out of the last 1 datapoints [2.0] was >= 1.0".into()),
        time: Some("2026-11-27T03:01:12.345+0000".into()),
        source: "eventbridge",
    }
}

#[test]
fn rendered_notifications_match_snapshots() {
    let report = report();
    let alarm = alarm();
    let cx = Context {
        alarm: Some(&alarm),
        region: "us-east-1",
        mode: "report-only",
    };
    insta::assert_json_snapshot!("slack", slack_message(&report, &cx));
    insta::assert_snapshot!("sns-subject", sns_subject(&report, &cx));
    insta::assert_snapshot!("sns-body", sns_body(&report, &cx));
    insta::assert_debug_snapshot!("sns-attributes", sns_attributes(&report));
    insta::assert_json_snapshot!("chatbot", chatbot_message(&report, &cx));
}

#[test]
fn several_roots_and_unexplained_targets_reach_slack() {
    let load = |name: &str| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/scenarios")
            .join(name);
        doctor::diagnose(&doctor::dump::load(&path).unwrap())
    };
    let cx = Context {
        alarm: None,
        region: "us-east-1",
        mode: "report-only",
    };
    let two = slack_message(&load("two-roots"), &cx).to_string();
    assert!(two.contains("Different causes on different targets"), "{two}");
    assert!(two.contains("kube-proxy-unhealthy"), "{two}");
    let unexplained = slack_message(&load("unexplained-with-side-warnings"), &cx);
    let text = unexplained.to_string();
    assert!(text.contains("Root cause (unexplained"), "{text}");
    assert!(text.contains("*Unexplained*: 2 failing target(s)"), "{text}");
    assert!(text.contains("127.0.0.1"), "{text}");
    insta::assert_json_snapshot!("slack-unexplained", unexplained);
}
