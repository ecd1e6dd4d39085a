//! Logging setup: `tracing` with an `EnvFilter` from `RUST_LOG` (default
//! `info,flink_keda_scaler=info`), as JSON lines or human-readable text (ANSI colours only
//! on a terminal); the error that ends the process is written in the same format.
//!
//! Every log line carries the fields of the spans it is emitted in: a worker's `tick`
//! (`scaled_object`, and `job_id`/`job_name` once the job is resolved), an `rpc`
//! (`method`, `scaled_object`), a `rescale_start`/`rescale_advance` (`job_id`,
//! `direction`, `from_tms`, `to_tms`) and the admin `http` handlers. In JSON the
//! innermost span is `span` and the whole list, root first, is `spans`, so every line of
//! one ScaledObject is found by `spans[].scaled_object`.

use tracing_subscriber::{fmt, EnvFilter};

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line (for log pipelines).
    Json,
    /// Human-readable text.
    Pretty,
}

/// Installs the global subscriber. Safe to call once per process.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,flink_keda_scaler=info"));
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // A second init (e.g. in tests) is not an error worth failing for.
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(true)
            .try_init(),
        LogFormat::Pretty => builder.compact().with_ansi(colours()).try_init(),
    };
}

/// ANSI colours only on a terminal (never into files or `kubectl logs`) and never with
/// `NO_COLOR` set.
fn colours() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Reports the error that ends the process in the chosen format: a JSON line (level
/// `ERROR`, `fatal: true`) with `--log-format json`, else `error: ...` on stderr.
pub fn fatal(format: LogFormat, message: &str) {
    match format {
        LogFormat::Json => tracing::error!(fatal = true, error = message, "stopped with an error"),
        LogFormat::Pretty => eprintln!("error: {message}"),
    }
}
