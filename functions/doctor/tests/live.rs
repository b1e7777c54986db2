//! Live gathering end to end against the local stand-ins (tests/standins): moto for AWS
//! (seeded from each scenario dump, with the IDs of the dump) and the Kubernetes API
//! stand-in (serving the dump's k8s/ objects, checking the EKS token against moto's STS).
//! Each scenario served live must diagnose exactly as its dump, and a dump written by
//! `collect` from the live APIs must diagnose exactly as the live run.
//!
//! The stand-ins run under the project's Python virtualenv: `EKS_LB_DOCTOR_PYTHON`, else
//! `~/.cache/eks-lb-doctor/venv/bin/python` (`tests/run` creates it).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

use doctor::arn::TargetGroupArn;
use doctor::gather::aws::{https_client, AwsClients};
use doctor::gather::eks_auth::ClusterClients;
use doctor::gather::{gather, KubeAccess, Limits};
use serde_json::{json, Value};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn python() -> PathBuf {
    if let Ok(p) = std::env::var("EKS_LB_DOCTOR_PYTHON") {
        return p.into();
    }
    let home = std::env::var("HOME").unwrap_or_default();
    let venv = Path::new(&home).join(".cache/eks-lb-doctor/venv/bin/python");
    assert!(
        venv.exists(),
        "no Python virtualenv for the stand-ins at {}: run ./tests/run",
        venv.display()
    );
    venv
}

/// A stand-in process speaking line-delimited JSON on stdin / stdout.
struct StandIn {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    ready: Value,
}

impl StandIn {
    fn start(script: &str, args: &[&str]) -> StandIn {
        let mut child = Command::new(python())
            .arg(repo().join("tests/standins").join(script))
            .args(args)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {script}: {e}"));
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let ready = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{script} ready line {line:?}: {e}"));
        StandIn {
            child,
            stdin,
            stdout,
            ready,
        }
    }

    fn command(&mut self, cmd: Value) -> Value {
        writeln!(self.stdin, "{cmd}").unwrap();
        self.stdin.flush().unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("reply to {cmd}: {line:?}: {e}"))
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct World {
    moto: StandIn,
    kube: StandIn,
    aws: AwsClients,
}

impl World {
    async fn new(first_scenario: &Path) -> World {
        let moto = StandIn::start("aws_moto.py", &["--port", "0"]);
        let endpoint = moto.ready["endpoint"].as_str().unwrap().to_string();
        assert!(endpoint.starts_with("http://127.0.0.1:"), "{endpoint}");
        let state = first_scenario.join("k8s");
        let kube = StandIn::start(
            "kube_apiserver.py",
            &[
                "--state",
                state.to_str().unwrap(),
                "--sts-endpoint",
                &endpoint,
                "--cluster-name",
                "demo-cluster",
                "--port",
                "0",
            ],
        );
        let aws = moto_clients(&endpoint, "us-east-1").await;
        World { aws, moto, kube }
    }

    /// Enforces infra/k8s/rbac.yaml for these groups on every caller from now on.
    fn use_shipped_rbac(&mut self, groups: &[&str]) {
        let reply = self.kube.command(json!({
            "cmd": "authz-rbac",
            "file": repo().join("infra/k8s/rbac.yaml"),
            "groups": groups,
        }));
        assert_eq!(reply["ok"], true, "{reply}");
    }

    /// Serves `scenario` live: moto reset and seeded, the Kubernetes stand-in reloaded.
    fn serve(&mut self, scenario: &Path) -> TargetGroupArn {
        assert_eq!(self.moto.command(json!({"cmd": "reset"}))["ok"], true);
        let seeded = self.moto.command(json!({
            "cmd": "seed",
            "scenario": scenario,
            "clusterEndpoint": self.kube.ready["url"],
            "clusterCaData": self.kube.ready["caData"],
        }));
        assert_eq!(seeded["ok"], true, "{seeded}");
        let loaded = self.kube.command(json!({"cmd": "load", "state": scenario.join("k8s")}));
        assert_eq!(loaded["ok"], true, "{loaded}");
        self.kube.command(json!({"cmd": "reset-requests"}));
        TargetGroupArn::parse(seeded["targetGroupArn"].as_str().unwrap()).unwrap()
    }
}

/// Every scenario a live cluster can serve: a partial dump (`"partialDump": true` in its
/// expected.json) describes what a hurried `kubectl get` left out, which a cluster never does.
fn scenarios() -> Vec<PathBuf> {
    let partial = |p: &Path| {
        std::fs::read_to_string(p.join("expected.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .is_some_and(|v| v["partialDump"] == true)
    };
    let mut out: Vec<PathBuf> = std::fs::read_dir(repo().join("tests/scenarios"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("manifest.json").exists() && !partial(p))
        .collect();
    out.sort();
    out
}

/// The stand-in world's clock: the scenario's `collectedAt`. The stand-ins serve a cluster
/// frozen at that moment, so the diagnosis is "as of" it, as the Lambda's is as of the alarm.
fn scenario_time(scenario: &Path) -> Option<k8s_openapi::jiff::Timestamp> {
    let manifest: Value = serde_json::from_str(&std::fs::read_to_string(scenario.join("manifest.json")).ok()?).ok()?;
    manifest["collectedAt"].as_str()?.parse().ok()
}

/// What must be equal between two diagnoses of the same state.
fn essence(report: &doctor::Report) -> Vec<Value> {
    report
        .findings
        .iter()
        .map(|f| {
            json!([
                f.check,
                f.severity,
                f.resource,
                f.message,
                f.explained_by,
                f.fix,
                f.evidence
            ])
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_served_live_diagnoses_like_its_dump_and_collect_round_trips() {
    let all = scenarios();
    let mut world = World::new(&all[0]).await;
    // The Kubernetes side runs with exactly the RBAC the project ships for diagnosis.
    world.use_shipped_rbac(&["eks-lb-doctor-diagnose"]);
    let clients = ClusterClients::new();
    let mut failures = Vec::new();
    for scenario in &all {
        let name = scenario.file_name().unwrap().to_string_lossy().into_owned();
        let arn = world.serve(scenario);
        let mut snapshot = gather(
            &world.aws,
            KubeAccess::Eks(&clients),
            &arn,
            None,
            Limits::within(Duration::from_secs(30)),
        )
        .await;
        snapshot.as_of = scenario_time(scenario);
        let live = doctor::diagnose(&snapshot);
        // gather() does not replay health checks (the caller opts in; see
        // health_check_replay_reproduces_the_recorded_results): compare without probe.json.
        let mut dumped = doctor::dump::load(scenario).unwrap();
        dumped.probe = snapshot.probe.clone();
        let offline = doctor::diagnose(&dumped);
        if essence(&live) != essence(&offline) {
            failures.push(format!(
                "{name}: live findings differ from the dump's\n live: {:#}\n dump: {:#}\n not collected: {:?}",
                json!(essence(&live)),
                json!(essence(&offline)),
                live.not_collected
            ));
        }
        let forbidden: Vec<_> = live
            .not_collected
            .iter()
            .filter(|n| n.reason.contains("forbidden"))
            .collect();
        assert!(
            forbidden.is_empty(),
            "{name}: infra/k8s/rbac.yaml does not cover: {forbidden:?}"
        );
        // Counted calls, and never a cluster-wide pod list.
        for service in ["elasticloadbalancing", "ec2", "eks", "kubernetes"] {
            assert!(
                live.api_calls.get(service).copied().unwrap_or(0) > 0,
                "{name}: no {service} calls counted: {:?}",
                live.api_calls
            );
        }
        let requests = world.kube.command(json!({"cmd": "requests"}));
        for r in requests["requests"].as_array().unwrap() {
            let r = r.as_str().unwrap();
            assert!(!r.starts_with("GET /api/v1/pods"), "{name}: cluster-wide pod list: {r}");
        }
        // collect -> dump -> diagnose gives the same findings as the live run.
        let out = tempfile::tempdir().unwrap();
        doctor::collect::write_dump(&snapshot, out.path()).unwrap();
        let from_collect = doctor::diagnose(&doctor::dump::load(out.path()).unwrap());
        if essence(&from_collect) != essence(&live) {
            failures.push(format!(
                "{name}: the collected dump diagnoses differently from the live run"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

async fn live_report(aws: &AwsClients, access: KubeAccess<'_>, arn: &TargetGroupArn) -> doctor::Report {
    doctor::diagnose(&gather(aws, access, arn, None, Limits::within(Duration::from_secs(20))).await)
}

/// SDK clients for the moto endpoint, with moto's test credentials.
async fn moto_clients(endpoint: &str, region: &str) -> AwsClients {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(https_client())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new(region.to_string()))
        .credentials_provider(aws_credential_types::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .load()
        .await;
    AwsClients::new(&config)
}

fn checks_of(report: &doctor::Report) -> Vec<&'static str> {
    report.findings.iter().map(|f| f.check).collect()
}

fn not_collected<'a>(report: &'a doctor::Report, item: &str) -> Option<&'a str> {
    report
        .not_collected
        .iter()
        .find(|n| n.item == item)
        .map(|n| n.reason.as_str())
}

/// Faults land in the report as "not collected: why"; the rest of the diagnosis still runs
/// and the AWS-side root cause still comes out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_become_not_collected_and_aws_findings_survive() {
    let scenario = repo().join("tests/scenarios/security-group-blocks-health-check");
    let mut world = World::new(&scenario).await;
    let limits = || Limits::within(Duration::from_secs(20));
    let arn = world.serve(&scenario);
    let url = world.kube.ready["url"].as_str().unwrap().to_string();
    let ca = world.kube.ready["caData"].as_str().unwrap().to_string();

    // Kubernetes forbids listing pods: that one item is "forbidden", the rest is collected.
    let denied = world.kube.command(json!({"cmd": "authz", "rules": {"*": {"allow": [
        {"verbs": ["get", "list"], "resources": ["services", "endpoints", "endpointslices", "ingresses", "ingressclasses",
          "nodes", "namespaces", "events", "deployments", "daemonsets", "targetgroupbindings"], "namespaces": ["*"]}
    ]}}}));
    assert_eq!(denied["ok"], true, "{denied}");
    let report = live_report(&world.aws, KubeAccess::Eks(&ClusterClients::new()), &arn).await;
    assert_eq!(
        not_collected(&report, "Pods"),
        Some("forbidden: list pods in default"),
        "{:?}",
        report.not_collected
    );
    assert!(not_collected(&report, "Services").is_none());
    assert_eq!(report.root_cause, Some("security-group-blocks-health-check"));
    assert!(report
        .inconclusive
        .iter()
        .any(|i| i.check == "pod-not-ready" && i.reason.contains("forbidden")));
    world.kube.command(json!({"cmd": "authz", "rules": null}));

    // A token the cluster rejects (expired / wrong credentials): 401 on every call.
    let bad = doctor::gather::eks_auth::build_client(&url, &ca, "k8s-aws-v1.bm90LWEtdXJs".into(), &limits()).unwrap();
    let report = live_report(&world.aws, KubeAccess::Client(bad), &arn).await;
    assert!(
        not_collected(&report, "Services").is_some_and(|r| r.starts_with("unauthorized")),
        "{:?}",
        report.not_collected
    );
    assert_eq!(report.root_cause, Some("security-group-blocks-health-check"));

    // Kubernetes API unreachable (nothing listens on the port).
    let reply = world
        .moto
        .command(json!({"cmd": "set-cluster", "name": "demo-cluster", "endpoint": "https://127.0.0.1:9"}));
    assert_eq!(reply["ok"], true, "{reply}");
    let report = live_report(&world.aws, KubeAccess::Eks(&ClusterClients::new()), &arn).await;
    assert!(not_collected(&report, "Pods").is_some(), "{:?}", report.not_collected);
    assert_eq!(
        report.root_cause,
        Some("security-group-blocks-health-check"),
        "{:?}",
        checks_of(&report)
    );

    // TLS failure: the cluster's CA did not sign the server certificate.
    let other = StandIn::start(
        "kube_apiserver.py",
        &[
            "--state",
            scenario.join("k8s").to_str().unwrap(),
            "--sts-endpoint",
            world.moto.ready["endpoint"].as_str().unwrap(),
            "--cluster-name",
            "demo-cluster",
            "--port",
            "0",
        ],
    );
    world.moto.command(
        json!({"cmd": "set-cluster", "name": "demo-cluster", "endpoint": url, "caData": other.ready["caData"]}),
    );
    let report = live_report(&world.aws, KubeAccess::Eks(&ClusterClients::new()), &arn).await;
    assert!(
        not_collected(&report, "Services").is_some(),
        "{:?}",
        report.not_collected
    );
    assert_eq!(report.root_cause, Some("security-group-blocks-health-check"));
    drop(other);

    // The cluster does not exist.
    world
        .aws
        .eks
        .delete_cluster()
        .name("demo-cluster")
        .send()
        .await
        .unwrap();
    let report = live_report(&world.aws, KubeAccess::Eks(&ClusterClients::new()), &arn).await;
    assert!(
        not_collected(&report, "Pods").is_some_and(|r| r.contains("EKS cluster demo-cluster not found")),
        "{:?}",
        report.not_collected
    );
    assert_eq!(report.root_cause, Some("security-group-blocks-health-check"));

    // An unknown target group: absent, every check says why, nothing panics.
    let unknown =
        TargetGroupArn::parse("arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/nope/0123456789abcdef")
            .unwrap();
    let report = live_report(&world.aws, KubeAccess::Skip("not needed".into()), &unknown).await;
    assert!(report.findings.is_empty());
    assert!(
        report
            .inconclusive
            .iter()
            .any(|i| i.reason.contains("target group does not exist")),
        "{:?}",
        report.inconclusive
    );

    // The wrong region: the target group is not found there.
    let elsewhere = moto_clients(world.moto.ready["endpoint"].as_str().unwrap(), "eu-west-1").await;
    let report = live_report(&elsewhere, KubeAccess::Skip("not needed".into()), &arn).await;
    assert!(report.findings.is_empty());
    assert!(report
        .inconclusive
        .iter()
        .any(|i| i.reason.contains("target group does not exist")));
}

/// Runs the CLI against moto (credentials and region of the test); it must succeed.
fn cli(aws_endpoint: &str, args: &[&str]) -> Vec<u8> {
    let out = Command::new(env!("CARGO_BIN_EXE_eks-lb-doctor"))
        .args(args)
        .env("AWS_ENDPOINT_URL", aws_endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The CLI end to end on the live stand-ins: `diagnose --target-group` with EKS
/// authentication and with a kubeconfig, and `collect` then `diagnose --dump`, all agree.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_live_modes_and_collect_agree() {
    let scenario = repo().join("tests/scenarios/selector-matches-no-pods");
    let mut world = World::new(&scenario).await;
    let arn = world.serve(&scenario).to_string();
    let endpoint = world.moto.ready["endpoint"].as_str().unwrap().to_string();
    let creds = aws_credential_types::Credentials::new("testing", "testing", None, None, "test");
    let token = doctor::gather::eks_auth::presign(
        &creds,
        &endpoint,
        "demo-cluster",
        "us-east-1",
        std::time::SystemTime::now(),
    )
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let kubeconfig = tmp.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: demo\n  cluster:\n    server: {}\n    certificate-authority-data: {}\nusers:\n- name: demo\n  user:\n    token: {token}\ncontexts:\n- name: demo\n  context:\n    cluster: demo\n    user: demo\ncurrent-context: demo\n",
            world.kube.ready["url"].as_str().unwrap(),
            world.kube.ready["caData"].as_str().unwrap()
        ),
    )
    .unwrap();
    let run = |args: &[&str]| cli(&endpoint, args);
    let findings = |stdout: Vec<u8>| -> Value {
        let report: Value = serde_json::from_slice(&stdout).unwrap();
        report["findings"].clone()
    };
    let eks = findings(run(&["diagnose", "--target-group", &arn, "--output", "json"]));
    assert_eq!(eks[0]["check"], "selector-matches-no-pods", "{eks:#}");
    let kc = findings(run(&[
        "diagnose",
        "--target-group",
        &arn,
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
        "--output",
        "json",
    ]));
    assert_eq!(kc, eks);
    let dump = tmp.path().join("dump");
    run(&["collect", "--target-group", &arn, "--out", dump.to_str().unwrap()]);
    assert!(dump.join("aws/elbv2-describe-target-health.json").exists());
    assert!(dump.join("k8s/pods.json").exists());
    let offline = findings(run(&["diagnose", "--dump", dump.to_str().unwrap(), "--output", "json"]));
    assert_eq!(offline, eks);
}

/// The safe-fix guards against the live stand-in: a dry run writes nothing; RBAC refusal
/// stops at the dry run; `auto` writes the change and the cooldown record in one patch; a
/// stale diagnosis fails its precondition; a recent fix is not repeated until the cooldown
/// ends; the finding is gone from the next diagnosis; verification reads target health.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalogue_fixes_run_every_guard_against_the_live_api() {
    use doctor::fix::apply::{apply, verify, Writers, COOLDOWN_ANNOTATION};
    use doctor::fix::{plan, FixMode, FixPolicy, FixStatus};
    use k8s_openapi::api::apps::v1::DaemonSet;
    use k8s_openapi::api::core::v1::Service;
    use kube::api::Api;
    use std::time::SystemTime;

    let policy = |mode, namespaces: &[&str]| FixPolicy {
        mode,
        allowed_namespaces: namespaces.iter().map(|s| s.to_string()).collect(),
        ..FixPolicy::default()
    };
    let etp = repo().join("tests/scenarios/external-traffic-policy-local");
    let mut world = World::new(&etp).await;
    let clients = ClusterClients::new();
    let limits = Limits::within(Duration::from_secs(60));
    let diagnose_live = |world: &World, arn: TargetGroupArn| {
        let aws = world.aws.clone();
        let clients = &clients;
        async move {
            let mut snapshot = gather(&aws, KubeAccess::Eks(clients), &arn, None, limits).await;
            snapshot.as_of = scenario_time(&repo().join("tests/scenarios/external-traffic-policy-local"));
            doctor::diagnose(&snapshot)
        }
    };
    let arn = world.serve(&etp);
    let report = diagnose_live(&world, arn.clone()).await;
    let described = doctor::gather::aws::describe_cluster(&world.aws, "demo-cluster", &limits).await;
    let client = clients
        .client_for(&world.aws, "demo-cluster", &described, &limits)
        .await
        .unwrap();
    let writers = |now| Writers {
        kube: Ok(&client),
        ec2: None,
        alarm: Some("alb-unhealthy"),
        now,
    };
    let backend = report.backend.clone().unwrap();
    let services: Api<Service> = Api::namespaced(client.clone(), &backend.namespace);
    let service = || async { services.get(&backend.service).await.unwrap() };
    let traffic_policy = |s: &Service| s.spec.as_ref().unwrap().external_traffic_policy.clone();
    assert_eq!(traffic_policy(&service().await).as_deref(), Some("Local"));

    // dry-run: the API server sees the patch with dryRun=All, and only that.
    let dry = policy(FixMode::DryRun, &["*"]);
    let mut fixes = plan(&report, &dry, None);
    assert_eq!(fixes.len(), 1, "{fixes:#?}");
    world.kube.command(json!({"cmd": "reset-requests"}));
    apply(&mut fixes, &dry, &writers(SystemTime::now())).await;
    assert_eq!(fixes[0].status, FixStatus::DryRunPassed, "{fixes:#?}");
    let requests = world.kube.command(json!({"cmd": "requests"}));
    let patches: Vec<&str> = requests["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .filter(|r| r.starts_with("PATCH"))
        .collect();
    assert_eq!(patches.len(), 1, "{patches:?}");
    assert!(patches[0].contains("dryRun=All"), "{patches:?}");
    assert_eq!(traffic_policy(&service().await).as_deref(), Some("Local"));

    // The shipped diagnose RBAC alone only reads: the dry run is refused, nothing is written.
    let auto = policy(FixMode::Auto, &["*"]);
    world.use_shipped_rbac(&["eks-lb-doctor-diagnose"]);
    let mut fixes = plan(&report, &auto, None);
    apply(&mut fixes, &auto, &writers(SystemTime::now())).await;
    assert_eq!(fixes[0].status, FixStatus::DryRunFailed, "{fixes:#?}");
    assert!(fixes[0].detail.contains("forbidden"), "{}", fixes[0].detail);
    assert_eq!(traffic_policy(&service().await).as_deref(), Some("Local"));
    // From here on, the shipped RBAC of a deployment with fixes on (both groups).
    world.use_shipped_rbac(&["eks-lb-doctor-diagnose", "eks-lb-doctor-remediate"]);

    // auto: the change and the cooldown record land together.
    let mut fixes = plan(&report, &auto, None);
    apply(&mut fixes, &auto, &writers(SystemTime::now())).await;
    assert_eq!(fixes[0].status, FixStatus::Applied, "{fixes:#?}");
    let changed = service().await;
    assert_eq!(traffic_policy(&changed).as_deref(), Some("Cluster"));
    let record: Value =
        serde_json::from_str(&changed.metadata.annotations.as_ref().unwrap()[COOLDOWN_ANNOTATION]).unwrap();
    assert_eq!(record["fix"], "set-external-traffic-policy-cluster");
    assert_eq!(record["alarm"], "alb-unhealthy");

    // The same (now stale) report again: the object no longer holds what it saw.
    let mut stale = plan(&report, &auto, None);
    apply(&mut stale, &auto, &writers(SystemTime::now())).await;
    assert_eq!(stale[0].status, FixStatus::PreconditionFailed, "{stale:#?}");
    assert!(
        stale[0].detail.contains("/spec/externalTrafficPolicy"),
        "{}",
        stale[0].detail
    );

    // The next diagnosis no longer finds the fault.
    let after = diagnose_live(&world, arn.clone()).await;
    assert!(
        !checks_of(&after).contains(&"external-traffic-policy-local"),
        "{:?}",
        checks_of(&after)
    );

    // Verification reads target health: moto still reports the scenario's unhealthy targets.
    let verdict = verify(
        &world.aws.elbv2,
        &arn.to_string(),
        Duration::ZERO,
        Duration::from_secs(1),
    )
    .await;
    assert!(
        verdict.contains("healthy after") && !verdict.starts_with("all"),
        "{verdict}"
    );
    let healthy = repo().join("tests/scenarios/healthy");
    let healthy_arn = world.serve(&healthy);
    let verdict = verify(
        &world.aws.elbv2,
        &healthy_arn.to_string(),
        Duration::ZERO,
        Duration::from_secs(1),
    )
    .await;
    assert!(verdict.starts_with("all "), "{verdict}");

    // kube-proxy: restarted once; the cooldown holds a second restart back until it ends.
    let kube_proxy = repo().join("tests/scenarios/kube-proxy-unhealthy");
    let arn = world.serve(&kube_proxy);
    let report = diagnose_live(&world, arn).await;
    let system = policy(FixMode::Auto, &["kube-system"]);
    let now = SystemTime::now();
    let mut fixes = plan(&report, &system, None);
    assert_eq!(fixes.len(), 1, "{fixes:#?}");
    assert_eq!(fixes[0].fix_id, "restart-kube-proxy");
    apply(&mut fixes, &system, &writers(now)).await;
    assert_eq!(fixes[0].status, FixStatus::Applied, "{fixes:#?}");
    let daemon_sets: Api<DaemonSet> = Api::namespaced(client.clone(), "kube-system");
    let ds = daemon_sets.get("kube-proxy").await.unwrap();
    let template_annotations = ds.spec.unwrap().template.metadata.unwrap().annotations.unwrap();
    assert!(template_annotations.contains_key("kubectl.kubernetes.io/restartedAt"));
    let mut again = plan(&report, &system, None);
    apply(&mut again, &system, &writers(now + Duration::from_secs(60))).await;
    assert_eq!(again[0].status, FixStatus::Cooldown, "{again:#?}");
    let mut later = plan(&report, &system, None);
    apply(&mut later, &system, &writers(now + Duration::from_secs(2 * 3600))).await;
    assert_eq!(later[0].status, FixStatus::Applied, "{later:#?}");
    // The namespace allow-list: not allowed in kube-system, never attempted.
    let elsewhere = plan(&report, &policy(FixMode::Auto, &["default"]), None);
    assert_eq!(elsewhere[0].status, FixStatus::NotAllowed);

    // target-port: without the replay the declared ports are only a hint, and the fix waits
    // for a person; with the replay proving it (local servers reproduce the scenario's pods:
    // 8080 refused, 80 answering) it runs unattended, the one Service port is repointed, and
    // the next diagnosis is clean of it.
    let target_port = repo().join("tests/scenarios/target-port-mismatch");
    let arn = world.serve(&target_port);
    let report = diagnose_live(&world, arn.clone()).await;
    let unproven = plan(&report, &auto, None);
    assert_eq!(unproven[0].status, FixStatus::AwaitingApproval, "{unproven:#?}");
    assert!(unproven[0].detail.contains("not proven"), "{}", unproven[0].detail);
    let mut snapshot = gather(&world.aws, KubeAccess::Eks(&clients), &arn, None, limits).await;
    snapshot.as_of = scenario_time(&target_port);
    let (_servers, probe) = replay_recorded(&target_port, &snapshot, &limits).await;
    snapshot.probe = probe;
    let report = doctor::diagnose(&snapshot);
    let mut fixes = plan(&report, &auto, None);
    assert_eq!(fixes.len(), 1, "{fixes:#?}");
    assert_eq!(fixes[0].fix_id, "set-target-port");
    assert_eq!(fixes[0].status, FixStatus::Planned, "{fixes:#?}");
    apply(&mut fixes, &auto, &writers(SystemTime::now())).await;
    assert_eq!(fixes[0].status, FixStatus::Applied, "{fixes:#?}");
    let after = diagnose_live(&world, arn).await;
    assert!(
        !checks_of(&after).contains(&"target-port-mismatch"),
        "{:?}",
        checks_of(&after)
    );

    // set-alb-health-check (approval only), approved, still under the shipped RBAC.
    let health_check = repo().join("tests/scenarios/health-check-response-mismatch");
    let arn = world.serve(&health_check);
    let report = diagnose_live(&world, arn).await;
    let approved = plan(&report, &auto, Some("set-alb-health-check"));
    assert_eq!(approved.len(), 1, "{approved:#?}");
    assert_eq!(approved[0].status, FixStatus::Planned);
    let doctor::finding::FixAction::PatchObject { name, patch, .. } = &approved[0].change else {
        panic!("{approved:#?}")
    };
    let ingresses: Api<k8s_openapi::api::networking::v1::Ingress> = Api::namespaced(client.clone(), "default");
    let annotations = || async {
        ingresses
            .get(name)
            .await
            .unwrap()
            .metadata
            .annotations
            .unwrap_or_default()
    };
    let (key, want) = patch["metadata"]["annotations"]
        .as_object()
        .unwrap()
        .iter()
        .next()
        .unwrap();
    let before = annotations().await.get(key).cloned();
    // The write loses a race (the API server answers 409 Conflict, injected on the real write,
    // not the dry run; kube writes the query as `?&dryRun=All&fieldManager=...`): reported as
    // failed, nothing changed.
    let fault = world
        .kube
        .command(json!({"cmd": "fault", "path": r"ingresses/[^?]+\?&?fieldManager=",
        "status": 409, "reason": "Conflict", "times": 1,
        "message": "Operation cannot be fulfilled on ingresses.networking.k8s.io: the object has been modified"}));
    assert_eq!(fault["ok"], true, "{fault}");
    let mut lost = approved.clone();
    apply(&mut lost, &auto, &writers(SystemTime::now())).await;
    assert_eq!(lost[0].status, FixStatus::Failed, "{lost:#?}");
    assert!(lost[0].detail.contains("409"), "{}", lost[0].detail);
    assert_eq!(annotations().await.get(key).cloned(), before);
    let mut fixes = approved.clone();
    apply(&mut fixes, &auto, &writers(SystemTime::now())).await;
    assert_eq!(fixes[0].status, FixStatus::Applied, "{fixes:#?}");
    assert_eq!(annotations().await.get(key).map(|v| json!(v)), Some(want.clone()));
}

/// A local stand-in for one target's health-check endpoint, reproducing one recorded
/// replay result: an HTTP status, a connection that never answers, or a refused port.
/// Replays `snapshot`'s health check (and the pod probes) against local servers that
/// reproduce the scenario's recorded `probe.json`; the servers live as long as the result.
async fn replay_recorded(
    scenario: &Path,
    snapshot: &doctor::Snapshot,
    limits: &Limits,
) -> (
    Vec<TargetServer>,
    doctor::snapshot::Collected<Vec<doctor::snapshot::ProbeResult>>,
) {
    use doctor::gather::probe::{replay, ReplayOptions};
    let recorded: Value = serde_json::from_str(&std::fs::read_to_string(scenario.join("probe.json")).unwrap()).unwrap();
    let mut servers = Vec::new();
    let mut table = std::collections::BTreeMap::new();
    for r in recorded["results"].as_array().unwrap() {
        let target: std::net::SocketAddr = format!("{}:{}", r["address"].as_str().unwrap(), r["port"])
            .parse()
            .unwrap();
        let server = TargetServer::start(r).await;
        table.insert(target, server.addr);
        servers.push(server);
    }
    let options = ReplayOptions {
        timeout: Some(Duration::from_millis(400)),
        redirect: Some(table),
        ..ReplayOptions::default()
    };
    let probe = replay(snapshot, &options, limits).await;
    (servers, probe)
}

struct TargetServer {
    addr: std::net::SocketAddr,
    requests: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    _task: Option<tokio::task::JoinHandle<()>>,
}

impl TargetServer {
    async fn start(recorded: &Value) -> TargetServer {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let outcome = recorded["outcome"].as_str().unwrap().to_string();
        if outcome == "refused" {
            drop(listener); // nothing listens on the port any more
            return TargetServer {
                addr,
                requests,
                _task: None,
            };
        }
        let status = recorded["statusCode"].as_u64().unwrap_or(200);
        let seen = requests.clone();
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut buf = vec![0u8; 4096];
                let n = stream.read(&mut buf).await.unwrap_or(0);
                seen.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&buf[..n]).into_owned());
                if outcome == "timeout" {
                    held.push(stream); // accepted, never answered
                    continue;
                }
                let reply = format!("HTTP/1.1 {status} Recorded\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                let _ = stream.write_all(reply.as_bytes()).await;
            }
        });
        TargetServer {
            addr,
            requests,
            _task: Some(task),
        }
    }
}

/// The health-check replay, live: every scenario with a recorded `probe.json` is served, each
/// target's health-check endpoint is a local server reproducing its recorded result (the
/// scenario's own addresses are only keys of the redirect table, never connected to), and
/// the replay must find what was recorded and lead to the same diagnosis as the dump.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_check_replay_reproduces_the_recorded_results() {
    use doctor::gather::probe::{replay, ReplayOptions};
    use doctor::snapshot::Collected;
    use std::collections::BTreeMap;

    let with_probe: Vec<PathBuf> = scenarios()
        .into_iter()
        .filter(|s| s.join("probe.json").exists())
        .collect();
    assert!(with_probe.len() >= 3, "{with_probe:?}");
    let mut world = World::new(&with_probe[0]).await;
    let clients = ClusterClients::new();
    for scenario in &with_probe {
        let name = scenario.file_name().unwrap().to_string_lossy().into_owned();
        let recorded: Value =
            serde_json::from_str(&std::fs::read_to_string(scenario.join("probe.json")).unwrap()).unwrap();
        let recorded = recorded["results"].as_array().unwrap().clone();
        let mut servers = Vec::new();
        let mut table = BTreeMap::new();
        for r in &recorded {
            let target: std::net::SocketAddr = format!("{}:{}", r["address"].as_str().unwrap(), r["port"])
                .parse()
                .unwrap();
            let server = TargetServer::start(r).await;
            table.insert(target, server.addr);
            servers.push((target, server));
        }
        let arn = world.serve(scenario);
        let limits = Limits::within(Duration::from_secs(30));
        let mut snapshot = gather(&world.aws, KubeAccess::Eks(&clients), &arn, None, limits).await;
        snapshot.as_of = scenario_time(scenario);
        // Without a table entry nothing is replayed: the safety net for scenario addresses.
        let none = ReplayOptions {
            redirect: Some(BTreeMap::new()),
            ..ReplayOptions::default()
        };
        assert!(
            matches!(replay(&snapshot, &none, &limits).await, Collected::NotCollected(ref why) if why.contains("no local test server")),
            "{name}"
        );
        let options = ReplayOptions {
            timeout: Some(Duration::from_millis(400)),
            redirect: Some(table),
            ..ReplayOptions::default()
        };
        snapshot.probe = replay(&snapshot, &options, &limits).await;
        let results = snapshot.probe.items().unwrap_or_else(|why| panic!("{name}: {why}"));
        assert_eq!(results.len(), recorded.len(), "{name}: {results:#?}");
        for r in &recorded {
            let got = results
                .iter()
                .find(|p| {
                    // a target's replay and a direct probe of its pod may share address and port
                    p.target_id == r["targetId"].as_str().unwrap()
                        && Some(u64::from(p.port)) == r["port"].as_u64()
                        && p.pod.as_deref() == r["pod"].as_str()
                })
                .unwrap_or_else(|| panic!("{name}: {}:{} not replayed", r["targetId"], r["port"]));
            assert_eq!(got.pod.as_deref(), r["pod"].as_str(), "{name}: {got:#?}");
            assert_eq!(json!(got.outcome), r["outcome"], "{name}: {got:#?}");
            assert_eq!(
                got.status_code.map(u64::from),
                r["statusCode"].as_u64(),
                "{name}: {got:#?}"
            );
            assert_eq!(got.path.as_deref(), r["path"].as_str(), "{name}");
        }
        // The load balancer's request, as the target saw it.
        for (target, server) in &servers {
            for request in server.requests.lock().unwrap().iter() {
                assert!(
                    request.to_ascii_lowercase().contains(&format!("host: {target}")),
                    "{request}"
                );
                assert!(request.contains("ELB-HealthChecker/2.0"), "{request}");
            }
        }
        let live = doctor::diagnose(&snapshot);
        let offline = doctor::diagnose(&doctor::dump::load(scenario).unwrap());
        let outline = |r: &doctor::Report| -> Vec<Value> {
            r.findings
                .iter()
                .map(|f| json!([f.check, f.severity, f.resource, f.explained_by]))
                .collect()
        };
        assert_eq!(outline(&live), outline(&offline), "{name}");
        assert_eq!(live.root_cause, offline.root_cause, "{name}");
    }
}

/// `eks-lb-doctor diagnose --fix` from a laptop: dry run writes nothing, no allowed namespace
/// means no fix, auto applies it (EKS authentication), and the next run finds the fault gone;
/// an approval-only fix runs only with --approve.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_fix_modes() {
    let scenario = repo().join("tests/scenarios/external-traffic-policy-local");
    let mut world = World::new(&scenario).await;
    let arn = world.serve(&scenario).to_string();
    let endpoint = world.moto.ready["endpoint"].as_str().unwrap().to_string();
    let diagnose_json = |arn: &str, extra: &[&str]| -> Value {
        let mut args = vec![
            "diagnose",
            "--target-group",
            arn,
            "--output",
            "json",
            "--verify-seconds",
            "0",
        ];
        args.extend_from_slice(extra);
        serde_json::from_slice(&cli(&endpoint, &args)).unwrap()
    };
    let report = |extra: &[&str]| diagnose_json(&arn, extra);
    let statuses = |r: &Value| -> Vec<(String, String)> {
        r["fixes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["fixId"].as_str().unwrap().into(),
                    f["status"].as_str().unwrap().into(),
                )
            })
            .collect()
    };
    let fix = "set-external-traffic-policy-cluster".to_string();
    assert_eq!(statuses(&report(&[])), vec![], "report only by default");
    assert_eq!(
        statuses(&report(&["--fix", "auto"])),
        vec![(fix.clone(), "not-allowed".into())]
    );
    let dry = report(&["--fix", "dry-run", "--allow-namespace", "default"]);
    assert_eq!(statuses(&dry), vec![(fix.clone(), "dry-run-passed".into())], "{dry:#}");
    assert_eq!(
        report(&[])["rootCause"],
        "external-traffic-policy-local",
        "the dry run wrote nothing"
    );
    let applied = report(&["--fix", "auto", "--allow-namespace", "default"]);
    assert_eq!(statuses(&applied), vec![(fix.clone(), "applied".into())], "{applied:#}");
    assert!(applied["fixes"][0]["verification"].is_string());
    let after = report(&[]);
    assert!(
        !after["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["check"] == "external-traffic-policy-local"),
        "{after:#}"
    );

    // Approval-only: offered, and applied only when approved.
    let sg = repo().join("tests/scenarios/security-group-blocks-health-check");
    let sg_arn = world.serve(&sg).to_string();
    let run = |extra: &[&str]| diagnose_json(&sg_arn, extra);
    let rule = "authorize-health-check-ingress".to_string();
    assert_eq!(
        statuses(&run(&["--fix", "auto"])),
        vec![(rule.clone(), "awaiting-approval".into())]
    );
    let approved = run(&["--fix", "auto", "--approve", &rule]);
    assert_eq!(
        statuses(&approved),
        vec![(rule.clone(), "applied".into())],
        "{approved:#}"
    );
    assert_ne!(run(&[])["rootCause"], "security-group-blocks-health-check");

    // An NLB without security groups: the rule admits its interface addresses, and the
    // re-diagnosis finds the path open.
    let nlb = repo().join("tests/scenarios/nlb-health-check-port-closed");
    let nlb_arn = world.serve(&nlb).to_string();
    let run = |extra: &[&str]| diagnose_json(&nlb_arn, extra);
    let offered = run(&["--fix", "auto"]);
    assert_eq!(
        statuses(&offered),
        vec![(rule.clone(), "awaiting-approval".into())],
        "{offered:#}"
    );
    assert_eq!(
        offered["fixes"][0]["change"]["sourceCidrs"],
        json!(["192.168.22.117/32", "192.168.53.8/32"])
    );
    let approved = run(&["--fix", "auto", "--approve", &rule]);
    assert_eq!(
        statuses(&approved),
        vec![(rule.clone(), "applied".into())],
        "{approved:#}"
    );
    let after = run(&[]);
    assert!(
        !after["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["check"] == "security-group-blocks-health-check"),
        "{after:#}"
    );
}
