//! The runtime wires the adapters to the core and runs them:
//!
//! ```text
//!  serve ─► Context (config, metrics, Prometheus clients, Flink clients)
//!        ├► gRPC: keda::ExternalScalerService ─► WorkersEvaluator ─► Workers
//!        │                                            (one Worker per ScaledObject:
//!        │                                             tick = observe ─► decide ─► rescale)
//!        └► HTTP: exporter (/metrics /healthz /readyz) + /debug/jobs + /admin/rescale
//! ```
//!
//! `explain` runs one observation + decision outside the server; `rescale` applies a
//! parallelism by hand through the same in-place path.

pub mod apply;
mod context;
mod flink_setup;
mod http;
mod kube;
mod pipeline;
pub mod predictive;
pub mod rescale;
mod settings;
pub mod shutdown;
mod worker;
mod workers;

use std::{collections::BTreeMap, net::SocketAddr, sync::Arc};

use tokio::{net::TcpListener, sync::watch};

pub use context::{prometheus_endpoint, Context};
pub use worker::{JobReport, Published, Worker};
pub use workers::{Workers, WorkersEvaluator};

use crate::{
    config::Config,
    core,
    exporter::{self, Metrics, Readiness},
    keda::{
        self, EvalError, ExternalScalerService, RpcObserver, ScalerTarget, ServeOptions,
        ServiceSettings,
    },
};

/// Errors that stop the scaler.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// Binding a listen address failed.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// Address.
        addr: SocketAddr,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// Metrics registry.
    #[error("metrics: {0}")]
    Metrics(#[from] exporter::MetricsError),
    /// A Prometheus client could not be built.
    #[error("prometheus client: {0}")]
    Prometheus(#[from] crate::promql::ClientBuildError),
    /// The gRPC server failed.
    #[error("gRPC server: {0}")]
    Grpc(#[from] keda::ServerError),
    /// The HTTP server failed.
    #[error("HTTP server: {0}")]
    Http(#[from] exporter::HttpError),
    /// A server task panicked.
    #[error("server task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
    /// Kubernetes integration could not start.
    #[error("kubernetes: {0}")]
    Kube(#[from] crate::kube::KubeError),
    /// `explain` could not evaluate.
    #[error("{0}")]
    Evaluate(#[from] EvalError),
}

/// gRPC metrics through the exporter.
struct GrpcMetrics(Arc<Metrics>);

impl RpcObserver for GrpcMetrics {
    fn observe(&self, method: &'static str, code: tonic::Code, elapsed: std::time::Duration) {
        self.0
            .observe_grpc(method, code_str(code), elapsed.as_secs_f64());
    }
}

fn code_str(code: tonic::Code) -> &'static str {
    match code {
        tonic::Code::Ok => "OK",
        tonic::Code::Cancelled => "CANCELLED",
        tonic::Code::InvalidArgument => "INVALID_ARGUMENT",
        tonic::Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        tonic::Code::NotFound => "NOT_FOUND",
        tonic::Code::Unavailable => "UNAVAILABLE",
        tonic::Code::Unimplemented => "UNIMPLEMENTED",
        tonic::Code::Internal => "INTERNAL",
        _ => "OTHER",
    }
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, RuntimeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| RuntimeError::Bind { addr, source })
}

/// Runs the scaler until SIGINT/SIGTERM.
pub async fn serve(
    config: Config,
    grpc: Option<SocketAddr>,
    http: Option<SocketAddr>,
) -> Result<(), RuntimeError> {
    let grpc_addr = grpc.unwrap_or(config.grpc.listen_address);
    let http_addr = http.unwrap_or(config.http.listen_address);
    let metrics = Arc::new(Metrics::with_build_info(
        env!("CARGO_PKG_VERSION"),
        option_env!("FKS_GIT_SHA").unwrap_or("unknown"),
    )?);
    let service_settings = ServiceSettings {
        rpc_timeout: config.grpc.rpc_timeout,
        stream_interval: config.grpc.stream_interval,
        ..ServiceSettings::default()
    };
    let tls = config.grpc.tls.clone();
    let rescale_timeout = config.flink.rescale_timeout;
    let (shutdown, signal) = shutdown::Shutdown::new();
    let mut ctx = Context::new(config, metrics.clone())?;
    if ctx.config.kubernetes.enabled {
        ctx.kube = Some(
            kube::KubeServices::start(&ctx.config.kubernetes, metrics.clone(), signal.clone())
                .await?,
        );
    } else {
        metrics.set_leader(true);
    }
    let ctx = Arc::new(ctx);
    let flink_options = ctx.flink_options();
    let workers = Arc::new(Workers::new(ctx.clone(), signal.clone()));

    let grpc_listener = bind(grpc_addr).await?;
    let http_listener = bind(http_addr).await?;
    let (ready_tx, ready_rx) = watch::channel(Readiness::starting());

    let service = ExternalScalerService::new(
        Arc::new(WorkersEvaluator(workers.clone())),
        service_settings,
    )
    .with_observer(Arc::new(GrpcMetrics(metrics.clone())));
    let grpc_task = tokio::spawn(keda::serve_with(
        grpc_listener,
        service,
        ServeOptions {
            tls,
            ..ServeOptions::default()
        },
        signal.clone().wait(),
    ));
    let routes = http::routes(workers.clone(), flink_options, rescale_timeout);
    let http_task = tokio::spawn(exporter::http::serve(
        http_listener,
        metrics.clone(),
        ready_rx,
        routes,
        signal.clone().wait(),
    ));
    tracing::info!(%grpc_addr, %http_addr, "flink-keda-scaler serving (gRPC external scaler for KEDA; /metrics /healthz /readyz /debug/jobs)");
    let _ = ready_tx.send(Readiness::Ready);

    tokio::select! {
        () = shutdown::os_signal() => tracing::info!("shutdown requested"),
        r = async { signal.clone().wait().await } => { let () = r; }
    }
    let _ = ready_tx.send(Readiness::NotReady("shutting down".into()));
    shutdown.trigger();
    let (g, h) = tokio::join!(grpc_task, http_task);
    g??;
    h??;
    tracing::info!("stopped");
    Ok(())
}

/// `explain`: one observation and decision for a job, outside the server.
pub async fn explain(
    config: Config,
    flink_url: &str,
    job: Option<&str>,
    policy: Option<&str>,
    prometheus: Option<&str>,
) -> Result<serde_json::Value, RuntimeError> {
    let mut metadata: BTreeMap<String, String> = BTreeMap::new();
    metadata.insert("flinkRestUrl".into(), flink_url.into());
    if let Some(j) = job {
        let key = match core::JobSelector::from_arg(Some(j)) {
            core::JobSelector::Id(_) => "jobId",
            _ => "jobName",
        };
        metadata.insert(key.into(), j.into());
    }
    if let Some(p) = policy {
        metadata.insert("policy".into(), p.into());
    }
    if let Some(p) = prometheus {
        metadata.insert("prometheusServer".into(), p.into());
    }
    let target = ScalerTarget::parse("explain", "explain", &metadata).map_err(EvalError::from)?;
    let metrics = Arc::new(Metrics::new()?);
    let ctx = Context::new(config, metrics)?;
    let settings = settings::resolve(&ctx, &target)?;
    let client = ctx
        .flink_client(&settings.flink_url)
        .map_err(|e| pipeline::flink_error(&settings.flink_url, e))?;
    let observed = pipeline::observe(&ctx, &settings, &client, &target.job).await?;
    let now = chrono::Utc::now();
    // the set-up is read before any change, as the worker does at its first evaluation
    // (a failed read is shown, and the decision takes the per-vertex path, as in the worker)
    let mut cache = flink_setup::SetupCache::default();
    let setup_notes = match cache
        .refresh(&client, &observed.job_id, &settings.policy)
        .await
    {
        Ok(fresh) => fresh.as_ref().map(flink_setup::notes).unwrap_or_default(),
        Err(e) => vec![format!("cannot read the JobManager set-up: {e}")],
    };
    let (decision, _) = flink_setup::decide(
        cache.get(),
        &observed.observation,
        &core::JobState::default(),
        &settings.policy,
        now,
    );
    Ok(serde_json::json!({
        "job": { "id": observed.observation.job_id, "name": observed.observation.job_name, "flinkRestUrl": settings.flink_url },
        "summary": decision.summary(),
        "decision": decision,
        "observation": observed.observation,
        "queries": pipeline::query_summaries(&observed.queries),
        "issues": observed.issues,
        "flinkSetup": { "setup": cache.get(), "notes": setup_notes },
        "policy": settings.policy,
    }))
}
