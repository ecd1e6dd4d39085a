#!/usr/bin/env bash
# Runs every test: formatting and lints, the dependency checks (cargo-deny: licenses, bans,
# sources), unit + property tests, and the suites against real components (Prometheus,
# Flink 2.3.0 and 1.20.5, kube-apiserver + etcd, a Python grpcio client), plus promtool
# rule tests. Installs missing components first (cached).
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
cargo clippy --workspace --all-targets --locked -- -D warnings

# licenses, banned crates, sources (deny.toml); offline: advisories would fetch a database
log "cargo deny check licenses bans sources"
export PATH="$FKS_CACHE/tools/bin:$PATH"
command -v cargo-deny >/dev/null || { log "cargo-deny missing: run scripts/install-components.sh"; exit 1; }
cargo deny --offline --locked check licenses bans sources

log "cargo test (Flink ${FKS_FLINK_VERSION:-2.3.0})"
cargo test --workspace --all-targets --locked

# The real-Flink suites once more on the other supported line: the `flink_rescale`,
# `flink_queries`, `flink_reactive` and `flink_setup` modules of the scaler's test binary and
# the `flink_loop` module of fks-lab's (`--workspace` keeps the features of the run above,
# so nothing is rebuilt).
real_flink=(flink_rescale flink_queries flink_reactive flink_setup flink_loop)
log "cargo test ${real_flink[*]} (Flink 1.20.5)"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
filters=()
for m in "${real_flink[@]}"; do filters+=("$m::"); done
FKS_FLINK_VERSION=1.20.5 cargo test --workspace --locked --test it -- "${filters[@]}" 2>&1 | tee "$out"
for m in "${real_flink[@]}"; do
  n=$(grep -cE "^test $m::.* ok$" "$out" || true)
  log "$m: $n test(s) passed on Flink 1.20.5"
  [ "$n" -gt 0 ] || { log "the filter selected no $m test"; exit 1; }
done
log "all tests passed"
