//! `plystra_http`: configuration from the environment, logging, then serve until SIGTERM or ctrl-c.

use plystra_http::{app, config::Config, telemetry};

#[tokio::main]
async fn main() {
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("plystra_http: {e}");
            std::process::exit(2);
        }
    };
    telemetry::init(&config);
    if let Err(e) = app::run(config).await {
        tracing::error!(error = %e, "plystra_http stopped");
        eprintln!("plystra_http: {e}");
        std::process::exit(1);
    }
}
