//! The fleet benchmark (issue 16): the built scaler with N ScaledObjects of a synthetic
//! fleet (`fks_components::fleet`: Flink REST + PrometheusReporter series, 100 jobs per
//! JobManager) scraped by a real Prometheus every evaluation interval. Per N:
//!
//! * time until all N answered GetMetrics (from KEDA's first calls);
//! * over a window of whole intervals, 1½ intervals after that (steady state; ticks =
//!   intervals): Prometheus queries per tick
//!   (Prometheus' own `prometheus_http_requests_total{handler="/api/v1/query"}`, nothing
//!   else queries it meanwhile) and Flink REST calls per tick per JobManager (the fleet's
//!   own counters, by endpoint);
//! * the evaluation lag (the scaler's `flink_keda_scaler_evaluation_lag_seconds`, the
//!   largest value sampled every second in the window);
//! * resident memory of the scaler, and GetMetrics p50/p99 and requests/s against it
//!   while it evaluates;
//! * at 100 jobs and more, the rescaling wave ([`super::fleet_wave`]): 10 % of the jobs
//!   need a scale-up at once.

use std::{
    collections::BTreeMap,
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use fks_components::{
    fleet::{FleetOptions, FleetStats, SyntheticFleet},
    prometheus_proc::{PrometheusOptions, PrometheusProcess},
    scaler_proc::{MemoryReading, ScalerProcess},
};
use flink_keda_scaler::keda::pb::{GetMetricsRequest, ScaledObjectRef};

use super::{
    error::{LabError, Result},
    fleet::{exposition_sum, not_evaluated, prometheus_queries},
    fleet_wave::{self, WaveRow},
    grpc_load::{self, LoadLevel},
    procs,
};

/// Jobs per synthetic JobManager.
pub const JOBS_PER_JOB_MANAGER: usize = 100;

/// The figures at one fleet size.
#[derive(Debug, Clone)]
pub struct FleetRow {
    /// ScaledObjects (= jobs).
    pub jobs: usize,
    /// JobManagers of the fleet.
    pub job_managers: usize,
    /// Evaluation interval (= scrape interval).
    pub interval: Duration,
    /// Seconds until all answered GetMetrics (`None`: not all within the limit).
    pub all_answered_s: Option<f64>,
    /// How many answered by then.
    pub answered: usize,
    /// Prometheus queries per tick.
    pub queries_per_tick: f64,
    /// Flink REST calls per tick per JobManager, by endpoint.
    pub rest_per_tick_per_jm: BTreeMap<String, f64>,
    /// Largest evaluation lag seen in the window.
    pub max_lag_s: f64,
    /// Scaler RSS in the window (sampled every second).
    pub rss: Memory,
    /// GetMetrics under load.
    pub get_metrics: LoadLevel,
    /// The rescaling wave (at 100 jobs and more).
    pub wave: Option<WaveRow>,
}

/// How the benchmark runs.
#[derive(Debug, Clone)]
pub struct FleetBenchOptions {
    /// The scaler binary.
    pub scaler_bin: std::path::PathBuf,
    /// Work dir (Prometheus data, scaler config).
    pub work_dir: std::path::PathBuf,
    /// Evaluation (and scrape) interval.
    pub interval: Duration,
    /// Intervals in the measuring window.
    pub window_intervals: u32,
    /// Longest wait for all to answer.
    pub answer_limit: Duration,
    /// GetMetrics load duration.
    pub load: Duration,
    /// Longest wait for the rescaling wave's jobs to reach their targets.
    pub wave_limit: Duration,
    /// Run the rescaling wave (at 100 jobs and more).
    pub wave: bool,
}

fn config(prom_url: &str, interval: Duration) -> String {
    format!(
        "grpc:\n  listenAddress: \"127.0.0.1:50051\"\n  rpcTimeout: 10s\n  streamInterval: 30s\n\
         http:\n  listenAddress: \"127.0.0.1:8080\"\n\
         evaluation:\n  interval: {}s\n  idleTimeout: 1h\n\
         prometheus:\n  default:\n    url: \"{prom_url}\"\n    timeout: 10s\n\
         flink:\n  timeout: 10s\n  rescaleTimeout: 90s\n\
         kubernetes:\n  enabled: false\n\
         policies:\n  default:\n    dryRun: false\n    minTaskManagers: 1\n    maxTaskManagers: 64\n",
        interval.as_secs().max(1)
    )
}

fn request(job: &fks_components::fleet::FleetJob, metric: &str) -> GetMetricsRequest {
    GetMetricsRequest {
        scaled_object_ref: Some(ScaledObjectRef {
            name: format!("job-{:04}", job.index),
            namespace: format!("team-{}", job.index % 10),
            scaler_metadata: [
                ("flinkRestUrl", job.rest_url.clone()),
                ("jobId", job.id.clone()),
                ("minTaskManagers", "1".to_string()),
                ("maxTaskManagers", "64".to_string()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        }),
        metric_name: metric.to_string(),
    }
}

/// One GetMetrics request per job, with the metric name the scaler's GetMetricSpec gives
/// its ScaledObject (derived from the job id), asked 64 at a time.
async fn requests(
    clients: &[grpc_load::Client],
    jobs: &[fks_components::fleet::FleetJob],
) -> Result<Vec<GetMetricsRequest>> {
    let mut out = Vec::with_capacity(jobs.len());
    for chunk in jobs.chunks(64) {
        let mut calls = Vec::new();
        for (k, job) in chunk.iter().enumerate() {
            let mut c = clients[k % clients.len()].clone();
            let so = request(job, "").scaled_object_ref.unwrap_or_default();
            calls.push(tokio::spawn(async move { c.get_metric_spec(so).await }));
        }
        for (job, call) in chunk.iter().zip(calls) {
            let answer = call.await.map_err(|e| LabError::Scenario(e.to_string()))?;
            let metric = super::fleet::metric_name(answer)?;
            out.push(request(job, &metric));
        }
    }
    Ok(out)
}

/// Waits until every request answers OK or `limit` passes; how many answered and when.
async fn wait_answered(
    clients: &[grpc_load::Client],
    requests: &[GetMetricsRequest],
    limit: Duration,
) -> Result<(usize, Option<f64>)> {
    let started = Instant::now();
    let mut pending: Vec<usize> = (0..requests.len()).collect();
    loop {
        pending = not_evaluated(clients, requests, &pending).await?;
        if pending.is_empty() {
            return Ok((requests.len(), Some(started.elapsed().as_secs_f64())));
        }
        if started.elapsed() > limit {
            return Ok((requests.len() - pending.len(), None));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Returns once the signal hub's next full round has sent all its queries: the scaler's
/// batch-query counter moved and then stayed put for a second (a round's queries leave
/// within a second of each other; rounds are an interval apart). Gives up after 1½
/// intervals (the window is then as long as it is; the lag shows a stalled hub).
async fn round_done(scaler: &ScalerProcess, interval: Duration) {
    let batches = |t: &str| {
        exposition_sum(
            t,
            "flink_keda_scaler_prometheus_queries_total",
            "kind=\"batch\"",
        )
    };
    let read = || async { scaler.metrics().await.ok().map(|t| batches(&t)) };
    let started = Instant::now();
    let mut last = read().await;
    let (mut moved, mut still_since) = (false, Instant::now());
    while started.elapsed() < interval * 3 / 2 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = read().await;
        if now != last {
            (moved, still_since, last) = (true, Instant::now(), now);
        } else if moved && still_since.elapsed() >= Duration::from_secs(1) {
            return;
        }
    }
}

/// The figures at `jobs` ScaledObjects.
pub async fn measure(opts: &FleetBenchOptions, jobs: usize) -> Result<FleetRow> {
    let job_managers = jobs.div_ceil(JOBS_PER_JOB_MANAGER).max(1);
    let fleet = SyntheticFleet::start(&FleetOptions {
        jobs,
        job_managers,
        ..FleetOptions::default()
    })?;
    let dir = opts.work_dir.join(format!("fleet-{jobs}"));
    std::fs::create_dir_all(&dir).map_err(|e| LabError::io("create the fleet work dir", e))?;
    let prom = PrometheusProcess::start(
        &PrometheusOptions {
            targets: fleet.metrics_targets(),
            scrape_interval: Some(opts.interval),
            ..PrometheusOptions::default()
        },
        &dir.join("prometheus"),
    )
    .await?;
    // Every JobManager scraped once before the scaler starts.
    let up = Instant::now();
    while prom.scalar("count(up == 1)").await.unwrap_or(0.0) < job_managers as f64 {
        if up.elapsed() > opts.interval * 4 {
            return Err(LabError::Scenario(format!(
                "Prometheus did not scrape the {job_managers} fleet JobManagers"
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let scaler = ScalerProcess::start(
        &opts.scaler_bin,
        &config(&prom.url(), opts.interval),
        &dir.join("scaler"),
    )
    .await?;
    let clients = grpc_load::connect(&scaler.grpc_addr(), 4).await?;
    let requests = requests(&clients, &fleet.jobs()).await?;
    let (answered, all_answered_s) = wait_answered(&clients, &requests, opts.answer_limit).await?;

    // Steady state: every job past its first, immediate tick and on its phase.
    tokio::time::sleep(opts.interval * 3 / 2).await;
    // Long timeout: at 1,000 jobs with per-job queries Prometheus itself is overloaded.
    let http = procs::http_client(Duration::from_secs(60))?;
    // The window runs from the end of one round of the signal hub to the end of the
    // `window_intervals`-th next one: a window of wall time alone holds one round more or
    // less depending on where it falls (±50 % over two intervals).
    round_done(&scaler, opts.interval).await;
    let (q0, r0) = (prometheus_queries(&http, &prom.url()).await?, fleet.stats());
    let window = opts.interval * opts.window_intervals;
    let started = Instant::now();
    let mut max_lag_s: f64 = 0.0;
    let mut memory = Vec::new();
    while started.elapsed() + opts.interval / 2 < window {
        memory.extend(scaler.memory());
        if let Ok(text) = scaler.metrics().await {
            max_lag_s = max_lag_s.max(exposition_sum(
                &text,
                "flink_keda_scaler_evaluation_lag_seconds",
                "",
            ));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    round_done(&scaler, opts.interval).await;
    let (q1, r1) = (prometheus_queries(&http, &prom.url()).await?, fleet.stats());
    // Ticks by the clock: every job ticks once per interval (the evaluation lag shows
    // whether they did). Not `decisions_total`: without dryRun a steady "hold" decision
    // has no reason and is not counted.
    let ticks = whole_rounds(started.elapsed(), opts.interval);
    let rest_per_tick_per_jm = per_tick_per_jm(&r0, &r1, ticks, job_managers);
    let rss = Memory::of(memory);
    eprintln!(
        "[fleet] {jobs}: RSS {} (max evaluation lag {max_lag_s:.1} s)",
        rss.cell()
    );
    let get_metrics =
        grpc_load::measure_level(&clients, &Arc::new(requests), 16, opts.load).await?;
    let wave = if opts.wave && jobs >= 100 {
        eprintln!("[fleet] {jobs}: raising the load of 10 % of the jobs …");
        Some(fleet_wave::run(&fleet, &scaler, opts.interval, opts.wave_limit).await)
    } else {
        None
    };
    Ok(FleetRow {
        jobs,
        job_managers,
        interval: opts.interval,
        all_answered_s,
        answered,
        queries_per_tick: (q1 - q0) / ticks,
        rest_per_tick_per_jm,
        max_lag_s,
        rss,
        get_metrics,
        wave,
    })
}

/// The hub's rounds between two round ends `elapsed` apart, one round per `interval`:
/// the window counts whole rounds' calls, so it is divided by whole rounds (a round that
/// took longer to answer at the window's start than at its end leaves less than the
/// intervals' wall time between the ends, not fewer rounds). At least one.
pub fn whole_rounds(elapsed: Duration, interval: Duration) -> f64 {
    (elapsed.as_secs_f64() / interval.as_secs_f64().max(f64::EPSILON))
        .round()
        .max(1.0)
}

/// The benchmark at every size in `sizes`.
pub async fn run(opts: &FleetBenchOptions, sizes: &[usize]) -> Result<Vec<FleetRow>> {
    let mut rows = Vec::new();
    for &n in sizes {
        eprintln!("[fleet] {n} ScaledObjects …");
        let row = measure(opts, n).await?;
        eprintln!("{}", markdown(std::slice::from_ref(&row)));
        if let Some(w) = &row.wave {
            eprintln!("{}", fleet_wave::markdown(std::slice::from_ref(w)));
        }
        rows.push(row);
    }
    Ok(rows)
}

/// REST calls per endpoint between two stats of the fleet, per tick per JobManager.
pub fn per_tick_per_jm(
    before: &FleetStats,
    after: &FleetStats,
    ticks: f64,
    job_managers: usize,
) -> BTreeMap<String, f64> {
    let before = before.rest_calls_total();
    after
        .rest_calls_total()
        .into_iter()
        .map(|(k, v)| {
            let d = v - before.get(&k).copied().unwrap_or(0);
            (k, d as f64 / ticks / job_managers as f64)
        })
        .collect()
}

/// The total and the endpoints of [`per_tick_per_jm`] (`2.00 (GET /x 1.00, ...)`).
pub fn rest_cell(per_endpoint: &BTreeMap<String, f64>) -> String {
    let total: f64 = per_endpoint.values().sum();
    let parts: Vec<String> = per_endpoint
        .iter()
        .filter(|(_, v)| **v >= 0.005)
        .map(|(k, v)| format!("{k} {v:.2}"))
        .collect();
    format!("{total:.2} ({})", parts.join(", "))
}

/// The scaler's resident memory over the window: the median sample (what it holds) and
/// the largest (a round's or a tick's buffers in use at that moment).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Memory {
    /// The median sample by `rss`.
    pub median: Option<MemoryReading>,
    /// The largest `rss`.
    pub max: u64,
}

impl Memory {
    /// The median and maximum of `samples`.
    pub fn of(mut samples: Vec<MemoryReading>) -> Self {
        samples.sort_by_key(|s| s.rss);
        Self {
            median: samples.get(samples.len() / 2).copied(),
            max: samples.last().map_or(0, |s| s.rss),
        }
    }

    /// `47.0 MiB (max 49.1; anon 33.2, file 11.9)`.
    pub fn cell(&self) -> String {
        let mib = |b: u64| b as f64 / 1024.0 / 1024.0;
        match self.median {
            Some(m) => format!(
                "{:.1} MiB (max {:.1}; anon {:.1}, file {:.1})",
                mib(m.rss),
                mib(self.max),
                mib(m.anon),
                mib(m.file)
            ),
            None => "not read".to_string(),
        }
    }
}

/// The fleet section of docs/benchmarks.md.
pub fn markdown(rows: &[FleetRow]) -> String {
    let mut out = String::from(
        "| ScaledObjects | JobManagers | all answered after | Prometheus queries per tick | Flink REST calls per tick per JobManager | max evaluation lag | RSS | GetMetrics p50 / p99 (16 in flight) | requests/s |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let answered = match r.all_answered_s {
            Some(s) => format!("{s:.1} s"),
            None => format!("only {} of {} answered", r.answered, r.jobs),
        };
        out.push_str(&format!(
            "| {} | {} | {} | {:.1} | {} | {:.1} s | {} | {} µs / {} µs | {:.0} |\n",
            r.jobs,
            r.job_managers,
            answered,
            r.queries_per_tick,
            rest_cell(&r.rest_per_tick_per_jm),
            r.max_lag_s,
            r.rss.cell(),
            r.get_metrics.p50.as_micros(),
            r.get_metrics.p99.as_micros(),
            r.get_metrics.rps,
        ));
    }
    out
}

/// The `## Fleet` section of docs/benchmarks.md.
pub fn section(rows: &[FleetRow]) -> String {
    let interval = rows.first().map_or(15, |r| r.interval.as_secs());
    format!(
        "\n## Fleet: N ScaledObjects on a synthetic fleet\n\n\
         `fks-lab fleet` (also part of `scripts/benchmarks.sh`): the built scaler with N ScaledObjects \
         (evaluation every {interval} s, no dryRun: steady loads do not rescale) on `fks_components::fleet` (N jobs × 5 vertices, \
         {JOBS_PER_JOB_MANAGER} jobs per JobManager, Flink 2.3.0's reporter series and REST), scraped \
         by the real Prometheus every {interval} s. Queries per tick: Prometheus' own request counter; \
         REST calls: the fleet's counters; both over two intervals in steady state (from 1½ intervals after all answered), per tick = per interval. Evaluation lag: \
         the largest `flink_keda_scaler_evaluation_lag_seconds` sampled every second in that window. \
         The scaler runs as the shipped Deployment runs it: the release build (fat LTO, `opt-level = \"s\"`), \
         `MIMALLOC_PURGE_DELAY=0`, and one runtime worker thread, the count its CPU limit of 1 gives \
         (`TOKIO_WORKER_THREADS=1` here, a machine without a CPU quota; each more thread adds an \
         allocator heap, ~4 MiB at 1,000). RSS: `VmRSS` sampled every second over the window, the \
         median (the largest in brackets; anon = heap and stacks, file = the mapped binary and libraries).\n\n{}{}",
        markdown(rows),
        fleet_wave::markdown(&rows.iter().filter_map(|r| r.wave.clone()).collect::<Vec<_>>())
    )
}

/// `--sizes 1,100,1000`.
pub fn parse_sizes(text: &str) -> std::result::Result<Vec<usize>, String> {
    text.split(',')
        .map(|s| {
            s.trim()
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("--sizes: '{s}' is not a positive number"))
        })
        .collect()
}

/// Runs the fleet benchmark with the defaults of issue 16 (15 s, 2 intervals window).
pub fn default_options(scaler_bin: &Path, work_dir: &Path) -> FleetBenchOptions {
    FleetBenchOptions {
        scaler_bin: scaler_bin.to_path_buf(),
        work_dir: work_dir.to_path_buf(),
        interval: Duration::from_secs(15),
        window_intervals: 2,
        answer_limit: Duration::from_secs(120),
        load: Duration::from_secs(5),
        wave_limit: Duration::from_secs(300),
        wave: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The memory figure is the median sample with its split, and the largest sample; no
    /// sample is said as such, never as 0 MiB.
    #[test]
    fn memory_is_the_median_sample_and_the_largest() {
        let mib = 1024 * 1024;
        let sample = |rss: u64, anon: u64| MemoryReading {
            rss: rss * mib,
            anon: anon * mib,
            file: (rss - anon) * mib,
        };
        let m = Memory::of(vec![sample(50, 38), sample(46, 34), sample(47, 35)]);
        assert_eq!(m.median, Some(sample(47, 35)));
        assert_eq!(m.max, 50 * mib);
        assert_eq!(m.cell(), "47.0 MiB (max 50.0; anon 35.0, file 12.0)");
        assert_eq!(Memory::of(Vec::new()).cell(), "not read");
    }

    #[test]
    fn a_window_between_round_ends_counts_whole_rounds() {
        let i = Duration::from_secs(15);
        // the bench run of aa20bda read 1.04 calls per JobManager per tick at 1,000: two
        // rounds of calls over 1.92 intervals of wall time between the round ends
        assert_eq!(whole_rounds(Duration::from_millis(28_800), i), 2.0);
        assert_eq!(whole_rounds(Duration::from_millis(31_400), i), 2.0);
        assert_eq!(whole_rounds(Duration::from_secs(45), i), 3.0);
        assert_eq!(whole_rounds(Duration::from_secs(2), i), 1.0);
    }

    #[test]
    fn sizes_parse_or_name_the_bad_one() {
        assert_eq!(parse_sizes("1, 100,1000"), Ok(vec![1, 100, 1000]));
        assert!(parse_sizes("1,x").is_err_and(|e| e.contains("'x'")));
        assert!(parse_sizes("0").is_err());
    }
}
