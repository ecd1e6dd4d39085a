//! Bounded one-shot API calls: every request that is not a watch runs under a timeout.

use std::{future::Future, time::Duration};

use super::error::KubeError;

/// Upper bound of one non-watch Kubernetes API call.
pub const API_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs `fut` under `timeout`, mapping the client error (409 → [`KubeError::Conflict`]).
pub(crate) async fn bounded<T, F>(
    op: impl Into<String>,
    timeout: Duration,
    fut: F,
) -> Result<T, KubeError>
where
    F: Future<Output = Result<T, kube::Error>>,
{
    let op = op.into();
    match tokio::time::timeout(timeout, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(KubeError::api(op, e)),
        Err(_) => Err(KubeError::Timeout { op, timeout }),
    }
}

/// [`bounded`] with [`API_TIMEOUT`].
pub(crate) async fn call<T, F>(op: impl Into<String>, fut: F) -> Result<T, KubeError>
where
    F: Future<Output = Result<T, kube::Error>>,
{
    bounded(op, API_TIMEOUT, fut).await
}
