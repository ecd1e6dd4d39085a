//! flink-keda-scaler: a KEDA external scaler that autoscales Apache Flink jobs in place.
//!
//! Data flow (one job, one tick):
//!
//! ```text
//!            KEDA operator / metrics-server
//!                 │ gRPC  GetMetricSpec · GetMetrics · IsActive · StreamIsActive
//!                 ▼
//!   keda ──────► runtime (per-job tick, TTL cache, rescale driver) ─────► exporter (/metrics)
//!                 │   ▲                 │                 │
//!      PromQL     │   │ topology,       │ decide()        │ GET-edit-PUT resource-requirements,
//!   ┌─────────────┘   │ job state       ▼                 ▼ verify parallelism
//!   prometheus        flink ◄──────── core (pure) ──► flink
//!   (signals)                                          kube (discovery, pod-deletion-cost,
//!                                                            persisted state, Lease, Events)
//! ```
//!
//! Layering: `core` is pure (no I/O). Adapters (`keda`, `prometheus`, `flink`, `kube`,
//! `exporter`) depend on `core` only, never on each other. `config` parses and validates
//! the YAML file into core policies and adapter settings. `runtime` wires adapters to the
//! core; `main` (the binary) parses the CLI and calls `runtime`. `backtest` is
//! runtime-level too: it replays the core over Prometheus history (range queries) and
//! `sim` over a modelled job. `lab` sits outside all of them: it starts real Flink,
//! Prometheus and the built scaler as processes and drives the scaler over gRPC the way
//! KEDA and the HPA do (the `fks-lab` binary: demo, benchmarks; the CI loop test).

pub mod backtest;
pub mod config;
pub mod core;
pub mod exporter;
pub mod flink;
pub mod keda;
pub mod kube;
pub mod lab;
pub mod prometheus;
pub mod runtime;
pub mod sim;
pub mod telemetry;
