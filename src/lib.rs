//! flink-keda-scaler: a KEDA external scaler that autoscales Apache Flink jobs in place.
//!
//! The adapters (`keda`, `promql`, `flink`, `kube`, `exporter`) depend on the pure core
//! ([`core`], crate `fks-core`) only; `config` parses the YAML file; `runtime` wires them;
//! `backtest` and `sim` replay the core; the binary calls `runtime`. The crate graph, what
//! lives where and the data flow of one tick: `docs/architecture.md`.

/// The pure decision core (crate `fks-core`), under its historical path.
pub use fks_core as core;

pub mod backtest;
pub mod config;
pub mod exporter;
pub mod flink;
#[doc(hidden)]
pub mod fuzzing;
pub mod keda;
pub mod kube;
pub mod promql;
pub mod runtime;
pub mod sim;
pub mod svg;
pub mod telemetry;
