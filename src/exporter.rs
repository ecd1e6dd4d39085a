//! The scaler's own observability surface: one [`Metrics`] struct with a private
//! Prometheus registry (no global state) and the HTTP server that exposes it together
//! with `/healthz` and `/readyz`.
//!
//! ```text
//!   runtime / keda / promql / flink ──(typed helpers)──► Arc<Metrics> ──► GET /metrics
//!   runtime ──(watch::Sender<Readiness>)───────────────────────────────────► GET /readyz
//! ```
//!
//! Every label value comes from a bounded set: configured names (namespace, ScaledObject,
//! job, Prometheus server), Flink vertex ids, `&'static str` kinds, methods and codes.
//! Error strings, URLs and PromQL never become labels.

pub mod clients;
mod families;
pub mod http;
mod hub;
mod job_series;
pub mod metrics;
pub mod scaling;
mod setup;

pub use http::{router, serve, HttpError, Readiness};
pub use metrics::{JobKey, Metrics, MetricsError, RescaleOutcome, SignalValues};
