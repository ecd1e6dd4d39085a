//! Recording helpers for the scaler's clients and servers: Prometheus queries, Flink REST
//! requests, the KEDA gRPC server (with a drop guard that records the call even when the
//! handler returns early) and leader status.

use std::{sync::Arc, time::Instant};

use super::metrics::Metrics;

/// Label value for a Flink request that got no HTTP response (connect error, timeout).
pub const NO_STATUS: &str = "none";

impl Metrics {
    /// Observes one Prometheus query. `server` is the configured server name (not its
    /// URL); `signal` the signal name (e.g. [`crate::core::Signal::name`]).
    pub fn observe_prometheus_query(&self, server: &str, signal: &'static str, secs: f64) {
        self.clients
            .prometheus_query_duration
            .with_label_values(&[server, signal])
            .observe(secs);
    }

    /// Counts a failed Prometheus query; `kind` is a closed-set error kind
    /// (the Prometheus client's `QueryError::kind`: `unreachable`,
    /// `http_status`, `empty_result`, `promql`, ...), never the error text.
    pub fn record_prometheus_error(&self, server: &str, signal: &'static str, kind: &'static str) {
        self.clients
            .prometheus_query_errors
            .with_label_values(&[server, signal, kind])
            .inc();
    }

    /// Observes one Flink REST request. `endpoint` is a route template
    /// (`/jobs/:id/resource-requirements`), `status` the HTTP status or `None`.
    pub fn observe_flink_request(&self, endpoint: &'static str, status: Option<u16>, secs: f64) {
        let status = status.map(|s| s.to_string());
        let status = status.as_deref().unwrap_or(NO_STATUS);
        self.clients
            .flink_request_duration
            .with_label_values(&[endpoint, status])
            .observe(secs);
    }

    /// Counts one Flink REST call by route template (`GET /jobs/:id`): REST calls per
    /// tick are `increase(...[interval])`.
    pub fn count_flink_call(&self, endpoint: &str) {
        self.clients
            .flink_rest_calls
            .with_label_values(&[endpoint])
            .inc();
    }

    /// Sets the age of the oldest job evaluation.
    pub fn set_evaluation_lag(&self, secs: f64) {
        self.clients
            .evaluation_lag
            .with_label_values(&[] as &[&str])
            .set(secs);
    }

    /// Counts a failed Flink REST request by closed-set error kind.
    pub fn record_flink_error(&self, endpoint: &'static str, kind: &'static str) {
        self.clients
            .flink_request_errors
            .with_label_values(&[endpoint, kind])
            .inc();
    }

    /// Records one completed gRPC call: `method` is the bare method name
    /// (`GetMetrics`), `code` the gRPC code name (`OK`, `InvalidArgument`, ...).
    pub fn observe_grpc(&self, method: &'static str, code: &'static str, secs: f64) {
        self.clients
            .grpc_handled
            .with_label_values(&[method, code])
            .inc();
        self.clients
            .grpc_handling
            .with_label_values(&[method])
            .observe(secs);
    }

    /// Starts timing a gRPC call; the returned guard records it when dropped.
    pub fn grpc_call(self: &Arc<Self>, method: &'static str) -> GrpcCall {
        GrpcCall {
            metrics: Arc::clone(self),
            method,
            code: "OK",
            start: Instant::now(),
        }
    }

    /// Counts one stale state ConfigMap deleted by the leader.
    pub fn count_state_collected(&self) {
        self.state_collected.inc();
    }

    /// Sets whether this replica is the leader.
    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }
}

/// Records a gRPC call on drop, with code `OK` unless [`GrpcCall::set_code`] was called.
#[derive(Debug)]
pub struct GrpcCall {
    metrics: Arc<Metrics>,
    method: &'static str,
    code: &'static str,
    start: Instant,
}

impl GrpcCall {
    /// Sets the gRPC code name to record (e.g. `NotFound`).
    pub fn set_code(&mut self, code: &'static str) {
        self.code = code;
    }
}

impl Drop for GrpcCall {
    fn drop(&mut self) {
        self.metrics
            .observe_grpc(self.method, self.code, self.start.elapsed().as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_query_duration_and_errors() {
        let m = Metrics::new().unwrap();
        m.observe_prometheus_query("default", "busyTime", 0.2);
        m.observe_prometheus_query("default", "busyTime", 0.3);
        m.record_prometheus_error("default", "pendingRecords", "empty");
        let h = m
            .clients
            .prometheus_query_duration
            .with_label_values(&["default", "busyTime"]);
        assert_eq!(h.get_sample_count(), 2);
        assert!((h.get_sample_sum() - 0.5).abs() < 1e-9);
        assert_eq!(
            m.clients
                .prometheus_query_errors
                .with_label_values(&["default", "pendingRecords", "empty"])
                .get(),
            1
        );
    }

    #[test]
    fn flink_request_status_label() {
        let m = Metrics::new().unwrap();
        m.observe_flink_request("/jobs/:id", Some(200), 0.01);
        m.observe_flink_request("/jobs/:id", None, 10.0);
        m.record_flink_error("/jobs/:id", "timeout");
        assert_eq!(
            m.clients
                .flink_request_duration
                .with_label_values(&["/jobs/:id", "200"])
                .get_sample_count(),
            1
        );
        assert_eq!(
            m.clients
                .flink_request_duration
                .with_label_values(&["/jobs/:id", NO_STATUS])
                .get_sample_count(),
            1
        );
        assert_eq!(
            m.clients
                .flink_request_errors
                .with_label_values(&["/jobs/:id", "timeout"])
                .get(),
            1
        );
    }

    #[test]
    fn grpc_guard_records_ok_or_set_code() {
        let m = Arc::new(Metrics::new().unwrap());
        drop(m.grpc_call("GetMetrics"));
        {
            let mut call = m.grpc_call("GetMetrics");
            call.set_code("NotFound");
        }
        m.observe_grpc("IsActive", "OK", 0.001);
        assert_eq!(
            m.clients
                .grpc_handled
                .with_label_values(&["GetMetrics", "OK"])
                .get(),
            1
        );
        assert_eq!(
            m.clients
                .grpc_handled
                .with_label_values(&["GetMetrics", "NotFound"])
                .get(),
            1
        );
        assert_eq!(
            m.clients
                .grpc_handling
                .with_label_values(&["GetMetrics"])
                .get_sample_count(),
            2
        );
    }

    #[test]
    fn leader_gauge() {
        let m = Metrics::new().unwrap();
        m.set_leader(true);
        assert_eq!(m.leader.get(), 1);
        m.set_leader(false);
        assert_eq!(m.leader.get(), 0);
    }
}
