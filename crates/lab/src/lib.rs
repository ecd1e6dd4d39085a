//! The lab: the whole loop on real components on one machine, for the demo (README
//! command 1), the benchmarks (`docs/benchmarks.md`) and the CI loop test
//! (`crates/lab/tests/it/flink_loop.rs`, the short profile of the same scenario).
//!
//! ```text
//!  rate file ──► LoadJob (Flink session cluster, adaptive scheduler, PrometheusReporter)
//!                   │ scrape 1 s                  ▲ PUT resource-requirements
//!                   ▼                             │
//!               Prometheus ──PromQL──► flink-keda-scaler (the built binary, `serve`)
//!                   │                             ▲ gRPC GetMetricSpec/GetMetrics/IsActive
//!                   │                             │
//!               observer ◄── Flink REST ──── driver (KEDA poll + HPA math) ──► start/stop
//!                   │                                                         TaskManagers
//!                   ▼
//!               timeline ──► table, CSV, SVG plot, measurements (P1–P3, TM-seconds)
//! ```
//!
//! Nothing here is used by the scaler itself; it only drives it from outside, as KEDA and
//! a cluster would. The real components (Flink, Prometheus, the scaler process) come from
//! `fks-components`, which the scaler's own integration tests use too.

pub mod driver;
pub mod error;
pub mod fleet;
pub mod fleet_bench;
pub mod fleet_wave;
pub mod grpc_load;
pub mod measure;
pub mod observer;
pub mod plot;
pub mod profile;
pub mod report;
pub mod scenario;
pub mod timeline;
pub mod visibility;

pub use error::{LabError, Result};
pub use fks_components::{flink_cluster, procs, prometheus_proc, scaler_proc};
