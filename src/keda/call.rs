//! `Call`: a drop guard around one rpc. It owns the rpc's `rpc` span (fields `method` and
//! `scaled_object`, the request's `namespace/name`), which the handler and the stream
//! run in, logs a failed rpc once with its code, and reports every rpc to the
//! [`RpcObserver`] exactly once, including rpcs the client cancels (the handler future or
//! the stream is dropped before it finishes → `CANCELLED`).

use std::{sync::Arc, time::Instant};

use tonic::{Code, Status};
use tracing::Span;

use super::evaluator::RpcObserver;

/// One rpc in flight.
pub(crate) struct Call {
    method: &'static str,
    started: Instant,
    observer: Arc<dyn RpcObserver>,
    span: Span,
    code: Option<Code>,
}

impl Call {
    /// Starts timing `method` for the ScaledObject `namespace/name` (as received; may be
    /// empty when the request is invalid).
    pub(crate) fn start(
        method: &'static str,
        observer: Arc<dyn RpcObserver>,
        namespace: &str,
        name: &str,
    ) -> Self {
        let span = tracing::info_span!(
            "rpc",
            method,
            scaled_object = %format_args!("{namespace}/{name}"),
        );
        Self {
            method,
            started: Instant::now(),
            observer,
            span,
            code: None,
        }
    }

    /// The rpc's span: the handler and the stream run in it.
    pub(crate) fn span(&self) -> &Span {
        &self.span
    }

    /// Records the final outcome (logs it when it is an error) and passes the result on.
    pub(crate) fn finish<T>(&mut self, result: Result<T, Status>) -> Result<T, Status> {
        match &result {
            Ok(_) => self.code = Some(Code::Ok),
            Err(status) => self.fail(status),
        }
        result
    }

    /// Records a successful end (a stream that ended on shutdown).
    pub(crate) fn succeed(&mut self) {
        self.code = Some(Code::Ok);
    }

    /// Records and logs a failure.
    pub(crate) fn fail(&mut self, status: &Status) {
        self.code = Some(status.code());
        let _in_rpc = self.span.enter();
        tracing::warn!(
            code = ?status.code(),
            error = %status.message(),
            "KEDA rpc failed",
        );
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        let code = self.code.unwrap_or_else(|| {
            let _in_rpc = self.span.enter();
            tracing::debug!("KEDA rpc cancelled by the client");
            Code::Cancelled
        });
        self.observer
            .observe(self.method, code, self.started.elapsed());
    }
}
