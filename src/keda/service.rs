//! `ExternalScalerService`: the `externalscaler.ExternalScaler` gRPC service. It only
//! validates (scalerMetadata → [`ScalerTarget`]), delegates (to the [`Evaluator`], bounded
//! by a timeout) and converts (to the proto messages). Errors become precise gRPC codes;
//! it never answers 0 or a stale value, so KEDA's fallback can act.

use std::{pin::Pin, sync::Arc, time::Duration};

use chrono::Utc;
use futures_util::Stream;
use tokio::sync::watch;
use tonic::{Request, Response, Status};
use tracing::Instrument;

use super::{
    call::Call,
    evaluator::{EvalError, Evaluation, Evaluator, NoopObserver, RpcObserver},
    metadata::MetadataError,
    pb::{
        external_scaler_server::ExternalScaler, GetMetricSpecResponse, GetMetricsRequest,
        GetMetricsResponse, IsActiveResponse, MetricSpec, MetricValue, ScaledObjectRef,
    },
    streams,
    target::ScalerTarget,
};

/// Default bound on one evaluation (KEDA sets no deadline on its calls).
pub const DEFAULT_RPC_TIMEOUT: Duration = Duration::from_secs(5);
/// Default re-evaluation interval of `StreamIsActive`.
pub const DEFAULT_STREAM_INTERVAL: Duration = Duration::from_secs(5);
/// Default maximum age of an evaluation before it is refused as stale.
pub const DEFAULT_MAX_EVALUATION_AGE: Duration = Duration::from_secs(300);
/// Longest status message sent for a failed evaluation (bytes). The message travels in
/// the HTTP/2 trailers (`grpc-message`); an upstream error never makes it unbounded.
pub const MAX_STATUS_MESSAGE: usize = 4096;

/// Tunables of the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceSettings {
    /// Bound on each evaluator call; exceeded → `UNAVAILABLE`.
    pub rpc_timeout: Duration,
    /// `StreamIsActive` re-evaluation interval.
    pub stream_interval: Duration,
    /// Evaluations older than this are refused with `UNAVAILABLE` (a wedged runtime must
    /// not publish a stale value forever). `None` disables the check.
    pub max_evaluation_age: Option<Duration>,
}

impl Default for ServiceSettings {
    fn default() -> Self {
        Self {
            rpc_timeout: DEFAULT_RPC_TIMEOUT,
            stream_interval: DEFAULT_STREAM_INTERVAL,
            max_evaluation_age: Some(DEFAULT_MAX_EVALUATION_AGE),
        }
    }
}

/// The KEDA external-scaler service, generic over the runtime's [`Evaluator`]. Cheap to
/// clone (all clones share the evaluator and the shutdown signal).
pub struct ExternalScalerService<E> {
    pub(super) evaluator: Arc<E>,
    pub(super) observer: Arc<dyn RpcObserver>,
    pub(super) settings: ServiceSettings,
    shutdown: Arc<watch::Sender<bool>>,
}

impl<E> Clone for ExternalScalerService<E> {
    fn clone(&self) -> Self {
        Self {
            evaluator: Arc::clone(&self.evaluator),
            observer: Arc::clone(&self.observer),
            settings: self.settings,
            shutdown: Arc::clone(&self.shutdown),
        }
    }
}

impl<E: Evaluator> ExternalScalerService<E> {
    /// A service answering from `evaluator`, with a no-op rpc observer.
    pub fn new(evaluator: Arc<E>, settings: ServiceSettings) -> Self {
        Self {
            evaluator,
            observer: Arc::new(NoopObserver),
            settings,
            shutdown: Arc::new(watch::channel(false).0),
        }
    }

    /// Reports every rpc to `observer`.
    pub fn with_observer(mut self, observer: Arc<dyn RpcObserver>) -> Self {
        self.observer = observer;
        self
    }

    /// The settings in use.
    pub fn settings(&self) -> ServiceSettings {
        self.settings
    }

    /// Ends every open stream (`StreamIsActive`, `StreamMetricSpec`) cleanly (status OK);
    /// streams opened afterwards end at once (`StreamMetricSpec` after its spec). Called by
    /// [`super::server::serve`] before the graceful shutdown, which would otherwise wait on
    /// open streams forever.
    pub fn begin_shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    /// A receiver that turns `true` when shutdown begins.
    pub(super) fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    pub(super) fn call(&self, method: &'static str, r: Option<&ScaledObjectRef>) -> Call {
        let (ns, name) = r.map_or(("", ""), |r| (r.namespace.as_str(), r.name.as_str()));
        Call::start(method, Arc::clone(&self.observer), ns, name)
    }

    /// Evaluates `target`, bounded by the rpc timeout, and refuses unusable answers
    /// (0 TaskManagers, stale evaluations).
    pub(super) async fn evaluate(&self, target: &ScalerTarget) -> Result<Evaluation, Status> {
        let timeout = self.settings.rpc_timeout;
        let evaluation = tokio::time::timeout(timeout, self.evaluator.evaluate(target))
            .await
            .map_err(|_| {
                let waiting = self
                    .evaluator
                    .waiting_on(target)
                    .map_or(String::new(), |w| {
                        format!(" {}", crate::core::text::cap(&w, 1024))
                    });
                Status::unavailable(format!(
                    "evaluation of {target} timed out after {}{waiting}",
                    humantime::format_duration(timeout)
                ))
            })?
            .map_err(|e| eval_status(target, &e))?;
        if evaluation.task_managers == 0 {
            return Err(Status::internal(format!(
                "evaluation of {target} returned 0 TaskManagers; refusing to publish 0"
            )));
        }
        if let Some(max_age) = self.settings.max_evaluation_age {
            let age = (Utc::now() - evaluation.evaluated_at)
                .to_std()
                .unwrap_or(Duration::ZERO);
            if age > max_age {
                return Err(Status::unavailable(format!(
                    "evaluation of {target} is stale: made {} ago, at {} (max age {})",
                    humantime::format_duration(Duration::from_secs(age.as_secs())),
                    evaluation.evaluated_at.to_rfc3339(),
                    humantime::format_duration(max_age)
                )));
            }
        }
        Ok(evaluation)
    }
}

/// Parses a `ScaledObjectRef` into a [`ScalerTarget`].
pub fn parse_ref(r: &ScaledObjectRef) -> Result<ScalerTarget, MetadataError> {
    ScalerTarget::parse(&r.namespace, &r.name, &r.scaler_metadata)
}

/// The metric spec of a target: one metric, AverageValue target 1 (the value is the
/// desired TaskManager count). A pure function of the metadata.
#[allow(deprecated)] // `targetSize` is deprecated in the proto; KEDA < 2.17 reads only it.
pub fn metric_spec(target: &ScalerTarget) -> GetMetricSpecResponse {
    GetMetricSpecResponse {
        metric_specs: vec![MetricSpec {
            metric_name: target.metric_name().to_string(),
            target_size: 1,
            target_size_float: 1.0,
        }],
    }
}

/// `GetMetricSpec` without the transport: parse, then [`metric_spec`].
pub fn metric_spec_response(r: &ScaledObjectRef) -> Result<GetMetricSpecResponse, Status> {
    parse_ref(r).map(|t| metric_spec(&t)).map_err(invalid)
}

/// The one metric value of an evaluation (both the int and the float field).
#[allow(deprecated)] // `metricValue` is deprecated in the proto; KEDA < 2.17 reads only it.
pub fn metric_value(target: &ScalerTarget, evaluation: &Evaluation) -> GetMetricsResponse {
    GetMetricsResponse {
        metric_values: vec![MetricValue {
            metric_name: target.metric_name().to_string(),
            metric_value: i64::from(evaluation.task_managers),
            metric_value_float: f64::from(evaluation.task_managers),
        }],
    }
}

/// Bad input → `INVALID_ARGUMENT` naming the key.
pub(super) fn invalid(e: MetadataError) -> Status {
    Status::invalid_argument(e.to_string())
}

fn eval_status(target: &ScalerTarget, e: &EvalError) -> Status {
    let message = format!("evaluation of {target} failed: {e}");
    Status::new(
        e.code(),
        crate::core::text::cap(&message, MAX_STATUS_MESSAGE),
    )
}

fn check_metric_name(target: &ScalerTarget, requested: &str) -> Result<(), MetadataError> {
    if target.matches_metric_name(requested) {
        return Ok(());
    }
    Err(MetadataError::request(
        "metricName",
        format!(
            "'{requested}' is not a metric of this trigger; expected '{}' (case-insensitive, \
             optionally with an 's<N>-' prefix)",
            target.metric_name()
        ),
    ))
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl<E: Evaluator> ExternalScaler for ExternalScalerService<E> {
    async fn is_active(
        &self,
        request: Request<ScaledObjectRef>,
    ) -> Result<Response<IsActiveResponse>, Status> {
        let r = request.into_inner();
        let mut call = self.call("IsActive", Some(&r));
        let result = async {
            let target = parse_ref(&r).map_err(invalid)?;
            let evaluation = self.evaluate(&target).await?;
            Ok(Response::new(IsActiveResponse {
                result: evaluation.active,
            }))
        }
        .instrument(call.span().clone())
        .await;
        call.finish(result)
    }

    type StreamIsActiveStream = BoxStream<IsActiveResponse>;

    async fn stream_is_active(
        &self,
        request: Request<ScaledObjectRef>,
    ) -> Result<Response<Self::StreamIsActiveStream>, Status> {
        let r = request.into_inner();
        let mut call = self.call("StreamIsActive", Some(&r));
        match parse_ref(&r) {
            Ok(target) => Ok(Response::new(Box::pin(streams::is_active(
                self.clone(),
                target,
                call,
            )))),
            Err(e) => call.finish(Err(invalid(e))),
        }
    }

    async fn get_metric_spec(
        &self,
        request: Request<ScaledObjectRef>,
    ) -> Result<Response<GetMetricSpecResponse>, Status> {
        let r = request.into_inner();
        let mut call = self.call("GetMetricSpec", Some(&r));
        call.finish(metric_spec_response(&r).map(Response::new))
    }

    async fn get_metrics(
        &self,
        request: Request<GetMetricsRequest>,
    ) -> Result<Response<GetMetricsResponse>, Status> {
        let req = request.into_inner();
        let mut call = self.call("GetMetrics", req.scaled_object_ref.as_ref());
        let result = async {
            let r = req.scaled_object_ref.as_ref().ok_or_else(|| {
                invalid(MetadataError::request(
                    "scaledObjectRef",
                    "missing from the GetMetrics request",
                ))
            })?;
            let target = parse_ref(r).map_err(invalid)?;
            check_metric_name(&target, &req.metric_name).map_err(invalid)?;
            let evaluation = self.evaluate(&target).await?;
            Ok(Response::new(metric_value(&target, &evaluation)))
        }
        .instrument(call.span().clone())
        .await;
        call.finish(result)
    }

    type StreamMetricSpecStream = BoxStream<GetMetricSpecResponse>;

    async fn stream_metric_spec(
        &self,
        request: Request<ScaledObjectRef>,
    ) -> Result<Response<Self::StreamMetricSpecStream>, Status> {
        let r = request.into_inner();
        let mut call = self.call("StreamMetricSpec", Some(&r));
        match parse_ref(&r) {
            Ok(target) => Ok(Response::new(Box::pin(streams::metric_spec(
                self.shutdown_signal(),
                metric_spec(&target),
                call,
            )))),
            Err(e) => call.finish(Err(invalid(e))),
        }
    }
}
