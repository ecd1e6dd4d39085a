//! The ports of the gRPC adapter: [`Evaluator`] (implemented by the runtime: the latest
//! decision for a ScaledObject, cached with a TTL) and [`RpcObserver`] (implemented with
//! the exporter's metrics). Fakes of both are trivial, which is how the tests drive the
//! service without Prometheus, Flink or Kubernetes.

use std::{future::Future, sync::Arc, time::Duration};

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

    /// What an evaluation of `target` that has not finished is waiting on (e.g. "waiting
    /// for the first evaluation: Flink REST <url> has not answered"), so an rpc that times
    /// out can say why. `None` when unknown.
    fn waiting_on(&self, _target: &ScalerTarget) -> Option<String> {
        None
    }
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

/// The underlying error of an evaluation failure (a Flink, Prometheus or Kubernetes
/// error, a config error), shared by every rpc answered from the same evaluation.
pub type Cause = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// Why an evaluation failed. Each variant maps to one gRPC code (see [`EvalError::code`])
/// and one label (see [`EvalError::kind`]). `message` is the whole text KEDA gets (the
/// cause's own text included); `source` keeps the typed cause, so the chain can be walked
/// without parsing the message.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EvalError {
    /// The trigger configuration is invalid in a way only the runtime can see (e.g. the
    /// `policy` key names no configured policy). → `INVALID_ARGUMENT`.
    #[error("invalid scalerMetadata key '{key}': {message}")]
    InvalidArgument {
        /// The offending scalerMetadata key.
        key: String,
        /// What is wrong with it.
        message: String,
        /// The underlying error, if any.
        #[source]
        source: Option<Cause>,
    },
    /// The Flink job (or cluster) the trigger designates does not exist. → `NOT_FOUND`.
    #[error("not found: {message}")]
    NotFound {
        /// What is missing.
        message: String,
        /// The underlying error, if any.
        #[source]
        source: Option<Cause>,
    },
    /// An upstream (Prometheus, Flink, Kubernetes) is unreachable, timed out, or answered
    /// empty / NaN. → `UNAVAILABLE`, so KEDA's fallback acts instead of a silent 0.
    #[error("unavailable: {message}")]
    Unavailable {
        /// What could not be read, and why.
        message: String,
        /// The underlying error, if any.
        #[source]
        source: Option<Cause>,
    },
    /// The trigger points the scaler somewhere its configuration forbids (a JobManager
    /// URL outside `flink.allowedUrls`); nothing was sent there. → `PERMISSION_DENIED`.
    #[error("permission denied: {message}")]
    PermissionDenied {
        /// What is refused and by which rule.
        message: String,
        /// The underlying error, if any.
        #[source]
        source: Option<Cause>,
    },
    /// A bug or unexpected state in the scaler itself. → `INTERNAL`.
    #[error("internal error: {message}")]
    Internal {
        /// What went wrong.
        message: String,
        /// The underlying error, if any.
        #[source]
        source: Option<Cause>,
    },
}

/// `context: cause` (or the cause alone when `context` is empty), and the cause.
fn caused<E>(context: &str, cause: E) -> (String, Option<Cause>)
where
    E: std::error::Error + Send + Sync + 'static,
{
    let message = if context.is_empty() {
        cause.to_string()
    } else {
        format!("{context}: {cause}")
    };
    (message, Some(Arc::new(cause)))
}

impl EvalError {
    /// `INVALID_ARGUMENT` naming `key`, without an underlying error.
    pub fn invalid_argument(key: impl Into<String>, message: impl Into<String>) -> Self {
        EvalError::InvalidArgument {
            key: key.into(),
            message: message.into(),
            source: None,
        }
    }

    /// `INVALID_ARGUMENT` naming `key`, caused by `cause` (its text is the message).
    pub fn invalid_argument_from<E>(key: impl Into<String>, cause: E) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        let (message, source) = caused("", cause);
        EvalError::InvalidArgument {
            key: key.into(),
            message,
            source,
        }
    }

    /// `NOT_FOUND` without an underlying error.
    pub fn not_found(message: impl Into<String>) -> Self {
        EvalError::NotFound {
            message: message.into(),
            source: None,
        }
    }

    /// `NOT_FOUND` caused by `cause` (its text is the message).
    pub fn not_found_from<E>(cause: E) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        let (message, source) = caused("", cause);
        EvalError::NotFound { message, source }
    }

    /// `UNAVAILABLE` without an underlying error.
    pub fn unavailable(message: impl Into<String>) -> Self {
        EvalError::Unavailable {
            message: message.into(),
            source: None,
        }
    }

    /// `UNAVAILABLE`: `context: cause`.
    pub fn unavailable_from<E>(context: &str, cause: E) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        let (message, source) = caused(context, cause);
        EvalError::Unavailable { message, source }
    }

    /// `PERMISSION_DENIED` caused by `cause` (its text is the message).
    pub fn permission_denied_from<E>(cause: E) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        let (message, source) = caused("", cause);
        EvalError::PermissionDenied { message, source }
    }

    /// `INTERNAL` without an underlying error.
    pub fn internal(message: impl Into<String>) -> Self {
        EvalError::Internal {
            message: message.into(),
            source: None,
        }
    }

    /// `INTERNAL`: `context: cause`.
    pub fn internal_from<E>(context: &str, cause: E) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        let (message, source) = caused(context, cause);
        EvalError::Internal { message, source }
    }

    /// The gRPC code of this error.
    pub fn code(&self) -> tonic::Code {
        match self {
            EvalError::InvalidArgument { .. } => tonic::Code::InvalidArgument,
            EvalError::NotFound { .. } => tonic::Code::NotFound,
            EvalError::Unavailable { .. } => tonic::Code::Unavailable,
            EvalError::PermissionDenied { .. } => tonic::Code::PermissionDenied,
            EvalError::Internal { .. } => tonic::Code::Internal,
        }
    }

    /// A bounded label value (`invalid_argument`, `not_found`, `unavailable`, `internal`).
    pub fn kind(&self) -> &'static str {
        match self {
            EvalError::InvalidArgument { .. } => "invalid_argument",
            EvalError::NotFound { .. } => "not_found",
            EvalError::Unavailable { .. } => "unavailable",
            EvalError::PermissionDenied { .. } => "permission_denied",
            EvalError::Internal { .. } => "internal",
        }
    }
}

impl From<MetadataError> for EvalError {
    fn from(e: MetadataError) -> Self {
        EvalError::invalid_argument(e.key, e.problem)
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
