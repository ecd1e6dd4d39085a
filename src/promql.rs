//! PromQL adapter (`promql`, so it does not shadow the `prometheus` crate the exporter
//! uses): reads signals about Flink jobs from any server that speaks the
//! standard Prometheus HTTP API (Prometheus, Thanos, Mimir, VictoriaMetrics).
//!
//! ```text
//!  Endpoint ──► PromClient ──► query / query_range   (/api/v1/query[_range], POST form)
//!                          │
//!  SignalQueries + JobVars ┼──► BatchQuery (one query per signal for a batch of jobs,
//!  + Windows               │     `{{job_ids}}`) ──► demux ──► per-job outcomes ──┐
//!  (learned scrape         └──► read_signals (one job: a batch of one) ──────────┤
//!   interval, windows)                               assemble ◄─────────────────┘
//!                                                        └──► SignalRead ──► Observation
//! ```
//! The runtime's signal hub runs the batches once per tick for every job; `explain`,
//! the backtest and per-job templates read one job directly.
//!
//! Layering: depends on `core` only.

pub mod auth;
pub mod batch;
pub mod client;
pub mod defaults;
pub mod endpoint;
pub mod error;
pub mod keying;
pub mod queries;
pub mod read;
pub mod response;
pub mod signals;
pub mod windows;

pub use batch::{BatchQuery, JobOutcome, JobRows};
pub use client::PromClient;
pub use defaults::{default_query, preset_query, QueryPreset};
pub use endpoint::{Auth, Endpoint, PasswordSource};
pub use error::{ClientBuildError, CredentialError, QueryError, SettingsError};
pub use queries::{
    check_matchers, sanitize_label_value, Batching, JobVars, SignalQueries, TemplateError,
};
pub use read::{assemble, read_direct, read_signals, stat, SignalOutcome};
pub use response::{ResponseError, Sample, Series};
pub use signals::{
    QueryStat, ReadOptions, Scope, SignalError, SignalErrorKind, SignalIssue, SignalRead,
};
pub use windows::{learn_interval, LearnError, Windows};
