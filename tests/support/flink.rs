//! Flink test harness: installs Flink from PyPI jars with `scripts/flink.sh` (version from
//! `FKS_FLINK_VERSION`, default 2.3.0), starts a standalone session cluster — a JobManager
//! and individually stoppable TaskManagers as child processes — on free ports in a temp
//! dir with its own `FLINK_CONF_DIR` and pid dir, submits the job jar over REST, and kills
//! exactly the processes it started on drop.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::{json, Value};

/// Flink version under test.
pub fn flink_version() -> String {
    std::env::var("FKS_FLINK_VERSION").unwrap_or_else(|_| "2.3.0".to_string())
}

fn major_minor(v: &str) -> (u32, u32) {
    let mut it = v.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

/// An installed Flink plus the job jar built against it.
#[derive(Debug, Clone)]
pub struct Installed {
    /// FLINK_HOME.
    pub home: PathBuf,
    /// `load-job.jar` (main class `fks.LoadJob`).
    pub job_jar: PathBuf,
    /// Version, e.g. `2.3.0`.
    pub version: String,
}

/// Runs `scripts/flink.sh install`; `None` (after `component_missing`) when Java or the
/// download is unavailable outside CI.
pub fn install() -> Option<Installed> {
    for tool in ["java", "javac", "jar"] {
        if super::which(tool).is_none() {
            let _ = super::component_missing(&format!("{tool} (JDK 11+) for Apache Flink"));
            return None;
        }
    }
    let version = flink_version();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/flink.sh");
    let out = Command::new("bash")
        .arg(&script)
        .args(["job-jar", &version])
        .output()
        .expect("run scripts/flink.sh");
    if !out.status.success() {
        let _ = super::component_missing(&format!(
            "Apache Flink {version} (scripts/flink.sh failed: {})",
            String::from_utf8_lossy(&out.stderr)
        ));
        return None;
    }
    let job_jar = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim().to_string());
    let home = job_jar
        .parent()
        .and_then(Path::parent)
        .expect("jar under FLINK_HOME/fks-job")
        .to_path_buf();
    Some(Installed {
        home,
        job_jar,
        version,
    })
}

/// Cluster settings.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// `jobmanager.scheduler: adaptive` (false = Flink's default scheduler).
    pub adaptive: bool,
    /// `taskmanager.numberOfTaskSlots`.
    pub slots_per_task_manager: u32,
    /// TaskManagers started with the cluster.
    pub task_managers: usize,
    /// Checkpoint interval.
    pub checkpoint_interval: Duration,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        Self {
            adaptive: true,
            slots_per_task_manager: 2,
            task_managers: 1,
            checkpoint_interval: Duration::from_secs(2),
        }
    }
}

/// A running standalone session cluster.
pub struct FlinkCluster {
    /// What runs.
    pub installed: Installed,
    /// Work dir (conf, logs, pids, checkpoints, tmp).
    pub dir: tempfile::TempDir,
    /// `FLINK_CONF_DIR`.
    pub conf_dir: PathBuf,
    /// REST base URL.
    pub rest_url: String,
    /// Settings it was started with.
    pub opts: ClusterOptions,
    jm: Option<Child>,
    tms: Vec<Option<Child>>,
    http: reqwest::Client,
}

fn java_opts(home: &Path) -> String {
    for f in ["conf/config.yaml", "conf/flink-conf.yaml"] {
        if let Ok(text) = fs::read_to_string(home.join(f)) {
            for line in text.lines() {
                let t = line.trim_start();
                let rest = t
                    .strip_prefix("env.java.opts.all:")
                    .or_else(|| t.strip_prefix("all:"));
                if let Some(r) = rest {
                    if r.trim_start().starts_with("--add") {
                        return r.trim().to_string();
                    }
                }
            }
        }
    }
    String::new()
}

impl FlinkCluster {
    /// Writes the config and starts the JobManager and `opts.task_managers` TaskManagers;
    /// returns when the REST API answers and the TaskManagers are registered.
    pub async fn start(installed: Installed, opts: ClusterOptions) -> FlinkCluster {
        let dir = super::tempdir("fks-flink-");
        let root = dir.path().to_path_buf();
        for d in ["conf", "log", "pids", "ckpt", "tmp", "upload"] {
            fs::create_dir_all(root.join(d)).expect("mkdir");
        }
        let rest_port = super::free_port();
        let rpc_port = super::free_port();
        let prom_base = super::free_port();
        let (major, minor) = major_minor(&installed.version);
        // prefer-minimal-taskmanagers (1.19+): pack slots so a scale-down frees whole
        // TaskManagers. Flink (1.20 and 2.3 alike) honours it only for execution.target
        // "embedded" (application mode); a session cluster must say so explicitly, or the
        // slots stay spread and no TaskManager ever becomes idle.
        let adaptive = if !opts.adaptive {
            String::new()
        } else if major >= 2 {
            "jobmanager.scheduler: adaptive\n\
             jobmanager.adaptive-scheduler.prefer-minimal-taskmanagers: true\n\
             execution.target: embedded\n\
             jobmanager.adaptive-scheduler.submission.resource-stabilization-timeout: 1s\n\
             jobmanager.adaptive-scheduler.executing.resource-stabilization-timeout: 2s\n\
             jobmanager.adaptive-scheduler.executing.cooldown-after-rescaling: 2s\n"
                .to_string()
        } else if minor >= 19 {
            "jobmanager.scheduler: adaptive\n\
             jobmanager.adaptive-scheduler.prefer-minimal-taskmanagers: true\n\
             execution.target: embedded\n\
             jobmanager.adaptive-scheduler.resource-stabilization-timeout: 1s\n\
             jobmanager.adaptive-scheduler.scaling-interval.min: 2s\n"
                .to_string()
        } else {
            "jobmanager.scheduler: adaptive\n\
             jobmanager.adaptive-scheduler.resource-stabilization-timeout: 1s\n"
                .to_string()
        };
        let r = root.display();
        let conf = format!(
            "jobmanager.rpc.address: 127.0.0.1\n\
             jobmanager.rpc.port: {rpc_port}\n\
             jobmanager.bind-host: 127.0.0.1\n\
             jobmanager.memory.process.size: 1024m\n\
             {adaptive}\
             taskmanager.bind-host: 127.0.0.1\n\
             taskmanager.host: 127.0.0.1\n\
             taskmanager.numberOfTaskSlots: {slots}\n\
             taskmanager.memory.process.size: 1024m\n\
             taskmanager.data.port: 0\n\
             taskmanager.rpc.port: 0\n\
             blob.server.port: 0\n\
             parallelism.default: 1\n\
             rest.address: 127.0.0.1\n\
             rest.bind-address: 127.0.0.1\n\
             rest.port: {rest_port}\n\
             heartbeat.interval: 2000\n\
             heartbeat.timeout: 10000\n\
             slot.idle.timeout: 5000\n\
             metrics.fetcher.update-interval: 1000\n\
             execution.checkpointing.interval: {ckpt}ms\n\
             state.checkpoints.dir: file://{r}/ckpt\n\
             execution.checkpointing.dir: file://{r}/ckpt\n\
             state.backend.type: hashmap\n\
             io.tmp.dirs: {r}/tmp\n\
             web.tmpdir: {r}/tmp\n\
             web.upload.dir: {r}/upload\n\
             metrics.reporter.prom.factory.class: org.apache.flink.metrics.prometheus.PrometheusReporterFactory\n\
             metrics.reporter.prom.port: {prom_base}-{prom_end}\n\
             env.pid.dir: {r}/pids\n\
             env.log.dir: {r}/log\n\
             env.java.opts.all: {javaopts}\n",
            slots = opts.slots_per_task_manager,
            ckpt = opts.checkpoint_interval.as_millis(),
            prom_end = prom_base.saturating_add(9),
            javaopts = java_opts(&installed.home),
        );
        let conf_name = if major < 2 && minor < 19 {
            "flink-conf.yaml"
        } else {
            "config.yaml"
        };
        let conf_dir = root.join("conf");
        fs::write(conf_dir.join(conf_name), conf).expect("write flink config");
        for f in fs::read_dir(installed.home.join("conf")).expect("read FLINK_HOME/conf") {
            let p = f.expect("dir entry").path();
            if p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("log4j") || n.starts_with("logback"))
            {
                fs::copy(&p, conf_dir.join(p.file_name().expect("name"))).expect("copy log config");
            }
        }
        let mut cluster = FlinkCluster {
            installed,
            dir,
            conf_dir,
            rest_url: format!("http://127.0.0.1:{rest_port}"),
            opts: opts.clone(),
            jm: None,
            tms: Vec::new(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .expect("http client"),
        };
        cluster.jm = Some(cluster.spawn("jobmanager.sh", "jm", &[]));
        cluster
            .wait_until("JobManager REST", Duration::from_secs(90), |c| async move {
                c.get_json("overview").await.is_some()
            })
            .await;
        for _ in 0..opts.task_managers {
            cluster.add_task_manager().await;
        }
        cluster
    }

    fn spawn(&self, script: &str, name: &str, args: &[String]) -> Child {
        let out =
            fs::File::create(self.dir.path().join(format!("log/{name}.out"))).expect("log file");
        let err = out.try_clone().expect("dup log file");
        Command::new(self.installed.home.join("bin").join(script))
            .arg("start-foreground")
            .args(args)
            .env("FLINK_CONF_DIR", &self.conf_dir)
            .env("FLINK_HOME", &self.installed.home)
            .env_remove("FLINK_ENV_JAVA_OPTS")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("start {script}: {e}"))
    }

    /// GET a REST path as JSON (`None` on any error).
    pub async fn get_json(&self, path: &str) -> Option<Value> {
        let r = self
            .http
            .get(format!("{}/{path}", self.rest_url))
            .send()
            .await
            .ok()?;
        if !r.status().is_success() {
            return None;
        }
        r.json().await.ok()
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

    /// Registered TaskManagers.
    pub async fn registered_task_managers(&self) -> usize {
        self.get_json("overview")
            .await
            .and_then(|v| v["taskmanagers"].as_u64())
            .unwrap_or(0) as usize
    }

    /// Starts one more TaskManager; returns its index once it is registered.
    pub async fn add_task_manager(&mut self) -> usize {
        let before = self.registered_task_managers().await;
        let idx = self.tms.len();
        let args = [
            "-D".to_string(),
            format!("taskmanager.resource-id={}", Self::tm_id(idx)),
        ];
        let child = self.spawn("taskmanager.sh", &format!("tm{idx}"), &args);
        self.tms.push(Some(child));
        self.wait_until(
            "TaskManager registration",
            Duration::from_secs(90),
            |c| async move { c.registered_task_managers().await > before },
        )
        .await;
        idx
    }

    /// The resource id (= `/taskmanagers` id) of TaskManager `idx`.
    pub fn tm_id(idx: usize) -> String {
        format!("fks-tm-{idx}")
    }

    /// The index of the TaskManager with resource id `id`.
    pub fn tm_index(id: &str) -> Option<usize> {
        id.strip_prefix("fks-tm-")?.parse().ok()
    }

    /// Stops TaskManager `idx` with SIGTERM (graceful), SIGKILL after 20 s.
    pub fn stop_task_manager(&mut self, idx: usize) {
        if let Some(mut child) = self.tms.get_mut(idx).and_then(Option::take) {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(20) {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Uploads the job jar and runs it with `args` at `parallelism`; returns the job id
    /// once the job is RUNNING with all tasks running.
    pub async fn submit_job(&self, args: &[String], parallelism: u32) -> String {
        let jar = fs::read(&self.installed.job_jar).expect("read job jar");
        let boundary = "----fks-boundary-7d1f0c";
        let mut body = Vec::new();
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"jarfile\"; filename=\"load-job.jar\"\r\n\
                 Content-Type: application/x-java-archive\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(&jar);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let up: Value = self
            .http
            .post(format!("{}/jars/upload", self.rest_url))
            .header(
                "Content-Type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body)
            .send()
            .await
            .expect("upload jar")
            .json()
            .await
            .expect("upload response");
        let jar_id = up["filename"]
            .as_str()
            .and_then(|f| f.rsplit('/').next())
            .unwrap_or_else(|| panic!("upload failed: {up}"))
            .to_string();
        let run: Value = self
            .http
            .post(format!("{}/jars/{jar_id}/run", self.rest_url))
            .json(&json!({"entryClass": "fks.LoadJob", "parallelism": parallelism, "programArgsList": args}))
            .send()
            .await
            .expect("run jar")
            .json()
            .await
            .expect("run response");
        let job = run["jobid"]
            .as_str()
            .unwrap_or_else(|| panic!("run failed: {run}"))
            .to_string();
        self.wait_job_running(&job, None, Duration::from_secs(120))
            .await;
        job
    }

    /// Waits until `job` is RUNNING, every subtask RUNNING/FINISHED and (if given) every
    /// vertex at `parallelism`.
    pub async fn wait_job_running(&self, job: &str, parallelism: Option<u32>, timeout: Duration) {
        let path = format!("jobs/{job}");
        self.wait_until(
            &format!("job {job} RUNNING at {parallelism:?}"),
            timeout,
            |c| {
                let path = path.clone();
                async move {
                    let Some(v) = c.get_json(&path).await else {
                        return false;
                    };
                    v["state"] == "RUNNING"
                        && v["vertices"].as_array().is_some_and(|vs| {
                            vs.iter().all(|x| {
                                let p = x["parallelism"].as_u64().unwrap_or(0);
                                let t = &x["tasks"];
                                let done = t["RUNNING"].as_u64().unwrap_or(0)
                                    + t["FINISHED"].as_u64().unwrap_or(0);
                                done == p && parallelism.is_none_or(|want| p == u64::from(want))
                            })
                        })
                }
            },
        )
        .await;
    }

    /// A raw request: (status, body text).
    pub async fn raw(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, String) {
        let mut req = self
            .http
            .request(method, format!("{}/{path}", self.rest_url));
        if let Some(b) = body {
            req = req.json(b);
        }
        let r = req.send().await.expect("request");
        let status = r.status().as_u16();
        (status, r.text().await.unwrap_or_default())
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

    /// The last lines of every log file (for failure messages).
    pub fn log_tail(&self) -> String {
        let mut out = String::new();
        if let Ok(rd) = fs::read_dir(self.dir.path().join("log")) {
            for f in rd.flatten() {
                let text = fs::read_to_string(f.path()).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                let tail = lines[lines.len().saturating_sub(15)..].join("\n");
                out.push_str(&format!("--- {}\n{tail}\n", f.path().display()));
            }
        }
        out
    }

    /// Path of a file in the work dir (e.g. the job's rate file).
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Drop for FlinkCluster {
    fn drop(&mut self) {
        for child in self
            .tms
            .iter_mut()
            .filter_map(Option::take)
            .chain(self.jm.take())
        {
            let _ = child_kill(child);
        }
        if std::env::var_os("FKS_KEEP_TMP").is_some() {
            let p = self.dir.path().to_path_buf();
            eprintln!("keeping Flink work dir {}", p.display());
            std::mem::forget(std::mem::replace(
                &mut self.dir,
                super::tempdir("fks-flink-void-"),
            ));
        }
    }
}

fn child_kill(mut child: Child) -> std::io::Result<()> {
    child.kill()?;
    child.wait().map(|_| ())
}
