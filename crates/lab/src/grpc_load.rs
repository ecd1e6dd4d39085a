//! Closed-loop GetMetrics load: `in_flight` workers over a few HTTP/2 connections, each
//! sending the next request as soon as the previous answered, round-robin over the
//! requests given; latencies sorted for percentiles. Used by `benches/grpc_get_metrics.rs`
//! (in-process server) and `fks-lab bench` (the scaler process with 1,000 ScaledObjects).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use tonic::transport::Channel;

use flink_keda_scaler::keda::pb::{
    external_scaler_client::ExternalScalerClient, GetMetricsRequest,
};

use super::error::{LabError, Result};

/// A gRPC client of the scaler over one HTTP/2 connection.
pub type Client = ExternalScalerClient<Channel>;

/// One load level's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadLevel {
    /// Requests in flight.
    pub in_flight: usize,
    /// Requests per second.
    pub rps: f64,
    /// Median latency.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// Slowest.
    pub max: Duration,
    /// Requests answered.
    pub requests: usize,
    /// Of those, answered with an error status.
    pub errors: usize,
    /// The first error, if any.
    pub first_error: Option<String>,
}

/// Latencies of one closed-loop run.
#[derive(Debug, Clone, Default)]
pub struct LoadRun {
    /// Every request's latency, sorted.
    pub latencies: Vec<Duration>,
    /// Wall time.
    pub elapsed: Duration,
    /// Requests answered with an error status (counted in the latencies too).
    pub errors: usize,
    /// The first error.
    pub first_error: Option<String>,
}

/// The `p` quantile (0..=1) of sorted latencies (nearest rank).
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// `n` HTTP/2 connections to `addr` (`127.0.0.1:port`), retrying the connect for ~1 s.
pub async fn connect(addr: &str, n: usize) -> Result<Vec<Client>> {
    let mut clients = Vec::new();
    for _ in 0..n {
        let mut attempt = 0;
        let endpoint =
            Channel::from_shared(format!("http://{addr}")).map_err(|e| LabError::Grpc {
                what: format!("endpoint {addr}"),
                detail: e.to_string(),
            })?;
        let channel = loop {
            match endpoint.clone().tcp_nodelay(true).connect().await {
                Ok(c) => break c,
                Err(e) if attempt > 50 => {
                    return Err(LabError::Grpc {
                        what: format!("connect to {addr}"),
                        detail: e.to_string(),
                    })
                }
                Err(_) => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        };
        clients.push(ExternalScalerClient::new(channel));
    }
    Ok(clients)
}

/// Runs `in_flight` closed-loop workers for `duration`. Error answers are counted (and
/// timed) and the run goes on.
pub async fn run_level(
    clients: &[Client],
    requests: &Arc<Vec<GetMetricsRequest>>,
    in_flight: usize,
    duration: Duration,
) -> Result<LoadRun> {
    if clients.is_empty() || requests.is_empty() {
        return Err(LabError::Scenario(
            "GetMetrics load needs clients and requests".into(),
        ));
    }
    let started = Instant::now();
    let deadline = started + duration;
    let mut workers = Vec::new();
    for w in 0..in_flight {
        let mut client = clients[w % clients.len()].clone();
        let requests = Arc::clone(requests);
        workers.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(64 * 1024);
            let (mut errors, mut first_error) = (0usize, None::<String>);
            let mut i = w;
            while Instant::now() < deadline {
                let req = requests[i % requests.len()].clone();
                i += in_flight;
                let t = Instant::now();
                let resp = client.get_metrics(req).await;
                lat.push(t.elapsed());
                if let Err(status) = resp {
                    errors += 1;
                    first_error.get_or_insert_with(|| {
                        format!("{:?}: {}", status.code(), status.message())
                    });
                }
            }
            Ok::<_, String>((lat, errors, first_error))
        }));
    }
    let mut run = LoadRun::default();
    for w in workers {
        let (lat, errors, first_error) = w
            .await
            .map_err(|e| LabError::Scenario(e.to_string()))?
            .map_err(|detail| LabError::Grpc {
                what: "GetMetrics under load".into(),
                detail,
            })?;
        run.latencies.extend(lat);
        run.errors += errors;
        if run.first_error.is_none() {
            run.first_error = first_error;
        }
    }
    run.elapsed = started.elapsed();
    run.latencies.sort_unstable();
    Ok(run)
}

/// [`run_level`] summarized.
pub async fn measure_level(
    clients: &[Client],
    requests: &Arc<Vec<GetMetricsRequest>>,
    in_flight: usize,
    duration: Duration,
) -> Result<LoadLevel> {
    let run = run_level(clients, requests, in_flight, duration).await?;
    let lat = &run.latencies;
    Ok(LoadLevel {
        in_flight,
        rps: lat.len() as f64 / run.elapsed.as_secs_f64().max(1e-9),
        p50: percentile(lat, 0.50),
        p99: percentile(lat, 0.99),
        max: lat.last().copied().unwrap_or_default(),
        requests: lat.len(),
        errors: run.errors,
        first_error: run.first_error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let lat: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&lat, 0.5), Duration::from_millis(51));
        assert_eq!(percentile(&lat, 0.99), Duration::from_millis(99));
        assert_eq!(percentile(&lat, 1.0), Duration::from_millis(100));
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
    }
}
