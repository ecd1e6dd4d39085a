//! Prometheus test harness: a real `prometheus` process on a free loopback port with a
//! temp data dir, scraping (every 1 s) a [`SyntheticExporter`]: an in-process HTTP
//! server that serves series with Flink's PrometheusReporter names and labels, whose
//! values a test can change at any time (load steps).
//!
//! ```no_run
//! let exporter = SyntheticExporter::new();
//! let job = SyntheticJob::three_vertices();
//! job.set_task(&exporter, "busyTimeMsPerSecond", 0, 0, 300.0);
//! let Some(prom) = PrometheusHarness::start(&[exporter.target()]).await else { return };
//! prom.wait_for("flink_taskmanager_job_task_busyTimeMsPerSecond", WAIT).await;
//! ```
//!
//! The process is killed on drop (only the process this harness started).

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    path::PathBuf,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use fks_components::prometheus_proc::{PrometheusOptions, PrometheusProcess};
use flink_keda_scaler::{
    config::ServerSettings,
    core::{Edge, ShipStrategy, Topology, Vertex, VertexId},
    promql::{sanitize_label_value, PromClient},
    runtime::prometheus_endpoint,
};

/// Default wait for Prometheus' first scrape (it happens ~5–6 s after start).
pub const FIRST_SCRAPE_WAIT: Duration = Duration::from_secs(30);

/// An in-process `/metrics` endpoint serving whatever series the test set.
pub struct SyntheticExporter {
    addr: SocketAddr,
    series: Arc<Mutex<BTreeMap<String, f64>>>,
    scrapes: Arc<AtomicU64>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SyntheticExporter {
    /// Starts the exporter on a free loopback port, on its own thread and runtime (so it
    /// works from any test runtime and outlives none of them).
    pub fn new() -> Self {
        let series: Arc<Mutex<BTreeMap<String, f64>>> = Arc::default();
        let scrapes: Arc<AtomicU64> = Arc::default();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind exporter");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("exporter addr");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (s, c) = (series.clone(), scrapes.clone());
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("exporter runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                let app = axum::Router::new().route(
                    "/metrics",
                    axum::routing::get(move || {
                        let (s, c) = (s.clone(), c.clone());
                        async move {
                            c.fetch_add(1, Ordering::Relaxed);
                            let body = render(&s.lock().expect("series lock"));
                            ([("content-type", "text/plain; version=0.0.4")], body)
                        }
                    }),
                );
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = rx.await;
                    })
                    .await
                    .expect("exporter serve");
            });
        });
        Self {
            addr,
            series,
            scrapes,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    /// `host:port` to put in a scrape config.
    pub fn target(&self) -> String {
        self.addr.to_string()
    }

    /// Sets a series (`name{label="v",...}` exactly as exposed) to a value.
    pub fn set(&self, series: &str, value: f64) {
        self.series
            .lock()
            .expect("series lock")
            .insert(series.to_string(), value);
    }

    /// How many times `/metrics` was scraped.
    pub fn scrapes(&self) -> u64 {
        self.scrapes.load(Ordering::Relaxed)
    }

    /// Waits until `n` more scrapes started, so that at least `n - 1` complete scrapes
    /// saw every value set before the call. Panics after `timeout`.
    pub async fn wait_scrapes(&self, n: u64, timeout: Duration) {
        let target = self.scrapes() + n;
        let started = Instant::now();
        while self.scrapes() < target {
            assert!(
                started.elapsed() < timeout,
                "exporter scraped {} times, waited for {target}",
                self.scrapes()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Default for SyntheticExporter {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for SyntheticExporter {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn render(series: &BTreeMap<String, f64>) -> String {
    let mut out = String::new();
    for (name, value) in series {
        let v = if value.is_nan() {
            "NaN".to_string()
        } else if value.is_infinite() {
            if *value > 0.0 { "+Inf" } else { "-Inf" }.to_string()
        } else {
            format!("{value}")
        };
        out.push_str(&format!("{name} {v}\n"));
    }
    out
}

/// A vertex of a [`SyntheticJob`].
#[derive(Debug, Clone)]
pub struct SyntheticVertex {
    /// Job-vertex id (hex).
    pub id: String,
    /// Vertex (task) name, unsanitised.
    pub name: String,
    /// Parallelism (subtasks exported).
    pub parallelism: u32,
}

/// A Flink job whose metrics a test exports: builds series text with Flink's exact
/// names and labels.
#[derive(Debug, Clone)]
pub struct SyntheticJob {
    /// Job id (hex).
    pub job_id: String,
    /// Job name, unsanitised (`job_name` label is sanitised).
    pub job_name: String,
    /// Vertices in topological order (a chain).
    pub vertices: Vec<SyntheticVertex>,
    /// TaskManager ids; subtask `i` runs on `tms[i % len]`.
    pub tms: Vec<String>,
}

impl SyntheticJob {
    /// `Source: events` (p=2) → `Window -> Map` (p=2, keyed) → `Sink: out` (p=1), 2 TMs.
    pub fn three_vertices() -> Self {
        Self {
            job_id: "a1b2c3d4e5f60718293a4b5c6d7e8f90".into(),
            job_name: "orders-enrichment".into(),
            vertices: vec![
                SyntheticVertex {
                    id: "bc764cd8ddf7a0cff126f51c16239658".into(),
                    name: "Source: events".into(),
                    parallelism: 2,
                },
                SyntheticVertex {
                    id: "0a448493b4782967b150582570326227".into(),
                    name: "Window(TumblingEventTimeWindows) -> Map".into(),
                    parallelism: 2,
                },
                SyntheticVertex {
                    id: "ea632d67b7d595e5b851708ae9ad79d6".into(),
                    name: "Sink: out".into(),
                    parallelism: 1,
                },
            ],
            tms: vec!["10_0_0_1:6122_aaaaaa".into(), "10_0_0_2:6122_bbbbbb".into()],
        }
    }

    /// The topology Flink would report for this job (REBALANCE then HASH edges).
    pub fn topology(&self) -> Topology {
        let vertices: Vec<Vertex> = self
            .vertices
            .iter()
            .map(|v| Vertex {
                id: VertexId::new(v.id.clone()),
                name: v.name.clone(),
                parallelism: v.parallelism,
                max_parallelism: 128,
                slot_sharing_group: None,
            })
            .collect();
        let edges = vertices
            .windows(2)
            .enumerate()
            .map(|(i, w)| Edge {
                from: w[0].id.clone(),
                to: w[1].id.clone(),
                ship_strategy: if i == 0 {
                    ShipStrategy::Hash
                } else {
                    ShipStrategy::Forward
                },
            })
            .collect();
        Topology { vertices, edges }
    }

    /// The TaskManager of a subtask.
    pub fn tm_of(&self, subtask: u32) -> &str {
        &self.tms[subtask as usize % self.tms.len()]
    }

    fn task_labels(&self, vertex: usize, subtask: u32) -> String {
        let v = &self.vertices[vertex];
        format!(
            r#"host="localhost",job_id="{}",job_name="{}",subtask_index="{}",task_attempt_id="0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0{}",task_attempt_num="0",task_id="{}",task_name="{}",tm_id="{}""#,
            self.job_id,
            sanitize_label_value(&self.job_name),
            subtask,
            subtask,
            v.id,
            sanitize_label_value(&v.name),
            self.tm_of(subtask)
        )
    }

    /// Series text of a task metric, e.g. `busyTimeMsPerSecond` →
    /// `flink_taskmanager_job_task_busyTimeMsPerSecond{...}`.
    pub fn task_series(&self, metric: &str, vertex: usize, subtask: u32) -> String {
        format!(
            "flink_taskmanager_job_task_{metric}{{{}}}",
            self.task_labels(vertex, subtask)
        )
    }

    /// Series text of an operator metric, with extra labels (`topic="t",partition="0"`).
    pub fn operator_series(
        &self,
        metric: &str,
        vertex: usize,
        operator: &str,
        subtask: u32,
        extra: &str,
    ) -> String {
        let extra = if extra.is_empty() {
            String::new()
        } else {
            format!(",{extra}")
        };
        format!(
            r#"flink_taskmanager_job_task_operator_{metric}{{{},operator_id="{:032x}",operator_name="{}"{extra}}}"#,
            self.task_labels(vertex, subtask),
            operator.len() * 7919 + vertex,
            sanitize_label_value(operator),
        )
    }

    /// Series text of a TaskManager metric (`Status_JVM_CPU_Load`, ...).
    pub fn tm_series(metric: &str, tm: &str) -> String {
        format!(r#"flink_taskmanager_{metric}{{host="localhost",tm_id="{tm}"}}"#)
    }

    /// Series text of a JobManager job metric (`numRestarts`, ...).
    pub fn jm_job_series(&self, metric: &str) -> String {
        format!(
            r#"flink_jobmanager_job_{metric}{{host="localhost",job_id="{}",job_name="{}"}}"#,
            self.job_id,
            sanitize_label_value(&self.job_name)
        )
    }

    /// Series text of a JobManager cluster metric (`taskSlotsTotal`, ...).
    pub fn jm_series(metric: &str) -> String {
        format!(r#"flink_jobmanager_{metric}{{host="localhost"}}"#)
    }

    /// Sets a task metric of one subtask.
    pub fn set_task(
        &self,
        e: &SyntheticExporter,
        metric: &str,
        vertex: usize,
        subtask: u32,
        value: f64,
    ) {
        e.set(&self.task_series(metric, vertex, subtask), value);
    }
}

/// A Prometheus client for `url` with the config file's defaults.
pub fn prom_client(url: &str) -> PromClient {
    PromClient::new(&prometheus_endpoint(&ServerSettings::new(url))).expect("client")
}

/// A running Prometheus (`fks_components::prometheus_proc` in a temp dir), killed on drop.
pub struct PrometheusHarness {
    inner: PrometheusProcess,
    /// Kept for its lifetime; dropped after `inner`.
    _dir: tempfile::TempDir,
}

impl PrometheusHarness {
    /// The Prometheus binary: `$FKS_PROMETHEUS`, `/usr/bin/prometheus` or `prometheus` on PATH.
    pub fn binary() -> Option<PathBuf> {
        PrometheusProcess::binary()
    }

    /// Starts Prometheus scraping `targets` (`host:port`) every second and waits until it
    /// is ready. `None` (after printing SKIPPED) when Prometheus is not installed outside CI.
    pub async fn start(targets: &[String]) -> Option<Self> {
        Self::start_with(PrometheusOptions {
            targets: targets.to_vec(),
            ..PrometheusOptions::default()
        })
        .await
    }

    /// Like [`Self::start`] with another scrape interval (whole seconds).
    pub async fn start_with_interval(targets: &[String], interval: Duration) -> Option<Self> {
        Self::start_with(PrometheusOptions {
            targets: targets.to_vec(),
            scrape_interval: Some(interval),
            ..PrometheusOptions::default()
        })
        .await
    }

    /// Starts Prometheus on history: the TSDB blocks under `blocks` (e.g. the output of
    /// `promtool tsdb create-blocks-from openmetrics`) are copied into the data dir before
    /// the process starts. Scrapes nothing.
    pub async fn start_with_blocks(blocks: &std::path::Path) -> Option<Self> {
        Self::start_with(PrometheusOptions {
            blocks: Some(blocks.to_path_buf()),
            ..PrometheusOptions::default()
        })
        .await
    }

    /// Like [`Self::start`] with a `--web.config.file` (TLS, client certificates, basic
    /// auth). The URL becomes `https` when the config has `tls_server_config`; readiness
    /// is then a TCP connect (the harness' own client has no certificates).
    pub async fn start_with_web_config(targets: &[String], web_config: &str) -> Option<Self> {
        Self::start_with(PrometheusOptions {
            targets: targets.to_vec(),
            web_config: Some(web_config.to_string()),
            ..PrometheusOptions::default()
        })
        .await
    }

    async fn start_with(opts: PrometheusOptions) -> Option<Self> {
        if Self::binary().is_none() {
            let _ = super::component_missing("prometheus (apt-get install prometheus)");
            return None;
        }
        let dir = super::tempdir("fks-prom-");
        let started = Instant::now();
        let inner = PrometheusProcess::start(&opts, dir.path())
            .await
            .unwrap_or_else(|e| panic!("start Prometheus: {e}"));
        eprintln!(
            "prometheus ready on port {} in {:?}",
            inner.port(),
            started.elapsed()
        );
        Some(Self { inner, _dir: dir })
    }

    /// Base URL (`http://127.0.0.1:<port>`, `https` with a TLS web config).
    pub fn url(&self) -> String {
        self.inner.url()
    }

    /// Prometheus' log so far.
    pub fn log(&self) -> String {
        self.inner.log()
    }

    /// Runs an instant query with a plain HTTP client (independent of the code under
    /// test) and returns `(labels, value)` per series (empty on any error).
    pub async fn instant(&self, promql: &str) -> Vec<(BTreeMap<String, String>, f64)> {
        self.inner.query(promql).await.unwrap_or_default()
    }

    /// Waits until `promql` returns at least one series; returns them. Panics with the
    /// Prometheus log after `timeout`.
    pub async fn wait_for(
        &self,
        promql: &str,
        timeout: Duration,
    ) -> Vec<(BTreeMap<String, String>, f64)> {
        self.wait_until(promql, timeout, |r| !r.is_empty()).await
    }

    /// Waits until `promql`'s result satisfies `ok`; returns it.
    pub async fn wait_until(
        &self,
        promql: &str,
        timeout: Duration,
        ok: impl Fn(&[(BTreeMap<String, String>, f64)]) -> bool,
    ) -> Vec<(BTreeMap<String, String>, f64)> {
        let started = Instant::now();
        loop {
            let r = self.instant(promql).await;
            if ok(&r) {
                return r;
            }
            assert!(
                started.elapsed() < timeout,
                "`{promql}` not satisfied after {timeout:?} (last: {r:?}); log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits until the busy time of job `job_id` is queryable (its first scrape).
    pub async fn wait_for_job(&self, job_id: &str) {
        self.wait_for(
            &format!("flink_taskmanager_job_task_busyTimeMsPerSecond{{job_id=\"{job_id}\"}}"),
            FIRST_SCRAPE_WAIT,
        )
        .await;
    }

    /// Waits until every target is up (`up == 1`), i.e. the first scrape happened.
    pub async fn wait_up(&self, targets: usize, timeout: Duration) {
        let started = Instant::now();
        self.wait_until("up == 1", timeout, |r| r.len() >= targets)
            .await;
        eprintln!("first scrape seen {:?} after ready", started.elapsed());
    }

    /// Kills the process (idempotent).
    pub fn stop(&mut self) {
        self.inner.stop();
    }
}
