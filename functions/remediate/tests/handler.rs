//! The handler called directly (no Lambda runtime), on the paths decided before any AWS
//! call: malformed approvals and refusals, each with a stable error type. The full path
//! (re-diagnosis, guarded write, verification, notification) runs in tests/e2e against the
//! stand-ins under the Lambda Runtime API emulator.

use diagnose_fn::{Ctx, Settings};
use lambda_runtime::{Context, Diagnostic, LambdaEvent};
use remediate_fn::handle;
use serde_json::{json, Value};

const TG: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/k8s-default-web/0123456789abcdef";

async fn run(env: &[(&str, &str)], payload: Value) -> Result<Value, Diagnostic> {
    let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let settings = Settings::from_lookup(|k| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()));
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
    let ctx = Ctx::new(&config, settings);
    handle(&ctx, LambdaEvent::new(payload, Context::default()))
        .await
        .map_err(Diagnostic::from)
}

const AUTO: &[(&str, &str)] = &[("FIX_MODE", "auto"), ("ALLOWED_NAMESPACES", "*")];

#[tokio::test]
async fn malformed_approvals_say_what_is_expected() {
    let cases = [
        (json!({}), "missing field `targetGroupArn`"),
        (
            json!({"targetGroupArn": TG, "fixId": "set-target-port"}),
            "missing field `approvedBy`",
        ),
        (
            json!({"targetGroupArn": TG, "fixId": "delete-everything", "approvedBy": "alice"}),
            "unknown fix \"delete-everything\"; the catalogue: set-external-traffic-policy-cluster",
        ),
        (
            json!({"targetGroupArn": TG, "fixId": "set-target-port", "approvedBy": "  "}),
            "approvedBy is empty",
        ),
        (
            json!({"targetGroupArn": "arn:aws:s3:::bucket", "fixId": "set-target-port", "approvedBy": "alice"}),
            "arn:aws:s3:::bucket",
        ),
        (
            json!({"targetGroupArn": TG, "fixId": "set-target-port", "approvedBy": "alice", "force": true}),
            "unknown field `force`",
        ),
        (json!([1, 2]), "invalid type"),
    ];
    for (payload, want) in cases {
        let err = run(AUTO, payload.clone()).await.unwrap_err();
        assert_eq!(err.error_type, "MalformedApproval", "{payload}");
        assert!(err.error_message.contains(want), "{payload}: {}", err.error_message);
    }
}

#[tokio::test]
async fn refused_when_fixes_are_off_or_the_account_is_not_allowed() {
    let approval = json!({"targetGroupArn": TG, "fixId": "authorize-health-check-ingress", "approvedBy": "alice"});
    let err = run(&[], approval.clone()).await.unwrap_err();
    assert_eq!(err.error_type, "NotAllowed");
    assert!(err.error_message.contains("FIX_MODE is off"), "{}", err.error_message);
    let err = run(&[("FIX_MODE", "auto"), ("ALLOWED_ACCOUNTS", "111111111111")], approval)
        .await
        .unwrap_err();
    assert_eq!(err.error_type, "NotAllowed");
    assert!(
        err.error_message.contains("account 123456789012"),
        "{}",
        err.error_message
    );
}
