//! The [`Metrics`] struct: every metric family the scaler exports, registered in one
//! place on a private registry prefixed `flink_keda_scaler_`, and the text encoder.
//!
//! Recording helpers live next to their subject: [`super::scaling`] (rescales, plans,
//! decisions, signals) and [`super::clients`] (Prometheus, Flink REST, gRPC, leader).

use ::prometheus::{
    core::Collector, Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::core::ScaledObjectRef;

/// Registry prefix: every exported name starts with `flink_keda_scaler_`.
pub const PREFIX: &str = "flink_keda_scaler";

/// Label name for the Flink job. Not `job`: Prometheus attaches its own `job` target
/// label to every scraped series, and this name matches Flink's reporter label.
pub const JOB_LABEL: &str = "job_name";

const RESCALE_BUCKETS: &[f64] = &[1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0];
const CLIENT_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
const GRPC_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// Errors building or encoding the metrics.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// A metric could not be created or registered (duplicate name, bad label name).
    #[error("failed to register metric {name}: {source}")]
    Register {
        /// The metric name (without prefix).
        name: &'static str,
        /// The underlying error.
        #[source]
        source: ::prometheus::Error,
    },
}

/// Identifies a scaled job in the metrics: the ScaledObject and the Flink job name (from
/// the trigger metadata `jobName`), the labels `namespace`, `scaled_object`, `job`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct JobKey<'a> {
    /// The ScaledObject.
    pub scaled_object: &'a ScaledObjectRef,
    /// Flink job name.
    pub job: &'a str,
}

impl<'a> JobKey<'a> {
    /// `[namespace, scaled_object, job]` label values.
    pub fn labels(&self) -> [&'a str; 3] {
        [
            &self.scaled_object.namespace,
            &self.scaled_object.name,
            self.job,
        ]
    }
}

/// How an in-place rescale ended (bounded label `outcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RescaleOutcome {
    /// Flink reports the target parallelism.
    Succeeded,
    /// The PUT was rejected or the job failed while rescaling.
    Failed,
    /// The target parallelism was not reached in time.
    TimedOut,
    /// Abandoned (superseded by a newer decision, leadership lost, job gone).
    Aborted,
}

impl RescaleOutcome {
    /// Every outcome, in a fixed order.
    pub const ALL: [RescaleOutcome; 4] = [
        RescaleOutcome::Succeeded,
        RescaleOutcome::Failed,
        RescaleOutcome::TimedOut,
        RescaleOutcome::Aborted,
    ];

    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            RescaleOutcome::Succeeded => "succeeded",
            RescaleOutcome::Failed => "failed",
            RescaleOutcome::TimedOut => "timed_out",
            RescaleOutcome::Aborted => "aborted",
        }
    }
}

/// The signal values one decision used for one vertex. `None` removes the series (no
/// stale values when a signal disappears).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SignalValues {
    /// Pending records (FLIP-33 backlog), sources only.
    pub pending_records: Option<f64>,
    /// Busy ratio 0..=1 (`busyTimeMsPerSecond / 1000`).
    pub busy_ratio: Option<f64>,
    /// True processing rate in records per second (rate / busy ratio).
    pub true_processing_rate: Option<f64>,
    /// Observed input rate in records per second.
    pub input_rate: Option<f64>,
}

/// Every metric family of the scaler, on its own registry. Share it as `Arc<Metrics>`.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub(super) rescales: IntCounterVec,
    pub(super) rescale_duration: HistogramVec,
    pub(super) desired_task_managers: IntGaugeVec,
    pub(super) current_task_managers: IntGaugeVec,
    pub(super) reported_task_managers: IntGaugeVec,
    pub(super) min_task_managers: IntGaugeVec,
    pub(super) max_task_managers: IntGaugeVec,
    pub(super) vertex_desired_parallelism: IntGaugeVec,
    pub(super) vertex_current_parallelism: IntGaugeVec,
    pub(super) decisions: IntCounterVec,
    pub(super) rescale_phase: IntGaugeVec,
    pub(super) last_rescale_timestamp: GaugeVec,
    pub(super) signal_pending_records: GaugeVec,
    pub(super) signal_busy_ratio: GaugeVec,
    pub(super) signal_true_processing_rate: GaugeVec,
    pub(super) signal_input_rate: GaugeVec,
    pub(super) prometheus_query_duration: HistogramVec,
    pub(super) prometheus_query_errors: IntCounterVec,
    pub(super) flink_request_duration: HistogramVec,
    pub(super) flink_request_errors: IntCounterVec,
    pub(super) grpc_handled: IntCounterVec,
    pub(super) grpc_handling: HistogramVec,
    pub(super) leader: IntGauge,
    pub(super) failovers: IntCounterVec,
    pub(super) build_info: IntGaugeVec,
}

/// Registers a collector, mapping the error to [`MetricsError::Register`].
fn register<C: Collector + Clone + 'static>(
    registry: &Registry,
    name: &'static str,
    collector: Result<C, ::prometheus::Error>,
) -> Result<C, MetricsError> {
    let c = collector.map_err(|source| MetricsError::Register { name, source })?;
    registry
        .register(Box::new(c.clone()))
        .map_err(|source| MetricsError::Register { name, source })?;
    Ok(c)
}

/// Builds and registers the families of one registry.
struct Builder<'a>(&'a Registry);

impl Builder<'_> {
    fn counter(
        &self,
        name: &'static str,
        help: &str,
        labels: &[&str],
    ) -> Result<IntCounterVec, MetricsError> {
        register(
            self.0,
            name,
            IntCounterVec::new(Opts::new(name, help), labels),
        )
    }

    fn int_gauge(
        &self,
        name: &'static str,
        help: &str,
        labels: &[&str],
    ) -> Result<IntGaugeVec, MetricsError> {
        register(
            self.0,
            name,
            IntGaugeVec::new(Opts::new(name, help), labels),
        )
    }

    fn gauge(
        &self,
        name: &'static str,
        help: &str,
        labels: &[&str],
    ) -> Result<GaugeVec, MetricsError> {
        register(self.0, name, GaugeVec::new(Opts::new(name, help), labels))
    }

    fn histogram(
        &self,
        name: &'static str,
        help: &str,
        buckets: &[f64],
        labels: &[&str],
    ) -> Result<HistogramVec, MetricsError> {
        let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
        register(self.0, name, HistogramVec::new(opts, labels))
    }
}

/// Labels of per-ScaledObject series.
const SO: &[&str] = &["namespace", "scaled_object", JOB_LABEL];
/// Labels of per-vertex parallelism series.
const VERTEX: &[&str] = &[JOB_LABEL, "vertex", "vertex_name"];
/// Labels of per-vertex signal series.
const SIGNAL: &[&str] = &[JOB_LABEL, "vertex"];

impl Metrics {
    /// Builds every family on a fresh registry, with `build_info` for this crate's
    /// version and the `FKS_GIT_SHA` compile-time environment variable (`unknown` if
    /// unset; the Dockerfile sets it from its `GIT_SHA` build argument).
    pub fn new() -> Result<Self, MetricsError> {
        Self::with_build_info(
            env!("CARGO_PKG_VERSION"),
            option_env!("FKS_GIT_SHA").unwrap_or("unknown"),
        )
    }

    /// Like [`Metrics::new`] with an explicit version and git sha for `build_info`.
    pub fn with_build_info(version: &str, git_sha: &str) -> Result<Self, MetricsError> {
        let registry = Registry::new_custom(Some(PREFIX.into()), None).map_err(|source| {
            MetricsError::Register {
                name: "registry",
                source,
            }
        })?;
        let b = Builder(&registry);
        let j = JOB_LABEL;
        let m = Metrics {
            rescales: b.counter(
                "rescales_total",
                "In-place rescales by direction and outcome.",
                &["namespace", "scaled_object", j, "direction", "outcome"],
            )?,
            rescale_duration: b.histogram(
                "rescale_duration_seconds",
                "Time from the resource-requirements PUT until the job runs at the target parallelism.",
                RESCALE_BUCKETS,
                &["namespace", "scaled_object", j, "direction"],
            )?,
            desired_task_managers: b.int_gauge(
                "desired_task_managers",
                "TaskManagers the last decision wants.",
                SO,
            )?,
            current_task_managers: b.int_gauge(
                "current_task_managers",
                "TaskManagers registered with the JobManager.",
                SO,
            )?,
            reported_task_managers: b.int_gauge(
                "reported_task_managers",
                "TaskManager count last reported to KEDA (GetMetrics).",
                SO,
            )?,
            min_task_managers: b.int_gauge(
                "min_task_managers",
                "Lower TaskManager bound of the job's policy.",
                SO,
            )?,
            max_task_managers: b.int_gauge(
                "max_task_managers",
                "Upper TaskManager bound of the job's policy.",
                SO,
            )?,
            vertex_desired_parallelism: b.int_gauge(
                "vertex_desired_parallelism",
                "Parallelism the last decision wants per job vertex.",
                VERTEX,
            )?,
            vertex_current_parallelism: b.int_gauge(
                "vertex_current_parallelism",
                "Parallelism Flink reports per job vertex.",
                VERTEX,
            )?,
            decisions: b.counter(
                "decisions_total",
                "Decisions by the rule that settled them.",
                &[j, "rule"],
            )?,
            rescale_phase: b.int_gauge(
                "rescale_phase",
                "1 for the job's current rescale phase (idle when nothing is in flight).",
                &[j, "phase"],
            )?,
            last_rescale_timestamp: b.gauge(
                "last_rescale_timestamp_seconds",
                "Unix time of the last rescale applied to the job.",
                SO,
            )?,
            signal_pending_records: b.gauge(
                "signal_pending_records",
                "Pending records (lag) of a source vertex used by the last decision.",
                SIGNAL,
            )?,
            signal_busy_ratio: b.gauge(
                "signal_busy_ratio",
                "Busy ratio (0..1) of a vertex used by the last decision.",
                SIGNAL,
            )?,
            signal_true_processing_rate: b.gauge(
                "signal_true_processing_records_per_second",
                "True processing rate (records/s at 100% busy) of a vertex used by the last decision.",
                SIGNAL,
            )?,
            signal_input_rate: b.gauge(
                "signal_input_records_per_second",
                "Observed input rate (records/s) of a vertex used by the last decision.",
                SIGNAL,
            )?,
            prometheus_query_duration: b.histogram(
                "prometheus_query_duration_seconds",
                "Duration of Prometheus queries by server and signal.",
                CLIENT_BUCKETS,
                &["server", "signal"],
            )?,
            prometheus_query_errors: b.counter(
                "prometheus_query_errors_total",
                "Failed Prometheus queries by server, signal and error kind.",
                &["server", "signal", "kind"],
            )?,
            flink_request_duration: b.histogram(
                "flink_request_duration_seconds",
                "Duration of Flink REST requests by endpoint and HTTP status.",
                CLIENT_BUCKETS,
                &["endpoint", "status"],
            )?,
            flink_request_errors: b.counter(
                "flink_request_errors_total",
                "Failed Flink REST requests by endpoint and error kind.",
                &["endpoint", "kind"],
            )?,
            grpc_handled: b.counter(
                "grpc_server_handled_total",
                "gRPC calls completed, by method and status code.",
                &["grpc_method", "grpc_code"],
            )?,
            grpc_handling: b.histogram(
                "grpc_server_handling_seconds",
                "gRPC call handling time by method.",
                GRPC_BUCKETS,
                &["grpc_method"],
            )?,
            leader: register(
                &registry,
                "is_leader",
                IntGauge::new(
                    "is_leader",
                    "1 when this replica holds the leader Lease (applies rescales).",
                ),
            )?,
            failovers: b.counter(
                "failovers_total",
                "Job failovers (restarts not caused by a rescale) observed.",
                &[j],
            )?,
            build_info: b.int_gauge(
                "build_info",
                "Always 1; labels carry the version and git sha.",
                &["version", "git_sha"],
            )?,
            registry,
        };
        m.build_info.with_label_values(&[version, git_sha]).set(1);
        Ok(m)
    }

    /// The registry (for tests or to register extra collectors).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Every family in the Prometheus text exposition format (version 0.0.4).
    pub fn encode(&self) -> String {
        let mut buf = Vec::new();
        // Encoding into a Vec cannot fail for I/O reasons; the only error is a
        // malformed family, which the registry rejects at registration.
        if let Err(error) = TextEncoder::new().encode(&self.registry.gather(), &mut buf) {
            tracing::warn!(%error, "Failed to encode metrics.");
        }
        String::from_utf8_lossy(&buf).into_owned()
    }

    /// The content type of [`Metrics::encode`].
    pub fn content_type() -> &'static str {
        ::prometheus::TEXT_FORMAT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_registers_build_info_with_prefix() {
        let m = Metrics::with_build_info("1.2.3", "abc").unwrap();
        let text = m.encode();
        assert!(
            text.contains(r#"flink_keda_scaler_build_info{git_sha="abc",version="1.2.3"} 1"#),
            "{text}"
        );
        assert!(text.contains("flink_keda_scaler_is_leader 0"), "{text}");
    }

    #[test]
    fn two_instances_do_not_share_state() {
        let a = Metrics::new().unwrap();
        let b = Metrics::new().unwrap();
        a.set_leader(true);
        assert_eq!(a.leader.get(), 1);
        assert_eq!(b.leader.get(), 0);
    }

    #[test]
    fn outcome_labels_are_distinct() {
        let mut names: Vec<_> = RescaleOutcome::ALL.iter().map(|o| o.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), RescaleOutcome::ALL.len());
    }
}
