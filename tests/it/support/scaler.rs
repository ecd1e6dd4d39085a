//! The built `flink-keda-scaler serve` binary as a child process (`fks_components::scaler_proc` in a
//! temp dir): free gRPC/HTTP ports, readiness wait on `/readyz`, killed on drop (only this
//! child), the log printed when a test panics; plus the end-to-end job and load helpers.

use std::time::{Duration, Instant};

use fks_components::scaler_proc::ScalerProcess as LabScaler;
use flink_keda_scaler::keda::pb::external_scaler_client::ExternalScalerClient;

use super::prometheus::{SyntheticExporter, SyntheticJob};

/// A running scaler binary: `fks_components`' process in a temp dir, with panicking helpers.
pub struct ScalerProcess {
    inner: LabScaler,
    /// Kept for its lifetime; dropped after `inner`.
    _dir: tempfile::TempDir,
}

/// A config for tests (listen addresses are overridden by `serve --grpc-addr/--http-addr`): 1 s evaluation interval, 2 s rpc timeout, Prometheus at `prom_url`,
/// and `policy` (YAML lines indented by 4 spaces) as the `default` policy.
pub fn config_yaml(prom_url: &str, policy: &str) -> String {
    format!(
        "grpc:\n  listenAddress: \"127.0.0.1:50051\"\n  rpcTimeout: 2s\n  streamInterval: 1s\n\
         http:\n  listenAddress: \"127.0.0.1:8080\"\n\
         evaluation:\n  interval: 1s\n  idleTimeout: 10m\n\
         prometheus:\n  default:\n    url: \"{prom_url}\"\n    timeout: 1s\n\
         flink:\n  timeout: 2s\n  rescaleTimeout: 30s\n\
         kubernetes:\n  enabled: false\n\
         policies:\n  default:\n{policy}"
    )
}

impl ScalerProcess {
    /// Writes `config` to a temp file and starts `serve` on free ports; waits for
    /// `/readyz` (panics with the log after 20 s).
    pub async fn start(config: &str) -> Self {
        let dir = super::tempdir("fks-scaler-");
        let started = Instant::now();
        let inner = LabScaler::start(&super::scaler_bin(), config, dir.path())
            .await
            .unwrap_or_else(|e| panic!("start the scaler: {e}"));
        eprintln!("scaler ready in {:?}", started.elapsed());
        Self { inner, _dir: dir }
    }

    /// `127.0.0.1:<grpc port>`.
    pub fn grpc_addr(&self) -> String {
        self.inner.grpc_addr()
    }

    /// `http://127.0.0.1:<admin port>` (`/debug/jobs`, `/admin/rescale`).
    pub fn admin_url(&self) -> String {
        self.inner.admin_url()
    }

    /// Sends SIGTERM to this child (by its pid, nothing else) and waits up to `timeout`
    /// for it to exit; returns its exit status (`None` if it did not exit in time).
    pub async fn terminate(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        self.inner.terminate(timeout).await
    }

    /// The scaler's log so far.
    pub fn log(&self) -> String {
        self.inner.log()
    }

    /// OS pid.
    pub fn pid(&self) -> Option<u32> {
        self.inner.pid()
    }

    /// Resident set size in bytes.
    pub fn rss_bytes(&self) -> Option<u64> {
        self.inner.rss_bytes()
    }

    /// True while the process runs (not exited, not a zombie).
    pub fn running(&self) -> bool {
        self.pid()
            .and_then(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok())
            .and_then(|stat| {
                stat.rsplit_once(") ")
                    .map(|(_, rest)| !rest.starts_with('Z'))
            })
            .unwrap_or(false)
    }

    /// A tonic client to the gRPC port.
    pub async fn client(&self) -> ExternalScalerClient<tonic::transport::Channel> {
        ExternalScalerClient::connect(format!("http://{}", self.grpc_addr()))
            .await
            .expect("connect to the scaler")
    }

    /// `GET /debug/jobs` as JSON.
    pub async fn debug_jobs(&self) -> serde_json::Value {
        self.inner.debug_jobs().await.expect("GET /debug/jobs")
    }

    /// `GET /metrics` text.
    pub async fn metrics(&self) -> String {
        self.inner.metrics().await.expect("GET /metrics")
    }
}

impl Drop for ScalerProcess {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- scaler log ---\n{}", self.log());
        }
    }
}

/// The end-to-end job: `Source: events` → (HASH) `Window -> Map` → (REBALANCE) `Sink: out`,
/// every vertex at `parallelism`, vertex ids as in [`SyntheticJob::three_vertices`].
pub fn e2e_job(parallelism: u32) -> SyntheticJob {
    let mut job = SyntheticJob::three_vertices();
    for v in &mut job.vertices {
        v.parallelism = parallelism;
    }
    job
}

/// A uniform load: every subtask of every vertex carries `rate` records/s, vertex `v`'s
/// subtasks are busy `busy[v]` (fraction of a second), no backlog.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    /// Records/s per subtask.
    pub rate: f64,
    /// Busy fraction per vertex (source, keyed operator, sink).
    pub busy: [f64; 3],
}

impl Load {
    /// The load `factor`× higher: rates × factor, busy × factor capped at 1.0 (a
    /// saturated operator is busy 1000 ms/s).
    pub fn step(&self, factor: f64) -> Self {
        Self {
            rate: self.rate * factor,
            busy: self.busy.map(|b| (b * factor).min(1.0)),
        }
    }

    /// Writes the load as Flink's PrometheusReporter would expose it: task busy time,
    /// back-pressure, records in/out per task, the source operator's records out and
    /// pending records, and the JobManager's restart counter.
    pub fn export(&self, job: &SyntheticJob, e: &SyntheticExporter) {
        let last = job.vertices.len() - 1;
        for (v, vertex) in job.vertices.iter().enumerate() {
            for s in 0..vertex.parallelism {
                job.set_task(e, "busyTimeMsPerSecond", v, s, self.busy[v] * 1000.0);
                job.set_task(e, "backPressuredTimeMsPerSecond", v, s, 0.0);
                // A source task reads nothing from the network (numRecordsIn = 0).
                let rin = if v == 0 { 0.0 } else { self.rate };
                let rout = if v == last { 0.0 } else { self.rate };
                job.set_task(e, "numRecordsInPerSecond", v, s, rin);
                job.set_task(e, "numRecordsOutPerSecond", v, s, rout);
            }
        }
        for s in 0..job.vertices[0].parallelism {
            e.set(
                &job.operator_series("numRecordsOutPerSecond", 0, "Source: events", s, ""),
                self.rate,
            );
            e.set(
                &job.operator_series("pendingRecords", 0, "Source: events", s, ""),
                0.0,
            );
        }
        e.set(&job.jm_job_series("numRestarts"), 0.0);
    }
}

/// The `default` policy of the end-to-end tests (4-space indented YAML): target
/// utilization 0.5 in a [0.2, 0.85] band, 1 s stabilization, 10 min cooldown.
pub fn e2e_policy(dry_run: bool, min_tms: u32, max_tms: u32) -> String {
    e2e_policy_with(dry_run, min_tms, max_tms, "10m")
}

/// [`e2e_policy`] with another `scaleDownDelay` (and `maxScaleDownFactor` 0.5).
pub fn e2e_policy_with(
    dry_run: bool,
    min_tms: u32,
    max_tms: u32,
    scale_down_delay: &str,
) -> String {
    format!(
        "    targetUtilization: 0.5\n    utilizationLow: 0.2\n    utilizationHigh: 0.85\n\
         \x20   catchUpDuration: 5m\n    stabilization: 1s\n    scaleDownDelay: {scale_down_delay}\n\
         \x20   maxScaleDownFactor: 0.5\n\
         \x20   cooldown: 10m\n    maxRescalesPerHour: 6\n    minTaskManagers: {min_tms}\n\
         \x20   maxTaskManagers: {max_tms}\n    dryRun: {dry_run}\n"
    )
}

/// Target utilization and band of [`e2e_policy`].
pub const E2E_TARGET_UTILIZATION: f64 = 0.5;
/// Lower band edge of [`e2e_policy`].
pub const E2E_UTILIZATION_LOW: f64 = 0.2;
/// Upper band edge of [`e2e_policy`].
pub const E2E_UTILIZATION_HIGH: f64 = 0.85;

/// What DS2 (reference §2.3) asks for under `load` at the uniform `parallelism`, computed
/// from the inputs: per vertex `busy`, records in `rate × p`, true rate `rate_in / busy`,
/// target rate = the source's rate (no backlog) propagated with edge ratio 1, required
/// `ceil(target / (true_rate / p × u))`; the keyed vertex is snapped to the smallest
/// divisor of 128 key groups within 1.5× (BALANCED alignment); TaskManagers are the
/// slots of the one slot sharing group (its max parallelism) over the slots per
/// TaskManager, clamped to [min, max]. `None` when every vertex is within the band
/// (no rescale).
pub fn ds2_expected(
    load: &Load,
    parallelism: u32,
    slots_per_tm: u32,
    min_tms: u32,
    max_tms: u32,
) -> Option<(Vec<u32>, u32)> {
    let p = f64::from(parallelism);
    let total = load.rate * p;
    let within = load
        .busy
        .iter()
        .all(|b| (E2E_UTILIZATION_LOW..=E2E_UTILIZATION_HIGH).contains(b));
    if within {
        return None;
    }
    let required: Vec<u32> = load
        .busy
        .iter()
        .enumerate()
        .map(|(v, busy)| {
            let true_rate = total / busy;
            let target = total;
            let r = (target / (true_rate / p * E2E_TARGET_UTILIZATION) - 1e-9).ceil() as u32;
            let r = r.clamp(1, 128);
            if v == 1 {
                // keyed: smallest divisor of 128 in [r, 1.5 r] above the current
                let reach = (f64::from(r) * 1.5).floor() as u32;
                (r..=128)
                    .find(|d| 128 % d == 0)
                    .filter(|d| *d <= reach && *d > parallelism)
                    .unwrap_or(r)
            } else {
                r
            }
        })
        .collect();
    let slots = required.iter().copied().max().unwrap_or(1);
    let tms = slots.div_ceil(slots_per_tm).clamp(min_tms, max_tms);
    Some((required, tms))
}
