//! The scenario: steady → 3× load step → steady → back down, on a real Flink session
//! cluster with a real Prometheus, the built scaler and the KEDA/HPA driver. [`Lab::start`]
//! sets everything up; [`Lab::run`] plays the profile, samples every second and returns
//! the [`Outcome`]: the timeline, the driver's rounds, the figures and the checks.

use std::{
    io::{IsTerminal, Write as _},
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use chrono::Utc;

use flink_keda_scaler::{keda::pb::ScaledObjectRef, sim::hpa::HpaConfig};

use super::{
    driver::{Action, Driver, DriverConfig, DriverReport, TaskManagerControl},
    error::{LabError, Result},
    flink_cluster::{self, ClusterOptions, FlinkCluster},
    measure::{measure, Measurements},
    observer::{Moment, Observer},
    procs,
    prometheus_proc::{self, PrometheusOptions, PrometheusProcess},
    scaler_proc::ScalerProcess,
    timeline::{EventKind, Timeline},
};

/// Job name in Flink (and `jobName` in the trigger metadata).
pub const JOB_NAME: &str = "fks-demo-job";

/// Timings, load and sizes of one run.
#[derive(Debug, Clone)]
pub struct Profile {
    /// Name (`full`, `short`).
    pub name: &'static str,
    /// Steady phase before the step.
    pub steady: Duration,
    /// Least time at the high rate.
    pub step_min: Duration,
    /// Most time at the high rate before giving up on the scale-up.
    pub step_max: Duration,
    /// Most time at the low rate before giving up on the scale-down.
    pub back_max: Duration,
    /// Extra seconds after the scale-down (to show the settled state).
    pub settle: Duration,
    /// Records/s when steady.
    pub low_rate: u32,
    /// The step factor.
    pub factor: u32,
    /// CPU iterations per record in the keyed operator.
    pub work: u32,
    /// Topic partitions.
    pub partitions: u32,
    /// Slots per TaskManager.
    pub slots: u32,
    /// `minReplicaCount` / `minTaskManagers`.
    pub min_task_managers: u32,
    /// `maxReplicaCount` / `maxTaskManagers`.
    pub max_task_managers: u32,
    /// KEDA `pollingInterval`.
    pub polling_interval: Duration,
    /// HPA sync period.
    pub hpa_sync_period: Duration,
    /// HPA scale-down stabilization window.
    pub hpa_stabilization: Duration,
    /// The scaler's `evaluation.interval`.
    pub evaluation_interval: Duration,
    /// The policy's `utilizationLow` (the band's lower edge).
    pub utilization_low: f64,
    /// Sample period of the observer.
    pub sample_every: Duration,
}

impl Profile {
    /// The demo and benchmark run: KEDA's and the HPA's timings as in a cluster
    /// (HPA sync 15 s = Kubernetes' default, pollingInterval 5 s, scale-down
    /// stabilization 30 s), one minute steady, at least two minutes at 3×.
    pub fn full() -> Self {
        Self {
            name: "full",
            steady: Duration::from_secs(60),
            step_min: Duration::from_secs(120),
            step_max: Duration::from_secs(240),
            back_max: Duration::from_secs(300),
            settle: Duration::from_secs(20),
            utilization_low: 0.2,
            ..Self::short()
        }
        .with_keda(
            Duration::from_secs(5),
            Duration::from_secs(15),
            Duration::from_secs(30),
        )
    }

    /// The CI profile: the same scenario, shorter phases and 2 s KEDA/HPA periods; the
    /// step ends as soon as the job scaled up.
    pub fn short() -> Self {
        Self {
            name: "short",
            steady: Duration::from_secs(20),
            step_min: Duration::ZERO,
            step_max: Duration::from_secs(180),
            back_max: Duration::from_secs(180),
            settle: Duration::from_secs(4),
            // ~0.7 ms of CPU per record: 650 records/s keep one keyed subtask ~45 % busy,
            // 3× saturates it and needs 2–3 subtasks, still within a 2-core machine's
            // reach. One slot per TaskManager: every parallelism step is a TaskManager.
            low_rate: 650,
            factor: 3,
            work: 400_000,
            partitions: 8,
            slots: 1,
            min_task_managers: 1,
            max_task_managers: 4,
            polling_interval: Duration::from_secs(2),
            hpa_sync_period: Duration::from_secs(2),
            hpa_stabilization: Duration::from_secs(20),
            evaluation_interval: Duration::from_secs(2),
            // The product default. On a contended 2-core CI runner four TaskManagers show
            // busy ≈ 0.36 at the low rate (busy time counts time waiting for a CPU): inside a
            // 0.2 band, where the anti-flap rightly holds and the test would see no
            // scale-down.
            utilization_low: 0.4,
            sample_every: Duration::from_secs(1),
        }
    }

    fn with_keda(mut self, polling: Duration, sync: Duration, stabilization: Duration) -> Self {
        self.polling_interval = polling;
        self.hpa_sync_period = sync;
        self.hpa_stabilization = stabilization;
        self
    }

    /// The scaler's `scaleUpDelay` in [`Self::scaler_config`].
    pub fn scale_up_delay(&self) -> Duration {
        Duration::from_secs(8)
    }

    /// The high rate.
    pub fn high_rate(&self) -> u32 {
        self.low_rate * self.factor
    }

    /// The scaler's config for this profile: the policy below and the fast signal queries
    /// of [`FAST_QUERIES`].
    pub fn scaler_config(&self, prom_url: &str) -> String {
        format!(
            "grpc:\n  listenAddress: \"127.0.0.1:50051\"\n  rpcTimeout: 5s\n  streamInterval: 2s\n\
             http:\n  listenAddress: \"127.0.0.1:8080\"\n\
             evaluation:\n  interval: {eval}s\n  idleTimeout: 10m\n\
             prometheus:\n  default:\n    url: \"{prom_url}\"\n    timeout: 3s\n\
             flink:\n  timeout: 3s\n  rescaleTimeout: 90s\n\
             kubernetes:\n  enabled: false\n\
             policies:\n  default:\n\
             \x20   targetUtilization: 0.5\n    utilizationLow: {low}\n    utilizationHigh: 0.9\n\
             \x20   catchUpDuration: 1m\n    stabilization: 15s\n    scaleUpDelay: {up}s\n    scaleDownDelay: 20s\n\
             \x20   maxScaleDownFactor: 0.75\n    cooldown: 20s\n    maxRescalesPerHour: 30\n\
             \x20   minTaskManagers: {min}\n    maxTaskManagers: {max}\n\
             \x20   slotsPerTaskManager: {slots}\n    queries:\n{queries}",
            eval = self.evaluation_interval.as_secs().max(1),
            up = self.scale_up_delay().as_secs(),
            low = self.utilization_low,
            min = self.min_task_managers,
            max = self.max_task_managers,
            slots = self.slots,
            queries = FAST_QUERIES
                .iter()
                .map(|(k, v)| format!("      {k}: '{v}'\n"))
                .collect::<String>(),
        )
    }
}

/// Signal queries that react within seconds. Flink's own per-second metrics
/// (`busyTimeMsPerSecond`, `numRecordsInPerSecond`, ...) are 60 s moving averages updated
/// every 5 s (`TimerGauge` and `MeterView` windows), so a load step takes a minute to show
/// in full. These use the counters behind them (`accumulateBusyTimeMs`, `numRecordsIn`,
/// `numRecordsOut`) over a 10 s window instead; the window must cover at least two
/// scrapes (here: Prometheus scrapes every second).
pub const FAST_QUERIES: [(&str, &str); 4] = [
    (
        "busyTime",
        r#"max by (task_id) (rate(flink_taskmanager_job_task_accumulateBusyTimeMs{ {{matchers}}job_id="{{job_id}}"}[10s]))"#,
    ),
    (
        "recordsIn",
        r#"sum by (task_id) (rate(flink_taskmanager_job_task_operator_numRecordsOut{ {{matchers}}job_id="{{job_id}}",operator_name=~"Source.*"}[10s])) or sum by (task_id) (rate(flink_taskmanager_job_task_numRecordsIn{ {{matchers}}job_id="{{job_id}}"}[10s]))"#,
    ),
    (
        "recordsOut",
        r#"sum by (task_id) (rate(flink_taskmanager_job_task_numRecordsOut{ {{matchers}}job_id="{{job_id}}"}[10s]))"#,
    ),
    (
        "lagGrowth",
        r#"sum by (task_id) (deriv(flink_taskmanager_job_task_operator_pendingRecords{ {{matchers}}job_id="{{job_id}}"}[5s]))"#,
    ),
];

/// Flink settings of a latency-critical job: buffer debloating keeps about one second of
/// records in flight between tasks, so a backlog shows in the source's `pendingRecords`
/// (where the scaler sees it) instead of hiding in network buffers — with Flink's default
/// 32 KiB buffers tens of thousands of small records fit in flight, ~20 s of this job's
/// excess load after a step.
pub const LATENCY_CONFIG: &str = "taskmanager.network.memory.buffer-debloat.enabled: true\n\
     taskmanager.network.memory.buffer-debloat.target: 1s\n";

/// Where things are and which Flink to run.
#[derive(Debug, Clone)]
pub struct LabOptions {
    /// Flink version (`2.3.0`, `1.20.5`).
    pub flink_version: String,
    /// `scripts/flink.sh`.
    pub flink_script: PathBuf,
    /// The `flink-keda-scaler` binary.
    pub scaler_bin: PathBuf,
    /// Work dir (Flink, Prometheus and scaler files and logs).
    pub work_dir: PathBuf,
    /// Print a live progress line to stderr.
    pub progress: bool,
}

/// The running components.
pub struct Lab {
    /// The profile.
    pub profile: Profile,
    /// Flink (shared with the driver's TaskManager control).
    pub cluster: Arc<tokio::sync::Mutex<FlinkCluster>>,
    /// Prometheus.
    pub prometheus: PrometheusProcess,
    /// The scaler.
    pub scaler: ScalerProcess,
    /// The job.
    pub job_id: String,
    /// JobManager REST URL.
    pub rest_url: String,
    /// Flink version.
    pub flink_version: String,
    rate_file: PathBuf,
    progress: bool,
}

/// The driver's process side: this lab's cluster.
struct Control(Arc<tokio::sync::Mutex<FlinkCluster>>);

impl TaskManagerControl for Control {
    async fn start(&mut self, n: u32) -> std::result::Result<Vec<String>, String> {
        let mut c = self.0.lock().await;
        c.add_task_managers(n as usize)
            .await
            .map(|ids| ids.into_iter().map(FlinkCluster::tm_id).collect())
            .map_err(|e| e.to_string())
    }

    async fn stop_idle(&mut self) -> std::result::Result<String, String> {
        self.0.lock().await.stop_idle_task_manager().await
    }
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Second by second.
    pub timeline: Timeline,
    /// The KEDA/HPA driver's rounds.
    pub driver: DriverReport,
    /// Figures.
    pub measurements: Measurements,
    /// Rescales seen (direction, start, end, phases).
    pub rescales: Vec<super::observer::SeenRescale>,
}

impl Outcome {
    /// What the loop must never do: a failover, a second JobID, two rescales in flight,
    /// a reported TaskManager count below what Flink's running slots need, a refused
    /// scale-down (the driver found no idle TaskManager).
    pub fn violations(&self) -> Vec<String> {
        let mut v = Vec::new();
        let m = &self.measurements;
        if m.failovers > 0 {
            v.push(format!(
                "{} failover(s) in Flink's exception history",
                m.failovers
            ));
        }
        if m.job_ids != 1 {
            v.push(format!("{} JobIDs seen (want 1)", m.job_ids));
        }
        for p in &self.timeline.points {
            if let (Some(r), Some(f)) = (p.reported, &p.flink) {
                if r < f.required_task_managers() {
                    v.push(format!(
                        "at {:.0} s the scaler reported {r} TaskManagers, Flink's running slots need {}",
                        p.at,
                        f.required_task_managers()
                    ));
                }
            }
            if let Some(f) = &p.flink {
                if !["RUNNING", "RESTARTING", "CREATED", "INITIALIZING"]
                    .contains(&f.job_state.as_str())
                {
                    v.push(format!("job {} at {:.0} s", f.job_state, p.at));
                }
            }
        }
        let mut rs = self.rescales.clone();
        rs.sort_by(|a, b| a.started_at.total_cmp(&b.started_at));
        for w in rs.windows(2) {
            match w[0].finished_at {
                Some(f) if f <= w[1].started_at + 0.001 => {}
                f => v.push(format!(
                    "rescale started at {:.1} s still in flight (finished {f:?}) when the next started at {:.1} s",
                    w[0].started_at, w[1].started_at
                )),
            }
        }
        for why in self.driver.refused() {
            v.push(format!("driver: {why}"));
        }
        v
    }
}

fn set_rate(path: &std::path::Path, rate: u32) -> Result<()> {
    Ok(procs::write_atomic(path, &rate.to_string())?)
}

impl Lab {
    /// Installs (cached) and starts Flink with the LoadJob, Prometheus scraping its
    /// reporters, and the scaler; returns once the job's metrics are in Prometheus.
    pub async fn start(opts: &LabOptions, profile: Profile) -> Result<Self> {
        let t0 = Instant::now();
        let say = |s: &str| {
            if opts.progress {
                eprintln!("[lab {:>5.1}s] {s}", t0.elapsed().as_secs_f64());
            }
        };
        say(&format!(
            "installing Flink {} (cached after the first run)",
            opts.flink_version
        ));
        let script = opts.flink_script.clone();
        let version = opts.flink_version.clone();
        let installed =
            tokio::task::spawn_blocking(move || flink_cluster::install(&script, &version))
                .await
                .map_err(|e| LabError::Scenario(e.to_string()))??;
        say("starting a Flink session cluster (adaptive scheduler, 1 TaskManager)");
        let cluster = FlinkCluster::start(
            installed,
            ClusterOptions {
                slots_per_task_manager: profile.slots,
                task_managers: profile.min_task_managers.max(1) as usize,
                extra_config: LATENCY_CONFIG.to_string(),
                ..ClusterOptions::default()
            },
            &opts.work_dir.join("flink"),
        )
        .await?;
        let rate_file = cluster.path("rate");
        set_rate(&rate_file, profile.low_rate)?;
        let args = vec![
            "--name".to_string(),
            JOB_NAME.to_string(),
            "--partitions".to_string(),
            profile.partitions.to_string(),
            "--rate".to_string(),
            profile.low_rate.to_string(),
            "--rate-file".to_string(),
            rate_file.display().to_string(),
            "--work".to_string(),
            profile.work.to_string(),
        ];
        say("submitting the load job");
        let job_id = cluster.submit_job(&args, 1).await?;
        say("starting Prometheus (scrapes every reporter port each second)");
        let prometheus = PrometheusProcess::start(
            &PrometheusOptions {
                targets: cluster.reporter_targets(),
                ..PrometheusOptions::default()
            },
            &opts.work_dir.join("prometheus"),
        )
        .await?;
        prometheus_proc::wait_series(
            &prometheus,
            &format!("flink_taskmanager_job_task_busyTimeMsPerSecond{{job_id=\"{job_id}\"}}"),
            Duration::from_secs(90),
        )
        .await?;
        say("starting the scaler");
        let scaler = ScalerProcess::start(
            &opts.scaler_bin,
            &profile.scaler_config(&prometheus.url()),
            &opts.work_dir.join("scaler"),
        )
        .await?;
        let rest_url = cluster.rest_url.clone();
        say(&format!(
            "ready: Flink {rest_url}, Prometheus {}, scaler gRPC {} HTTP {}",
            prometheus.url(),
            scaler.grpc_addr(),
            scaler.http_url()
        ));
        Ok(Self {
            profile,
            cluster: Arc::new(tokio::sync::Mutex::new(cluster)),
            prometheus,
            scaler,
            job_id,
            rest_url,
            flink_version: opts.flink_version.clone(),
            rate_file,
            progress: opts.progress,
        })
    }

    /// The ScaledObject KEDA would send for this job.
    pub fn scaled_object(&self) -> ScaledObjectRef {
        ScaledObjectRef {
            name: "fks-demo".into(),
            namespace: "flink".into(),
            scaler_metadata: [
                ("flinkRestUrl", self.rest_url.clone()),
                ("jobName", JOB_NAME.to_string()),
                (
                    "minTaskManagers",
                    self.profile.min_task_managers.to_string(),
                ),
                (
                    "maxTaskManagers",
                    self.profile.max_task_managers.to_string(),
                ),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        }
    }

    /// Plays the profile and returns what happened.
    pub async fn run(&self) -> Result<Outcome> {
        let p = &self.profile;
        let origin = Instant::now();
        let origin_utc = Utc::now();
        let driver = Driver::start(
            self.scaler.grpc_addr(),
            self.scaled_object(),
            DriverConfig {
                polling_interval: p.polling_interval,
                hpa: HpaConfig {
                    sync_period_s: p.hpa_sync_period.as_secs_f64(),
                    scale_down_stabilization_s: p.hpa_stabilization.as_secs_f64(),
                    ..HpaConfig::new(p.min_task_managers, p.max_task_managers)
                },
            },
            p.min_task_managers.max(1),
            Control(self.cluster.clone()),
            origin,
        );
        let mut observer = Observer::new(
            &self.rest_url,
            &self.job_id,
            p.slots,
            &self.prometheus,
            &self.scaler,
            origin,
            origin_utc,
        )?;
        let mut timeline = Timeline::default();
        let (low, high) = (f64::from(p.low_rate), f64::from(p.high_rate()));
        let mut phase: &'static str = "steady";
        let mut phase_at = Instant::now();
        let mut rate = low;
        let mut start_par = 0u32;
        let mut peak_par = 0u32;
        let mut done_at: Option<Instant> = None;
        let mut next = tokio::time::Instant::now();
        let tty = std::io::stderr().is_terminal();
        let mut last_line: Option<Instant> = None;
        loop {
            let replicas = driver.state().replicas;
            let pt = observer
                .sample(
                    Moment {
                        phase,
                        input_rate: rate,
                        replicas,
                    },
                    &mut timeline,
                )
                .await?;
            if start_par == 0 {
                start_par = pt.max_parallelism();
            }
            peak_par = peak_par.max(pt.max_parallelism());
            if self.progress
                && (tty || last_line.is_none_or(|l| l.elapsed() >= Duration::from_secs(10)))
            {
                last_line = Some(Instant::now());
                let line = format!(
                    "[{:>5.0}s] {:<6} rate {:>5.0}/s  lag {:>7}  parallelism {:>2}  TaskManagers {}  reported {}  {}",
                    pt.at,
                    phase,
                    rate,
                    pt.lag.map(|l| format!("{l:.0}")).unwrap_or("-".into()),
                    pt.max_parallelism(),
                    pt.task_managers(),
                    pt.reported.map(|r| r.to_string()).unwrap_or("-".into()),
                    pt.rescale.as_deref().unwrap_or(""),
                );
                if tty {
                    eprint!("\r\x1b[2K{line}");
                } else {
                    eprintln!("{line}");
                }
                let _ = std::io::stderr().flush();
            }
            let idle = pt.rescale.is_none();
            let running = pt.all_running;
            let next_phase = match phase {
                "steady" if phase_at.elapsed() >= p.steady => Some(("step", high)),
                "step" => {
                    let scaled = running && idle && pt.max_parallelism() > start_par;
                    let long_enough = phase_at.elapsed() >= p.step_min;
                    ((scaled && long_enough) || phase_at.elapsed() >= p.step_max)
                        .then_some(("back", low))
                }
                "back" => {
                    // scaled down in place and the surplus TaskManagers released
                    let needed = pt.flink.as_ref().map_or(u32::MAX, |f| {
                        f.required_task_managers().max(p.min_task_managers)
                    });
                    let released = replicas <= needed;
                    let down = running && idle && pt.max_parallelism() < peak_par && released;
                    if done_at.is_none() && (down || phase_at.elapsed() >= p.back_max) {
                        done_at = Some(Instant::now());
                    }
                    None
                }
                _ => None,
            };
            if let Some((name, to)) = next_phase {
                set_rate(&self.rate_file, to as u32)?;
                timeline.push_event(
                    origin.elapsed().as_secs_f64(),
                    EventKind::Load,
                    format!("{rate:.0} → {to:.0} records/s"),
                );
                rate = to;
                phase = name;
                phase_at = Instant::now();
            }
            if done_at.is_some_and(|d| d.elapsed() >= p.settle) {
                break;
            }
            next += p.sample_every;
            let now = tokio::time::Instant::now();
            if next < now {
                next = now;
            }
            tokio::time::sleep_until(next).await;
        }
        if self.progress && tty {
            eprintln!();
        }
        let report = driver.finish().await?;
        for s in &report.samples {
            for a in &s.actions {
                let (kind, detail) = match a {
                    Action::Started(id) => (EventKind::TaskManagerStarted, id.clone()),
                    Action::Stopped(id) => (EventKind::TaskManagerStopped, id.clone()),
                    Action::StartFailed(why) | Action::Refused(why) => {
                        (EventKind::Refused, why.clone())
                    }
                };
                timeline.push_event(s.at.as_secs_f64(), kind, detail);
            }
        }
        observer.failovers(&mut timeline).await?;
        let measurements = measure(&timeline);
        Ok(Outcome {
            measurements,
            rescales: observer.rescales.values().cloned().collect(),
            driver: report,
            timeline,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flink_keda_scaler::config::Config;

    #[test]
    fn both_profiles_give_a_valid_scaler_config_with_the_fast_queries() {
        for p in [Profile::full(), Profile::short()] {
            let text = p.scaler_config("http://127.0.0.1:9090");
            let config = Config::parse(&text).unwrap_or_else(|e| panic!("{}: {e}\n{text}", p.name));
            let policy = config.policies.get("default").expect("default policy");
            assert_eq!(policy.queries.len(), FAST_QUERIES.len(), "{}", p.name);
            for (signal, query) in FAST_QUERIES {
                assert_eq!(policy.queries.get(signal).map(String::as_str), Some(query));
            }
        }
    }

    #[test]
    fn the_full_profile_uses_cluster_timings() {
        let p = Profile::full();
        assert_eq!(p.hpa_sync_period, Duration::from_secs(15));
        assert_eq!(p.high_rate(), 3 * p.low_rate);
        assert!(p.step_min >= Duration::from_secs(60));
    }
}
