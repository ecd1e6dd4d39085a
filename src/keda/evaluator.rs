//! The ports of the gRPC adapter: [`Evaluator`] (implemented by the runtime: the latest
//! decision for a ScaledObject, cached with a TTL) and [`RpcObserver`] (implemented with
//! the exporter's metrics). Fakes of both are trivial, which is how the tests drive the
//! service without Prometheus, Flink or Kubernetes.

use std::{future::Future, time::Duration};

use chrono::{DateTime, Utc};

use super::{metadata::MetadataError, target::ScalerTarget};

/// The runtime's answer for one ScaledObject trigger.
pub trait Evaluator: Send + Sync + 'static {
    /// Latest evaluation for this ScaledObject (cached by the implementation with a TTL,
    /// keyed by [`ScalerTarget::cache_key`]). Must fail (never guess) when the upstream
    /// cannot be read. The service bounds the call with its rpc timeout.
    fn evaluate(
        &self,
        target: &ScalerTarget,
    ) -> impl Future<Output = Result<Evaluation, EvalError>> + Send;
}

/// One evaluation of a ScaledObject trigger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Evaluation {
    /// Desired TaskManager count (≥ 1; the metric value, with target 1 AverageValue). The
    /// service refuses to publish 0.
    pub task_managers: u32,
    /// Whether the job needs to run (KEDA activation; `IsActive`).
    pub active: bool,
    /// When the evaluation was made; older than the service's max age → `UNAVAILABLE`.
    pub evaluated_at: DateTime<Utc>,
}

/// Why an evaluation failed. Each variant maps to one gRPC code (see [`EvalError::code`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    /// The trigger configuration is invalid in a way only the runtime can see (e.g. the
    /// `policy` key names no configured policy). → `INVALID_ARGUMENT`.
    #[error("invalid scalerMetadata key '{key}': {message}")]
    InvalidArgument {
        /// The offending scalerMetadata key.
        key: String,
        /// What is wrong with it.
        message: String,
    },
    /// The Flink job (or cluster) the trigger designates does not exist. → `NOT_FOUND`.
    #[error("not found: {0}")]
    NotFound(String),
    /// An upstream (Prometheus, Flink, Kubernetes) is unreachable, timed out, or answered
    /// empty / NaN. → `UNAVAILABLE`, so KEDA's fallback acts instead of a silent 0.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A bug or unexpected state in the scaler itself. → `INTERNAL`.
    #[error("internal error: {0}")]
    Internal(String),
}

impl EvalError {
    /// The gRPC code of this error.
    pub fn code(&self) -> tonic::Code {
        match self {
            EvalError::InvalidArgument { .. } => tonic::Code::InvalidArgument,
            EvalError::NotFound(_) => tonic::Code::NotFound,
            EvalError::Unavailable(_) => tonic::Code::Unavailable,
            EvalError::Internal(_) => tonic::Code::Internal,
        }
    }
}

impl From<MetadataError> for EvalError {
    fn from(e: MetadataError) -> Self {
        EvalError::InvalidArgument {
            key: e.key,
            message: e.problem,
        }
    }
}

/// Observes every finished rpc (method name as in the proto, final gRPC code, time from
/// request to final status; for streams, the stream's lifetime).
pub trait RpcObserver: Send + Sync + 'static {
    /// Called exactly once per rpc.
    fn observe(&self, method: &'static str, code: tonic::Code, elapsed: Duration);
}

/// An observer that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopObserver;

impl RpcObserver for NoopObserver {
    fn observe(&self, _method: &'static str, _code: tonic::Code, _elapsed: Duration) {}
}
