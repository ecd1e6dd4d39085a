//! Python test harness: the grpcio venv made by `scripts/python-venv.sh` and the
//! independent KEDA client `tests/python/keda_client.py`, which generates its stubs from
//! `proto/externalscaler.proto` at run time and prints one JSON object.
//!
//! The client only needs an address, so the same harness drives the in-process server
//! (`tests/grpc_python.rs`) and a running `flink-keda-scaler serve` binary.

use std::{path::PathBuf, process::Stdio, time::Duration};

use super::{cache_dir, component_missing};

/// Bound on one run of the client (each of its rpcs has a 5 s deadline).
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(90);

/// The venv's python, if `scripts/python-venv.sh` has been run.
pub fn venv_python() -> Option<PathBuf> {
    let python = cache_dir().join("venv/bin/python");
    python.is_file().then_some(python)
}

/// The venv's python, or `None` after reporting it missing (panics in CI).
pub fn require_venv() -> Option<PathBuf> {
    match venv_python() {
        Some(p) => Some(p),
        None => {
            let _ = component_missing("python grpcio venv (run scripts/python-venv.sh)");
            None
        }
    }
}

/// Path of `tests/python/keda_client.py`.
pub fn keda_client_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/keda_client.py")
}

/// Path of the vendored proto.
pub fn proto_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("proto/externalscaler.proto")
}

/// Runs the client against `address` (`host:port`) for the ScaledObject
/// `namespace/name` with `metadata`, and returns its JSON output. Errors carry the exit
/// status and stderr.
pub async fn run_keda_client(
    python: &PathBuf,
    address: &str,
    namespace: &str,
    name: &str,
    metadata: &[(&str, &str)],
) -> Result<serde_json::Value, String> {
    let mut cmd = tokio::process::Command::new(python);
    cmd.arg(keda_client_script())
        .arg(address)
        .arg("--proto")
        .arg(proto_file())
        .arg("--namespace")
        .arg(namespace)
        .arg("--name")
        .arg(name)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in metadata {
        cmd.arg("--metadata").arg(format!("{k}={v}"));
    }
    let child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", python.display()))?;
    let out = tokio::time::timeout(CLIENT_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| format!("keda_client.py did not finish within {CLIENT_TIMEOUT:?}"))?
        .map_err(|e| format!("keda_client.py failed to run: {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!(
            "keda_client.py exited with {}: {stderr}",
            out.status
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "keda_client.py printed no JSON ({e}): stdout={} stderr={stderr}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Follows `path` through the client's JSON output.
pub fn field<'a>(v: &'a serde_json::Value, path: &[&str]) -> &'a serde_json::Value {
    path.iter().fold(v, |v, k| &v[*k])
}

/// The client saw grpc.health.v1 SERVING for the server and the scaler service, and
/// reflection listing the scaler service.
pub fn assert_health_and_reflection(out: &serde_json::Value) {
    for service in ["", "externalscaler.ExternalScaler"] {
        assert_eq!(
            field(out, &["health", service, "status"]),
            "SERVING",
            "{out:#}"
        );
    }
    let services = field(out, &["reflection", "services"])
        .as_array()
        .unwrap_or_else(|| panic!("no services in {out:#}"));
    assert!(
        services
            .iter()
            .any(|s| s == "externalscaler.ExternalScaler"),
        "{out:#}"
    );
}
