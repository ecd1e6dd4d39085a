//! Shared harness for tests against real components (Prometheus, Flink, kube-apiserver,
//! the Python gRPC client). Each component lives in its own file and starts its process
//! on free loopback ports, so suites can run side by side.
//!
//! A component that is not installed makes the test **fail** when `CI=true`; outside CI
//! the test prints `SKIPPED: <why>` to stderr and returns (run `scripts/install-components.sh`).

pub mod fake_flink;
pub mod fake_prometheus;
pub mod fault_port;
pub mod flink;
pub mod grpc_fake;
pub mod kube;
pub mod kube_runtime;
pub mod prometheus;
pub mod python;
pub mod scaler;
pub mod stack;
pub mod tls;

use std::path::PathBuf;

/// The cache where `scripts/install-components.sh` puts Flink, kube-apiserver, the venv.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("FKS_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()))
                .join(".cache/flink-keda-scaler")
        })
}

pub use fks_components::procs::in_ci;

/// Call when a component is missing: panics in CI, otherwise prints SKIPPED and returns
/// `false` so the test can `return`.
#[must_use]
pub fn component_missing(what: &str) -> bool {
    if in_ci() {
        panic!("required test component missing in CI: {what} (run scripts/install-components.sh)");
    }
    eprintln!("SKIPPED: {what} is not installed (run scripts/install-components.sh)");
    false
}

/// A free TCP port on 127.0.0.1 (bind to 0, read, release).
pub fn free_port() -> u16 {
    fks_components::procs::free_port().expect("a free port")
}

/// Finds an executable on PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    fks_components::procs::which(name)
}

/// Path of the built scaler binary.
pub fn scaler_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_flink-keda-scaler"))
}

/// A temporary directory that is removed on drop unless `FKS_KEEP_TMP` is set.
pub fn tempdir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("create temp dir")
}
