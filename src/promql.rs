//! PromQL adapter (`promql`, so it does not shadow the `prometheus` crate the exporter
//! uses): reads signals about Flink jobs from any server that speaks the
//! standard Prometheus HTTP API (Prometheus, Thanos, Mimir, VictoriaMetrics).
//!
//! ```text
//!  Endpoint ──► PromClient ──► query / query_range   (/api/v1/query[_range], POST form)
//!                          │
//!  SignalQueries + JobVars ┴──► read_signals ──► SignalRead ──► Observation (core)
//!  (one grouped query per signal per job per tick, run concurrently)
//! ```
//!
//! Layering: depends on `core` only.

pub mod auth;
pub mod client;
pub mod endpoint;
pub mod error;
pub mod keying;
pub mod queries;
pub mod response;
pub mod signals;

pub use client::PromClient;
pub use endpoint::{Auth, Endpoint, PasswordSource};
pub use error::{ClientBuildError, CredentialError, QueryError, SettingsError};
pub use queries::{
    check_matchers, default_query, sanitize_label_value, JobVars, SignalQueries, TemplateError,
};
pub use response::{ResponseError, Sample, Series};
pub use signals::{
    read_signals, QueryStat, ReadOptions, Scope, SignalError, SignalErrorKind, SignalIssue,
    SignalRead,
};
