//! The `eks-lb-doctor` CLI: wiring only; the work is in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use doctor::checks::registry;
use doctor::finding::Severity;

/// Diagnoses unhealthy ALB / NLB targets in front of Amazon EKS workloads.
#[derive(Parser)]
#[command(name = "eks-lb-doctor", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Diagnose one target group: offline from a dump, or live from the AWS and Kubernetes APIs.
    Diagnose {
        /// Dump directory (manifest.json, aws/, k8s/, probe.json).
        #[arg(long, conflicts_with = "target_group", required_unless_present = "target_group")]
        dump: Option<PathBuf>,
        #[command(flatten)]
        live: LiveArgs,
        #[command(flatten)]
        fix: FixArgs,
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
        /// Exit with 1 when a finding at or above this severity is reported.
        #[arg(long, value_enum)]
        fail_on: Option<FailOn>,
    },
    /// Gather live state for one target group and write it as a dump directory.
    Collect {
        #[command(flatten)]
        live: LiveArgs,
        /// Directory to write the dump to (created if missing).
        #[arg(long)]
        out: PathBuf,
    },
    /// List the check catalogue.
    Checks {
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
}

#[derive(clap::Args)]
struct LiveArgs {
    /// Target group ARN to diagnose live (AWS credentials and region from the default chain).
    #[arg(long = "target-group")]
    target_group: Option<String>,
    /// EKS cluster name, when the target group carries no elbv2.k8s.aws/cluster tag.
    #[arg(long)]
    cluster: Option<String>,
    /// Reach Kubernetes through a kubeconfig (this path, or KUBECONFIG / ~/.kube/config with
    /// --kube-auth kubeconfig) instead of EKS authentication.
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// kubeconfig context (default: the current context).
    #[arg(long)]
    context: Option<String>,
    #[arg(long, value_enum, default_value_t = KubeAuth::Eks)]
    kube_auth: KubeAuth,
    /// Overall deadline for gathering, in seconds.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
}

/// Safe fixes (live only; README "Safe fixes"). Nothing is written unless `--fix auto`.
#[derive(clap::Args)]
struct FixArgs {
    /// off: report only. dry-run: every guard and the API server's dry run, no write.
    /// auto: apply the unattended catalogue fixes (and the one given with --approve).
    #[arg(long = "fix", value_enum, default_value_t = FixModeArg::Off, conflicts_with = "dump")]
    mode: FixModeArg,
    /// Namespace a fix may change (repeatable; `*` = all). Without one, no Kubernetes fix runs.
    #[arg(long = "allow-namespace", value_name = "NAMESPACE")]
    allow_namespaces: Vec<String>,
    /// Approve this approval-only fix ID (you are the person approving it).
    #[arg(long, value_name = "FIX_ID")]
    approve: Option<String>,
    /// After a write, re-read target health for up to this many seconds.
    #[arg(long, default_value_t = 45)]
    verify_seconds: u64,
}

#[derive(Clone, Copy, PartialEq, ValueEnum)]
enum FixModeArg {
    Off,
    DryRun,
    Auto,
}

#[derive(Clone, Copy, PartialEq, ValueEnum)]
enum KubeAuth {
    /// eks:DescribeCluster and a presigned STS token, like `aws eks get-token`.
    Eks,
    /// The kubeconfig's current (or --context) context.
    Kubeconfig,
}

#[derive(Clone, Copy, ValueEnum)]
enum Output {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum FailOn {
    Critical,
    Warning,
}

/// Exit codes (README "Exit codes"): 0 diagnosis printed, 1 `--fail-on` threshold met,
/// 2 bad input or usage.
const EXIT_FINDINGS: u8 = 1;
const EXIT_BAD_INPUT: u8 = 2;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Diagnose {
            dump,
            live,
            fix,
            output,
            fail_on,
        } => {
            let report = match dump {
                Some(dump) => doctor::dump::load(&dump)
                    .map(|snapshot| doctor::diagnose(&snapshot))
                    .map_err(|e| e.to_string()),
                None => run_async(diagnose_live(&live, &fix)),
            };
            let report = match report {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("eks-lb-doctor: {e}");
                    return ExitCode::from(EXIT_BAD_INPUT);
                }
            };
            match output {
                Output::Json => println!("{}", report.to_json()),
                Output::Text => print!("{}", report.to_text()),
            }
            let threshold = fail_on.map(|f| match f {
                FailOn::Critical => Severity::Critical,
                FailOn::Warning => Severity::Warning,
            });
            if threshold.is_some_and(|t| report.has_severity_at_least(t)) {
                return ExitCode::from(EXIT_FINDINGS);
            }
            ExitCode::SUCCESS
        }
        Command::Collect { live, out } => {
            let written = run_async(async { Ok(Session::open(&live).await?.gather().await) })
                .and_then(|snapshot| doctor::collect::write_dump(&snapshot, &out).map_err(|e| e.to_string()));
            match written {
                Ok(()) => {
                    eprintln!("eks-lb-doctor: dump written to {}", out.display());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("eks-lb-doctor: {e}");
                    ExitCode::from(EXIT_BAD_INPUT)
                }
            }
        }
        Command::Checks { output } => {
            print_checks(output);
            ExitCode::SUCCESS
        }
    }
}

fn run_async<T>(fut: impl std::future::Future<Output = Result<T, String>>) -> Result<T, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?
        .block_on(fut)
}

/// What a live run talks to, set up once: the AWS clients for the target group's region,
/// and Kubernetes through EKS authentication or a kubeconfig.
struct Session {
    arn: doctor::arn::TargetGroupArn,
    cluster: Option<String>,
    aws: doctor::gather::aws::AwsClients,
    limits: doctor::gather::Limits,
    eks: doctor::gather::eks_auth::ClusterClients,
    /// Some: kubeconfig mode (the client, or why there is none).
    kubeconfig: Option<Result<kube::Client, String>>,
}

impl Session {
    async fn open(live: &LiveArgs) -> Result<Session, String> {
        let Some(arn_text) = live.target_group.as_deref() else {
            return Err("give --dump DIR or --target-group ARN".into());
        };
        let arn = doctor::arn::TargetGroupArn::parse(arn_text).map_err(|e| e.to_string())?;
        let config = doctor::gather::aws::load_config(Some(arn.region.clone())).await;
        let kubeconfig = if live.kubeconfig.is_some() || live.kube_auth == KubeAuth::Kubeconfig {
            Some(kubeconfig_client(live).await)
        } else {
            None
        };
        Ok(Session {
            arn,
            cluster: live.cluster.clone(),
            aws: doctor::gather::aws::AwsClients::new(&config),
            limits: doctor::gather::Limits::within(std::time::Duration::from_secs(live.timeout)),
            eks: doctor::gather::eks_auth::ClusterClients::new(),
            kubeconfig,
        })
    }

    async fn gather(&self) -> doctor::Snapshot {
        let access = match &self.kubeconfig {
            Some(Ok(client)) => doctor::gather::KubeAccess::Client(client.clone()),
            Some(Err(why)) => doctor::gather::KubeAccess::Skip(why.clone()),
            None => doctor::gather::KubeAccess::Eks(&self.eks),
        };
        doctor::gather::gather(&self.aws, access, &self.arn, self.cluster.clone(), self.limits).await
    }

    /// The Kubernetes client gathering used (EKS clients are cached, so no second login).
    async fn kube_client(&self, snapshot: &doctor::Snapshot, cluster: Option<&str>) -> Result<kube::Client, String> {
        match (&self.kubeconfig, cluster) {
            (Some(client), _) => client.clone(),
            (None, Some(cluster)) => {
                self.eks
                    .client_for(&self.aws, cluster, &snapshot.aws.cluster, &self.limits)
                    .await
            }
            (None, None) => Err("no cluster resolved".into()),
        }
    }
}

/// Gathers, diagnoses and, with `--fix`, runs the catalogue fixes through every guard.
async fn diagnose_live(live: &LiveArgs, args: &FixArgs) -> Result<doctor::Report, String> {
    use doctor::fix::{apply, plan, FixMode, FixPolicy, FixStatus};
    let mode = match args.mode {
        FixModeArg::Off => FixMode::Off,
        FixModeArg::DryRun => FixMode::DryRun,
        FixModeArg::Auto => FixMode::Auto,
    };
    if let Some(id) = &args.approve {
        if mode == FixMode::Off {
            return Err("--approve needs --fix dry-run or --fix auto".into());
        }
        if doctor::fix::catalogue_fix(id).is_none() {
            let ids: Vec<&str> = doctor::fix::CATALOGUE.iter().map(|f| f.id).collect();
            return Err(format!("--approve {id}: not a catalogue fix ({})", ids.join(", ")));
        }
    }
    let session = Session::open(live).await?;
    let snapshot = session.gather().await;
    let mut report = doctor::diagnose(&snapshot);
    if mode == FixMode::Off {
        return Ok(report);
    }
    let policy = FixPolicy {
        mode,
        allowed_namespaces: args.allow_namespaces.clone(),
        verify_for: std::time::Duration::from_secs(args.verify_seconds),
        ..FixPolicy::default()
    };
    // --approve: that fix only, approved; otherwise the unattended ones.
    let mut fixes = plan(&report, &policy, args.approve.as_deref());
    if fixes.iter().any(|f| f.status == FixStatus::Planned) {
        let kube = session.kube_client(&snapshot, report.cluster.as_deref()).await;
        let who = format!(
            "eks-lb-doctor CLI, {}",
            std::env::var("USER").unwrap_or_else(|_| "unknown user".into())
        );
        let writers = apply::Writers {
            kube: kube.as_ref().map_err(Clone::clone),
            ec2: args.approve.as_ref().map(|_| &session.aws.ec2),
            alarm: Some(&who),
            now: std::time::SystemTime::now(),
        };
        let arn = session.arn.to_string();
        apply::apply_and_verify(&mut fixes, &policy, &writers, &session.aws.elbv2, &arn, None).await;
    }
    report.fixes = fixes;
    Ok(report)
}

async fn kubeconfig_client(live: &LiveArgs) -> Result<kube::Client, String> {
    let options = kube::config::KubeConfigOptions {
        context: live.context.clone(),
        ..Default::default()
    };
    let config = match &live.kubeconfig {
        Some(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| format!("cannot read kubeconfig {}: {e}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &options).await
        }
        None => kube::Config::from_kubeconfig(&options).await,
    }
    .map_err(|e| format!("kubeconfig: {e}"))?;
    kube::Client::try_from(config).map_err(|e| format!("cannot build the Kubernetes client: {e}"))
}

fn print_checks(output: Output) {
    match output {
        Output::Json => {
            let list: Vec<_> = registry()
                .iter()
                .map(|c| {
                    let m = c.meta();
                    serde_json::json!({
                        "id": m.id,
                        "title": m.title,
                        "runbookStep": m.runbook_step,
                        "fixId": m.fix.fix_id(),
                        "fixSafety": m.fix.to_string(),
                    })
                })
                .collect();
            println!("{}", serde_json::Value::Array(list));
        }
        Output::Text => {
            for c in registry() {
                let m = c.meta();
                println!("{:<36} {:<28} {}  [fix: {}]", m.id, m.runbook_step, m.title, m.fix);
            }
        }
    }
}
