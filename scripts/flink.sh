#!/usr/bin/env bash
# Installs Apache Flink from PyPI jars (no Docker, no Maven) and builds the test/demo job.
#
#   scripts/flink.sh install [VERSION]   # idempotent; prints FLINK_HOME on stdout
#   scripts/flink.sh home [VERSION]      # prints FLINK_HOME (no install)
#   scripts/flink.sh job-jar [VERSION]   # prints the path of the job jar (builds it if missing)
#
# VERSION defaults to $FKS_FLINK_VERSION, then 2.3.0. Supported: 1.18.x, 1.19.x, 1.20.x, 2.x.
# Layout (FKS_CACHE defaults to ~/.cache/flink-keda-scaler):
#   $FKS_CACHE/dl/                     pip downloads (apache-flink-libraries + apache-flink)
#   $FKS_CACHE/flink-VERSION/          FLINK_HOME (lib, opt, plugins, bin, conf)
#   $FKS_CACHE/flink-VERSION/fks-job/  load-job.jar built from flink-job/ with javac
#
# Where the pieces come from: `apache-flink-libraries` carries lib/opt/plugins (1.x: an sdist
# with the payload under <pkg>/deps/; 2.x: a wheel with the payload under pyflink/), the
# PyFlink package `apache-flink` carries bin/ and conf/ (a cp311 wheel for 1.19+, an sdist
# for 1.18.x with the payload under <pkg>/deps/).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${FKS_CACHE:-$HOME/.cache/flink-keda-scaler}
DL=$CACHE/dl

log() { echo "[flink.sh $(date +%T)] $*" >&2; }
die() { echo "flink.sh: $*" >&2; exit 1; }

version_arg() {
  local v=${1:-${FKS_FLINK_VERSION:-2.3.0}}
  [[ "$v" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "bad Flink version '$v' (expected MAJOR.MINOR.PATCH, e.g. 2.3.0)"
  local major=${v%%.*} minor; minor=$(echo "$v" | cut -d. -f2)
  if [ "$major" -lt 1 ] || { [ "$major" -eq 1 ] && [ "$minor" -lt 18 ]; }; then
    die "Flink $v has no resource-requirements REST API (needs 1.18+)"
  fi
  echo "$v"
}

home_of() { echo "$CACHE/flink-$1"; }

download() { # version
  local v=$1; mkdir -p "$DL"
  local have_libs have_py
  have_libs=$(ls "$DL"/apache?flink?libraries-"$v"[.-]* 2>/dev/null | head -1 || true)
  have_py=$(ls "$DL"/apache_flink-"$v"-*.whl "$DL"/apache-flink-"$v".tar.gz "$DL"/apache_flink-"$v".tar.gz 2>/dev/null | head -1 || true)
  local want=()
  [ -n "$have_libs" ] || want+=("apache-flink-libraries==$v")
  [ -n "$have_py" ] || want+=("apache-flink==$v")
  if [ ${#want[@]} -gt 0 ]; then
    command -v pip >/dev/null || die "pip is needed to download ${want[*]}"
    log "pip download ${want[*]} into $DL"
    pip download -q --no-deps -d "$DL" "${want[@]}" >&2
  fi
}

unpack() { # version home
  local v=$1 home=$2 tmp=$2.partial
  rm -rf "$tmp"; mkdir -p "$tmp"
  python3 - "$DL" "$tmp" "$v" <<'PYEOF'
import glob, os, shutil, sys, tarfile, zipfile
dl, home, ver = sys.argv[1:4]
def copy(opener, name, rel):
    dst = os.path.join(home, *rel)
    if os.path.exists(dst):
        return
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    with opener(name) as s, open(dst, "wb") as d:
        shutil.copyfileobj(s, d)
libs = glob.glob(f"{dl}/apache?flink?libraries-{ver}.tar.gz") + glob.glob(f"{dl}/apache?flink?libraries-{ver}-*.whl")
if not libs:
    sys.exit(f"apache-flink-libraries {ver} not found in {dl}")
lib = libs[0]
wanted = ("bin", "lib", "opt", "plugins", "conf")
if lib.endswith(".whl"):  # 2.x wheel: pyflink/<dir>/...
    z = zipfile.ZipFile(lib)
    for n in z.namelist():
        p = n.split("/")
        if p[0] == "pyflink" and len(p) > 2 and p[1] in wanted and not n.endswith("/"):
            copy(z.open, n, p[1:])
else:  # 1.x sdist: <pkg>/deps/<dir>/...
    t = tarfile.open(lib)
    for m in t.getmembers():
        p = m.name.split("/")
        if len(p) > 3 and p[1] == "deps" and p[2] in wanted and m.isfile():
            copy(t.extractfile, m, p[2:])
whl = glob.glob(f"{dl}/apache_flink-{ver}-*.whl")
if whl:
    z = zipfile.ZipFile(whl[0])
    for n in z.namelist():
        p = n.split("/")
        if p[0] == "pyflink" and len(p) > 2 and p[1] in ("bin", "conf") and not n.endswith("/"):
            copy(z.open, n, p[1:])
else:
    sd = glob.glob(f"{dl}/apache?flink-{ver}.tar.gz")
    if not sd:
        sys.exit(f"apache-flink {ver} (bin/ + conf/) not found in {dl}")
    t = tarfile.open(sd[0])
    for m in t.getmembers():
        p = m.name.split("/")
        if m.isfile() and len(p) > 3 and p[1] == "deps" and p[2] in ("bin", "conf"):
            copy(t.extractfile, m, p[2:])
PYEOF
  chmod +x "$tmp"/bin/*.sh "$tmp/bin/flink" 2>/dev/null || true
  [ -f "$tmp/bin/jobmanager.sh" ] || die "unpacked Flink $v has no bin/jobmanager.sh"
  ls "$tmp"/lib/flink-dist*.jar >/dev/null 2>&1 || die "unpacked Flink $v has no lib/flink-dist jar"
  rm -rf "$home"; mv "$tmp" "$home"
}

build_job() { # version home -> prints jar path
  local v=$1 home=$2 out=$2/fks-job
  local jar=$out/load-job.jar stamp=$out/.src-sha
  local src=$ROOT/flink-job/src
  [ -d "$src" ] || die "job sources not found at $src"
  local sha; sha=$(cd "$src" && find . -name '*.java' -type f | sort | xargs sha256sum | sha256sum | cut -d' ' -f1)
  if [ -f "$jar" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$sha" ]; then echo "$jar"; return; fi
  command -v javac >/dev/null || die "javac (JDK 11+) is needed to build the job"
  rm -rf "$out/classes"; mkdir -p "$out/classes"
  log "javac flink-job against $home/lib"
  # shellcheck disable=SC2046
  javac -nowarn --release 11 -d "$out/classes" -cp "$home/lib/*" $(find "$src" -name '*.java' -type f) >&2
  jar --create --file "$jar.tmp" --main-class fks.LoadJob -C "$out/classes" .
  mv "$jar.tmp" "$jar"; echo "$sha" > "$stamp"
  echo "$jar"
}

install() {
  local v; v=$(version_arg "${1:-}")
  local home; home=$(home_of "$v")
  if [ ! -f "$home/bin/jobmanager.sh" ]; then
    download "$v"
    log "unpacking Flink $v into $home"
    unpack "$v" "$home"
  fi
  build_job "$v" "$home" >/dev/null
  echo "$home"
}

case "${1:-}" in
  install) install "${2:-}" ;;
  home) home_of "$(version_arg "${2:-}")" ;;
  job-jar) v=$(version_arg "${2:-}"); install "$v" >/dev/null; build_job "$v" "$(home_of "$v")" ;;
  *) echo "usage: $0 install|home|job-jar [VERSION]" >&2; exit 2 ;;
esac
