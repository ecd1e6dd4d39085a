#!/usr/bin/env bash
# Installs everything the tests and the local demo need, idempotently, caching heavy
# downloads and builds outside the repo in $FKS_CACHE (default ~/.cache/flink-keda-scaler):
#   - Prometheus + promtool, etcd, openssl           (Debian packages)
#   - Apache Flink 2.3.0 and 1.20.5 + the test job    (PyPI jars + javac; scripts/flink.sh)
#   - kube-apiserver v1.20.2                          (built once from Debian's source; scripts/kube-apiserver.sh)
#   - Python venv with grpcio/grpcio-tools            (PyPI; scripts/python-venv.sh)
#   - cargo-deny (pinned)                             (crates.io; $FKS_CACHE/tools/bin)
# A fresh machine needs only the Rust toolchain, Java 17, Python 3.11 and gcc.
# FKS_COMPONENTS=demo installs only what the local demo needs (Prometheus, Flink).
set -euo pipefail
cd "$(dirname "$0")/.."
export FKS_CACHE=${FKS_CACHE:-$HOME/.cache/flink-keda-scaler}
mkdir -p "$FKS_CACHE"
log() { echo "[install $(date +%T)] $*" >&2; }

need_apt=()
command -v prometheus >/dev/null || need_apt+=(prometheus)
command -v promtool >/dev/null || need_apt+=(prometheus)
demo_only=false
[ "${FKS_COMPONENTS:-all}" = demo ] && demo_only=true
$demo_only || command -v etcd >/dev/null || need_apt+=(etcd-server)
command -v openssl >/dev/null || need_apt+=(openssl)
command -v curl >/dev/null || need_apt+=(curl)
if [ ${#need_apt[@]} -gt 0 ]; then
  log "apt: ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

for v in ${FKS_FLINK_VERSIONS:-2.3.0 1.20.5}; do
  log "flink $v"
  scripts/flink.sh install "$v" >/dev/null
done

if ! $demo_only; then
  log "kube-apiserver"
  scripts/kube-apiserver.sh build >/dev/null

  log "python venv"
  scripts/python-venv.sh >/dev/null

  # `cargo deny check licenses bans sources` in scripts/test.sh (deny.toml)
  deny_version=0.20.2
  deny_bin="$FKS_CACHE/tools/bin/cargo-deny"
  if [ "$("$deny_bin" --version 2>/dev/null)" != "cargo-deny $deny_version" ]; then
    log "cargo-deny $deny_version (built once)"
    # a temporary target dir: not the tests' (CARGO_TARGET_DIR), removed afterwards
    env -u CARGO_TARGET_DIR cargo install --quiet --locked --force cargo-deny \
      --version "$deny_version" --root "$FKS_CACHE/tools"
  fi
  # cargo-deny runs `--offline` and reads the whole graph (`cargo metadata`, every target
  # platform); a build downloads only this platform's crates, so on a fresh machine the
  # others (android_system_properties, ...) are fetched here, from the registry
  log "cargo fetch (every platform's crates, for cargo-deny)"
  cargo fetch --locked --quiet
fi

log "done (cache: $FKS_CACHE, $(du -sh "$FKS_CACHE" 2>/dev/null | cut -f1))"
