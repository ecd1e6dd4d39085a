#!/usr/bin/env bash
# Runs the scaler's main loop locally with examples/scaler.yaml: the KEDA gRPC server on
# 127.0.0.1:50051 and /metrics, /healthz, /readyz, /debug/jobs on 127.0.0.1:8080.
# Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-${FKS_CACHE:-$HOME/.cache/flink-keda-scaler}/target}
cargo build --release --locked --bin flink-keda-scaler
exec "$CARGO_TARGET_DIR/release/flink-keda-scaler" serve --config examples/scaler.yaml "$@"
