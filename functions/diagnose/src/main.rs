//! Wiring only: logging, AWS config and clients built once, then the runtime loop.

use diagnose_fn::{handle, init_logging, Ctx, Settings};
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
