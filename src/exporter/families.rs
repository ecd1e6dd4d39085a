//! The metric families: name, help, labels and buckets of every series the scaler
//! exports on the registry, grouped by subject ([`ClientFamilies`], the rescale duration
//! histogram), each group registered by one function on the [`super::Metrics`] registry.
//! The other per-job series are held by [`super::job_series`].

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

/// Registers `rescale_duration_seconds`, the one per-job family kept on the registry (a
/// histogram, only for jobs that rescaled); the others are [`super::job_series`].
pub(super) fn rescale_duration(b: &Builder<'_>) -> Result<HistogramVec, MetricsError> {
    b.histogram(
        "rescale_duration_seconds",
        "Time from the resource-requirements PUT until the job runs at the target parallelism.",
        RESCALE_BUCKETS,
        &["namespace", "scaled_object", JOB_LABEL, "direction"],
    )
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
