//! Command-line interface (clap). Each subcommand loads what it needs and hands over to
//! the library: `serve` runs the scaler, `check-config` validates a config file,
//! `explain` evaluates a job once and prints the decision with its inputs and reasons,
//! `rescale` applies a parallelism in place through the same code path as automatic
//! decisions.

use std::{net::SocketAddr, path::PathBuf};

use clap::{Args, Parser, Subcommand};
use flink_keda_scaler::telemetry::LogFormat;

/// KEDA external scaler that autoscales Apache Flink jobs in place.
#[derive(Debug, Parser)]
#[command(name = "flink-keda-scaler", version, about, long_about = None)]
pub struct Cli {
    /// Log format.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "pretty",
        env = "FKS_LOG_FORMAT"
    )]
    pub log_format: LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the scaler: gRPC external scaler for KEDA + HTTP /metrics, /healthz, /readyz.
    Serve(ServeArgs),
    /// Validate a config file; prints the resolved policies, or the error with its field path.
    CheckConfig(ConfigArg),
    /// Evaluate one job once (signals from Prometheus, topology from Flink) and print the
    /// decision with its inputs and reasons as JSON.
    Explain(ExplainArgs),
    /// Rescale a job in place now (GET-edit-PUT resource requirements, wait for RUNNING).
    Rescale(RescaleArgs),
    /// Compare scaling policies on a load trace with a deterministic model of a Flink job
    /// (fixed peak, KEDA lag threshold + HPA, Flink operator autoscaler restart/in-place,
    /// AWS CPU rule, ours with and without predictive pre-scaling).
    Simulate(SimulateArgs),
    /// Replay a policy over a job's Prometheus history (one range query per signal) and
    /// compare the TaskManagers it would have run with what actually ran.
    Backtest(BacktestArgs),
}

/// `backtest` arguments.
#[derive(Debug, Args)]
pub struct BacktestArgs {
    /// YAML config file (policies, queries, Prometheus servers).
    #[arg(long, short = 'c', env = "FKS_CONFIG")]
    pub config: PathBuf,
    /// JobManager REST URL (the current job graph gives the vertex ids).
    #[arg(
        long,
        required_unless_present = "topology",
        conflicts_with = "topology"
    )]
    pub flink: Option<url::Url>,
    /// JSON file with a `core::Topology`, for jobs that no longer run (needs `--job ID`).
    #[arg(long)]
    pub topology: Option<PathBuf>,
    /// Job name or id (default: the only running job).
    #[arg(long)]
    pub job: Option<String>,
    /// Job name for `{{job_name}}` in queries when the topology comes from a file.
    #[arg(long)]
    pub job_name: Option<String>,
    /// Policy name from the config (default: `default`).
    #[arg(long)]
    pub policy: Option<String>,
    /// Prometheus server name from the config (default: `default`).
    #[arg(long)]
    pub prometheus: Option<String>,
    /// Start: RFC3339 or `-<duration>` relative to now (e.g. `-2h`).
    #[arg(long, allow_hyphen_values = true)]
    pub from: String,
    /// End: RFC3339, `-<duration>` or `now`.
    #[arg(long, default_value = "now", allow_hyphen_values = true)]
    pub to: String,
    /// Tick spacing (one decision per tick).
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    pub step: std::time::Duration,
    /// Slots per TaskManager (default: the policy's, then Flink's `/taskmanagers`).
    #[arg(long)]
    pub slots_per_task_manager: Option<u32>,
    /// Write `t,actual_tms,ours_tms,input_rate,lag,decision_rule` to this file.
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// Write the SVG plot to this file (builds with the `svg` feature; the workspace build has it).
    #[arg(long)]
    pub svg: Option<PathBuf>,
}

/// `simulate` arguments.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Trace: `step`, `diurnal`, `spikes`, `noisy`, or a CSV file `t_seconds,input_rate`.
    #[arg(long, default_value = "step")]
    pub trace: String,
    /// Lag SLO in seconds (time above it is counted).
    #[arg(long, default_value_t = 30.0)]
    pub lag_slo: f64,
    /// Upper bound on TaskManagers for every policy.
    #[arg(long, default_value_t = 16)]
    pub max_task_managers: u32,
    /// PRNG seed (the simulation is deterministic for a seed).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Write the time series as CSV to this file.
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// Write the SVG plot to this file (builds with the `svg` feature; the workspace build has it).
    #[arg(long)]
    pub svg: Option<PathBuf>,
}

/// `--config FILE`.
#[derive(Debug, Args)]
pub struct ConfigArg {
    /// YAML config file.
    #[arg(long, short = 'c', env = "FKS_CONFIG")]
    pub config: PathBuf,
}

/// `serve` arguments.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// YAML config file.
    #[arg(long, short = 'c', env = "FKS_CONFIG")]
    pub config: PathBuf,
    /// gRPC listen address (overrides grpc.listenAddress).
    #[arg(long)]
    pub grpc_addr: Option<SocketAddr>,
    /// HTTP listen address (overrides http.listenAddress).
    #[arg(long)]
    pub http_addr: Option<SocketAddr>,
    /// Admin listen address (overrides admin.listenAddress; off loopback it needs
    /// admin.auth or mTLS).
    #[arg(long)]
    pub admin_addr: Option<SocketAddr>,
}

/// `explain` arguments.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// YAML config file.
    #[arg(long, short = 'c', env = "FKS_CONFIG")]
    pub config: PathBuf,
    /// JobManager REST URL.
    #[arg(long)]
    pub flink: url::Url,
    /// Job name or id (default: the only running job).
    #[arg(long)]
    pub job: Option<String>,
    /// Policy name from the config (default: `default`).
    #[arg(long)]
    pub policy: Option<String>,
    /// Prometheus server name from the config (default: `default`).
    #[arg(long)]
    pub prometheus: Option<String>,
}

/// `rescale` arguments.
#[derive(Debug, Args)]
pub struct RescaleArgs {
    /// JobManager REST URL.
    #[arg(long)]
    pub flink: url::Url,
    /// Job name or id (default: the only running job).
    #[arg(long)]
    pub job: Option<String>,
    /// Set every vertex to this parallelism.
    #[arg(long, conflicts_with = "vertex", required_unless_present = "vertex")]
    pub parallelism: Option<u32>,
    /// Set one vertex: `VERTEX_ID=N` (repeatable); other vertices keep their parallelism.
    #[arg(long, value_name = "ID=N")]
    pub vertex: Vec<String>,
    /// Longest wait for RUNNING at the new parallelism.
    #[arg(long, default_value = "180s", value_parser = humantime::parse_duration)]
    pub timeout: std::time::Duration,
    /// Compute and print the PUT body, never send it.
    #[arg(long)]
    pub dry_run: bool,
}
