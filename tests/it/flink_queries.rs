//! Every default query against a **real Flink** (`FKS_FLINK_VERSION`: 2.3.0, and 1.20.5
//! in scripts/test.sh's second pass) scraped by two real Prometheus servers at once, one
//! every 1 s and one every 15 s:
//! - the scrape interval is learned from the samples' timestamps (≈ 1 s and ≈ 15 s);
//! - right after the first scrape (one sample: too few for a slope) the `counters` preset
//!   still answers every vertex, from the fallback gauges, reported as issues — never an
//!   empty or NaN signal because the window was too short;
//! - once the window holds two samples, every vertex gets a finite busy time and input
//!   rate from the counters (no fallback left), the source's rate is positive and close to
//!   the gauges preset's, TaskManager and cluster signals are present;
//! - the `gauges` preset answers too.
//!
//! `cargo test --test it flink_queries:: -- --nocapture`

use crate::support;

use std::time::{Duration, Instant};

use flink_keda_scaler::{
    core::{Topology, VertexId},
    flink::{ClientOptions, FlinkClient},
    promql::{
        learn_interval, read_signals, JobVars, PromClient, QueryPreset, ReadOptions, SignalQueries,
        SignalRead, Windows,
    },
};
use support::{
    flink::{install, ClusterOptions, FlinkCluster},
    prometheus::{prom_client, PrometheusHarness, FIRST_SCRAPE_WAIT},
};

/// Records per second the job's source emits.
const RATE: f64 = 200.0;

fn job_args(c: &FlinkCluster) -> Vec<String> {
    let rate = c.path("rate");
    std::fs::write(&rate, format!("{RATE}")).expect("write rate file");
    [
        "--name",
        "fks-queries-job",
        "--partitions",
        "4",
        "--rate",
        &format!("{RATE}"),
        "--rate-file",
        rate.to_str().expect("utf-8 path"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// One Prometheus and what the test expects of it.
struct Server {
    prom: PrometheusHarness,
    client: PromClient,
    interval: Duration,
}

impl Server {
    async fn start(targets: &[String], interval: Duration) -> Option<Self> {
        let prom = PrometheusHarness::start_with_interval(targets, interval).await?;
        let client = prom_client(&prom.url());
        Some(Self {
            prom,
            client,
            interval,
        })
    }

    /// Reads with a preset until `done` holds (or fails after `timeout`).
    async fn read_until(
        &self,
        preset: QueryPreset,
        job: (&JobVars, &Topology),
        windows: Windows,
        timeout: Duration,
        done: impl Fn(&SignalRead) -> bool,
    ) -> SignalRead {
        let queries = SignalQueries::preset(preset);
        let options = ReadOptions {
            windows,
            ..ReadOptions::default()
        };
        let started = Instant::now();
        loop {
            let read = read_signals(&self.client, &queries, job.0, job.1, &options).await;
            match read {
                Ok(r) if done(&r) => return r,
                other => {
                    assert!(
                        started.elapsed() < timeout,
                        "{preset:?} at {:?}: signals incomplete after {timeout:?}: {other:#?}\n{}",
                        self.interval,
                        self.prom.log()
                    );
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    }
}

fn fallback_issues(read: &SignalRead) -> usize {
    read.issues
        .iter()
        .filter(|i| i.kind == "fallback_gauge")
        .count()
}

/// Every vertex has a finite busy time in [0, 1000] and a finite input rate.
fn every_vertex_answered(read: &SignalRead, topology: &Topology) -> bool {
    topology.vertices.iter().all(|v| {
        read.vertices.get(&v.id).is_some_and(|s| {
            s.busy_ms_per_s
                .is_some_and(|b| b.is_finite() && (0.0..=1000.0).contains(&b))
                && s.records_in_per_s.is_some_and(f64::is_finite)
        })
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_queries_on_real_flink_at_1s_and_15s() {
    let _serial = support::flink::REAL_FLINK.lock().await;
    let Some(installed) = install() else {
        return;
    };
    let c = FlinkCluster::start(installed, ClusterOptions::default()).await;
    let job = c.submit_job(&job_args(&c), 2).await;
    c.wait_job_running(&job, None, Duration::from_secs(90))
        .await;
    let flink = FlinkClient::new(&c.rest_url, ClientOptions::default()).expect("client");
    let details = flink.job(&job).await.expect("job details");
    let topology = flink.topology(&job).await.expect("topology");
    let vars = JobVars::new(job.to_string(), details.name.clone());
    let source: VertexId = topology
        .vertices
        .iter()
        .find(|v| v.name.starts_with("Source"))
        .expect("a source vertex")
        .id
        .clone();
    let targets = c.reporter_targets();
    let Some(fast) = Server::start(&targets, Duration::from_secs(1)).await else {
        return;
    };
    let Some(slow) = Server::start(&targets, Duration::from_secs(15)).await else {
        return;
    };
    slow.prom.wait_up(2, FIRST_SCRAPE_WAIT).await;
    // one sample so far: the counters preset answers from the fallback gauges
    let first = slow
        .read_until(
            QueryPreset::Counters,
            (&vars, &topology),
            Windows::from_interval(slow.interval),
            Duration::from_secs(30),
            |r| every_vertex_answered(r, &topology),
        )
        .await;
    eprintln!("15 s, first scrape: issues {:#?}", first.issues);
    assert!(
        fallback_issues(&first) > 0,
        "a single sample cannot make a slope: {:#?}",
        first.issues
    );
    for server in [&fast, &slow] {
        check_server(server, &vars, &topology, &source).await;
    }
    drop(c);
}

/// Learns the server's interval, then checks both presets.
async fn check_server(server: &Server, vars: &JobVars, topology: &Topology, source: &VertexId) {
    let started = Instant::now();
    let learned = loop {
        match learn_interval(&server.client, "", None, None).await {
            Ok(i) => break i,
            Err(e) => {
                assert!(
                    started.elapsed() < server.interval * 4 + Duration::from_secs(30),
                    "interval not learned: {e}"
                );
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    let expected = server.interval.as_secs_f64();
    eprintln!("scrape interval {expected} s: learned {learned:?}");
    assert!(
        (learned.as_secs_f64() - expected).abs() <= expected * 0.2 + 0.2,
        "learned {learned:?}, scraped every {expected} s"
    );
    let windows = Windows::from_interval(learned);
    let settled = server.interval * 3 + Duration::from_secs(60);
    let counters = server
        .read_until(
            QueryPreset::Counters,
            (vars, topology),
            windows,
            settled,
            |r| {
                every_vertex_answered(r, topology)
                    && fallback_issues(r) == 0
                    && r.vertices[source].records_in_per_s.is_some_and(|x| x > 0.0)
                    && r.task_managers.iter().all(|t| t.gc_ms_per_s.is_some())
            },
        )
        .await;
    eprintln!("counters at {expected} s: {counters:#?}");
    assert!(!counters.task_managers.is_empty());
    for tm in &counters.task_managers {
        assert!(
            tm.cpu_load.is_some() && tm.heap_used_bytes.is_some() && tm.heap_max_bytes.is_some(),
            "{tm:?}"
        );
    }
    assert!(counters.job.slots_total.is_some_and(|s| s > 0.0));
    assert!(counters.job.num_restarts.is_some());
    let rate = counters.vertices[source]
        .records_in_per_s
        .unwrap_or_default();
    assert!(
        (RATE * 0.5..=RATE * 1.5).contains(&rate),
        "source rate from the counters {rate}, the job emits {RATE}/s"
    );
    // the source's arrival over the short window: its consumption plus its backlog's
    // growth (no lag here, so about the emitted rate), and only for sources
    let arrival = counters.vertices[source].arrival_per_s;
    assert!(
        arrival.is_some_and(|a| (RATE * 0.5..=RATE * 1.5).contains(&a)),
        "source arrival {arrival:?} over {:?}, the job emits {RATE}/s",
        windows.arrival
    );
    for (id, v) in &counters.vertices {
        assert!(
            id == source || v.arrival_per_s.is_none(),
            "arrival for non-source {id}"
        );
    }
    let gauges = server
        .read_until(
            QueryPreset::Gauges,
            (vars, topology),
            windows,
            Duration::from_secs(60),
            |r| every_vertex_answered(r, topology),
        )
        .await;
    eprintln!(
        "gauges at {expected} s: source rate {:?} (counters {rate})",
        gauges.vertices[source].records_in_per_s
    );
}
