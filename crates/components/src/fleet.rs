//! A synthetic fleet of Flink jobs for the scaler's fleet tests and the lab's fleet
//! benchmark: N jobs × 5 vertices on M JobManagers, in one process, with loads the test
//! controls. Nothing here runs Flink; it serves what the scaler reads from Flink:
//!
//! * **Flink REST** per JobManager (its own loopback port): `/overview`,
//!   `/jobs/overview`, `/jobs/:id` (plan embedded), `/jobs/:id/plan`, `/taskmanagers`,
//!   `/jobmanager/config`, `/jobs/:id/resource-requirements` GET and PUT (the new
//!   parallelism shows after [`FleetOptions::rescale_delay`], and the busy time follows
//!   it), the checkpoint, exception and job-metric endpoints. Shaped like Flink 2.3.0's
//!   responses; unknown jobs and paths get Flink's 404 body. Every call is counted by
//!   JobManager and endpoint ([`SyntheticFleet::stats`], `GET /fleet/stats`).
//! * **PrometheusReporter series** on `/metrics` of the same port: per subtask the task
//!   metrics (`busyTimeMsPerSecond`, `accumulateBusyTimeMs`, `numRecordsIn/Out`[`PerSecond`],
//!   ...), per chained operator `numRecordsIn/Out`[`PerSecond`], the source's
//!   `pendingRecords`, per job `numRestarts`/`numRescales`/`uptime`, per JobManager the
//!   slots, per TaskManager CPU, heap and GC — the names, label names and types of Flink
//!   2.3.0's reporter ([`exposition::FAMILIES`], checked against a real reporter by the
//!   scaler's `flink_rescale::reporter_names` test). A real Prometheus scrapes them.
//!
//! The load model is in [`sim`]; ids in [`ids`]. The fleet runs on its own thread and
//! runtime (usable from any test runtime); dropping it stops the listeners.

pub mod exposition;
pub mod ids;
mod rest;
mod server;
pub mod sim;

use std::{
    collections::{BTreeMap, HashMap},
    net::SocketAddr,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use self::{
    ids::FleetIds,
    server::{lock, now_ms, Shared},
    sim::{JobSim, VERTICES},
};
use crate::error::{ComponentError, Result};

pub use rest::FLINK_VERSION;

/// How the fleet is made.
#[derive(Debug, Clone)]
pub struct FleetOptions {
    /// Jobs.
    pub jobs: usize,
    /// JobManagers; job `j` runs on JobManager `j % job_managers`.
    pub job_managers: usize,
    /// Initial parallelism of every vertex.
    pub parallelism: u32,
    /// maxParallelism of every vertex.
    pub max_parallelism: u32,
    /// Slots per TaskManager.
    pub slots_per_task_manager: u32,
    /// Records per second offered to every job at the start.
    pub rate: f64,
    /// Time from a resource-requirements PUT to the new parallelism.
    pub rescale_delay: Duration,
}

impl Default for FleetOptions {
    fn default() -> Self {
        Self {
            jobs: 1,
            job_managers: 1,
            parallelism: 1,
            max_parallelism: 128,
            slots_per_task_manager: 2,
            rate: 400.0,
            rescale_delay: Duration::from_secs(3),
        }
    }
}

/// One job of the fleet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetJob {
    /// Index in the fleet.
    pub index: usize,
    /// Flink job id.
    pub id: String,
    /// Job name (unsanitised; the reporter's `job_name` label is sanitised).
    pub name: String,
    /// Its JobManager.
    pub job_manager: usize,
    /// Its JobManager's REST URL.
    pub rest_url: String,
    /// Vertex ids, source first.
    pub vertex_ids: Vec<String>,
}

/// Counters of what the fleet served.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FleetStats {
    /// REST calls per JobManager: `METHOD /endpoint` (`GET /jobs/:id`, `other`) → calls.
    pub rest_calls: Vec<BTreeMap<String, u64>>,
    /// `/metrics` scrapes per JobManager.
    pub scrapes: Vec<u64>,
    /// Resource-requirements PUTs received (all jobs).
    pub puts: u64,
    /// Rescales applied (all jobs).
    pub rescales: u64,
}

impl FleetStats {
    fn of(s: &Shared) -> Self {
        let (mut puts, mut rescales) = (0, 0);
        for j in &s.jobs {
            let j = lock(j);
            puts += j.puts;
            rescales += j.rescales;
        }
        Self {
            rest_calls: s.calls.iter().map(|c| lock(c).clone()).collect(),
            scrapes: s
                .scrapes
                .iter()
                .map(|c| c.load(Ordering::Relaxed))
                .collect(),
            puts,
            rescales,
        }
    }

    /// REST calls of every JobManager by endpoint.
    pub fn rest_calls_total(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for jm in &self.rest_calls {
            for (k, v) in jm {
                *out.entry(k.clone()).or_default() += v;
            }
        }
        out
    }

    /// Every REST call of every JobManager.
    pub fn rest_calls_sum(&self) -> u64 {
        self.rest_calls.iter().flat_map(|m| m.values()).sum()
    }

    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "restCalls": self.rest_calls,
            "restCallsTotal": self.rest_calls_total(),
            "scrapes": self.scrapes,
            "puts": self.puts,
            "rescales": self.rescales,
        })
    }
}

/// A running fleet. Stopped on drop.
pub struct SyntheticFleet {
    shared: Arc<Shared>,
    addrs: Vec<SocketAddr>,
    shutdown: Option<tokio::sync::watch::Sender<bool>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SyntheticFleet {
    /// Starts the fleet: binds one loopback port per JobManager and serves them on a
    /// thread of its own.
    pub fn start(opts: &FleetOptions) -> Result<Self> {
        if opts.jobs == 0 || opts.job_managers == 0 {
            return Err(ComponentError::Failed(
                "a synthetic fleet needs at least one job and one JobManager".into(),
            ));
        }
        let shared = Arc::new(shared(opts));
        let mut listeners = Vec::new();
        let mut addrs = Vec::new();
        for _ in 0..opts.job_managers {
            let l = std::net::TcpListener::bind("127.0.0.1:0")
                .map_err(|e| ComponentError::io("bind a fleet JobManager port", e))?;
            l.set_nonblocking(true)
                .map_err(|e| ComponentError::io("set the fleet listener non-blocking", e))?;
            addrs.push(
                l.local_addr()
                    .map_err(|e| ComponentError::io("read the fleet listener address", e))?,
            );
            listeners.push(l);
        }
        let (tx, rx) = tokio::sync::watch::channel(false);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("fks-fleet")
            .enable_all()
            .build()
            .map_err(|e| ComponentError::io("start the fleet runtime", e))?;
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("fks-fleet".into())
            .spawn(move || runtime.block_on(serve_all(s, listeners, rx)))
            .map_err(|e| ComponentError::io("start the fleet thread", e))?;
        Ok(Self {
            shared,
            addrs,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    /// JobManagers.
    pub fn job_managers(&self) -> usize {
        self.addrs.len()
    }

    /// REST URL of JobManager `jm` (`http://127.0.0.1:<port>`).
    pub fn rest_url(&self, jm: usize) -> String {
        format!("http://{}", self.addrs[jm % self.addrs.len()])
    }

    /// `host:port` of every JobManager's `/metrics` (Prometheus scrape targets).
    pub fn metrics_targets(&self) -> Vec<String> {
        self.addrs.iter().map(ToString::to_string).collect()
    }

    /// Jobs.
    pub fn len(&self) -> usize {
        self.shared.jobs.len()
    }

    /// Never empty (at least one job).
    pub fn is_empty(&self) -> bool {
        self.shared.jobs.is_empty()
    }

    /// Job `j`.
    pub fn job(&self, j: usize) -> FleetJob {
        let ids = &self.shared.ids;
        let jm = ids.jm_of(j);
        FleetJob {
            index: j,
            id: ids.job_id(j),
            name: ids.job_name(j),
            job_manager: jm,
            rest_url: self.rest_url(jm),
            vertex_ids: (0..VERTICES).map(|v| ids.vertex_id(v)).collect(),
        }
    }

    /// Every job.
    pub fn jobs(&self) -> Vec<FleetJob> {
        (0..self.len()).map(|j| self.job(j)).collect()
    }

    fn with_job<T>(&self, j: usize, f: impl FnOnce(&mut JobSim) -> T) -> T {
        let mut sim = lock(&self.shared.jobs[j]);
        sim.advance(Instant::now(), now_ms());
        f(&mut sim)
    }

    /// Offers job `j` `rate` records per second from now on.
    pub fn set_rate(&self, j: usize, rate: f64) {
        self.with_job(j, |s| s.rate = rate.max(0.0));
    }

    /// Leaves vertex `vertex` of job `j` out of the series (`None`: serve all again).
    pub fn hide_vertex(&self, j: usize, vertex: Option<usize>) {
        self.with_job(j, |s| s.hidden_vertex = vertex);
    }

    /// Cancels job `j`: gone from REST (404) and from the series.
    pub fn remove_job(&self, j: usize) {
        self.with_job(j, |s| s.gone = true);
    }

    /// Makes JobManager `jm`'s REST answer 503 (`false`) or serve again (`true`).
    pub fn set_available(&self, jm: usize, available: bool) {
        self.shared.unavailable[jm].store(!available, Ordering::Relaxed);
    }

    /// The current parallelism of job `j`'s vertices.
    pub fn parallelism(&self, j: usize) -> [u32; VERTICES] {
        self.with_job(j, |s| s.parallelism())
    }

    /// Resource-requirements PUTs job `j` received.
    pub fn puts(&self, j: usize) -> u64 {
        self.with_job(j, |s| s.puts)
    }

    /// A copy of job `j`'s model, advanced to now.
    pub fn snapshot(&self, j: usize) -> JobSim {
        self.shared.snapshot(j)
    }

    /// What was served so far.
    pub fn stats(&self) -> FleetStats {
        FleetStats::of(&self.shared)
    }

    /// The exposition JobManager `jm` serves now.
    pub fn exposition(&self, jm: usize) -> String {
        server::render_jm(&self.shared, jm)
    }
}

impl Drop for SyntheticFleet {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(true);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn shared(opts: &FleetOptions) -> Shared {
    let ids = FleetIds {
        job_managers: opts.job_managers,
        slots_per_task_manager: opts.slots_per_task_manager.max(1),
    };
    let (now, ms) = (Instant::now(), now_ms());
    let jobs = (0..opts.jobs)
        .map(|j| {
            // Jobs started a few minutes ago, a second apart.
            let started = ms - 300_000 + j as i64 * 1000 % 240_000;
            Mutex::new(JobSim::new(
                opts.parallelism,
                opts.max_parallelism,
                opts.rate,
                now,
                started,
            ))
        })
        .collect();
    let by_id = (0..opts.jobs)
        .map(|j| (ids.job_id(j), j))
        .collect::<HashMap<_, _>>();
    Shared {
        jobs,
        by_id,
        rescale_delay: opts.rescale_delay,
        calls: (0..opts.job_managers).map(|_| Mutex::default()).collect(),
        scrapes: (0..opts.job_managers).map(|_| AtomicU64::new(0)).collect(),
        unavailable: (0..opts.job_managers)
            .map(|_| AtomicBool::new(false))
            .collect(),
        ids,
    }
}

async fn serve_all(
    shared: Arc<Shared>,
    listeners: Vec<std::net::TcpListener>,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut tasks = Vec::new();
    for (jm, l) in listeners.into_iter().enumerate() {
        let Ok(listener) = tokio::net::TcpListener::from_std(l) else {
            continue;
        };
        let app = server::router(shared.clone(), jm);
        let mut stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await;
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

#[cfg(test)]
mod tests;
