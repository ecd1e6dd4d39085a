//! The default signal queries against a **real Flink** cluster's PrometheusReporter,
//! scraped by a real Prometheus: proves the default PromQL matches what Flink exports
//! (names, labels, the source-rate choice).
//!
//! Ignored by default: it needs a running Flink with the PrometheusReporter and a job
//! that moves records. Run:
//!
//! ```text
//! FKS_FLINK_REST=http://127.0.0.1:8081 FKS_FLINK_REPORTERS=127.0.0.1:9249,127.0.0.1:9250 \
//!   cargo test --test it prometheus_flink:: -- --ignored --nocapture
//! ```
//! (`FKS_FLINK_JOB_ID` picks the job; default: the first RUNNING one.)

use crate::support;

use std::time::{Duration, Instant};

use flink_keda_scaler::{
    core::{Signal, Topology, Vertex, VertexId},
    promql::{read_signals, JobVars, ReadOptions, SignalQueries},
};
use serde_json::Value;
use support::prometheus::{PrometheusHarness, FIRST_SCRAPE_WAIT};

async fn get(http: &reqwest::Client, url: String) -> Value {
    http.get(&url)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        .json()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

/// Reads the job (id, name, vertices) from Flink REST, independently of the `flink` adapter.
async fn job_from_rest(rest: &str) -> (String, String, Topology) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("http");
    let job_id = match std::env::var("FKS_FLINK_JOB_ID") {
        Ok(id) => id,
        Err(_) => {
            let overview = get(&http, format!("{rest}/jobs/overview")).await;
            overview["jobs"]
                .as_array()
                .and_then(|jobs| jobs.iter().find(|j| j["state"] == "RUNNING"))
                .and_then(|j| j["jid"].as_str())
                .expect("a RUNNING job")
                .to_string()
        }
    };
    let job = get(&http, format!("{rest}/jobs/{job_id}")).await;
    let vertices = job["vertices"]
        .as_array()
        .expect("vertices")
        .iter()
        .map(|v| Vertex {
            id: VertexId::new(v["id"].as_str().expect("id")),
            name: v["name"].as_str().unwrap_or_default().to_string(),
            parallelism: v["parallelism"].as_u64().unwrap_or(1) as u32,
            max_parallelism: v["maxParallelism"].as_u64().unwrap_or(128) as u32,
            slot_sharing_group: None,
        })
        .collect();
    let name = job["name"].as_str().unwrap_or_default().to_string();
    (
        job_id,
        name,
        Topology {
            vertices,
            edges: Vec::new(),
        },
    )
}

/// Every vertex gets finite busy time and records-in from the default queries; the
/// source's rate (operator `numRecordsOutPerSecond`) is positive; TM and cluster
/// signals are present.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a running Flink: set FKS_FLINK_REST and FKS_FLINK_REPORTERS"]
async fn default_queries_match_real_flink() {
    let (Ok(rest), Ok(reporters)) = (
        std::env::var("FKS_FLINK_REST"),
        std::env::var("FKS_FLINK_REPORTERS"),
    ) else {
        let _ = support::component_missing("Flink (set FKS_FLINK_REST and FKS_FLINK_REPORTERS)");
        return;
    };
    let targets: Vec<String> = reporters.split(',').map(|s| s.trim().to_string()).collect();
    let (job_id, job_name, topology) = job_from_rest(&rest).await;
    eprintln!(
        "job {job_id} ({job_name}): {:?}",
        topology
            .vertices
            .iter()
            .map(|v| &v.name)
            .collect::<Vec<_>>()
    );
    let Some(prom) = PrometheusHarness::start(&targets).await else {
        return;
    };
    prom.wait_up(targets.len(), FIRST_SCRAPE_WAIT).await;
    let client = support::prometheus::prom_client(&prom.url());
    let queries = SignalQueries::defaults();
    let vars = JobVars::new(&job_id, &job_name);
    let source = topology
        .vertices
        .iter()
        .find(|v| v.name.starts_with("Source"))
        .expect("a source vertex")
        .id
        .clone();
    let started = Instant::now();
    let read = loop {
        // rate()/deriv() need a few scrapes; the job's meters need a few seconds.
        match read_signals(&client, &queries, &vars, &topology, &ReadOptions::default()).await {
            Ok(read)
                if read.vertices[&source]
                    .records_in_per_s
                    .is_some_and(|r| r > 0.0)
                    && read.task_managers.iter().all(|t| t.gc_ms_per_s.is_some()) =>
            {
                break read
            }
            other => {
                assert!(
                    started.elapsed() < Duration::from_secs(60),
                    "signals incomplete: {other:#?}"
                );
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    };
    eprintln!("{read:#?}");
    assert_eq!(read.query_count(), Signal::ALL.len());
    for v in &topology.vertices {
        let s = &read.vertices[&v.id];
        assert!(
            s.busy_ms_per_s.is_some_and(|b| (0.0..=1000.0).contains(&b)),
            "{}: {s:?}",
            v.name
        );
        assert!(
            s.records_in_per_s.is_some_and(f64::is_finite),
            "{}: {s:?}",
            v.name
        );
    }
    assert!(!read.task_managers.is_empty());
    for tm in &read.task_managers {
        assert!(
            tm.cpu_load.is_some() && tm.heap_used_bytes.is_some() && tm.heap_max_bytes.is_some(),
            "{tm:?}"
        );
    }
    assert!(read.job.slots_total.is_some_and(|s| s > 0.0));
    assert!(read.job.num_restarts.is_some());
    let mut d: Vec<Duration> = read.queries.iter().map(|q| q.duration).collect();
    d.sort();
    eprintln!(
        "{} queries in {:?}; per query median {:?} max {:?}",
        read.query_count(),
        read.elapsed,
        d[d.len() / 2],
        d[d.len() - 1]
    );
}
