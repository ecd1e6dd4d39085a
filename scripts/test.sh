#!/usr/bin/env bash
# Runs every test: formatting and lints, unit + property tests, and the suites against
# real components (Prometheus, Flink 2.3.0 and 1.20.5, kube-apiserver + etcd, a Python
# grpcio client), plus promtool rule tests. Installs missing components first (cached).
#
#   scripts/test.sh            # everything
#   FKS_SKIP_INSTALL=1 scripts/test.sh   # assume components are installed
set -euo pipefail
cd "$(dirname "$0")/.."
export FKS_CACHE=${FKS_CACHE:-$HOME/.cache/flink-keda-scaler}
export RUST_TEST_THREADS=${RUST_TEST_THREADS:-2}
# Builds are cached outside the checkout, so CI reruns on a fresh clone are incremental.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$FKS_CACHE/target}
export RUST_BACKTRACE=${RUST_BACKTRACE:-1}
log() { echo "[test $(date +%T)] $*" >&2; }

[ -n "${FKS_SKIP_INSTALL:-}" ] || scripts/install-components.sh

log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy -D warnings"
cargo clippy --all-targets --locked -- -D warnings

log "cargo test (Flink ${FKS_FLINK_VERSION:-2.3.0})"
cargo test --all-targets --locked

# The real-Flink suites once more on the other supported line.
if ls tests/flink_*.rs >/dev/null 2>&1; then
  log "cargo test flink_* (Flink 1.20.5)"
  args=()
  for f in tests/flink_*.rs; do args+=(--test "$(basename "$f" .rs)"); done
  FKS_FLINK_VERSION=1.20.5 cargo test --locked "${args[@]}"
fi
log "all tests passed"
