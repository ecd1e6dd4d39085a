//! Real components as local processes, for the scaler's integration tests and the lab:
//! a standalone Flink session cluster ([`flink_cluster`]), a Prometheus server
//! ([`prometheus_proc`]) and the built `flink-keda-scaler serve` binary ([`scaler_proc`]),
//! on free loopback ports, each killed on drop; plus the process and polling helpers they
//! share ([`procs`]); and a synthetic fleet of jobs ([`fleet`]): Flink REST and
//! PrometheusReporter series for N jobs in one process, for the fleet tests and benchmark.
//!
//! Nothing here links the scaler: it starts the built binary and talks HTTP to it, so the
//! product never compiles this crate.

pub mod error;
pub mod fleet;
pub mod flink_cluster;
mod flink_conf;
pub mod flink_jvm;
pub mod flink_launcher;
pub mod procs;
pub mod prometheus_proc;
pub mod scaler_proc;

pub use error::{ComponentError, Result};
