//! The metric families: name, help, labels and buckets of every series the scaler
//! exports, grouped by subject ([`JobFamilies`], [`SignalFamilies`], [`ClientFamilies`]),
//! each group registered by one function on the [`super::Metrics`] registry.

use ::prometheus::{
    core::Collector, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts,
    Registry,
};

use super::metrics::{MetricsError, JOB_LABEL};

const RESCALE_BUCKETS: &[f64] = &[1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0];
const CLIENT_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
const GRPC_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// Labels of per-ScaledObject series.
const SO: &[&str] = &["namespace", "scaled_object", JOB_LABEL];
/// Labels of per-vertex parallelism series.
const VERTEX: &[&str] = &["namespace", JOB_LABEL, "vertex", "vertex_name"];
/// Labels of per-vertex signal series.
const SIGNAL: &[&str] = &["namespace", JOB_LABEL, "vertex"];

/// Registers a collector, mapping the error to [`MetricsError::Register`].
pub(super) fn register<C: Collector + Clone + 'static>(
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
pub(super) struct Builder<'a>(pub(super) &'a Registry);

impl Builder<'_> {
    pub(super) fn counter(
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

    pub(super) fn int_gauge(
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

    pub(super) fn gauge(
        &self,
        name: &'static str,
        help: &str,
        labels: &[&str],
    ) -> Result<GaugeVec, MetricsError> {
        register(self.0, name, GaugeVec::new(Opts::new(name, help), labels))
    }

    pub(super) fn histogram(
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

/// Per-job series: rescales, TaskManager counts and bounds, parallelism, decisions, phase, failovers.
#[derive(Debug)]
pub(super) struct JobFamilies {
    pub(super) rescales: IntCounterVec,
    pub(super) rescale_duration: HistogramVec,
    pub(super) desired_task_managers: IntGaugeVec,
    pub(super) current_task_managers: IntGaugeVec,
    pub(super) reported_task_managers: IntGaugeVec,
    pub(super) spare_task_managers: IntGaugeVec,
    pub(super) min_task_managers: IntGaugeVec,
    pub(super) max_task_managers: IntGaugeVec,
    pub(super) vertex_desired_parallelism: IntGaugeVec,
    pub(super) vertex_current_parallelism: IntGaugeVec,
    pub(super) decisions: IntCounterVec,
    pub(super) rescale_phase: IntGaugeVec,
    pub(super) last_rescale_timestamp: GaugeVec,
    pub(super) failovers: IntCounterVec,
}

impl JobFamilies {
    pub(super) fn register(b: &Builder<'_>) -> Result<Self, MetricsError> {
        let j = JOB_LABEL;
        Ok(Self {
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
            spare_task_managers: b.int_gauge(
                "spare_task_managers",
                "Warm spare TaskManagers included in the reported count (spareTaskManagers, bounded by maxTaskManagers).",
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
                &["namespace", j, "rule"],
            )?,
            rescale_phase: b.int_gauge(
                "rescale_phase",
                "1 for the job's current rescale phase (idle when nothing is in flight).",
                &["namespace", j, "phase"],
            )?,
            last_rescale_timestamp: b.gauge(
                "last_rescale_timestamp_seconds",
                "Unix time of the last rescale applied to the job.",
                SO,
            )?,
            failovers: b.counter(
                "failovers_total",
                "Job failovers (restarts not caused by a rescale) observed.",
                &["namespace", j],
            )?,
        })
    }
}

/// The signals a decision used, per vertex.
#[derive(Debug)]
pub(super) struct SignalFamilies {
    pub(super) signal_pending_records: GaugeVec,
    pub(super) signal_busy_ratio: GaugeVec,
    pub(super) signal_true_processing_rate: GaugeVec,
    pub(super) signal_input_rate: GaugeVec,
}

impl SignalFamilies {
    pub(super) fn register(b: &Builder<'_>) -> Result<Self, MetricsError> {
        Ok(Self {
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
        })
    }
}

/// The scaler's clients and server: Prometheus queries, Flink REST requests, gRPC calls.
#[derive(Debug)]
pub(super) struct ClientFamilies {
    pub(super) prometheus_query_duration: HistogramVec,
    pub(super) prometheus_query_errors: IntCounterVec,
    pub(super) flink_request_duration: HistogramVec,
    pub(super) flink_request_errors: IntCounterVec,
    pub(super) flink_rest_calls: IntCounterVec,
    pub(super) evaluation_lag: GaugeVec,
    pub(super) grpc_handled: IntCounterVec,
    pub(super) grpc_handling: HistogramVec,
}

impl ClientFamilies {
    pub(super) fn register(b: &Builder<'_>) -> Result<Self, MetricsError> {
        Ok(Self {
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
            flink_rest_calls: b.counter(
                "flink_rest_calls_total",
                "Flink REST calls sent, by route template (all jobs, all JobManagers).",
                &["endpoint"],
            )?,
            evaluation_lag: b.gauge(
                "evaluation_lag_seconds",
                "Age of the oldest job evaluation: now minus the last tick of the job evaluated longest ago.",
                &[],
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
        })
    }
}
