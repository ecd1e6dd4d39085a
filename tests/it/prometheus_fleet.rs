//! The signal hub against a **real Prometheus** scraping 50 synthetic jobs (a static
//! exporter of Flink's series: the counters advance with time, the gauges are fixed):
//! - every job is answered from the batched queries, with its own values (busy time
//!   from the slope of its `accumulateBusyTimeMs`);
//! - one broken job (one vertex exports nothing) is `UNAVAILABLE` naming the signal and
//!   the vertex, while the 49 others are answered;
//! - a full round costs one query per enabled signal for all 50 jobs, counted from
//!   Prometheus' own `prometheus_http_requests_total{handler="/api/v1/query"}`, and the
//!   workers' reads between rounds send none.
//!
//! `cargo test --test it prometheus_fleet:: -- --nocapture`

use crate::support;

use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{Duration, Instant},
};

use flink_keda_scaler::{
    core::{Signal, Topology},
    exporter::Metrics,
    promql::{JobVars, PromClient, SignalError, SignalErrorKind, SignalQueries, SignalRead},
    runtime::{
        hub::{SignalHub, SignalRequest},
        shutdown::Shutdown,
    },
};
use support::prometheus::{
    prom_client, PrometheusHarness, SyntheticExporter, SyntheticJob, SyntheticVertex,
    FIRST_SCRAPE_WAIT,
};

const JOBS: usize = 50;
const BROKEN: usize = 17;
/// The vertex the broken job does not export.
const BROKEN_VERTEX: usize = 1;

/// Job `j`: three vertices with ids of its own, two TaskManagers shared by all.
fn job(j: usize) -> SyntheticJob {
    let mut job = SyntheticJob::three_vertices();
    job.job_id = format!("{:032x}", 0xf1ee_7000_u64 + j as u64);
    job.job_name = format!("fleet-{j}");
    job.vertices = job
        .vertices
        .iter()
        .enumerate()
        .map(|(v, x)| SyntheticVertex {
            id: format!("{:032x}", 0x0be7_0000_u64 + (j * 8 + v) as u64),
            ..x.clone()
        })
        .collect();
    job
}

/// Busy ms/s of job `j`'s vertex `v`.
fn busy(j: usize, v: usize) -> f64 {
    (10 * j + 100 * v) as f64 % 1000.0
}

/// Sets every series of the fleet at `t` seconds since start.
fn export(e: &SyntheticExporter, jobs: &[SyntheticJob], t: f64) {
    for tm in &jobs[0].tms {
        e.set(&SyntheticJob::tm_series("Status_JVM_CPU_Load", tm), 0.5);
    }
    for (j, job) in jobs.iter().enumerate() {
        e.set(&job.jm_job_series("numRestarts"), 0.0);
        for (v, vertex) in job.vertices.iter().enumerate() {
            if j == BROKEN && v == BROKEN_VERTEX {
                continue;
            }
            for s in 0..vertex.parallelism {
                let b = busy(j, v);
                job.set_task(e, "accumulateBusyTimeMs", v, s, b * t);
                job.set_task(e, "busyTimeMsPerSecond", v, s, b);
                job.set_task(e, "numRecordsIn", v, s, 100.0 * t);
                job.set_task(e, "numRecordsInPerSecond", v, s, 100.0);
                job.set_task(e, "numRecordsOut", v, s, 100.0 * t);
                job.set_task(e, "numRecordsOutPerSecond", v, s, 100.0);
            }
        }
    }
}

/// Prometheus' own count of instant queries, from its `/metrics` (not a query itself).
async fn instant_queries(prom: &PrometheusHarness) -> f64 {
    let text = reqwest::get(format!("{}/metrics", prom.url()))
        .await
        .and_then(|r| r.error_for_status())
        .expect("Prometheus /metrics")
        .text()
        .await
        .expect("Prometheus /metrics body");
    text.lines()
        .filter(|l| {
            l.starts_with("prometheus_http_requests_total{")
                && l.contains(r#"handler="/api/v1/query""#)
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

struct Fleet {
    client: Arc<PromClient>,
    queries: SignalQueries,
    jobs: Vec<(JobVars, Topology)>,
}

impl Fleet {
    /// Every job's read, concurrently.
    async fn read_all(&self, hub: &SignalHub) -> Vec<Result<SignalRead, SignalError>> {
        let reads = self.jobs.iter().map(|(vars, topology)| {
            let req = SignalRequest {
                server: "default",
                client: &self.client,
                queries: &self.queries,
                vars,
                topology,
            };
            async move { hub.read(&req, Duration::from_secs(10)).await }
        });
        futures_util::future::join_all(reads).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_jobs_one_query_per_signal_one_broken_job() {
    let exporter = Arc::new(SyntheticExporter::new());
    let jobs: Vec<SyntheticJob> = (0..JOBS).map(job).collect();
    // the counters advance from the first scrape on: every sample is on the line
    let t0 = Instant::now();
    export(&exporter, &jobs, 0.0);
    let (stop_exporting, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let ticker = {
        let (jobs, e) = (jobs.clone(), exporter.clone());
        tokio::spawn(async move {
            loop {
                export(&e, &jobs, t0.elapsed().as_secs_f64());
                tokio::select! {
                    _ = &mut stopped => break,
                    () = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
            }
        })
    };
    let Some(prom) = PrometheusHarness::start(&[exporter.target()]).await else {
        return;
    };
    prom.wait_up(1, FIRST_SCRAPE_WAIT).await;
    // the counters need two samples in the window
    exporter.wait_scrapes(4, Duration::from_secs(20)).await;

    let metrics = Arc::new(Metrics::new().expect("metrics"));
    let interval = Duration::from_secs(3);
    let hub = Arc::new(SignalHub::new(interval, BTreeMap::new(), metrics.clone()));
    let (shutdown, signal) = Shutdown::new();
    let round_task = hub.spawn(signal);
    let fleet = Fleet {
        client: Arc::new(prom_client(&prom.url())),
        queries: SignalQueries::defaults(),
        jobs: jobs
            .iter()
            .map(|j| (JobVars::new(&j.job_id, &j.job_name), j.topology()))
            .collect(),
    };

    // first reads: every job new to its batches, answered by one catch-up round
    let started = Instant::now();
    let first = fleet.read_all(&hub).await;
    let first_answer = started.elapsed();
    check_answers(&first, &jobs);
    let catch_up = hub.rounds().borrow().clone();
    eprintln!("{JOBS} new jobs answered in {first_answer:?} by {catch_up:?}");
    // answered by catch-up rounds (one when they all arrive at once), not by the next
    // full round nor by one direct read per job
    assert!(!catch_up.full, "{catch_up:?}");
    let sent = metrics.encode();
    assert!(!sent.contains(r#"kind="job""#), "{sent}");

    // a full round, then reads from its rows, then the next full round
    let mut rounds = hub.rounds();
    wait_full_round(&mut rounds).await;
    let before = instant_queries(&prom).await;
    let reads = fleet.read_all(&hub).await;
    check_answers(&reads, &jobs);
    let round = wait_full_round(&mut rounds).await;
    let after = instant_queries(&prom).await;
    let sent = after - before;
    let enabled = fleet.queries.enabled().count();
    eprintln!(
        "{JOBS} jobs: {sent} queries between two counts, last full round {} queries for {} jobs in {} ms",
        round.queries, round.jobs, round.duration_ms
    );
    assert_eq!(round.queries as usize, enabled, "one query per signal");
    assert_eq!(round.jobs as usize, JOBS, "{round:?}");
    assert_eq!(sent as usize, enabled, "the reads sent nothing: {round:?}");
    let ok = reads.iter().flatten().next().expect("an answered job");
    assert!(
        ok.queries.iter().all(|q| q.jobs == JOBS),
        "{:?}",
        ok.queries
    );
    shutdown.trigger();
    round_task.await.expect("round task");
    let _ = stop_exporting.send(());
    ticker.await.expect("exporter ticker");
}

async fn wait_full_round(
    rounds: &mut tokio::sync::watch::Receiver<flink_keda_scaler::runtime::hub::RoundInfo>,
) -> flink_keda_scaler::runtime::hub::RoundInfo {
    loop {
        tokio::time::timeout(Duration::from_secs(20), rounds.changed())
            .await
            .expect("a round within 20 s")
            .expect("hub running");
        let r = rounds.borrow_and_update().clone();
        if r.full {
            return r;
        }
    }
}

/// 49 jobs answered with their own busy time; the broken one names signal and vertex.
fn check_answers(reads: &[Result<SignalRead, SignalError>], jobs: &[SyntheticJob]) {
    for (j, (read, job)) in reads.iter().zip(jobs).enumerate() {
        if j == BROKEN {
            let e = read.as_ref().expect_err("the broken job is UNAVAILABLE");
            let vertex = &job.vertices[BROKEN_VERTEX].id;
            assert_eq!(e.signal, Signal::BusyTime, "{e}");
            assert!(
                matches!(&e.source, SignalErrorKind::MissingVertex { .. }),
                "{e}"
            );
            let msg = e.to_string();
            assert!(
                msg.contains(vertex.as_str()) && msg.contains(&job.job_id),
                "{msg}"
            );
            continue;
        }
        let read = read
            .as_ref()
            .unwrap_or_else(|e| panic!("job {j} unanswered: {e}"));
        for (v, vertex) in job.vertices.iter().enumerate() {
            let got = read.vertices[&flink_keda_scaler::core::VertexId::new(vertex.id.clone())]
                .busy_ms_per_s
                .expect("busy time");
            assert!(
                (got - busy(j, v)).abs() <= 5.0 + busy(j, v) * 0.05,
                "job {j} vertex {v}: busy {got}, exported slope {}",
                busy(j, v)
            );
        }
    }
}
