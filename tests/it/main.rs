//! The scaler's integration tests, one binary: a module per area (`cargo test --test it
//! grpc_service`, `cargo test --test it flink_rescale::`), the shared harness in
//! [`support`] compiled once. Suites against real components (Prometheus, Flink 2.3.0 and
//! 1.20.5, kube-apiserver + etcd, the Python grpcio client) skip outside CI when a
//! component is missing and fail in CI (`CI=true`); `scripts/install-components.sh`
//! installs them.

// Test code throughout (the harness included): a failed expectation is a failed test.
#![allow(clippy::expect_used, clippy::panic)]

mod support;

mod alerts_promtool;
mod cli;
mod config_files;
mod core_decide;
mod dashboard_metrics;
mod docs_paths;
mod faults_matrix;
mod file_sizes;
mod fleet_rest;
mod flink_fakes;
mod flink_queries;
mod flink_reactive;
mod flink_rescale;
mod flink_setup;
mod fuzz_corpus;
mod grpc_metadata;
mod grpc_python;
mod grpc_python_binary;
mod grpc_service;
mod grpc_tls;
mod kube_adapter;
mod kube_ha;
mod kube_manifests;
mod kube_native;
mod kube_runtime;
mod layering;
mod logs_json;
mod prometheus_backtest;
mod prometheus_client;
mod prometheus_fleet;
mod prometheus_getmetrics;
mod prometheus_predictive;
mod prometheus_real;
mod prometheus_tls;
mod promql_batching;
mod safety_flink_tls;
mod safety_listeners;
mod safety_rotation;
mod safety_upstream;
mod sim_alternatives;
mod sim_goal;
mod sim_orderings;
mod sim_report;
mod sim_traces;
