//! Flink test harness over the lab's cluster (`fks_components::flink_cluster`):
//! installs Flink with `scripts/flink.sh` (version from `FKS_FLINK_VERSION`, default
//! 2.3.0), starts a standalone session cluster in a temp dir, and turns its errors
//! into test failures with the log tail. A missing JDK or download fails in CI and skips
//! outside it.

use std::{
    fs,
    ops::{Deref, DerefMut},
    path::Path,
    time::{Duration, Instant},
};

use fks_components::flink_cluster::FlinkCluster as LabCluster;
pub use fks_components::flink_cluster::{ClusterOptions, Installed};
use flink_keda_scaler::core::JobId;
use serde_json::{json, Value};

pub use fks_components::flink_cluster::version_under_test as flink_version;

/// Held by every test that runs a Flink cluster, so clusters of different modules do
/// not share the machine's CPUs.
pub static REAL_FLINK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Installs Flink and the job jar; `None` (after `component_missing`) when Java or the
/// download is unavailable outside CI.
pub fn install() -> Option<Installed> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/flink.sh");
    match fks_components::flink_cluster::install(&script, &flink_version()) {
        Ok(i) => Some(i),
        Err(e) => {
            let _ = super::component_missing(&e.to_string());
            None
        }
    }
}

/// A running cluster in its own temp dir (removed on drop unless `FKS_KEEP_TMP`).
pub struct FlinkCluster {
    inner: LabCluster,
    /// Kept for its lifetime; dropped after `inner`.
    _dir: tempfile::TempDir,
}

impl Deref for FlinkCluster {
    type Target = LabCluster;
    fn deref(&self) -> &LabCluster {
        &self.inner
    }
}

impl DerefMut for FlinkCluster {
    fn deref_mut(&mut self) -> &mut LabCluster {
        &mut self.inner
    }
}

impl FlinkCluster {
    /// Starts the JobManager and `opts.task_managers` TaskManagers.
    pub async fn start(installed: Installed, opts: ClusterOptions) -> FlinkCluster {
        let dir = super::tempdir("fks-flink-");
        let inner = LabCluster::start(installed, opts, dir.path())
            .await
            .unwrap_or_else(|e| panic!("start Flink: {e}"));
        FlinkCluster { inner, _dir: dir }
    }

    /// Starts an application cluster running `app` (see
    /// [`LabCluster::start_application`]) with `opts.task_managers` TaskManagers.
    pub async fn start_application(
        installed: Installed,
        opts: ClusterOptions,
        app: &fks_components::flink_cluster::ApplicationJob,
    ) -> FlinkCluster {
        let dir = super::tempdir("fks-flink-app-");
        let inner = LabCluster::start_application(installed, opts, dir.path(), app)
            .await
            .unwrap_or_else(|e| panic!("start the Flink application cluster: {e}"));
        FlinkCluster { inner, _dir: dir }
    }

    /// The index of the TaskManager with resource id `id`.
    pub fn tm_index(id: &str) -> Option<usize> {
        LabCluster::tm_index(id)
    }

    /// Starts one more TaskManager; its index once registered.
    pub async fn add_task_manager(&mut self) -> usize {
        self.inner
            .add_task_manager()
            .await
            .unwrap_or_else(|e| panic!("add a TaskManager: {e}"))
    }

    /// Starts `n` TaskManagers at once (as a ReplicaSet creates pods); their indexes once
    /// every one registered.
    pub async fn add_task_managers(&mut self, n: usize) -> Vec<usize> {
        self.inner
            .add_task_managers(n)
            .await
            .unwrap_or_else(|e| panic!("add {n} TaskManagers: {e}"))
    }

    /// Submits the job jar; the job id once RUNNING.
    pub async fn submit_job(&self, args: &[String], parallelism: u32) -> JobId {
        self.inner
            .submit_job(args, parallelism)
            .await
            .unwrap_or_else(|e| panic!("submit the job: {e}"))
            .parse()
            .expect("Flink returns a job id")
    }

    /// Waits until `job` is RUNNING (every vertex at `parallelism` if given).
    pub async fn wait_job_running(&self, job: &JobId, parallelism: Option<u32>, timeout: Duration) {
        self.inner
            .wait_job_running(job.as_str(), parallelism, timeout)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// Polls `check` every 250 ms until it is true; panics with the log tail after `timeout`.
    pub async fn wait_until<'a, F, Fut>(&'a self, what: &str, timeout: Duration, check: F)
    where
        F: Fn(&'a FlinkCluster) -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if check(self).await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        panic!(
            "timed out after {timeout:?} waiting for {what}\n{}",
            self.log_tail()
        );
    }

    /// A raw request: (status, body text).
    pub async fn raw(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, String) {
        self.inner
            .raw(method, path, body)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Writes a recorded response to `tests/fixtures/flink/<version>/<name>.json`
    /// (`{"status": .., "body": ..}`) when `FKS_RECORD_FIXTURES` is set.
    pub fn record(&self, name: &str, status: u16, body: &str) {
        if std::env::var_os("FKS_RECORD_FIXTURES").is_none() {
            return;
        }
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/flink")
            .join(&self.installed.version);
        fs::create_dir_all(&dir).expect("fixture dir");
        let body: Value = serde_json::from_str(body).unwrap_or(Value::String(body.to_string()));
        let text =
            serde_json::to_string_pretty(&json!({"status": status, "body": body})).expect("json");
        fs::write(dir.join(format!("{name}.json")), text + "\n").expect("write fixture");
    }

    /// GETs `path` and records it as fixture `name`.
    pub async fn record_get(&self, name: &str, path: &str) {
        let (status, body) = self.raw(reqwest::Method::GET, path, None).await;
        self.record(name, status, &body);
    }
}
