//! fks-lab's end-to-end suites, one binary: the closed loop on real Flink + Prometheus
//! with the built scaler and the KEDA/HPA driver (`cargo test -p fks-lab --test it
//! flink_loop::`; with a warm spare: `flink_spare::`). A missing component skips outside CI and fails in CI (`CI=true`).

// Test code throughout (the harness included): a failed expectation is a failed test.
#![allow(clippy::expect_used, clippy::panic)]

mod support;

mod flink_loop;
mod flink_spare;
