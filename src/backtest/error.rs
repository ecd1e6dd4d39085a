//! Errors of a backtest. Every failure to read history names the signal (or the
//! parallelism / TaskManager count query): a backtest never reads an absent signal as 0.
//! Each message includes its cause's text (printed once: the CLI skips a cause already
//! in the message), and `source()` keeps the typed cause.

use crate::{
    config::ConfigError,
    flink::FlinkError,
    promql::{ClientBuildError, QueryError, SignalError, TemplateError},
};

/// A backtest could not run.
#[derive(Debug, thiserror::Error)]
pub enum BacktestError {
    /// `--from`/`--to`/`--step` are unusable.
    #[error("invalid time range: {0}")]
    Range(String),
    /// `--from`/`--to` could not be parsed.
    #[error("invalid time range: {text:?}{hint}: {source}")]
    Time {
        /// The argument as given.
        text: String,
        /// What was expected, when the argument matched no form.
        hint: &'static str,
        /// The parse error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A required signal (or any signal's query) failed over the range.
    #[error(transparent)]
    Signal(#[from] SignalError),
    /// The observed-parallelism or TaskManager-count query failed.
    #[error("{what} query failed: {source}")]
    Count {
        /// `parallelism` or `taskManagers`.
        what: &'static str,
        /// The query error (empty result included).
        #[source]
        source: QueryError,
    },
    /// The config has no usable policy or Prometheus server.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A policy's query overrides do not render.
    #[error("policies.{policy}.queries: {source}")]
    Queries {
        /// The policy name.
        policy: String,
        /// The template error.
        #[source]
        source: TemplateError,
    },
    /// The config or the arguments do not name what was asked for.
    #[error("{0}")]
    Setup(String),
    /// The Prometheus client could not be built.
    #[error(transparent)]
    Client(#[from] ClientBuildError),
    /// Flink REST failed (topology, job, TaskManagers).
    #[error("Flink REST {url}: {source}")]
    Flink {
        /// JobManager URL.
        url: String,
        /// The error.
        #[source]
        source: FlinkError,
    },
    /// The topology file could not be read.
    #[error("topology file {path}: {source}")]
    TopologyRead {
        /// File path.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The topology file is not a topology.
    #[error("topology file {path}: {source}")]
    TopologyParse {
        /// File path.
        path: String,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// The topology file has no vertices.
    #[error("topology file {path}: no vertices")]
    TopologyEmpty {
        /// File path.
        path: String,
    },
}
