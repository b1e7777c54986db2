//! Wiring only: logging, AWS config and clients built once, then the runtime loop.

use diagnose_fn::{handle, Ctx, Settings};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_logging();
    let config = doctor::gather::aws::load_config(None).await;
    let ctx = Ctx::new(&config, Settings::from_env());
    let ctx = &ctx;
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        handle(ctx, event).await
    }))
    .await
}

/// JSON logs when `AWS_LAMBDA_LOG_FORMAT=JSON`, at `AWS_LAMBDA_LOG_LEVEL` (else `RUST_LOG`,
/// else info).
fn init_logging() {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .ok()
        .map(|l| l.to_ascii_lowercase())
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| "info".into());
    let filter = tracing_subscriber::EnvFilter::try_new(level).unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time();
    if std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json")) {
        builder.json().with_current_span(false).init();
    } else {
        builder.with_ansi(false).init();
    }
}
