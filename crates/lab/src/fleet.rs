//! Figures at scale, on the lab's running components:
//!
//! * **P5** — Prometheus queries per evaluation tick of the demo's scaler: the delta of
//!   Prometheus' own `prometheus_http_requests_total{handler="/api/v1/query"}` over a
//!   window in which nothing else queries it, divided by the delta of the scaler's
//!   `flink_keda_scaler_decisions_total` (one per tick).
//! * **P7** — resident memory (`VmRSS`) of a second scaler process with 1,000
//!   ScaledObjects, every one evaluated (each its own worker with topology, signals and
//!   state, all pointing at the lab's real job, `dryRun` so none of them rescales).
//! * **P4** — GetMetrics p50/p99 and requests/s against that process with the 1,000
//!   ScaledObjects, round-robin, while its workers keep evaluating.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use flink_keda_scaler::keda::pb::{GetMetricSpecResponse, GetMetricsRequest, ScaledObjectRef};

use super::{
    error::{LabError, Result},
    grpc_load::{self, Client, LoadLevel},
    procs,
    scaler_proc::ScalerProcess,
    scenario::{Lab, JOB_NAME},
};

/// Figures at scale.
#[derive(Debug, Clone)]
pub struct FleetFigures {
    /// ScaledObjects configured.
    pub scaled_objects: usize,
    /// Their evaluation interval.
    pub evaluation_interval: Duration,
    /// RSS of the fleet scaler before any ScaledObject.
    pub rss_empty: u64,
    /// RSS once every ScaledObject was evaluated.
    pub rss_loaded: u64,
    /// RSS after the GetMetrics load.
    pub rss_after_load: u64,
    /// Seconds until all were evaluated.
    pub warm_up_s: f64,
    /// GetMetrics levels.
    pub get_metrics: Vec<LoadLevel>,
    /// Prometheus queries per tick of the single-job scaler.
    pub queries_per_tick: f64,
    /// Ticks in the P5 window.
    pub ticks: f64,
    /// Queries in the P5 window.
    pub queries: f64,
}

/// Sum of every sample of `metric` (with `filter` in its label set) in exposition text.
pub fn exposition_sum(text: &str, metric: &str, filter: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(metric)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter(|l| l.contains(filter))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn prom_query_count(lab: &Lab, http: &reqwest::Client) -> Result<f64> {
    prometheus_queries(http, &lab.prometheus.url()).await
}

/// Instant queries Prometheus at `prom_url` answered so far (its own request counter).
pub async fn prometheus_queries(http: &reqwest::Client, prom_url: &str) -> Result<f64> {
    let text = http
        .get(format!("{prom_url}/metrics"))
        .send()
        .await
        .map_err(|e| LabError::http("GET Prometheus /metrics", e))?
        .text()
        .await
        .map_err(|e| LabError::http("GET Prometheus /metrics", e))?;
    Ok(exposition_sum(
        &text,
        "prometheus_http_requests_total",
        "handler=\"/api/v1/query\"",
    ))
}

/// P5 over `window` (nothing but the scaler may query Prometheus meanwhile).
pub async fn queries_per_tick(lab: &Lab, window: Duration) -> Result<(f64, f64, f64)> {
    let http = procs::http_client(Duration::from_secs(5))?;
    let ticks = |t: String| exposition_sum(&t, "flink_keda_scaler_decisions_total", "");
    let (q0, t0) = (
        prom_query_count(lab, &http).await?,
        ticks(lab.scaler.metrics().await?),
    );
    tokio::time::sleep(window).await;
    let (q1, t1) = (
        prom_query_count(lab, &http).await?,
        ticks(lab.scaler.metrics().await?),
    );
    let (q, t) = (q1 - q0, t1 - t0);
    if t <= 0.0 {
        return Err(LabError::Scenario(format!(
            "the scaler made no decision in {window:?} (decisions_total {t0} → {t1})"
        )));
    }
    Ok((q / t, q, t))
}

fn fleet_config(lab: &Lab, interval: Duration) -> String {
    let p = &lab.profile;
    format!(
        "grpc:\n  listenAddress: \"127.0.0.1:50051\"\n  rpcTimeout: 10s\n  streamInterval: 30s\n\
         http:\n  listenAddress: \"127.0.0.1:8080\"\n\
         evaluation:\n  interval: {}s\n  idleTimeout: 1h\n\
         prometheus:\n  default:\n    url: \"{}\"\n    timeout: 10s\n\
         flink:\n  timeout: 10s\n  rescaleTimeout: 90s\n\
         kubernetes:\n  enabled: false\n\
         policies:\n  default:\n    dryRun: true\n    minTaskManagers: {}\n    maxTaskManagers: {}\n\
         \x20   slotsPerTaskManager: {}\n",
        interval.as_secs().max(1),
        lab.prometheus.url(),
        p.min_task_managers,
        p.max_task_managers,
        p.slots,
    )
}

fn scaled_object(lab: &Lab, i: usize) -> ScaledObjectRef {
    ScaledObjectRef {
        name: format!("so-{i}"),
        namespace: format!("team-{}", i % 10),
        scaler_metadata: [
            ("flinkRestUrl", lab.rest_url.clone()),
            ("jobName", JOB_NAME.to_string()),
            ("minTaskManagers", lab.profile.min_task_managers.to_string()),
            ("maxTaskManagers", lab.profile.max_task_managers.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect(),
    }
}

/// P7 and P4 with `n` ScaledObjects on a second scaler process (`binary`, files in
/// `dir`); P5 on the lab's own scaler first.
pub async fn measure(
    lab: &Lab,
    binary: &std::path::Path,
    dir: &std::path::Path,
    n: usize,
    level_duration: Duration,
) -> Result<FleetFigures> {
    let (queries_per_tick, queries, ticks) = queries_per_tick(lab, Duration::from_secs(30)).await?;
    let interval = Duration::from_secs(120);
    let fleet = ScalerProcess::start(binary, &fleet_config(lab, interval), dir).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_empty = fleet.rss_bytes().unwrap_or(0);
    let clients = grpc_load::connect(&fleet.grpc_addr(), 4).await?;
    let requests = fleet_requests(lab, &clients[0], n).await?;
    let started = Instant::now();
    wait_all_evaluated(&clients, &requests).await?;
    let warm_up_s = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_loaded = fleet.rss_bytes().unwrap_or(0);
    let requests = Arc::new(requests);
    let mut get_metrics = Vec::new();
    for in_flight in [8, 16, 64] {
        grpc_load::run_level(&clients, &requests, in_flight, Duration::from_secs(1)).await?;
        get_metrics
            .push(grpc_load::measure_level(&clients, &requests, in_flight, level_duration).await?);
    }
    let rss_after_load = fleet.rss_bytes().unwrap_or(0);
    Ok(FleetFigures {
        scaled_objects: n,
        evaluation_interval: interval,
        rss_empty,
        rss_loaded,
        rss_after_load,
        warm_up_s,
        get_metrics,
        queries_per_tick,
        ticks,
        queries,
    })
}

/// The metric name of a GetMetricSpec answer (its first spec).
pub(crate) fn metric_name(
    answer: std::result::Result<tonic::Response<GetMetricSpecResponse>, tonic::Status>,
) -> Result<String> {
    answer
        .map_err(|e| LabError::Grpc {
            what: "GetMetricSpec".into(),
            detail: e.to_string(),
        })?
        .into_inner()
        .metric_specs
        .first()
        .map(|m| m.metric_name.clone())
        .ok_or_else(|| LabError::Scenario("empty metric spec".into()))
}

/// One GetMetrics request per ScaledObject `so-0` … `so-<n-1>`, for the metric name the
/// fleet scaler's GetMetricSpec gives.
async fn fleet_requests(lab: &Lab, client: &Client, n: usize) -> Result<Vec<GetMetricsRequest>> {
    let metric = metric_name(client.clone().get_metric_spec(scaled_object(lab, 0)).await)?;
    Ok((0..n)
        .map(|i| GetMetricsRequest {
            scaled_object_ref: Some(scaled_object(lab, i)),
            metric_name: metric.clone(),
        })
        .collect())
}

/// Waits (at most 300 s) until every ScaledObject answers OK: its worker has evaluated.
pub(crate) async fn wait_all_evaluated(
    clients: &[Client],
    requests: &[GetMetricsRequest],
) -> Result<()> {
    const TIMEOUT: Duration = Duration::from_secs(300);
    let n = requests.len();
    let started = Instant::now();
    let mut pending: Vec<usize> = (0..n).collect();
    while !pending.is_empty() {
        if started.elapsed() > TIMEOUT {
            return Err(fks_components::ComponentError::Timeout {
                what: format!("{} of {n} ScaledObjects to be evaluated", pending.len()),
                timeout: TIMEOUT,
                detail: String::new(),
            }
            .into());
        }
        pending = not_evaluated(clients, requests, &pending).await?;
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
    Ok(())
}

/// Which of the `pending` requests still fail, asked 64 at a time.
pub(crate) async fn not_evaluated(
    clients: &[Client],
    requests: &[GetMetricsRequest],
    pending: &[usize],
) -> Result<Vec<usize>> {
    let mut still = Vec::new();
    for chunk in pending.chunks(64) {
        let mut calls = Vec::new();
        for (k, &i) in chunk.iter().enumerate() {
            let mut c = clients[k % clients.len()].clone();
            let req = requests[i].clone();
            calls.push(tokio::spawn(async move {
                (i, c.get_metrics(req).await.is_ok())
            }));
        }
        for call in calls {
            let (i, ok) = call.await.map_err(|e| LabError::Scenario(e.to_string()))?;
            if !ok {
                still.push(i);
            }
        }
    }
    Ok(still)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_matching_samples_only() {
        let text = "# HELP prometheus_http_requests_total x\n\
                    prometheus_http_requests_total{code=\"200\",handler=\"/api/v1/query\"} 40\n\
                    prometheus_http_requests_total{code=\"400\",handler=\"/api/v1/query\"} 2\n\
                    prometheus_http_requests_total{code=\"200\",handler=\"/metrics\"} 7\n\
                    prometheus_http_requests_total_extra{handler=\"/api/v1/query\"} 100\n\
                    flink_keda_scaler_decisions_total{job_name=\"a\",outcome=\"hold\"} 3\n\
                    flink_keda_scaler_decisions_total{job_name=\"a\",outcome=\"up\"} 1\n";
        assert_eq!(
            exposition_sum(
                text,
                "prometheus_http_requests_total",
                "handler=\"/api/v1/query\""
            ),
            42.0
        );
        assert_eq!(
            exposition_sum(text, "flink_keda_scaler_decisions_total", ""),
            4.0
        );
    }
}
