//! Prints figures for the offline path: dump loading and diagnosis time per scenario, and
//! the process's peak memory. Run: `cargo run --release --example bench [-- ROUNDS]`.

use std::path::Path;
use std::time::{Duration, Instant};

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() {
    let rounds: u32 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(200);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/scenarios");
    let mut scenarios: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/scenarios")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("manifest.json").exists())
        .collect();
    scenarios.sort();
    println!(
        "{:<36} {:>12} {:>12} {:>9}",
        "scenario", "load (us)", "diagnose (us)", "findings"
    );
    let (mut total_load, mut total_diag) = (Duration::ZERO, Duration::ZERO);
    for path in &scenarios {
        let (mut load, mut diag, mut findings) = (Duration::ZERO, Duration::ZERO, 0);
        for _ in 0..rounds {
            let t = Instant::now();
            let snapshot = doctor::dump::load(path).expect("scenario loads");
            load += t.elapsed();
            let t = Instant::now();
            let report = doctor::diagnose(&snapshot);
            diag += t.elapsed();
            findings = report.findings.len();
        }
        total_load += load;
        total_diag += diag;
        println!(
            "{:<36} {:>12.1} {:>12.1} {:>9}",
            path.file_name().unwrap().to_string_lossy(),
            load.as_secs_f64() * 1e6 / f64::from(rounds),
            diag.as_secs_f64() * 1e6 / f64::from(rounds),
            findings
        );
    }
    let n = f64::from(rounds) * scenarios.len() as f64;
    println!(
        "mean over {} scenarios x {rounds} rounds: load {:.1} us, diagnose {:.1} us; peak RSS {} KiB",
        scenarios.len(),
        total_load.as_secs_f64() * 1e6 / n,
        total_diag.as_secs_f64() * 1e6 / n,
        peak_rss_kib().map_or("?".into(), |k| k.to_string())
    );
}
