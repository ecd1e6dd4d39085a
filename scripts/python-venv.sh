#!/usr/bin/env bash
# Creates (idempotently) the Python venv used by tests/grpc_python.rs: an independent
# gRPC client (grpcio) for the KEDA external-scaler API, plus health and reflection stubs.
#
#   scripts/python-venv.sh            # create or reuse $FKS_CACHE/venv, print its path
#
# FKS_CACHE defaults to ~/.cache/flink-keda-scaler. Re-running is a no-op once every
# package imports.
set -euo pipefail
FKS_CACHE=${FKS_CACHE:-$HOME/.cache/flink-keda-scaler}
VENV=$FKS_CACHE/venv
PY=${PYTHON:-python3}
PACKAGES=(grpcio grpcio-tools grpcio-health-checking grpcio-reflection)

ready() {
  [ -x "$VENV/bin/python" ] && "$VENV/bin/python" - <<'PYEOF' >/dev/null 2>&1
import grpc, grpc_tools.protoc, grpc_health.v1.health_pb2, grpc_reflection.v1alpha.reflection_pb2
PYEOF
}

if ready; then
  echo "python venv ready: $VENV"
  exit 0
fi
mkdir -p "$FKS_CACHE"
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${PACKAGES[@]}"
ready || { echo "python venv at $VENV is broken: imports failed" >&2; exit 1; }
echo "python venv ready: $VENV"
