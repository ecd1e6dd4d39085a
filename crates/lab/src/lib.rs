//! The lab: the whole loop on real components on one machine, for the demo (README
//! command 1), the benchmarks (`docs/benchmarks.md`) and the CI loop test
//! (`tests/flink_loop.rs`, the short profile of the same scenario).
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
//! a cluster would.

pub mod driver;
pub mod error;
pub mod fleet;
pub mod flink_cluster;
pub mod grpc_load;
pub mod measure;
pub mod observer;
pub mod plot;
pub mod procs;
pub mod prometheus_proc;
pub mod report;
pub mod scaler_proc;
pub mod scenario;
pub mod timeline;

pub use error::{LabError, Result};
