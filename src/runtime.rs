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

pub mod admin;
pub mod apply;
pub mod claims;
mod context;
mod debug_jobs;
mod flink_setup;
mod http;
pub mod hub;
mod kube;
mod pipeline;
pub mod predictive;
mod progress;
pub mod rescale;
mod rest_cache;
mod schedule;
mod settings;
pub mod shutdown;
mod state_gc;
mod sync;
mod worker;
mod workers;

use std::{collections::BTreeMap, net::SocketAddr, sync::Arc};

use tokio::{net::TcpListener, sync::watch};

pub use context::{prometheus_endpoint, Context};
pub use settings::policy_queries;
pub use worker::{JobReport, Published, StoredReport, Worker};
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
    /// A client the config names could not be built.
    #[error("{0}")]
    Context(#[from] context::ContextError),
    /// The gRPC server failed.
    #[error("gRPC server: {0}")]
    Grpc(#[from] keda::ServerError),
    /// The HTTP server failed.
    #[error("HTTP server: {0}")]
    Http(#[from] exporter::HttpError),
    /// The admin listener settings are refused (off loopback without authentication).
    #[error("{0}")]
    Admin(#[source] crate::config::ConfigError),
    /// The admin listener could not start or failed.
    #[error("{0}")]
    AdminServe(#[from] admin::AdminError),
    /// A listener stopped serving without an error.
    #[error("a listener stopped serving")]
    ListenerStopped,
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
    admin_addr: Option<SocketAddr>,
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
    let hub_task = ctx.hub.spawn(signal.clone());
    let workers = Arc::new(Workers::new(ctx.clone(), signal.clone()));
    workers.spawn_lag_gauge();

    let grpc_listener = bind(grpc_addr).await?;
    let http_listener = bind(http_addr).await?;
    let admin_addr = admin_addr.unwrap_or(ctx.config.admin.listen_address);
    ctx.config
        .admin
        .check(admin_addr)
        .map_err(RuntimeError::Admin)?;
    let admin_tls = admin::load_tls(&ctx.config.admin)?;
    let admin_state = Arc::new(admin::Admin::new(ctx.clone(), workers.clone())?);
    let admin_listener = bind(admin_addr).await?;
    let (ready_tx, ready_rx) = watch::channel(Readiness::starting());

    let service = ExternalScalerService::new(
        Arc::new(WorkersEvaluator(workers.clone())),
        service_settings,
    )
    .with_observer(Arc::new(GrpcMetrics(metrics.clone())));
    // TLS files and the reflection service load here, so a bad file stops the start
    // (non-zero exit, the cause printed) before anything reports ready
    let grpc_server = keda::prepare(
        grpc_listener,
        service,
        ServeOptions {
            tls,
            ..ServeOptions::default()
        },
    )?;
    let grpc_task = tokio::spawn(grpc_server.run(signal.clone().wait()));
    let http_task = tokio::spawn(exporter::http::serve(
        http_listener,
        metrics.clone(),
        ready_rx,
        axum::Router::new(),
        signal.clone().wait(),
    ));
    let admin_router = admin::router(admin_state, http::debug_routes(workers.clone()));
    let admin_task = tokio::spawn(admin::serve(
        admin_listener,
        admin_tls,
        admin_router,
        signal.clone().wait(),
    ));
    tracing::info!(%grpc_addr, %http_addr, %admin_addr, "flink-keda-scaler serving (gRPC external scaler for KEDA; /metrics /healthz /readyz; admin: /debug/jobs /admin/rescale)");
    let _ = ready_tx.send(Readiness::Ready);

    let mut tasks = ServerTasks {
        grpc: grpc_task,
        http: http_task,
        admin: admin_task,
    };
    let early = tokio::select! {
        () = shutdown::os_signal() => { tracing::info!("shutdown requested"); None }
        r = async { signal.clone().wait().await } => { let () = r; None }
        r = &mut tasks.grpc => Some(flatten(r, RuntimeError::Grpc)),
        r = &mut tasks.http => Some(flatten(r, RuntimeError::Http)),
        r = &mut tasks.admin => Some(flatten(r, RuntimeError::AdminServe)),
    };
    let _ = ready_tx.send(Readiness::NotReady("shutting down".into()));
    shutdown.trigger();
    if let Some(result) = early {
        // a listener stopped on its own: fail loudly, whatever it returned
        let cause = result.err().unwrap_or(RuntimeError::ListenerStopped);
        tasks.abort();
        hub_task.abort();
        return Err(cause);
    }
    let (g, h, a, hub) = tokio::join!(tasks.grpc, tasks.http, tasks.admin, hub_task);
    g??;
    h??;
    a??;
    hub?;
    tracing::info!("stopped");
    Ok(())
}

/// The server tasks, so one that ends early stops the process.
struct ServerTasks {
    grpc: tokio::task::JoinHandle<Result<(), keda::ServerError>>,
    http: tokio::task::JoinHandle<Result<(), exporter::HttpError>>,
    admin: tokio::task::JoinHandle<Result<(), admin::AdminError>>,
}

impl ServerTasks {
    fn abort(&self) {
        self.grpc.abort();
        self.http.abort();
        self.admin.abort();
    }
}

fn flatten<E>(
    joined: Result<Result<(), E>, tokio::task::JoinError>,
    wrap: fn(E) -> RuntimeError,
) -> Result<(), RuntimeError> {
    joined?.map_err(wrap)
}

/// `check-config`'s file checks: every file the config names (TLS certificates, keys
/// and CAs, token and password files) exists and parses, by building what `serve` builds
/// from them. Returns the warnings: `insecureSkipVerify`, no policy configured, a bearer
/// token crossing the network in clear.
pub fn check_files(config: &Config) -> Result<Vec<String>, RuntimeError> {
    if let Some(tls) = &config.grpc.tls {
        keda::load_tls(tls)?;
    }
    admin::load_tls(&config.admin)?;
    admin::Guard::new(&config.admin)?;
    let metrics = Arc::new(Metrics::new()?);
    Context::new(config.clone(), metrics)?;
    let mut warnings = config.admin.warnings();
    let insecure = config
        .prometheus
        .iter()
        .filter(|(_, s)| s.tls.as_ref().is_some_and(|t| t.insecure_skip_verify))
        .map(|(name, _)| format!("prometheus.{name}.tls"))
        .chain(
            config
                .flink
                .tls
                .as_ref()
                .filter(|t| t.insecure_skip_verify)
                .map(|_| "flink.tls".to_string()),
        );
    for at in insecure {
        warnings.push(format!(
            "{at}.insecureSkipVerify is on: the server's certificate is not checked (anyone on the path can read the credentials sent)"
        ));
    }
    if config.policies.is_empty() {
        warnings.push(
            "policies is empty: every ScaledObject gets the built-in default policy".to_string(),
        );
    }
    Ok(warnings)
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
        "signals": observed.signals_summary(),
        "scrapeIntervals": ctx.hub.scrape_intervals(),
        "issues": observed.issues,
        "flinkSetup": { "setup": cache.get(), "notes": setup_notes },
        "policy": settings.policy,
    }))
}
