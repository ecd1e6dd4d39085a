//! The closed loop on real Flink, short profile: a standalone session cluster (adaptive
//! scheduler, slot packing, 2 slots per TaskManager, 1 TaskManager to start) runs the
//! LoadJob; Prometheus scrapes the JobManager's and TaskManagers' PrometheusReporter; the
//! built scaler (`serve`) decides and rescales in place; a KEDA + HPA driver
//! (`support/keda_driver.rs`, gRPC and process control only) starts and stops
//! TaskManagers from what the scaler reports.
//!
//! Scenario: steady low rate → load step (the job saturates) → scale-up in place → low
//! rate again → scale-down in place (a TaskManager stopped by the driver while idle).
//!
//! Asserts: one JobID throughout; at least one rescale up and one down; no failover (an
//! empty exception history: Flink counts every in-place rescale in `numRestarts`, so that
//! counter is only bounded by the rescales); never more than one rescale in flight (the
//! scaler's `/debug/jobs` sampled every second: each rescale finishes before the next
//! starts); the TaskManager count reported to KEDA never below what Flink's running slots
//! need (`ceil(max vertex parallelism / slots)`, one slot-sharing group); the driver never
//! had to refuse a scale-down for lack of an idle TaskManager.
//!
//! `cargo test --test flink_loop -- --nocapture` prints the timeline. Version from
//! `FKS_FLINK_VERSION` (default 2.3.0).

#[path = "support/keda_driver.rs"]
mod keda_driver;
mod support;

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
    time::{Duration, Instant},
};

use flink_keda_scaler::{
    core::rescale::RESCALE_RESTARTS_ALLOWED,
    flink::{ClientOptions, FlinkClient},
    keda::pb::ScaledObjectRef,
};
use keda_driver::{Driver, DriverConfig, FlinkView, TaskManagerControl, HPA_TOLERANCE};
use serde_json::Value;
use support::{
    flink::{install, ClusterOptions, FlinkCluster},
    prometheus::{PrometheusHarness, FIRST_SCRAPE_WAIT},
    scaler::{config_yaml, ScalerProcess},
};

const JOB_NAME: &str = "fks-loop-job";
const SLOTS: u32 = 2;
const MIN_TMS: u32 = 1;
const MAX_TMS: u32 = 3;
/// CPU iterations per record in the keyed operator: ~0.7 ms of CPU per record (measured
/// with this job: 200,000 iterations ≈ 0.35 ms on this project's machine).
const WORK: u32 = 400_000;
/// Records/s when steady: ~0.45 of a core, one keyed subtask busy within the band.
const LOW_RATE: u32 = 650;
/// Records/s after the 3× step: ~1.35 cores, more than one subtask can process (busy
/// 1.0, backlog grows), about 4 subtasks at the 0.35 target (2 TaskManagers), still
/// within a 2-core machine's reach.
const HIGH_RATE: u32 = 3 * LOW_RATE;
const POLLING: Duration = Duration::from_secs(2);
const HPA_STABILIZATION: Duration = Duration::from_secs(20);

/// The process side of the driver: this test's cluster.
struct Control {
    cluster: Arc<tokio::sync::Mutex<FlinkCluster>>,
    rest: FlinkRest,
    job: String,
}

/// Flink over its REST API with its own client (no lock on the cluster, so the observer
/// keeps sampling while the driver starts a TaskManager).
#[derive(Clone)]
struct FlinkRest {
    http: reqwest::Client,
    url: String,
}

impl FlinkRest {
    fn new(url: &str) -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .expect("http client"),
            url: url.to_string(),
        }
    }

    async fn get(&self, path: &str) -> Option<Value> {
        let r = self
            .http
            .get(format!("{}/{path}", self.url))
            .send()
            .await
            .ok()?;
        if !r.status().is_success() {
            return None;
        }
        r.json().await.ok()
    }

    async fn view(&self, job: &str) -> FlinkView {
        let details = self.get(&format!("jobs/{job}")).await;
        let max_parallelism = details
            .as_ref()
            .and_then(|d| d["vertices"].as_array())
            .map(|vs| {
                vs.iter()
                    .filter_map(|v| v["parallelism"].as_u64())
                    .max()
                    .unwrap_or(0) as u32
            })
            .unwrap_or(0);
        let task_managers = self
            .get("overview")
            .await
            .and_then(|o| o["taskmanagers"].as_u64())
            .unwrap_or(0) as usize;
        FlinkView {
            task_managers,
            max_parallelism,
            job_id: details
                .as_ref()
                .and_then(|d| d["jid"].as_str())
                .unwrap_or("?")
                .to_string(),
            job_state: details
                .as_ref()
                .and_then(|d| d["state"].as_str())
                .unwrap_or("?")
                .to_string(),
            slots_per_task_manager: SLOTS,
        }
    }
}

impl TaskManagerControl for Control {
    async fn start_one(&mut self) {
        let mut c = self.cluster.lock().await;
        c.add_task_manager().await;
    }

    async fn stop_idle(&mut self) -> Result<String, String> {
        let mut c = self.cluster.lock().await;
        let tms = c
            .get_json("taskmanagers")
            .await
            .ok_or("GET /taskmanagers failed")?;
        // like pod-deletion-cost: only a TaskManager with every slot free; the newest first
        let idle = tms["taskmanagers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|t| t["freeSlots"].as_u64().is_some() && t["freeSlots"] == t["slotsNumber"])
            .filter_map(|t| t["id"].as_str())
            .filter_map(|id| FlinkCluster::tm_index(id).map(|i| (i, id.to_string())))
            .max();
        let Some((idx, id)) = idle else {
            return Err(format!(
                "no idle TaskManager: {}",
                tms["taskmanagers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|t| format!("{}={}/{}", t["id"], t["freeSlots"], t["slotsNumber"]))
                    .collect::<Vec<_>>()
                    .join(",")
            ));
        };
        let before = c.registered_task_managers().await;
        tokio::task::block_in_place(|| c.stop_task_manager(idx));
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30)
            && c.registered_task_managers().await >= before
        {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        Ok(id)
    }

    async fn view(&mut self) -> FlinkView {
        self.rest.view(&self.job).await
    }
}

/// The PrometheusReporter port range from the cluster's config (JobManager and
/// TaskManagers each take the next free port of it).
fn reporter_targets(c: &FlinkCluster) -> Vec<String> {
    let conf = std::fs::read_to_string(c.conf_dir.join("config.yaml"))
        .or_else(|_| std::fs::read_to_string(c.conf_dir.join("flink-conf.yaml")))
        .expect("flink config");
    let range = conf
        .lines()
        .find_map(|l| l.strip_prefix("metrics.reporter.prom.port:"))
        .expect("reporter port range")
        .trim()
        .to_string();
    let (a, b) = range.split_once('-').expect("a port range");
    let (a, b): (u16, u16) = (a.parse().expect("port"), b.parse().expect("port"));
    (a..=b).map(|p| format!("127.0.0.1:{p}")).collect()
}

fn policy() -> String {
    format!(
        "    targetUtilization: 0.35\n    utilizationLow: 0.2\n    utilizationHigh: 0.85\n\
         \x20   catchUpDuration: 1m\n    stabilization: 10s\n    scaleDownDelay: 20s\n\
         \x20   maxScaleDownFactor: 0.5\n    cooldown: 20s\n    maxRescalesPerHour: 30\n\
         \x20   minTaskManagers: {MIN_TMS}\n    maxTaskManagers: {MAX_TMS}\n\
         \x20   slotsPerTaskManager: {SLOTS}\n"
    )
}

/// One `/debug/jobs` sample of the rescale state.
#[derive(Debug, Clone)]
struct DebugSample {
    at: Duration,
    reported: Option<u64>,
    rescale: Option<Value>,
}

/// A rescale as `/debug/jobs` showed it over time.
#[derive(Debug)]
#[allow(dead_code)] // printed with {:#?}
struct SeenRescale {
    direction: String,
    from: u64,
    to: u64,
    finished_at: Option<String>,
    phases: Vec<String>,
}

fn set_rate(path: &std::path::Path, rate: u32) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, rate.to_string()).expect("write rate");
    std::fs::rename(&tmp, path).expect("replace rate file");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keda_loop_scales_up_and_down_in_place() {
    let t0 = Instant::now();
    let Some(installed) = install() else {
        return;
    };
    let cluster = FlinkCluster::start(
        installed,
        ClusterOptions {
            slots_per_task_manager: SLOTS,
            task_managers: 1,
            ..ClusterOptions::default()
        },
    )
    .await;
    let rate_file = cluster.path("rate");
    set_rate(&rate_file, LOW_RATE);
    let args: Vec<String> = [
        "--name",
        JOB_NAME,
        "--partitions",
        "8",
        "--rate",
        &LOW_RATE.to_string(),
        "--rate-file",
        rate_file.to_str().expect("utf-8 path"),
        "--work",
        &WORK.to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let job = cluster.submit_job(&args, 1).await;
    let rest_url = cluster.rest_url.clone();
    let flink = FlinkClient::new(&rest_url, ClientOptions::default()).expect("flink client");
    let Some(prom) = PrometheusHarness::start(&reporter_targets(&cluster)).await else {
        return;
    };
    prom.wait_until(
        &format!("flink_taskmanager_job_task_busyTimeMsPerSecond{{job_id=\"{job}\"}}"),
        FIRST_SCRAPE_WAIT + Duration::from_secs(30),
        |r| !r.is_empty(),
    )
    .await;
    let config = config_yaml(&prom.url(), &policy())
        .replace("interval: 1s", "interval: 2s")
        .replace("rescaleTimeout: 30s", "rescaleTimeout: 90s")
        .replace("    timeout: 1s\n", "    timeout: 3s\n");
    let scaler = ScalerProcess::start(&config).await;
    eprintln!("set-up took {:?}", t0.elapsed());

    let cluster = Arc::new(tokio::sync::Mutex::new(cluster));
    let rest = FlinkRest::new(&rest_url);
    let so = ScaledObjectRef {
        name: "loop-so".into(),
        namespace: "flink".into(),
        scaler_metadata: [
            ("flinkRestUrl", rest_url.as_str()),
            ("jobName", JOB_NAME),
            ("minTaskManagers", "1"),
            ("maxTaskManagers", "3"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
    };
    let driver = Driver::start(
        scaler.grpc_addr(),
        so,
        DriverConfig {
            polling_interval: POLLING,
            min_replicas: MIN_TMS,
            max_replicas: MAX_TMS,
            stabilization: HPA_STABILIZATION,
            tolerance: HPA_TOLERANCE,
        },
        1,
        Control {
            cluster: cluster.clone(),
            rest: rest.clone(),
            job: job.clone(),
        },
    );

    // The test's own observer: the scaler's rescale state (/debug/jobs) and Flink, each second.
    let loop_start = Instant::now();
    let mut debug: Vec<DebugSample> = Vec::new();
    let mut views: Vec<(Duration, FlinkView)> = Vec::new();
    let sample = |debug: &mut Vec<DebugSample>, d: Value| {
        let j = d["jobs"].as_array().and_then(|a| a.first()).cloned();
        debug.push(DebugSample {
            at: loop_start.elapsed(),
            reported: j
                .as_ref()
                .and_then(|j| j["reported_task_managers"].as_u64()),
            rescale: j.and_then(|j| (!j["rescale"].is_null()).then(|| j["rescale"].clone())),
        });
    };
    let mut phase = "steady";
    let mut phase_at = Instant::now();
    let mut peak = 1u32;
    let mut failure: Option<String> = None;
    loop {
        sample(&mut debug, scaler.debug_jobs().await);
        let v = rest.view(&job).await;
        views.push((loop_start.elapsed(), v.clone()));
        match phase {
            "steady" if phase_at.elapsed() > Duration::from_secs(20) => {
                eprintln!(
                    "[{:?}] load step {LOW_RATE} → {HIGH_RATE} records/s",
                    loop_start.elapsed()
                );
                set_rate(&rate_file, HIGH_RATE);
                phase = "up";
                phase_at = Instant::now();
            }
            "up" => {
                // scaled up in place: running on the slots of more than one TaskManager
                if v.job_state == "RUNNING" && v.max_parallelism > SLOTS && v.task_managers > 1 {
                    peak = peak.max(v.max_parallelism);
                    eprintln!(
                        "[{:?}] scaled up to parallelism {peak} on {} TaskManagers; load back to {LOW_RATE}",
                        loop_start.elapsed(),
                        v.task_managers
                    );
                    set_rate(&rate_file, LOW_RATE);
                    phase = "down";
                    phase_at = Instant::now();
                } else if phase_at.elapsed() > Duration::from_secs(180) {
                    failure = Some("no scale-up within 180 s of the load step".into());
                    break;
                }
            }
            "down" => {
                peak = peak.max(v.max_parallelism);
                let stopped = views.iter().any(|(_, w)| w.task_managers > v.task_managers);
                if v.job_state == "RUNNING" && v.max_parallelism < peak && stopped {
                    // one more HPA round to observe the settled state
                    tokio::time::sleep(POLLING * 2).await;
                    sample(&mut debug, scaler.debug_jobs().await);
                    break;
                }
                if phase_at.elapsed() > Duration::from_secs(180) {
                    failure = Some("no scale-down within 180 s of lowering the rate".into());
                    break;
                }
            }
            _ => {}
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let report = driver.finish().await;
    let exceptions = flink.exceptions(&job).await.expect("exception history");
    let restarts = flink
        .job_metrics(&job, &["numRestarts"])
        .await
        .ok()
        .and_then(|m| m.get("numRestarts").copied());

    // Rescales seen by the observer, by their start time.
    let mut rescales: BTreeMap<String, SeenRescale> = BTreeMap::new();
    for s in &debug {
        if let Some(r) = &s.rescale {
            let e = rescales
                .entry(r["started_at"].as_str().unwrap_or("?").to_string())
                .or_insert_with(|| SeenRescale {
                    direction: r["direction"].as_str().unwrap_or("?").to_string(),
                    from: r["from"]["task_managers"].as_u64().unwrap_or(0),
                    to: r["to"]["task_managers"].as_u64().unwrap_or(0),
                    finished_at: None,
                    phases: Vec::new(),
                });
            if let Some(f) = r["finished_at"].as_str() {
                e.finished_at = Some(f.to_string());
            }
            let p = r["phase"].as_str().unwrap_or("?").to_string();
            if e.phases.last() != Some(&p) {
                e.phases.push(p);
            }
        }
    }

    // The timeline: the driver's polls, with the scaler's rescale phase at that moment.
    let mut extra = HashMap::new();
    for (i, s) in report.samples.iter().enumerate() {
        let d = debug.iter().rev().find(|d| d.at <= s.at);
        if let Some(r) = d.and_then(|d| d.rescale.as_ref()) {
            extra.insert(
                i,
                format!(
                    "{}:{}",
                    r["direction"].as_str().unwrap_or("?"),
                    r["phase"].as_str().unwrap_or("?")
                ),
            );
        }
    }
    eprintln!(
        "timeline (KEDA poll every {POLLING:?}; par = max vertex parallelism, req = TaskManagers it needs):\n{}",
        keda_driver::timeline_table(&report, &extra)
    );
    eprintln!("rescales (from /debug/jobs): {rescales:#?}");
    eprintln!(
        "TaskManagers started {}, stopped {:?}, refused {:?}; numRestarts {restarts:?}; exception entries {}; total {:?}",
        report.started,
        report.stopped,
        report.refused,
        exceptions.entries.len(),
        t0.elapsed()
    );
    if let Some(f) = failure {
        let c = cluster.lock().await;
        panic!(
            "{f}\n/debug/jobs: {:#}\n{}\nscaler log:\n{}",
            scaler.debug_jobs().await,
            c.log_tail(),
            scaler.log()
        );
    }

    // Same JobID throughout, never a terminal state.
    for s in &report.samples {
        assert_eq!(s.flink.job_id, job, "job id changed at {:?}", s.at);
        assert!(
            matches!(
                s.flink.job_state.as_str(),
                "RUNNING" | "RESTARTING" | "CREATED" | "INITIALIZING"
            ),
            "job state {} at {:?}",
            s.flink.job_state,
            s.at
        );
    }
    // Up and down, in place.
    let ups = rescales.values().filter(|r| r.direction == "up").count();
    let downs = rescales.values().filter(|r| r.direction == "down").count();
    assert!(ups >= 1 && downs >= 1, "rescales: {rescales:#?}");
    assert!(report.started >= 1, "the driver started a TaskManager");
    assert!(
        !report.stopped.is_empty(),
        "the driver stopped a TaskManager"
    );
    let first = report
        .samples
        .first()
        .expect("samples")
        .flink
        .max_parallelism;
    let top = report
        .samples
        .iter()
        .map(|s| s.flink.max_parallelism)
        .max()
        .unwrap_or(0);
    let last = report
        .samples
        .last()
        .expect("samples")
        .flink
        .max_parallelism;
    assert!(
        top > first && last < top,
        "parallelism {first} → {top} → {last}"
    );
    // No failover: the exception history is empty; numRestarts only counts rescales.
    assert!(
        exceptions.entries.is_empty(),
        "failovers: {:?}",
        exceptions.entries
    );
    if let Some(n) = restarts {
        assert!(
            n <= (rescales.len() as u64 * RESCALE_RESTARTS_ALLOWED) as f64,
            "numRestarts {n} for {} rescales",
            rescales.len()
        );
    }
    // Never more than one rescale in flight: each finished before the next started.
    let ts = |t: &str| {
        chrono::DateTime::parse_from_rfc3339(t).unwrap_or_else(|e| panic!("timestamp {t}: {e}"))
    };
    let mut list: Vec<_> = rescales.iter().collect();
    list.sort_by_key(|(started, _)| ts(started));
    for pair in list.windows(2) {
        let ((started, r), (next, _)) = (pair[0], pair[1]);
        let finished = r.finished_at.as_ref().unwrap_or_else(|| {
            panic!("rescale started {started} never seen finished before the next: {rescales:#?}")
        });
        assert!(
            ts(finished) <= ts(next),
            "rescale {started} finished {finished} after the next started {next}"
        );
    }
    // What KEDA was told never fell below what Flink's running slots required.
    for s in &report.samples {
        if let Ok(v) = s.reported {
            assert!(
                v >= f64::from(s.required()),
                "reported {v} < required {} at {:?}",
                s.required(),
                s.at
            );
        }
        assert!(
            s.flink.task_managers as u32 >= s.required() || s.flink.job_state != "RUNNING",
            "running with fewer TaskManagers than slots need at {:?}",
            s.at
        );
    }
    for d in &debug {
        if let Some(r) = d.reported {
            let v = views
                .iter()
                .rev()
                .find(|(at, _)| *at <= d.at)
                .map(|(_, v)| v);
            if let Some(v) = v {
                let required = u64::from(v.max_parallelism.div_ceil(SLOTS));
                assert!(
                    r >= required,
                    "/debug/jobs reported {r} < required {required} at {:?}",
                    d.at
                );
            }
        }
    }
    assert!(
        report.refused.is_empty(),
        "busy TaskManagers only: {:?}",
        report.refused
    );
    let errors = report
        .samples
        .iter()
        .filter(|s| s.reported.is_err())
        .count();
    eprintln!(
        "GetMetrics errors: {errors} of {} polls",
        report.samples.len()
    );
}
