#!/usr/bin/env bash
# README command 1: the whole autoscaling loop on this machine, on real components.
#
# Installs what is missing (Prometheus from Debian, Apache Flink from PyPI jars; cached in
# ~/.cache/flink-keda-scaler), builds the scaler (release), then `fks-lab demo` starts a
# real Prometheus, a Flink session cluster (adaptive scheduler, PrometheusReporter) with a
# load job whose source behaves like a Kafka topic (its keyed operator I/O-bound: at most 500
# records/s per subtask, waiting, so capacity follows parallelism: 2 → 6 TaskManagers), the scaler, and a driver that plays
# KEDA + the HPA over gRPC and starts/stops TaskManager processes. Scenario: steady → 3×
# load step → steady → back down (~7 min), with a live progress line; at the end a
# timeline table, the figures (P1, lag, rescales, failovers, TaskManager-seconds), and
# target/fks-lab/timeline.{csv,svg,txt}.
#
#   scripts/demo.sh                      # full profile (HPA sync 15 s, as in a cluster)
#   scripts/demo.sh --profile short      # the CI profile (~3 min)
#   scripts/demo.sh --scenario cpu       # the CPU-bound keyed operator (capacity = this machine)
#   FKS_FLINK_VERSION=1.20.5 scripts/demo.sh
#   scripts/demo.sh serve                # only the scaler, serving examples/scaler.yaml
set -euo pipefail
cd "$(dirname "$0")/.."
export FKS_CACHE=${FKS_CACHE:-$HOME/.cache/flink-keda-scaler}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$FKS_CACHE/target}
if [ "${1:-}" = serve ]; then
  shift
  cargo build --release --locked --bin flink-keda-scaler
  exec "$CARGO_TARGET_DIR/release/flink-keda-scaler" serve --config examples/scaler.yaml "$@"
fi
FKS_COMPONENTS=demo FKS_FLINK_VERSIONS=${FKS_FLINK_VERSION:-2.3.0} scripts/install-components.sh
cargo build --release --locked --bins
exec "$CARGO_TARGET_DIR/release/fks-lab" demo "$@"
