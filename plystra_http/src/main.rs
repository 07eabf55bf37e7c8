//! `plystra_http`: configuration from the environment, logging, then serve until SIGTERM or ctrl-c.

use clap::Parser;
use plystra_http::{app, config::Config, telemetry};

/// The server takes its whole configuration from the environment; its only arguments are these, so that no flag
/// (a `--version` typed to see which build this is) starts a server.
#[derive(Parser)]
#[command(
    name = "plystra_http",
    version,
    about = "Plystra's REST front: serves the authorization API until SIGTERM or ctrl-c.",
    long_about = "Plystra's REST front: serves the authorization API until SIGTERM or ctrl-c.\n\nIt is \
                  configured from the environment only (DATABASE_URL, SERVER_HOST, SERVER_PORT, ...): \
                  plystra_http/README.md and .env.example list every variable with its default."
)]
struct Args {}

// The front allocates and frees small buffers for every request on two threads (bodies, JSON values, futures);
// under glibc's allocator that was about a sixth of its CPU samples, and mimalloc cut the front's CPU a request
// by a tenth (bench/results/ab-front-allocator.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

// The serving lanes (`lanes`) run their own runtimes; this one only accepts connections, waits for the signal
// and runs the server's background tasks.
#[tokio::main(flavor = "current_thread")]
async fn main() {
    // --help and --version answer and exit; anything else is refused (exit 2) before anything starts.
    Args::parse();
    // Before the configuration is read: SERVER_MAX_CONNECTIONS' default follows the limit.
    plystra_http::config::raise_open_files();
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("plystra_http: {e}");
            std::process::exit(2);
        }
    };
    // Production refuses unsafe settings, one message per cause (the same list `plystractl doctor` prints).
    let problems = config.production_problems();
    if !problems.is_empty() {
        for p in &problems {
            eprintln!("plystra_http: refusing to start in production: {p}");
        }
        std::process::exit(2);
    }
    telemetry::init(&config);
    if let Err(e) = app::run(config).await {
        tracing::error!(error = %e, "plystra_http stopped");
        eprintln!("plystra_http: {e}");
        std::process::exit(1);
    }
}
