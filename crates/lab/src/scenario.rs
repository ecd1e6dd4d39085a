//! The scenario: steady → 3× load step → steady → back down, on a real Flink session
//! cluster with a real Prometheus, the built scaler and the KEDA/HPA driver. [`Lab::start`]
//! sets everything up; [`Lab::run`] plays the [`Profile`], samples every second and
//! returns the [`Outcome`]: the timeline, the driver's rounds, the figures and the checks.

use std::{
    io::{IsTerminal, Write as _},
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use chrono::Utc;

use flink_keda_scaler::{keda::pb::ScaledObjectRef, sim::hpa::HpaConfig};

pub use super::profile::{Profile, Workload, JOB_NAME, LATENCY_CONFIG};
use super::{
    driver::{Action, Driver, DriverConfig, DriverReport, TaskManagerControl},
    error::{LabError, Result},
    flink_cluster::{self, ClusterOptions, FlinkCluster, Installed},
    measure::{measure, oracle_tm_seconds, visibilities, Measurements},
    observer::{Moment, Observer},
    procs,
    prometheus_proc::{self, PrometheusOptions, PrometheusProcess},
    scaler_proc::ScalerProcess,
    timeline::{EventKind, Point, Timeline},
};

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

/// The driver's process side: this lab's cluster (and its REST API, to see the new
/// TaskManagers register without holding the cluster meanwhile).
#[derive(Clone)]
struct Control {
    cluster: Arc<tokio::sync::Mutex<FlinkCluster>>,
    http: reqwest::Client,
    rest_url: String,
}

impl TaskManagerControl for Control {
    async fn start(&mut self, n: u32) -> std::result::Result<Vec<String>, String> {
        let ids: Vec<String> = {
            let mut c = self.cluster.lock().await;
            let started = c
                .spawn_task_managers(n as usize)
                .map_err(|e| e.to_string())?;
            started.into_iter().map(FlinkCluster::tm_id).collect()
        };
        fks_components::procs::wait_registered(&self.http, &self.rest_url, &ids, String::new)
            .await
            .map_err(|e| e.to_string())?;
        Ok(ids)
    }

    async fn stop_idle(&mut self) -> std::result::Result<String, String> {
        self.cluster.lock().await.stop_idle_task_manager().await
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
        let installed = install_flink(opts).await?;
        say(&format!(
            "starting a Flink session cluster (adaptive scheduler, {} TaskManager(s), {} workload)",
            profile.min_task_managers.max(1),
            profile.scenario()
        ));
        let (cluster, rate_file) = start_flink(installed, opts, &profile).await?;
        say("submitting the load job");
        let job_id = cluster
            .submit_job(
                &job_args(&profile, &rate_file),
                profile.initial_parallelism(),
            )
            .await?;
        say("starting Prometheus (scrapes every reporter port each second)");
        let prometheus = start_prometheus(&cluster, &job_id, opts).await?;
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
        let driver = self.start_driver(origin);
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
        let mut phases = Phases::new(p);
        let mut progress = Progress::new(self.progress);
        let mut next = tokio::time::Instant::now();
        loop {
            let replicas = driver.state().replicas;
            let moment = Moment {
                phase: phases.phase,
                input_rate: phases.rate,
                replicas,
            };
            let pt = observer.sample(moment, &mut timeline).await?;
            phases.saw(&pt);
            progress.line(&pt, phases.phase, phases.rate);
            if let Some((name, to)) = phases.next(&pt, replicas, p) {
                set_rate(&self.rate_file, to as u32)?;
                timeline.push_event(
                    origin.elapsed().as_secs_f64(),
                    EventKind::Load,
                    format!("{:.0} → {to:.0} records/s", phases.rate),
                );
                phases.enter(name, to);
            }
            if phases.settled(p) {
                break;
            }
            next += p.sample_every;
            let now = tokio::time::Instant::now();
            if next < now {
                next = now;
            }
            tokio::time::sleep_until(next).await;
        }
        progress.finish();
        let report = driver.finish().await?;
        driver_events(&report, &mut timeline);
        observer.failovers(&mut timeline).await?;
        observer
            .refine_visible(&visibilities(&timeline), &mut timeline)
            .await;
        let mut measurements = measure(&timeline);
        measurements.oracle_tm_seconds =
            oracle_tm_seconds(&timeline, |rate| p.oracle_task_managers(rate));
        measurements.spare = p.spare;
        Ok(Outcome {
            measurements,
            rescales: observer.rescales.values().cloned().collect(),
            driver: report,
            timeline,
        })
    }

    /// The KEDA/HPA driver for this lab's ScaledObject, with the profile's periods.
    fn start_driver(&self, origin: Instant) -> Driver {
        let p = &self.profile;
        Driver::start(
            self.scaler.grpc_addr(),
            self.scaled_object(),
            DriverConfig {
                polling_interval: p.polling_interval,
                // the HPA behaviour the example ScaledObjects ship (the whole step in one
                // sync), with the profile's periods
                hpa: HpaConfig {
                    sync_period_s: p.hpa_sync_period.as_secs_f64(),
                    scale_down_stabilization_s: p.hpa_stabilization.as_secs_f64(),
                    ..HpaConfig::shipped(p.min_task_managers, p.max_task_managers)
                },
            },
            p.min_task_managers.max(1),
            Control {
                cluster: self.cluster.clone(),
                http: reqwest::Client::new(),
                rest_url: self.rest_url.clone(),
            },
            origin,
        )
    }
}

/// Installs Flink `opts.flink_version` with `opts.flink_script` (cached).
async fn install_flink(opts: &LabOptions) -> Result<Installed> {
    let script = opts.flink_script.clone();
    let version = opts.flink_version.clone();
    tokio::task::spawn_blocking(move || flink_cluster::install(&script, &version))
        .await
        .map_err(|e| LabError::Scenario(e.to_string()))?
        .map_err(LabError::from)
}

/// A session cluster with the profile's TaskManagers and the latency settings, and its
/// rate file at the low rate.
async fn start_flink(
    installed: Installed,
    opts: &LabOptions,
    profile: &Profile,
) -> Result<(FlinkCluster, PathBuf)> {
    let cluster = FlinkCluster::start(
        installed,
        ClusterOptions {
            slots_per_task_manager: profile.slots,
            task_managers: profile.min_task_managers.max(1) as usize,
            extra_config: LATENCY_CONFIG.to_string(),
            task_manager_jvm: profile.work.task_manager_jvm(),
            ..ClusterOptions::default()
        },
        &opts.work_dir.join("flink"),
    )
    .await?;
    let rate_file = cluster.path("rate");
    set_rate(&rate_file, profile.low_rate)?;
    Ok((cluster, rate_file))
}

/// The LoadJob's arguments: its name, partitions, rate (and rate file), work per record,
/// key groups.
fn job_args(profile: &Profile, rate_file: &std::path::Path) -> Vec<String> {
    vec![
        "--name".to_string(),
        JOB_NAME.to_string(),
        "--partitions".to_string(),
        profile.partitions.to_string(),
        "--rate".to_string(),
        profile.low_rate.to_string(),
        "--rate-file".to_string(),
        rate_file.display().to_string(),
        "--work".to_string(),
        profile.work.arg(),
        "--max-parallelism".to_string(),
        profile.max_parallelism.to_string(),
    ]
}

/// Prometheus scraping the cluster's reporters, once the job's busy time is in.
async fn start_prometheus(
    cluster: &FlinkCluster,
    job_id: &str,
    opts: &LabOptions,
) -> Result<PrometheusProcess> {
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
    Ok(prometheus)
}

/// Where the run is: the phase (`steady` → `step` → `back`), since when, at which rate,
/// the parallelism it started at and its peak, and when the scale-down was done.
struct Phases {
    phase: &'static str,
    phase_at: Instant,
    rate: f64,
    low: f64,
    high: f64,
    start_par: u32,
    peak_par: u32,
    done_at: Option<Instant>,
}

impl Phases {
    fn new(p: &Profile) -> Self {
        let (low, high) = (f64::from(p.low_rate), f64::from(p.high_rate()));
        Self {
            phase: "steady",
            phase_at: Instant::now(),
            rate: low,
            low,
            high,
            start_par: 0,
            peak_par: 0,
            done_at: None,
        }
    }

    /// Notes the sampled parallelism (the first one and the peak).
    fn saw(&mut self, pt: &Point) {
        if self.start_par == 0 {
            self.start_par = pt.max_parallelism();
        }
        self.peak_par = self.peak_par.max(pt.max_parallelism());
    }

    /// The phase to enter and its rate, if this sample ends the current one; in `back`,
    /// notes when the job scaled down in place and released the surplus TaskManagers.
    fn next(&mut self, pt: &Point, replicas: u32, p: &Profile) -> Option<(&'static str, f64)> {
        let idle = pt.scaler_idle();
        let running = pt.all_running;
        // what the job should have registered: what it runs on plus the spare
        let wanted = pt
            .flink
            .as_ref()
            .map_or(u32::MAX, |f| p.with_spare_on(f.required_task_managers()));
        let spare_ready = pt.task_managers() >= wanted;
        let elapsed = self.phase_at.elapsed();
        match self.phase {
            // with a spare, the step waits (at most `step_max` more) until it is registered
            "steady"
                if elapsed >= p.steady && (spare_ready || elapsed >= p.steady + p.step_max) =>
            {
                Some(("step", self.high))
            }
            "step" => {
                // scaled up in place and the spare replenished
                let scaled = running && idle && pt.max_parallelism() > self.start_par;
                let long_enough = elapsed >= p.step_min;
                ((scaled && spare_ready && long_enough) || elapsed >= p.step_max)
                    .then_some(("back", self.low))
            }
            "back" => {
                // scaled down in place and the surplus TaskManagers released (the spare
                // kept): the driver's replicas down, and Flink no longer lists them
                let released = replicas <= wanted && pt.task_managers() <= wanted;
                let down = running && idle && pt.max_parallelism() < self.peak_par && released;
                if self.done_at.is_none() && (down || elapsed >= p.back_max) {
                    self.done_at = Some(Instant::now());
                }
                None
            }
            _ => None,
        }
    }

    fn enter(&mut self, phase: &'static str, rate: f64) {
        self.rate = rate;
        self.phase = phase;
        self.phase_at = Instant::now();
    }

    /// The scale-down is done and the profile's settle time has passed.
    fn settled(&self, p: &Profile) -> bool {
        self.done_at.is_some_and(|d| d.elapsed() >= p.settle)
    }
}

/// The live progress line on stderr: rewritten in place on a terminal, every 10 s
/// otherwise.
struct Progress {
    on: bool,
    tty: bool,
    last_line: Option<Instant>,
}

impl Progress {
    fn new(on: bool) -> Self {
        Self {
            on,
            tty: std::io::stderr().is_terminal(),
            last_line: None,
        }
    }

    fn line(&mut self, pt: &Point, phase: &str, rate: f64) {
        let due = self.tty
            || self
                .last_line
                .is_none_or(|l| l.elapsed() >= Duration::from_secs(10));
        if !self.on || !due {
            return;
        }
        self.last_line = Some(Instant::now());
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
        if self.tty {
            eprint!("\r\x1b[2K{line}");
        } else {
            eprintln!("{line}");
        }
        let _ = std::io::stderr().flush();
    }

    fn finish(&self) {
        if self.on && self.tty {
            eprintln!();
        }
    }
}

/// The driver's HPA syncs that raised the replicas, TaskManager starts, stops and
/// refusals as timeline events.
fn driver_events(report: &DriverReport, timeline: &mut Timeline) {
    for s in &report.samples {
        for a in &s.actions {
            let at = s.at.as_secs_f64();
            let (at, kind, detail) = match a {
                Action::Scaled(when, from, to) => {
                    (*when, EventKind::HpaScaled, format!("{from}→{to} replicas"))
                }
                Action::Started {
                    id, registered_at, ..
                } => (*registered_at, EventKind::TaskManagerStarted, id.clone()),
                Action::Stopped(id) => (at, EventKind::TaskManagerStopped, id.clone()),
                Action::StartFailed(why) | Action::Refused(why) => {
                    (at, EventKind::Refused, why.clone())
                }
            };
            timeline.push_event(at, kind, detail);
        }
    }
}

#[cfg(test)]
#[path = "scenario_tests.rs"]
mod tests;
