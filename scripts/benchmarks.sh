#!/usr/bin/env bash
# Writes docs/benchmarks.md (and docs/benchmarks/timeline.{csv,svg,txt}): the demo's
# scenario on real Flink + Prometheus + the KEDA/HPA driver (P1, peak lag and recovery,
# P2 rescales per load change, P3 failovers, TaskManager-seconds), then P5 queries per
# tick, P7 resident memory and P4 GetMetrics latency/throughput with 1,000 ScaledObjects,
# the same scenario with a warm spare that covers the step (benchmarks/spare/), the CPU-bound
# scenario on the short profile (benchmarks/cpu/), the main scenario twice more for its spread
# (benchmarks/repeat-2/, repeat-3/), the synthetic fleet.
# Needs a quiet machine (~40 min). Installs what is missing first (cached).
set -euo pipefail
cd "$(dirname "$0")/.."
export FKS_CACHE=${FKS_CACHE:-$HOME/.cache/flink-keda-scaler}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$FKS_CACHE/target}
FKS_COMPONENTS=demo FKS_FLINK_VERSIONS=${FKS_FLINK_VERSION:-2.3.0} scripts/install-components.sh
cargo build --release --locked --bins
exec "$CARGO_TARGET_DIR/release/fks-lab" bench --repeats 3 "$@"
