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
    /// Diagnose one target group from a dump directory.
    Diagnose {
        /// Dump directory (manifest.json, aws/, k8s/, probe.json).
        #[arg(long)]
        dump: PathBuf,
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
        /// Exit with 1 when a finding at or above this severity is reported.
        #[arg(long, value_enum)]
        fail_on: Option<FailOn>,
    },
    /// List the check catalogue.
    Checks {
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
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
        Command::Diagnose { dump, output, fail_on } => {
            let snapshot = match doctor::dump::load(&dump) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("eks-lb-doctor: {e}");
                    return ExitCode::from(EXIT_BAD_INPUT);
                }
            };
            let report = doctor::diagnose(&snapshot);
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
        Command::Checks { output } => {
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
            ExitCode::SUCCESS
        }
    }
}
