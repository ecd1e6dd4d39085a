#!/usr/bin/env bash
# A real kube-apiserver (v1.20.2, built from Debian's `kubernetes` source package) + etcd on
# loopback, for the tests/kube_*.rs suites. No controllers, scheduler or kubelet run: objects,
# CRDs, the /scale subresource, Leases, Events, RBAC and server-side dry-run are real.
#
#   scripts/kube-apiserver.sh build        # once: ~5 min, cached in $FKS_CACHE/kube (binary 106 MB)
#   scripts/kube-apiserver.sh start DIR    # etcd + apiserver on free ports; writes DIR/kubeconfig, DIR/env
#   scripts/kube-apiserver.sh stop DIR
#
# Every step is idempotent; `build` is a no-op when the binary is cached.
set -euo pipefail
FKS_CACHE=${FKS_CACHE:-$HOME/.cache/flink-keda-scaler}
K8S=$FKS_CACHE/kube
BIN=$K8S/bin/kube-apiserver

build() {
  if [ -x "$BIN" ] && "$BIN" --version >/dev/null 2>&1; then echo "kube-apiserver cached: $BIN"; return 0; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends golang-go etcd-server rsync make openssl \
      golang-github-modern-go-reflect2-dev >/dev/null
  mkdir -p "$K8S"
  # deb-src index in a private apt state dir: the system's sources stay untouched.
  local A=$K8S/apt
  mkdir -p "$A/lists/partial" "$A/cache/archives/partial" "$A/parts"
  local uri
  uri=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  [ -n "$uri" ] || uri=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list)
  cat > "$A/parts/debian-src.sources" <<SRC
Types: deb-src
URIs: $uri
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  local O=(-o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$A/parts" -o "Dir::State::Lists=$A/lists" -o "Dir::Cache=$A/cache")
  apt-get "${O[@]}" update -qq
  (cd "$K8S" && apt-get "${O[@]}" source --download-only kubernetes >/dev/null)
  rm -rf "$K8S/kubernetes-1.20.2"
  tar xzf "$K8S"/kubernetes_*.orig.tar.gz -C "$K8S"
  local SRC=$K8S/kubernetes-1.20.2
  # The vendored reflect2 v1.0.1 faults under Go >= 1.18 on the first custom-resource create;
  # Debian's reflect2 1.0.2 fixes it.
  local V=$SRC/vendor/github.com/modern-go/reflect2
  rm -f "$V"/*.go "$V"/*.s
  cp /usr/share/gocode/src/github.com/modern-go/reflect2/*.go /usr/share/gocode/src/github.com/modern-go/reflect2/*.s "$V"/
  rm -f "$V"/*_test.go
  (cd "$SRC" && GOPROXY=off CGO_ENABLED=0 HOME=$K8S/home GOFLAGS=-p=2 \
     KUBE_GIT_VERSION=v1.20.2 KUBE_GIT_MAJOR=1 KUBE_GIT_MINOR=20 KUBE_GIT_TREE_STATE=clean \
     KUBE_GIT_COMMIT=faecb196815e248d3ecfb03c680a4507229c2a56 \
     make WHAT=cmd/kube-apiserver >"$K8S/build.log" 2>&1)
  mkdir -p "$K8S/bin"
  cp "$SRC/_output/bin/kube-apiserver" "$BIN"
  rm -rf "$SRC" "$K8S/home"   # 1.8 GB build tree; the binary is all we keep
  "$BIN" --version
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start() {
  local R=${1:?usage: start DIR}
  mkdir -p "$R/certs"
  [ -x "$BIN" ] || { echo "kube-apiserver not built: run scripts/kube-apiserver.sh build" >&2; exit 1; }
  command -v etcd >/dev/null || { echo "etcd missing: apt-get install etcd-server" >&2; exit 1; }
  local ec ep em ap
  ec=$(free_port); ep=$(free_port); em=$(free_port); ap=$(free_port)
  nohup etcd --name default --data-dir "$R/etcd-data" \
    --listen-client-urls "http://127.0.0.1:$ec" --advertise-client-urls "http://127.0.0.1:$ec" \
    --listen-peer-urls "http://127.0.0.1:$ep" --initial-advertise-peer-urls "http://127.0.0.1:$ep" \
    --initial-cluster "default=http://127.0.0.1:$ep" --listen-metrics-urls "http://127.0.0.1:$em" \
    > "$R/etcd.log" 2>&1 & echo $! > "$R/etcd.pid"
  local i
  for i in $(seq 1 100); do curl -sf "http://127.0.0.1:$ec/health" >/dev/null && break; sleep 0.1; done
  [ -f "$R/sa.key" ] || openssl genrsa -out "$R/sa.key" 2048 2>/dev/null
  echo "test-token,admin,admin-uid,system:masters" > "$R/tokens.csv"
  # Audit log (one JSON line per request): the namespaced-install test reads which verbs,
  # resources and namespaces the scaler's ServiceAccount used; pod patches are logged
  # with their body (level Request) so the test sees exactly what was patched.
  cat > "$R/audit-policy.yaml" <<'POLICY'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Request
    verbs: [patch]
    resources: [{group: "", resources: [pods]}]
  - level: Metadata
POLICY
  nohup "$BIN" --etcd-servers="http://127.0.0.1:$ec" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$ap" --cert-dir="$R/certs" \
    --token-auth-file="$R/tokens.csv" --authorization-mode=RBAC \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$R/sa.key" --service-account-signing-key-file="$R/sa.key" \
    --service-cluster-ip-range=10.0.0.0/24 --disable-admission-plugins=ServiceAccount \
    --audit-policy-file="$R/audit-policy.yaml" --audit-log-path="$R/audit.log" \
    > "$R/apiserver.log" 2>&1 & echo $! > "$R/apiserver.pid"
  for i in $(seq 1 300); do
    curl -skf -H 'Authorization: Bearer test-token' "https://127.0.0.1:$ap/readyz" >/dev/null && break
    kill -0 "$(cat "$R/apiserver.pid")" 2>/dev/null || { tail -30 "$R/apiserver.log" >&2; exit 1; }
    sleep 0.2
  done
  cat > "$R/kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster: {server: "https://127.0.0.1:$ap", insecure-skip-tls-verify: true}
users:
- name: admin
  user: {token: test-token}
contexts:
- name: local
  context: {cluster: local, user: admin, namespace: default}
current-context: local
KC
  echo "KUBECONFIG=$R/kubeconfig" > "$R/env"
  echo "KUBE_APISERVER_URL=https://127.0.0.1:$ap" >> "$R/env"
  echo "kube-apiserver ready on https://127.0.0.1:$ap (KUBECONFIG=$R/kubeconfig)"
}

stop() {
  local R=${1:?usage: stop DIR} f
  for f in apiserver etcd; do
    if [ -f "$R/$f.pid" ]; then kill "$(cat "$R/$f.pid")" 2>/dev/null || true; rm -f "$R/$f.pid"; fi
  done
}

cmd=${1:?usage: $0 build|start DIR|stop DIR}; shift
"$cmd" "$@"
