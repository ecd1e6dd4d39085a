//! Benchmark (not a test): GetMetrics for 1,000 distinct ScaledObjects served from cache.
//!
//! * server: `keda::serve` on a tokio runtime with ONE worker thread, real TCP loopback;
//!   the evaluator answers from a pre-filled map keyed by `ScalerTarget::cache_key` (the
//!   runtime's cached path), so the cost measured is gRPC + metadata parsing + lookup.
//! * client: a separate runtime, a few HTTP/2 connections, many requests in flight,
//!   closed loop, round-robin over the 1,000 ScaledObjects.
//!
//! Prints requests/s and p50/p99/max latency per concurrency level.
//! Run: `cargo bench --bench grpc_get_metrics` (`FKS_BENCH_SECS` = seconds per level).

use std::{collections::HashMap, sync::Arc, time::Duration};

use chrono::Utc;
use fks_lab::grpc_load::{self, percentile};
use flink_keda_scaler::keda::{
    pb::{GetMetricsRequest, ScaledObjectRef},
    serve, CacheKey, EvalError, Evaluation, Evaluator, ExternalScalerService, ScalerTarget,
    ServerError, ServiceSettings,
};

const SCALED_OBJECTS: usize = 1_000;
const CONNECTIONS: usize = 4;
const CONCURRENCY_LEVELS: [usize; 3] = [8, 16, 64];

/// The cached path: one map lookup per evaluation.
struct CachedEvaluator {
    cache: HashMap<CacheKey, Evaluation>,
}

impl Evaluator for CachedEvaluator {
    async fn evaluate(&self, target: &ScalerTarget) -> Result<Evaluation, EvalError> {
        self.cache
            .get(&target.cache_key())
            .copied()
            .ok_or_else(|| EvalError::not_found(format!("{target} not cached")))
    }
}

fn scaled_object(i: usize) -> ScaledObjectRef {
    let md = [
        (
            "flinkRestUrl",
            format!("http://job-{i}-rest.flink.svc:8081"),
        ),
        ("jobName", format!("job-{i}")),
        ("minTaskManagers", "1".to_string()),
        ("maxTaskManagers", "20".to_string()),
        ("policy", "default".to_string()),
        (
            "scalerAddress",
            "flink-keda-scaler.keda.svc:9090".to_string(),
        ),
    ];
    ScaledObjectRef {
        name: format!("so-{i}"),
        namespace: format!("team-{}", i % 10),
        scaler_metadata: md.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
    }
}

type BoxError = Box<dyn std::error::Error>;

fn main() -> Result<(), BoxError> {
    // `cargo bench` passes `--bench`; under `cargo test` run one short smoke pass.
    let measuring = std::env::args().any(|a| a == "--bench");
    let secs: u64 = std::env::var("FKS_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if measuring { 5 } else { 0 });
    let (cache, requests) = cached_fleet()?;
    let requests = Arc::new(requests);
    let server = Server::start(cache)?;

    // Client: its own runtime.
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("bench-client")
        .enable_all()
        .build()?;
    println!(
        "GetMetrics, {SCALED_OBJECTS} ScaledObjects from cache; server: 1 tokio worker; \
         client: 1 tokio worker, {CONNECTIONS} HTTP/2 connections; {secs}s per level"
    );
    client_rt.block_on(async {
        let clients = grpc_load::connect(&server.addr.to_string(), CONNECTIONS).await?;
        check_every_answer(&clients, &requests).await?;
        let duration = Duration::from_secs(secs.max(1)) / if measuring { 1 } else { 10 };
        for concurrency in CONCURRENCY_LEVELS {
            if measuring {
                grpc_load::run_level(&clients, &requests, concurrency, Duration::from_secs(1))
                    .await?;
            }
            measure_level(&clients, &requests, concurrency, duration).await?;
        }
        Ok::<(), BoxError>(())
    })?;
    server.stop()
}

/// The evaluator's cache and one GetMetrics request per ScaledObject.
fn cached_fleet() -> Result<(HashMap<CacheKey, Evaluation>, Vec<GetMetricsRequest>), BoxError> {
    let mut cache = HashMap::new();
    let mut requests = Vec::new();
    for i in 0..SCALED_OBJECTS {
        let r = scaled_object(i);
        let target = ScalerTarget::parse(&r.namespace, &r.name, &r.scaler_metadata)?;
        cache.insert(
            target.cache_key(),
            Evaluation {
                task_managers: 1 + (i % 20) as u32,
                active: true,
                evaluated_at: Utc::now(),
            },
        );
        requests.push(GetMetricsRequest {
            scaled_object_ref: Some(r),
            metric_name: format!("s0-{}", target.metric_name()),
        });
    }
    Ok((cache, requests))
}

/// The gRPC server on its own one-worker runtime.
struct Server {
    rt: tokio::runtime::Runtime,
    addr: std::net::SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    handle: tokio::task::JoinHandle<Result<(), ServerError>>,
}

impl Server {
    fn start(cache: HashMap<CacheKey, Evaluation>) -> Result<Self, BoxError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("bench-server")
            .enable_all()
            .build()?;
        let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let addr = listener.local_addr()?;
        let service = ExternalScalerService::new(
            Arc::new(CachedEvaluator { cache }),
            ServiceSettings::default(),
        );
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let handle = rt.spawn(serve(listener, service, None, async {
            let _ = stop_rx.await;
        }));
        Ok(Self {
            rt,
            addr,
            stop,
            handle,
        })
    }

    fn stop(self) -> Result<(), BoxError> {
        let _ = self.stop.send(());
        self.rt.block_on(self.handle)??;
        Ok(())
    }
}

/// Sanity: every ScaledObject answers with its own value.
async fn check_every_answer(
    clients: &[grpc_load::Client],
    requests: &[GetMetricsRequest],
) -> Result<(), BoxError> {
    for (i, req) in requests.iter().enumerate() {
        let v = clients[i % CONNECTIONS]
            .clone()
            .get_metrics(req.clone())
            .await?
            .into_inner();
        assert_eq!(v.metric_values.len(), 1);
        assert_eq!(v.metric_values[0].metric_value_float, (1 + i % 20) as f64);
    }
    Ok(())
}

/// One load level: prints requests/s, latency percentiles and the server's CPU.
async fn measure_level(
    clients: &[grpc_load::Client],
    requests: &Arc<Vec<GetMetricsRequest>>,
    concurrency: usize,
    duration: Duration,
) -> Result<(), BoxError> {
    let cpu_before = thread_cpu_secs("bench-server");
    let run = grpc_load::run_level(clients, requests, concurrency, duration).await?;
    if let Some(e) = run.first_error {
        return Err(format!("{} GetMetrics failed, first: {e}", run.errors).into());
    }
    let (lat, elapsed) = (run.latencies, run.elapsed);
    let rps = lat.len() as f64 / elapsed.as_secs_f64();
    let server_cpu = thread_cpu_secs("bench-server") - cpu_before;
    println!(
        "in flight {concurrency:>3}: {:>8.0} req/s  p50 {:>7.1} µs  p99 {:>7.1} µs  max {:>8.1} µs  \
         server CPU {:>4.0}% → {:>6.0} req per server-CPU-second  ({} requests)",
        rps,
        percentile(&lat, 0.50).as_secs_f64() * 1e6,
        percentile(&lat, 0.99).as_secs_f64() * 1e6,
        lat.last().copied().unwrap_or_default().as_secs_f64() * 1e6,
        100.0 * server_cpu / elapsed.as_secs_f64(),
        if server_cpu > 0.0 {
            lat.len() as f64 / server_cpu
        } else {
            0.0
        },
        lat.len()
    );
    Ok(())
}

/// CPU seconds used so far by the threads named `name` (Linux /proc; 0 elsewhere).
fn thread_cpu_secs(name: &str) -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    let mut ticks = 0u64;
    for task in tasks.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim() != name {
            continue;
        }
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        // Fields after the parenthesised comm: state is field 3, utime 14, stime 15.
        if let Some((_, rest)) = stat.rsplit_once(')') {
            let fields: Vec<&str> = rest.split_whitespace().collect();
            for i in [11, 12] {
                ticks += fields
                    .get(i)
                    .and_then(|f| f.parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
    }
    ticks as f64 / 100.0
}
