//! `Call`: a drop guard around one rpc. It logs a failed rpc once, with the ScaledObject,
//! method and code as fields, and reports every rpc to the [`RpcObserver`] exactly once,
//! including rpcs the client cancels (the handler future or the stream is dropped before
//! it finishes → `CANCELLED`).

use std::{sync::Arc, time::Instant};

use tonic::{Code, Status};

use super::evaluator::RpcObserver;

/// One rpc in flight.
pub(crate) struct Call {
    method: &'static str,
    started: Instant,
    observer: Arc<dyn RpcObserver>,
    namespace: String,
    name: String,
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
        Self {
            method,
            started: Instant::now(),
            observer,
            namespace: namespace.to_string(),
            name: name.to_string(),
            code: None,
        }
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
        tracing::warn!(
            namespace = %self.namespace,
            name = %self.name,
            method = self.method,
            code = ?status.code(),
            error = %status.message(),
            "KEDA rpc failed",
        );
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        let code = self.code.unwrap_or_else(|| {
            tracing::debug!(
                namespace = %self.namespace,
                name = %self.name,
                method = self.method,
                "KEDA rpc cancelled by the client",
            );
            Code::Cancelled
        });
        self.observer
            .observe(self.method, code, self.started.elapsed());
    }
}
