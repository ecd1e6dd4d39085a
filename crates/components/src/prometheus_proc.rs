//! A real `prometheus` process on a free loopback port with its own data dir, scraping
//! static targets every second (or at a given interval); instant queries with a plain
//! HTTP client (independent of the scaler's Prometheus adapter). Killed on drop.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use crate::{
    error::{ComponentError, Result},
    procs::{self, ChildGuard},
};

/// One series of an instant query: labels and value.
pub type Series = (BTreeMap<String, String>, f64);

/// How to start Prometheus.
#[derive(Debug, Clone, Default)]
pub struct PrometheusOptions {
    /// Scrape targets (`host:port`), one job named `flink`.
    pub targets: Vec<String>,
    /// A `--web.config.file` (TLS, basic auth); `https` when it has `tls_server_config`.
    pub web_config: Option<String>,
    /// TSDB blocks copied into the data dir before start (history to query).
    pub blocks: Option<PathBuf>,
    /// Scrape interval (and timeout); `None` = every second.
    pub scrape_interval: Option<Duration>,
}

/// A running Prometheus.
pub struct PrometheusProcess {
    child: Option<ChildGuard>,
    port: u16,
    scheme: &'static str,
    dir: PathBuf,
    http: reqwest::Client,
}

impl PrometheusProcess {
    /// The binary: `$FKS_PROMETHEUS`, `/usr/bin/prometheus` or `prometheus` on `PATH`.
    pub fn binary() -> Option<PathBuf> {
        if let Some(p) = std::env::var_os("FKS_PROMETHEUS") {
            return Some(PathBuf::from(p));
        }
        let usr = PathBuf::from("/usr/bin/prometheus");
        if usr.is_file() {
            return Some(usr);
        }
        procs::which("prometheus")
    }

    /// Starts Prometheus with config, data and log under `dir`; returns once it is ready
    /// (`/-/ready`, or a TCP connect with a TLS web config).
    pub async fn start(opts: &PrometheusOptions, dir: &Path) -> Result<Self> {
        let bin = Self::binary().ok_or_else(|| ComponentError::Missing {
            what: "prometheus".into(),
            hint: "apt-get install prometheus (scripts/install-components.sh)".into(),
        })?;
        std::fs::create_dir_all(dir)
            .map_err(|e| ComponentError::io(format!("create {}", dir.display()), e))?;
        let port = procs::free_port()?;
        let targets = opts
            .targets
            .iter()
            .map(|t| format!("'{t}'"))
            .collect::<Vec<_>>()
            .join(", ");
        let every = opts.scrape_interval.unwrap_or(Duration::from_secs(1));
        let every = format!("{}ms", every.as_millis().max(100));
        let config = format!(
            "global: {{scrape_interval: {every}, scrape_timeout: {every}, evaluation_interval: 1s}}\n\
             scrape_configs:\n  - job_name: flink\n    static_configs: [{{targets: [{targets}]}}]\n"
        );
        let config_path = dir.join("prometheus.yml");
        std::fs::write(&config_path, config)
            .map_err(|e| ComponentError::io("write prometheus.yml", e))?;
        if let Some(blocks) = &opts.blocks {
            copy_dir(blocks, &dir.join("data"))?;
        }
        let (log, log2) = procs::log_stdio(&dir.join("prometheus.log"))?;
        let mut command = Command::new(&bin);
        let mut scheme = "http";
        if let Some(web) = &opts.web_config {
            let web_path = dir.join("web.yml");
            std::fs::write(&web_path, web).map_err(|e| ComponentError::io("write web.yml", e))?;
            command.arg(format!("--web.config.file={}", web_path.display()));
            if web.contains("tls_server_config") {
                scheme = "https";
            }
        }
        let child = command
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(|e| ComponentError::io(format!("start {}", bin.display()), e))?;
        let me = Self {
            child: Some(ChildGuard::new(child)),
            port,
            scheme,
            dir: dir.to_path_buf(),
            http: procs::http_client(Duration::from_secs(2))?,
        };
        let tls = opts.web_config.is_some();
        let m = &me;
        procs::wait_for(
            "Prometheus to be ready",
            Duration::from_secs(20),
            Duration::from_millis(50),
            || async move {
                let ready = if tls {
                    tokio::net::TcpStream::connect(("127.0.0.1", port))
                        .await
                        .is_ok()
                } else {
                    m.http
                        .get(format!("{}/-/ready", m.url()))
                        .send()
                        .await
                        .is_ok_and(|r| r.status().is_success())
                };
                ready.then_some(())
            },
            || m.log(),
        )
        .await?;
        Ok(me)
    }

    /// Base URL (`http://127.0.0.1:<port>`, `https` with a TLS web config).
    pub fn url(&self) -> String {
        format!("{}://127.0.0.1:{}", self.scheme, self.port)
    }

    /// Config, data and log directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Prometheus' log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }

    /// POSTs `form` to the API's `path` and returns the answer's `data`; `Err` when
    /// Prometheus does not answer or rejects the query (`what` names it).
    async fn post(
        &self,
        path: &str,
        form: &[(&str, String)],
        what: &str,
    ) -> Result<serde_json::Value> {
        let resp = self
            .http
            .post(format!("{}/api/v1/{path}", self.url()))
            .form(form)
            .send()
            .await
            .map_err(|e| ComponentError::http(what, e))?;
        let mut body: serde_json::Value = resp
            .json()
            .await
            .map_err(|e| ComponentError::http(what, e))?;
        if body["status"] != "success" {
            return Err(ComponentError::http(what, body["error"].to_string()));
        }
        Ok(body["data"].take())
    }

    /// An instant query; `Err` when Prometheus does not answer or rejects the query.
    pub async fn query(&self, promql: &str) -> Result<Vec<Series>> {
        let what = format!("Prometheus query `{promql}`");
        let data = self
            .post("query", &[("query", promql.to_string())], &what)
            .await?;
        Ok(data["result"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| {
                let labels = serde_json::from_value(s["metric"].clone()).unwrap_or_default();
                let value = s["value"][1]
                    .as_str()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(f64::NAN);
                (labels, value)
            })
            .collect())
    }

    /// A range query of one series: `(unix seconds, value)` every `step_s` from `start` to
    /// `end` (unix seconds); `Err` when Prometheus does not answer or rejects the query,
    /// empty when no series matched.
    pub async fn range(
        &self,
        promql: &str,
        start: f64,
        end: f64,
        step_s: f64,
    ) -> Result<Vec<(f64, f64)>> {
        let what = format!("Prometheus range query `{promql}`");
        let form = [
            ("query", promql.to_string()),
            ("start", format!("{start:.3}")),
            ("end", format!("{end:.3}")),
            ("step", format!("{step_s}")),
        ];
        let data = self.post("query_range", &form, &what).await?;
        Ok(data["result"][0]["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| {
                let at = v[0].as_f64()?;
                let value = v[1].as_str()?.parse().ok()?;
                Some((at, value))
            })
            .collect())
    }

    /// An instant query reduced to one number (`None` when empty or failing).
    pub async fn scalar(&self, promql: &str) -> Option<f64> {
        self.query(promql)
            .await
            .ok()
            .and_then(|r| r.first().map(|(_, v)| *v))
            .filter(|v| v.is_finite())
    }

    /// Kills the process (idempotent).
    pub fn stop(&mut self) {
        self.child.take();
    }
}

/// Recursively copies `from` into `to` (created).
fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)
        .map_err(|e| ComponentError::io(format!("create {}", to.display()), e))?;
    let entries = std::fs::read_dir(from)
        .map_err(|e| ComponentError::io(format!("read {}", from.display()), e))?;
    for entry in entries.flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)
                .map_err(|e| ComponentError::io(format!("copy {}", entry.path().display()), e))?;
        }
    }
    Ok(())
}

/// Waits until Prometheus returns a non-empty result for `promql`.
pub async fn wait_series(
    prom: &PrometheusProcess,
    promql: &str,
    timeout: Duration,
) -> Result<Vec<Series>> {
    let started = Instant::now();
    procs::wait_for(
        &format!("Prometheus series `{promql}`"),
        timeout,
        Duration::from_millis(250),
        || async { prom.query(promql).await.ok().filter(|r| !r.is_empty()) },
        || {
            format!(
                "after {:?}; Prometheus log:\n{}",
                started.elapsed(),
                prom.log()
            )
        },
    )
    .await
}
