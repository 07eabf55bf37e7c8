//! Logging: JSON lines for machines (default) or readable text for people (LOG_FORMAT=text), at LOG_LEVEL.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::{Config, LogFormat};

pub fn init(config: &Config) {
    // Libraries below us (hyper, tokio-postgres) stay at warn unless LOG_LEVEL asks for more detail.
    let filter = EnvFilter::new(format!("warn,plystra_http={0},access={0},tower_http=warn", config.log_level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stdout);
    let _ = match config.log_format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_target(false)
            .try_init(),
        // Colours only on a terminal: escape codes in a log file help nobody.
        LogFormat::Text => builder.with_target(false).with_ansi(std::io::stdout().is_terminal()).try_init(),
    };
}
