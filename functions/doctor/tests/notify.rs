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
