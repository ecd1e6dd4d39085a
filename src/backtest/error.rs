//! Errors of a backtest. Every failure to read history names the signal (or the
//! parallelism / TaskManager count query): a backtest never reads an absent signal as 0.
//! Wrapped errors are `transparent` or inlined, so `{:#}` chains print each cause once.

use crate::{
    config::ConfigError,
    flink::FlinkError,
    promql::{ClientBuildError, QueryError, SignalError},
};

/// A backtest could not run.
#[derive(Debug, thiserror::Error)]
pub enum BacktestError {
    /// `--from`/`--to`/`--step` are unusable.
    #[error("invalid time range: {0}")]
    Range(String),
    /// A required signal (or any signal's query) failed over the range.
    #[error(transparent)]
    Signal(#[from] SignalError),
    /// The observed-parallelism or TaskManager-count query failed.
    #[error("{what} query failed: {error}")]
    Count {
        /// `parallelism` or `taskManagers`.
        what: &'static str,
        /// The query error (empty result included).
        error: QueryError,
    },
    /// The config has no usable policy, queries or Prometheus server.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The config does not name what was asked for.
    #[error("{0}")]
    Setup(String),
    /// The Prometheus client could not be built.
    #[error(transparent)]
    Client(#[from] ClientBuildError),
    /// Flink REST failed (topology, job, TaskManagers).
    #[error("Flink REST {url}: {error}")]
    Flink {
        /// JobManager URL.
        url: String,
        /// The error (its text is part of this message, so it is not a `source`).
        error: FlinkError,
    },
    /// The topology file could not be read or parsed.
    #[error("topology file {path}: {message}")]
    TopologyFile {
        /// File path.
        path: String,
        /// What went wrong.
        message: String,
    },
}
