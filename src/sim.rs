//! `flink-keda-scaler simulate`: a deterministic, discrete-time policy simulator.
//!
//! A small Flink job (Kafka source → keyed aggregation → sink, per-subtask capacities,
//! hot-key skew, slot sharing, a Kafka backlog) is driven by a load trace; several
//! autoscaling policies run against identical copies of it and are compared on lag-SLO
//! violations, peak lag, TaskManager-hours, rescales and restarts.
//!
//! ```text
//!  trace ──► JobModel::advance ──► JobView ──► SimPolicy::step ──► Target ──► JobModel::apply
//!              (backlog, busy,        ▲           fixed-peak · keda-lag-{restart,reactive}
//!               CPU, TaskManager      │           operator-{restart,inplace} · aws-cpu
//!               start-up, pauses)     └─ seeded   ours (core::decide) · ours-predictive
//!                                        signal noise
//! ```
//!
//! Everything except [`trace::load_csv`] is pure; same config (incl. seed) ⇒ identical
//! [`Report`]. Constants and their sources: [`constants`] and `docs/simulator.md`.

pub mod aws;
#[cfg(feature = "svg")]
pub mod chart;
pub mod constants;
pub mod engine;
pub mod fixed;
pub mod hpa;
pub mod job;
pub mod keda_lag;
pub mod operator;
pub mod ours;
pub mod policy;
pub mod predictive;
pub mod report;
pub mod rng;
pub mod trace;

use std::path::PathBuf;

pub use engine::simulate;
pub use job::{Actuation, JobSpec, JobView, Target, VertexSpec};
pub use policy::SimPolicy;
pub use predictive::{predictive_floor, PredictiveConfig};
pub use report::{Point, PolicyResult, Report};
pub use trace::{load_csv, write_builtin_traces, BuiltinTrace, Trace};

use crate::core::Policy;

/// Errors of the simulator.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A trace file could not be read.
    #[error("reading trace {path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A trace line is malformed.
    #[error("trace {trace} line {line}: {message}")]
    TraceFormat {
        /// Trace name.
        trace: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A trace has no samples.
    #[error("trace {0} has no samples")]
    EmptyTrace(String),
    /// A configuration value is out of range.
    #[error("invalid simulator config: {0}")]
    Config(String),
}

/// Where the load trace comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum TraceSource {
    /// A built-in generated trace.
    Builtin(BuiltinTrace),
    /// A user CSV file `t_seconds,input_rate`.
    File(PathBuf),
    /// An in-memory trace.
    Inline(Trace),
}

impl TraceSource {
    /// A CLI argument: a built-in name (`step`, `diurnal`, `spikes`, `noisy`) or a CSV path.
    pub fn from_arg(arg: &str) -> Self {
        match BuiltinTrace::from_name(arg) {
            Some(b) => TraceSource::Builtin(b),
            None => TraceSource::File(PathBuf::from(arg)),
        }
    }
}

/// Simulator configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// The load trace.
    pub trace: TraceSource,
    /// The modelled job.
    pub job: JobSpec,
    /// Lag SLO: seconds of input; time with lag above it is counted.
    pub lag_slo_s: f64,
    /// Upper bound on TaskManagers for every autoscaling policy.
    pub max_task_managers: u32,
    /// Our scaler's core policy (min/max TaskManagers and slots are overridden from this
    /// config and the job spec).
    pub ours: Policy,
    /// The HPA `behavior` of our ScaledObject (min/max are overridden like the policy's).
    /// Default: what the example ScaledObjects ship ([`hpa::HpaConfig::shipped`]; its
    /// scale-up `Pods` value is not rescaled with `max_task_managers`).
    pub ours_hpa: hpa::HpaConfig,
    /// Also run ours with predictive pre-scaling (only when the trace is longer than one
    /// period).
    pub predictive: Option<PredictiveConfig>,
    /// KEDA Prometheus scaler `threshold`: lag records per TaskManager replica.
    pub keda_lag_threshold: f64,
    /// Simulation step (s).
    pub step_s: f64,
    /// Sampling interval of the CSV/SVG time series (s).
    pub sample_every_s: f64,
    /// Relative standard deviation of the measurement noise on the rates and busy times
    /// the policies see (the model itself is noise-free).
    pub signal_noise: f64,
    /// Seed of the measurement noise.
    pub seed: u64,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            trace: TraceSource::Builtin(BuiltinTrace::Step),
            job: JobSpec::default(),
            lag_slo_s: 30.0,
            max_task_managers: 16,
            ours: Policy::default(),
            ours_hpa: hpa::HpaConfig::shipped(1, 16),
            predictive: Some(PredictiveConfig::default()),
            keda_lag_threshold: 100_000.0,
            step_s: constants::STEP_S,
            sample_every_s: 60.0,
            signal_noise: 0.02,
            seed: 42,
        }
    }
}

impl SimConfig {
    /// Checks ranges.
    pub fn validate(&self) -> Result<(), SimError> {
        let bad = |m: &str| Err(SimError::Config(m.to_string()));
        if !(self.step_s.is_finite() && self.step_s > 0.0) {
            return bad("step_s must be > 0");
        }
        if !(self.sample_every_s.is_finite() && self.sample_every_s >= self.step_s) {
            return bad("sample_every_s must be ≥ step_s");
        }
        if !(self.lag_slo_s.is_finite() && self.lag_slo_s >= 0.0) {
            return bad("lag_slo_s must be ≥ 0");
        }
        if self.max_task_managers == 0 {
            return bad("max_task_managers must be ≥ 1");
        }
        if !(self.keda_lag_threshold.is_finite() && self.keda_lag_threshold > 0.0) {
            return bad("keda_lag_threshold must be > 0");
        }
        if !(self.signal_noise.is_finite() && (0.0..0.5).contains(&self.signal_noise)) {
            return bad("signal_noise must be in [0, 0.5)");
        }
        if self.job.vertices.is_empty() || self.job.slots_per_tm == 0 {
            return bad("job needs ≥ 1 vertex and ≥ 1 slot per TaskManager");
        }
        if self
            .job
            .vertices
            .iter()
            .any(|v| !(v.capacity_per_subtask > 0.0 && v.skew >= 1.0 && v.max_parallelism > 0))
        {
            return bad("vertex capacity must be > 0, skew ≥ 1, max parallelism ≥ 1");
        }
        Ok(())
    }
}

/// Runs the simulation: loads the trace (reading the file for [`TraceSource::File`]) and
/// compares every policy on it.
pub fn run(config: &SimConfig) -> Result<Report, SimError> {
    config.validate()?;
    let trace = match &config.trace {
        TraceSource::Builtin(b) => b.generate(),
        TraceSource::File(p) => load_csv(p)?,
        TraceSource::Inline(t) => t.clone(),
    };
    Ok(simulate(&trace, config))
}
