//! A standalone Flink session (or application, [`FlinkCluster::start_application`])
//! cluster as local processes: installs Flink from PyPI jars
//! with `scripts/flink.sh` (which also builds the LoadJob jar), writes a config with the
//! adaptive scheduler, slot packing and the PrometheusReporter, starts a JobManager and
//! individually stoppable TaskManagers (`start-foreground` children with their own
//! `FLINK_CONF_DIR`), submits the job over REST and kills exactly what it started on drop.
//!
//! This is the real Flink REST API and the real in-place rescale; only the pods are
//! processes.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::{json, Value};

pub use crate::flink_jvm::TaskManagerJvm;
use crate::{
    error::{ComponentError, Result},
    flink_conf::{flink_config, write_conf_dir, Ports},
    flink_jvm, flink_launcher,
    procs::{self, ChildGuard},
};

/// An installed Flink plus the LoadJob jar built against it.
#[derive(Debug, Clone)]
pub struct Installed {
    /// FLINK_HOME.
    pub home: PathBuf,
    /// `load-job.jar` (main class `fks.LoadJob`).
    pub job_jar: PathBuf,
    /// Version, e.g. `2.3.0`.
    pub version: String,
}

/// The Flink version tests run against: `FKS_FLINK_VERSION`, default 2.3.0.
pub fn version_under_test() -> String {
    std::env::var("FKS_FLINK_VERSION").unwrap_or_else(|_| "2.3.0".to_string())
}

/// `(major, minor)` of a version string.
pub fn major_minor(v: &str) -> (u32, u32) {
    let mut it = v.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

/// Installs Flink `version` and builds the job jar with `script` (`scripts/flink.sh`):
/// cached under `$FKS_CACHE`, so only the first run downloads.
pub fn install(script: &Path, version: &str) -> Result<Installed> {
    for tool in ["java", "javac", "jar"] {
        if procs::which(tool).is_none() {
            return Err(ComponentError::Missing {
                what: format!("{tool} (JDK 11+)"),
                hint: "Apache Flink needs a JDK; install openjdk-17-jdk".into(),
            });
        }
    }
    let out = Command::new("bash")
        .arg(script)
        .args(["job-jar", version])
        .output()
        .map_err(|e| ComponentError::io(format!("run {}", script.display()), e))?;
    if !out.status.success() {
        return Err(ComponentError::Missing {
            what: format!("Apache Flink {version}"),
            hint: format!(
                "{} job-jar {version} failed: {}",
                script.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    let job_jar = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim().to_string());
    let home = job_jar
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| ComponentError::Missing {
            what: format!("Apache Flink {version}"),
            hint: format!(
                "job jar {} is not under FLINK_HOME/fks-job",
                job_jar.display()
            ),
        })?
        .to_path_buf();
    Ok(Installed {
        home,
        job_jar,
        version: version.to_string(),
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
    /// `scheduler-mode: reactive` (application clusters: every TaskManager's slots go to
    /// the job; Flink refuses resource-requirement changes).
    pub reactive: bool,
    /// More config lines (`key: value\n`), appended as they are.
    pub extra_config: String,
    /// How the TaskManager JVMs start (class-data sharing, compiler level).
    pub task_manager_jvm: TaskManagerJvm,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        Self {
            adaptive: true,
            slots_per_task_manager: 2,
            task_managers: 1,
            checkpoint_interval: Duration::from_secs(2),
            reactive: false,
            extra_config: String::new(),
            task_manager_jvm: TaskManagerJvm::default(),
        }
    }
}

/// The job of an application cluster ([`FlinkCluster::start_application`]).
#[derive(Debug, Clone)]
pub struct ApplicationJob {
    /// Main class (`fks.LoadJob`).
    pub class: String,
    /// Fixed job id (32 hex digits), as the operator sets it.
    pub job_id: String,
    /// Program arguments.
    pub args: Vec<String>,
}

/// One row of Flink's `/taskmanagers`.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskManagerInfo {
    /// Resource id (`fks-tm-<n>` for ours).
    pub id: String,
    /// Slots.
    pub slots: u64,
    /// Free slots.
    pub free_slots: u64,
}

/// A running standalone session cluster.
pub struct FlinkCluster {
    /// What runs.
    pub installed: Installed,
    /// Work dir (conf, log, pids, ckpt, tmp, upload).
    pub root: PathBuf,
    /// `FLINK_CONF_DIR`.
    pub conf_dir: PathBuf,
    /// REST base URL.
    pub rest_url: String,
    /// PrometheusReporter ports (JobManager and TaskManagers take the next free one).
    pub reporter_ports: std::ops::RangeInclusive<u16>,
    /// Settings it was started with.
    pub opts: ClusterOptions,
    jm: Option<ChildGuard>,
    tms: Vec<Option<ChildGuard>>,
    /// `FLINK_ENV_JAVA_OPTS_TM` of the TaskManagers ([`TaskManagerJvm::java_opts`]).
    tm_java_opts: Option<String>,
    /// `JAVA_HOME` of the TaskManagers: the launcher shim ([`flink_launcher::java_home`]),
    /// written once per cluster (bash reads a script as it runs: never rewrite it).
    tm_java_home: Option<PathBuf>,
    http: reqwest::Client,
}

impl FlinkCluster {
    /// Writes the config under `root` and starts the JobManager and
    /// `opts.task_managers` TaskManagers; returns when the REST API answers and the
    /// TaskManagers are registered.
    pub async fn start(installed: Installed, opts: ClusterOptions, root: &Path) -> Result<Self> {
        Self::launch(installed, opts, root, None).await
    }

    /// Starts an **application cluster** running `app` (`standalone-job.sh`, the way the
    /// Flink Kubernetes Operator runs a standalone FlinkDeployment: the job jar in
    /// `FLINK_HOME/usrlib` of a hard-linked copy of the distribution) and
    /// `opts.task_managers` TaskManagers (reactive mode: `opts.reactive`). Returns when the
    /// TaskManagers are registered (the job may still be starting).
    pub async fn start_application(
        installed: Installed,
        opts: ClusterOptions,
        root: &Path,
        app: &ApplicationJob,
    ) -> Result<Self> {
        let home = root.join("flink-home");
        let out = Command::new("cp")
            .arg("-al")
            .arg(&installed.home)
            .arg(&home)
            .output()
            .map_err(|e| ComponentError::io("cp -al FLINK_HOME", e))?;
        if !out.status.success() {
            return Err(ComponentError::Failed(format!(
                "cp -al {}: {}",
                installed.home.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        fs::create_dir_all(home.join("usrlib"))
            .map_err(|e| ComponentError::io("create usrlib", e))?;
        fs::copy(&installed.job_jar, home.join("usrlib/load-job.jar"))
            .map_err(|e| ComponentError::io("copy the job jar to usrlib", e))?;
        let installed = Installed { home, ..installed };
        Self::launch(installed, opts, root, Some(app)).await
    }

    async fn launch(
        installed: Installed,
        opts: ClusterOptions,
        root: &Path,
        app: Option<&ApplicationJob>,
    ) -> Result<Self> {
        for d in ["conf", "log", "pids", "ckpt", "tmp", "upload"] {
            fs::create_dir_all(root.join(d))
                .map_err(|e| ComponentError::io(format!("create {}/{d}", root.display()), e))?;
        }
        let ports = Ports {
            rest: procs::free_port()?,
            rpc: procs::free_port()?,
            prom_base: procs::free_port()?,
        };
        let conf = flink_config(&installed, &opts, root, &ports);
        let conf_dir = write_conf_dir(&installed, &conf, root)?;
        let mut cluster = FlinkCluster {
            installed,
            root: root.to_path_buf(),
            conf_dir,
            rest_url: format!("http://127.0.0.1:{}", ports.rest),
            reporter_ports: ports.prom_base..=ports.prom_end(),
            opts: opts.clone(),
            jm: None,
            tms: Vec::new(),
            tm_java_opts: None,
            tm_java_home: None,
            http: procs::http_client(Duration::from_secs(20))?,
        };
        cluster.jm = Some(match app {
            None => cluster.spawn("jobmanager.sh", "jm", &[])?,
            Some(a) => {
                let mut args = vec![
                    "--job-classname".to_string(),
                    a.class.clone(),
                    "--job-id".to_string(),
                    a.job_id.clone(),
                ];
                args.extend(a.args.iter().cloned());
                cluster.spawn("standalone-job.sh", "jm", &args)?
            }
        });
        let c = &cluster;
        procs::wait_for(
            "the JobManager REST API",
            Duration::from_secs(90),
            Duration::from_millis(250),
            || async move { c.get_json("overview").await.map(|_| ()) },
            || c.log_tail(),
        )
        .await?;
        if opts.task_manager_jvm.replay_launcher {
            cluster.tm_java_home = Some(flink_launcher::java_home(&cluster.root)?);
        }
        // an application cluster's distribution is a fresh copy: no cached archive
        let archive = match app {
            None if opts.task_manager_jvm.class_data_sharing => {
                flink_jvm::ensure_archive(&cluster).await
            }
            _ => None,
        };
        cluster.tm_java_opts = opts.task_manager_jvm.java_opts(archive.as_deref());
        for _ in 0..opts.task_managers {
            cluster.add_task_manager().await?;
        }
        Ok(cluster)
    }

    fn spawn(&self, script: &str, name: &str, args: &[String]) -> Result<ChildGuard> {
        self.spawn_with(script, name, args, (None, None))
    }

    /// Starts TaskManager `id` (its output in `log/<name>.out`) with `java_opts` as its
    /// `FLINK_ENV_JAVA_OPTS_TM`.
    pub(crate) fn spawn_task_manager(
        &self,
        id: &str,
        name: &str,
        java_opts: Option<&str>,
    ) -> Result<ChildGuard> {
        let args = ["-D".to_string(), format!("taskmanager.resource-id={id}")];
        let env = (java_opts, self.tm_java_home.as_deref());
        self.spawn_with("taskmanager.sh", name, &args, env)
    }

    fn spawn_with(
        &self,
        script: &str,
        name: &str,
        args: &[String],
        (tm_java_opts, java_home): (Option<&str>, Option<&Path>),
    ) -> Result<ChildGuard> {
        let (out, err) = procs::log_stdio(&self.root.join(format!("log/{name}.out")))?;
        let mut command = Command::new(self.installed.home.join("bin").join(script));
        match tm_java_opts {
            Some(o) => command.env("FLINK_ENV_JAVA_OPTS_TM", o),
            None => command.env_remove("FLINK_ENV_JAVA_OPTS_TM"),
        };
        if let Some(home) = java_home {
            command.env("JAVA_HOME", home);
        }
        let child = command
            .arg("start-foreground")
            .args(args)
            .env("FLINK_CONF_DIR", &self.conf_dir)
            .env("FLINK_HOME", &self.installed.home)
            .env_remove("FLINK_ENV_JAVA_OPTS")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| ComponentError::io(format!("start {script}"), e))?;
        Ok(ChildGuard::new(child))
    }

    /// GET a REST path as JSON (`None` on any error).
    pub async fn get_json(&self, path: &str) -> Option<Value> {
        procs::get_json(&self.http, &format!("{}/{path}", self.rest_url)).await
    }

    /// Flink's `/taskmanagers`.
    pub async fn task_managers(&self) -> Result<Vec<TaskManagerInfo>> {
        let v = self
            .get_json("taskmanagers")
            .await
            .ok_or_else(|| ComponentError::http("GET /taskmanagers", "no answer"))?;
        Ok(v["taskmanagers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| TaskManagerInfo {
                id: t["id"].as_str().unwrap_or("?").to_string(),
                slots: t["slotsNumber"].as_u64().unwrap_or(0),
                free_slots: t["freeSlots"].as_u64().unwrap_or(0),
            })
            .collect())
    }

    /// Starts one more TaskManager; returns its index once it is registered.
    pub async fn add_task_manager(&mut self) -> Result<usize> {
        let ids = self.add_task_managers(1).await?;
        ids.first()
            .copied()
            .ok_or_else(|| ComponentError::Failed("no TaskManager started".into()))
    }

    /// Starts `n` TaskManagers at once (as a ReplicaSet creates pods) and returns their
    /// indexes once Flink lists every one of them (by resource id: a count could be met by
    /// a TaskManager that was already registering, or misread while the REST API is busy).
    pub async fn add_task_managers(&mut self, n: usize) -> Result<Vec<usize>> {
        let started = self.spawn_task_managers(n)?;
        let ids: Vec<String> = started.iter().map(|&i| Self::tm_id(i)).collect();
        procs::wait_registered(&self.http, &self.rest_url, &ids, || self.log_tail()).await?;
        Ok(started)
    }

    /// Starts `n` TaskManagers at once and returns their indexes without waiting for them
    /// to register ([`procs::wait_registered`] waits for that).
    pub fn spawn_task_managers(&mut self, n: usize) -> Result<Vec<usize>> {
        let opts = self.tm_java_opts.clone();
        (0..n)
            .map(|_| {
                let idx = self.tms.len();
                let name = format!("tm{idx}");
                let child = self.spawn_task_manager(&Self::tm_id(idx), &name, opts.as_deref())?;
                self.tms.push(Some(child));
                Ok(idx)
            })
            .collect()
    }

    /// The resource ids Flink lists in `/taskmanagers` (`None` when it does not answer).
    pub async fn registered_ids(&self) -> Option<Vec<String>> {
        let tms = self.task_managers().await.ok()?;
        Some(tms.into_iter().map(|t| t.id).collect())
    }

    /// The resource id (= `/taskmanagers` id) of TaskManager `idx`.
    pub fn tm_id(idx: usize) -> String {
        format!("fks-tm-{idx}")
    }

    /// The index of the TaskManager with resource id `id`.
    pub fn tm_index(id: &str) -> Option<usize> {
        id.strip_prefix("fks-tm-")?.parse().ok()
    }

    /// Stops TaskManager `idx` with SIGTERM (graceful), SIGKILL after 20 s. Blocking.
    pub fn stop_task_manager(&mut self, idx: usize) {
        if let Some(mut child) = self.tms.get_mut(idx).and_then(Option::take) {
            child.terminate(Duration::from_secs(20));
        }
    }

    /// Stops a TaskManager as a ReplicaSet scaling down picks its pod: the newest of ours
    /// that has not registered yet (a pod not ready goes first), else the newest with every
    /// slot free (what pod-deletion-cost makes it pick), and waits (at most 30 s) until
    /// Flink no longer lists it. `Err` with the slot table when none qualifies.
    pub async fn stop_idle_task_manager(&mut self) -> std::result::Result<String, String> {
        let tms = self.task_managers().await.map_err(|e| e.to_string())?;
        let running = |i: &usize| self.tms.get(*i).is_some_and(Option::is_some);
        let pending = (0..self.tms.len())
            .filter(running)
            .filter(|i| !tms.iter().any(|t| t.id == Self::tm_id(*i)))
            .max();
        let idle = tms
            .iter()
            .filter(|t| t.slots > 0 && t.free_slots == t.slots)
            .filter_map(|t| Self::tm_index(&t.id).map(|i| (i, t.id.clone())))
            .filter(|(i, _)| running(i))
            .max();
        let Some((idx, id)) = pending.map(|i| (i, Self::tm_id(i))).or(idle) else {
            return Err(format!(
                "no idle TaskManager: {}",
                tms.iter()
                    .map(|t| format!("{}={}/{} free", t.id, t.free_slots, t.slots))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        };
        tokio::task::block_in_place(|| self.stop_task_manager(idx));
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30)
            && self
                .registered_ids()
                .await
                .is_none_or(|listed| listed.contains(&id))
        {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        Ok(id)
    }

    /// Uploads the job jar and runs it with `args` at `parallelism`; returns the job id
    /// once the job is RUNNING with all tasks running.
    pub async fn submit_job(&self, args: &[String], parallelism: u32) -> Result<String> {
        let jar_path = &self.installed.job_jar;
        let jar = fs::read(jar_path)
            .map_err(|e| ComponentError::io(format!("read {}", jar_path.display()), e))?;
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
        let up = self
            .post_json(
                "jars/upload",
                self.http
                    .post(format!("{}/jars/upload", self.rest_url))
                    .header(
                        "Content-Type",
                        format!("multipart/form-data; boundary={boundary}"),
                    )
                    .body(body),
            )
            .await?;
        let jar_id = up["filename"]
            .as_str()
            .and_then(|f| f.rsplit('/').next())
            .ok_or_else(|| ComponentError::http("POST /jars/upload", up.to_string()))?
            .to_string();
        let run = self
            .post_json(
                "jars/:id/run",
                self.http
                    .post(format!("{}/jars/{jar_id}/run", self.rest_url))
                    .json(&json!({"entryClass": "fks.LoadJob", "parallelism": parallelism, "programArgsList": args})),
            )
            .await?;
        let job = run["jobid"]
            .as_str()
            .ok_or_else(|| ComponentError::http("POST /jars/:id/run", run.to_string()))?
            .to_string();
        self.wait_job_running(&job, None, Duration::from_secs(120))
            .await?;
        Ok(job)
    }

    async fn post_json(&self, what: &str, req: reqwest::RequestBuilder) -> Result<Value> {
        let r = req
            .send()
            .await
            .map_err(|e| ComponentError::http(format!("POST /{what}"), e))?;
        r.json()
            .await
            .map_err(|e| ComponentError::http(format!("POST /{what} (body)"), e))
    }

    /// Waits until `job` is RUNNING, every subtask RUNNING/FINISHED and (if given) every
    /// vertex at `parallelism`.
    pub async fn wait_job_running(
        &self,
        job: &str,
        parallelism: Option<u32>,
        timeout: Duration,
    ) -> Result<()> {
        let path = format!("jobs/{job}");
        let c = self;
        procs::wait_for(
            &format!("job {job} RUNNING at {parallelism:?}"),
            timeout,
            Duration::from_millis(250),
            || {
                let path = path.clone();
                async move {
                    let v = c.get_json(&path).await?;
                    let all = v["state"] == "RUNNING"
                        && v["vertices"].as_array().is_some_and(|vs| {
                            vs.iter().all(|x| {
                                let p = x["parallelism"].as_u64().unwrap_or(0);
                                let t = &x["tasks"];
                                let done = t["RUNNING"].as_u64().unwrap_or(0)
                                    + t["FINISHED"].as_u64().unwrap_or(0);
                                done == p && parallelism.is_none_or(|want| p == u64::from(want))
                            })
                        });
                    all.then_some(())
                }
            },
            || c.log_tail(),
        )
        .await
    }

    /// A raw request: (status, body text).
    pub async fn raw(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, String)> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}/{path}", self.rest_url));
        if let Some(b) = body {
            req = req.json(b);
        }
        let r = req
            .send()
            .await
            .map_err(|e| ComponentError::http(format!("{method} /{path}"), e))?;
        let status = r.status().as_u16();
        Ok((status, r.text().await.unwrap_or_default()))
    }

    /// The last lines of every log file (for failure messages).
    pub fn log_tail(&self) -> String {
        procs::log_tails(&self.root.join("log"), 15)
    }

    /// Path of a file in the work dir (e.g. the job's rate file).
    pub fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// PrometheusReporter scrape targets (`127.0.0.1:<port>` for the whole range).
    pub fn reporter_targets(&self) -> Vec<String> {
        self.reporter_ports
            .clone()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect()
    }
}

impl Drop for FlinkCluster {
    fn drop(&mut self) {
        // TaskManagers first, then the JobManager (ChildGuard kills on drop).
        self.tms.clear();
        self.jm.take();
    }
}
