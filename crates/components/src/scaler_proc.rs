//! The built `flink-keda-scaler serve` binary as a child process: config file and log in a
//! work dir, free gRPC/HTTP/admin ports, readiness on `/readyz`, `/debug/jobs` reads, resident
//! memory from `/proc`. Killed on drop.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use crate::{
    error::{ComponentError, Result},
    procs::{self, ChildGuard},
};

/// The CPU limit of the shipped Deployment (`manifests/deployment.yaml`: `limits.cpu: "1"`).
/// Under it the scaler's tokio runtime has one worker thread: tokio sizes it with
/// `std::thread::available_parallelism` (tokio `src/loom/std/mod.rs`, `num_cpus`), which
/// reads the container's cgroup CPU quota (rust-lang/rust#92697, `cgroup2_quota`). This
/// machine has no quota to set, so the lab sets the count the quota would give; each
/// worker thread has its own allocator heap (~4 MiB more resident with two at 1,000
/// ScaledObjects, docs/benchmarks.md "Fleet").
pub const DEPLOYMENT_CPUS: &str = "1";

/// One reading of the scaler's resident memory, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryReading {
    /// `VmRSS`.
    pub rss: u64,
    /// `RssAnon`: heap and stacks.
    pub anon: u64,
    /// `RssFile`: the mapped binary and libraries.
    pub file: u64,
}

/// A running scaler.
pub struct ScalerProcess {
    child: ChildGuard,
    dir: PathBuf,
    /// gRPC port.
    pub grpc_port: u16,
    /// HTTP port (`/metrics`, `/healthz`, `/readyz`).
    pub http_port: u16,
    /// Admin port (`/debug/jobs`, `/admin/rescale`), on loopback.
    pub admin_port: u16,
    http: reqwest::Client,
}

impl ScalerProcess {
    /// Writes `config` to `dir/scaler.yaml` and starts `binary serve` on free ports with
    /// `RUST_LOG=info` (JSON logs in `dir/scaler.log`); returns once `/readyz` answers 200.
    pub async fn start(binary: &Path, config: &str, dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .map_err(|e| ComponentError::io(format!("create {}", dir.display()), e))?;
        let config_path = dir.join("scaler.yaml");
        std::fs::write(&config_path, config)
            .map_err(|e| ComponentError::io("write the scaler config", e))?;
        let (log, log2) = procs::log_stdio(&dir.join("scaler.log"))?;
        let grpc_port = procs::free_port()?;
        let http_port = procs::free_port()?;
        let admin_port = procs::free_port()?;
        let child = Command::new(binary)
            .args(["--log-format", "json", "serve", "--config"])
            .arg(&config_path)
            .arg("--grpc-addr")
            .arg(format!("127.0.0.1:{grpc_port}"))
            .arg("--http-addr")
            .arg(format!("127.0.0.1:{http_port}"))
            .arg("--admin-addr")
            .arg(format!("127.0.0.1:{admin_port}"))
            .env(
                "RUST_LOG",
                std::env::var("FKS_SCALER_LOG").unwrap_or("info".into()),
            )
            .env_remove("FKS_CONFIG")
            // as the image and the shipped Deployment set it (Dockerfile)
            .env("MIMALLOC_PURGE_DELAY", "0")
            // one runtime worker thread, as the shipped Deployment's CPU limit gives it
            .env("TOKIO_WORKER_THREADS", DEPLOYMENT_CPUS)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(|e| ComponentError::io(format!("start {}", binary.display()), e))?;
        let mut me = Self {
            child: ChildGuard::new(child),
            dir: dir.to_path_buf(),
            grpc_port,
            http_port,
            admin_port,
            http: procs::http_client(Duration::from_secs(5))?,
        };
        let url = format!("{}/readyz", me.http_url());
        let http = me.http.clone();
        let child = &mut me.child;
        // Ok once ready; Err(status) when the process exited first
        let ready = procs::wait_for(
            "the scaler's /readyz",
            Duration::from_secs(20),
            Duration::from_millis(50),
            || {
                let exited = child.exited();
                let (url, http) = (url.clone(), http.clone());
                async move {
                    if let Some(status) = exited {
                        return Some(Err(status));
                    }
                    let ok = http
                        .get(&url)
                        .send()
                        .await
                        .is_ok_and(|r| r.status().is_success());
                    ok.then_some(Ok(()))
                }
            },
            || std::fs::read_to_string(dir.join("scaler.log")).unwrap_or_default(),
        )
        .await?;
        if let Err(status) = ready {
            return Err(ComponentError::Failed(format!(
                "the scaler exited with {status} before it was ready; log:\n{}",
                me.log()
            )));
        }
        Ok(me)
    }

    /// `127.0.0.1:<grpc port>`.
    pub fn grpc_addr(&self) -> String {
        format!("127.0.0.1:{}", self.grpc_port)
    }

    /// `http://127.0.0.1:<http port>`.
    pub fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// `http://127.0.0.1:<admin port>`.
    pub fn admin_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.admin_port)
    }

    /// The scaler's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("scaler.log")).unwrap_or_default()
    }

    /// OS pid.
    pub fn pid(&self) -> Option<u32> {
        self.child.pid()
    }

    /// Resident set size in bytes (`VmRSS` of `/proc/<pid>/status`).
    pub fn rss_bytes(&self) -> Option<u64> {
        rss_from_status(&self.proc_status()?)
    }

    /// `VmRSS`, `RssAnon` and `RssFile` of `/proc/<pid>/status`, from one read.
    pub fn memory(&self) -> Option<MemoryReading> {
        let status = self.proc_status()?;
        let bytes = |key| status_kb(&status, key).map(|kb| kb * 1024);
        Some(MemoryReading {
            rss: rss_from_status(&status)?,
            anon: bytes("RssAnon:")?,
            file: bytes("RssFile:")?,
        })
    }

    /// The text of `/proc/<pid>/status` while the process runs.
    fn proc_status(&self) -> Option<String> {
        std::fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()
    }

    /// `GET /debug/jobs`.
    pub async fn debug_jobs(&self) -> Result<serde_json::Value> {
        let url = format!("{}/debug/jobs", self.admin_url());
        procs::get_json(&self.http, &url)
            .await
            .ok_or_else(|| ComponentError::http("GET /debug/jobs", "no answer"))
    }

    /// `GET /metrics` text.
    pub async fn metrics(&self) -> Result<String> {
        let r = self
            .http
            .get(format!("{}/metrics", self.http_url()))
            .send()
            .await
            .map_err(|e| ComponentError::http("GET /metrics", e))?;
        r.text()
            .await
            .map_err(|e| ComponentError::http("GET /metrics", e))
    }

    /// Sends SIGTERM and waits up to `timeout` for a graceful exit: its status, or
    /// `None` when it still runs (it is killed on drop).
    pub async fn terminate(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        self.child.sigterm();
        let child = &mut self.child;
        procs::wait_for(
            "the scaler to exit",
            timeout,
            Duration::from_millis(50),
            || std::future::ready(child.exited()),
            String::new,
        )
        .await
        .ok()
    }
}

/// `VmRSS` (kB in the file) as bytes.
pub fn rss_from_status(status: &str) -> Option<u64> {
    status_kb(status, "VmRSS:").map(|kb| kb * 1024)
}

/// The kB value of the `key` line (`VmRSS:`, `RssAnon:`, ...) of a `/proc/<pid>/status`.
fn status_kb(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vm_rss() {
        let status = "Name:\tfks\nVmPeak:\t  900 kB\nVmRSS:\t   24576 kB\nThreads:\t3\n";
        assert_eq!(rss_from_status(status), Some(24_576 * 1024));
        assert_eq!(rss_from_status("Name:\tx\n"), None);
    }

    /// The lab runs the scaler with the runtime the shipped Deployment's CPU limit gives.
    #[test]
    fn the_lab_scaler_has_the_deployments_cpu_limit() {
        let manifest = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../manifests/deployment.yaml"
        );
        let text = std::fs::read_to_string(manifest).expect("the shipped Deployment");
        let limit = format!("limits: {{cpu: \"{DEPLOYMENT_CPUS}\"");
        assert!(text.contains(&limit), "{manifest} has no `{limit}`");
    }
}
