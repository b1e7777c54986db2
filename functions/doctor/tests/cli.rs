//! The CLI binary end to end: output formats, exit codes, and a one-line error (never a
//! panic) for every kind of bad input.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/scenarios")
        .join(name)
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_eks-lb-doctor"))
        .args(args)
        .output()
        .expect("binary runs")
}

fn diagnose(dir: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["diagnose", "--dump", dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    run(&args)
}

/// Asserts exit code 2 and a single-line error on stderr containing `needle`.
fn assert_bad_input(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line expected: {stderr}");
    assert!(stderr.contains(needle), "{needle:?} not in {stderr}");
    assert!(out.stdout.is_empty());
}

/// A copy of the healthy scenario to break.
fn copy_of_healthy() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&scenario("healthy"), tmp.path());
    tmp
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &dest);
        } else {
            fs::copy(entry.path(), dest).unwrap();
        }
    }
}

#[test]
fn json_output_is_the_report_contract() {
    let out = diagnose(&scenario("selector-matches-no-pods"), &["--output", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let first = &report["findings"][0];
    assert_eq!(first["check"], "selector-matches-no-pods");
    assert_eq!(first["severity"], "critical");
    assert!(first["evidence"].is_object());
    assert!(first["fix"]["command"].is_string());
    assert!(first["explainedBy"].is_null());
    assert_eq!(report["findings"][1]["explainedBy"], "selector-matches-no-pods");
    for key in ["inconclusive", "notCollected"] {
        assert!(report[key].is_array(), "{key}");
    }
    assert_eq!(
        report["targetGroup"]["arn"].as_str().unwrap().split(':').nth(2),
        Some("elasticloadbalancing")
    );
    assert_eq!(report["targetHealth"]["byState"]["unhealthy"], 2);
    assert_eq!(report["targetHealth"]["byReason"]["Target.FailedHealthChecks"], 2);
}

#[test]
fn text_output_names_the_root_cause_and_fix() {
    let out = diagnose(&scenario("target-port-mismatch"), &[]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("ROOT CAUSE"), "{text}");
    assert!(text.contains("target-port-mismatch"), "{text}");
    assert!(text.contains("[fix: set-target-port]"), "{text}");
}

#[test]
fn fail_on_sets_the_exit_code() {
    assert_eq!(
        diagnose(&scenario("pod-not-ready"), &["--fail-on", "critical"])
            .status
            .code(),
        Some(1)
    );
    assert_eq!(
        diagnose(&scenario("healthy"), &["--fail-on", "warning"]).status.code(),
        Some(0)
    );
    // An info finding (by design) does not trip a warning threshold.
    assert_eq!(
        diagnose(&scenario("nlb-local-by-design"), &["--fail-on", "warning"])
            .status
            .code(),
        Some(0)
    );
}

#[test]
fn checks_lists_the_catalogue() {
    let out = run(&["checks", "--output", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let list: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<&str> = list.iter().map(|c| c["id"].as_str().unwrap()).collect();
    let registry: Vec<&str> = doctor::checks::registry().iter().map(|c| c.meta().id).collect();
    assert_eq!(ids, registry);
}

#[test]
fn unreadable_dump_directory() {
    assert_bad_input(
        &diagnose(Path::new("/nonexistent/dump"), &[]),
        "cannot read /nonexistent/dump",
    );
}

#[test]
fn missing_manifest() {
    let tmp = tempfile::tempdir().unwrap();
    assert_bad_input(&diagnose(tmp.path(), &[]), "manifest.json");
}

#[test]
fn manifest_without_target_group() {
    let tmp = copy_of_healthy();
    fs::write(tmp.path().join("manifest.json"), r#"{"region": "us-east-1"}"#).unwrap();
    assert_bad_input(&diagnose(tmp.path(), &[]), "manifest has no \"targetGroupArn\"");
}

#[test]
fn arn_that_does_not_parse() {
    let tmp = copy_of_healthy();
    fs::write(
        tmp.path().join("manifest.json"),
        r#"{"targetGroupArn": "arn:aws:s3:::bucket"}"#,
    )
    .unwrap();
    assert_bad_input(&diagnose(tmp.path(), &[]), "not a target group ARN");
}

#[test]
fn target_group_unknown_to_the_dump() {
    let tmp = copy_of_healthy();
    let other = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/other/0123456789abcdef";
    fs::write(
        tmp.path().join("manifest.json"),
        format!(r#"{{"targetGroupArn": "{other}"}}"#),
    )
    .unwrap();
    assert_bad_input(&diagnose(tmp.path(), &[]), "knows nothing about target group");
}

#[test]
fn aws_file_that_is_not_json_names_file_line_and_column() {
    let tmp = copy_of_healthy();
    fs::write(
        tmp.path().join("aws/ec2-describe-subnets.json"),
        "{\n  \"Subnets\": [,]\n}\n",
    )
    .unwrap();
    assert_bad_input(&diagnose(tmp.path(), &[]), "ec2-describe-subnets.json:2:");
}

#[test]
fn k8s_file_that_is_not_yaml_names_file_line_and_column() {
    let tmp = copy_of_healthy();
    fs::write(tmp.path().join("k8s/broken.yaml"), "kind: Pod\nmetadata: [unclosed\n").unwrap();
    let out = diagnose(tmp.path(), &[]);
    assert_bad_input(&out, "broken.yaml:");
    assert!(String::from_utf8_lossy(&out.stderr).contains("not valid YAML"));
}

#[test]
fn missing_files_are_not_collected_not_errors() {
    let tmp = copy_of_healthy();
    fs::remove_dir_all(tmp.path().join("k8s")).unwrap();
    fs::remove_file(tmp.path().join("aws/ec2-describe-network-acls.json")).unwrap();
    let out = diagnose(tmp.path(), &["--output", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let not_collected = report["notCollected"].as_array().unwrap();
    assert!(not_collected.iter().any(|n| n["item"] == "network ACLs"));
    assert!(not_collected
        .iter()
        .any(|n| n["item"] == "Pods" && n["reason"] == "dump has no k8s/ directory"));
    let inconclusive = report["inconclusive"].as_array().unwrap();
    assert!(inconclusive.iter().any(|i| i["check"] == "network-acl-blocks-traffic"));
    assert!(inconclusive.iter().any(|i| i["check"] == "pod-not-ready"));
}

#[test]
fn fix_options_are_checked_before_anything_is_contacted() {
    let arn = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0123456789abcdef";
    let off = run(&["diagnose", "--target-group", arn, "--approve", "set-target-port"]);
    assert_bad_input(&off, "--approve needs --fix dry-run or --fix auto");
    let unknown = run(&["diagnose", "--target-group", arn, "--fix", "auto", "--approve", "rm-rf"]);
    assert_bad_input(
        &unknown,
        "--approve rm-rf: not a catalogue fix (set-external-traffic-policy-cluster",
    );
    // Fixes need the live APIs: never on a dump.
    let on_dump = diagnose(&scenario("healthy"), &["--fix", "auto"]);
    assert_eq!(on_dump.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&on_dump.stderr).contains("cannot be used with"));
}
