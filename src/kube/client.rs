//! Building the Kubernetes client with bounded connect/write timeouts. The read timeout
//! stays unset because watches are long-lived (kube-runtime's watcher has its own idle
//! timeout); one-shot calls are bounded by [`super::API_TIMEOUT`] instead.

use std::time::Duration;

use kube::{Client, Config};

use super::error::KubeError;

/// Connect timeout to the apiserver.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Write timeout of a request.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// A client from the in-cluster config or `$KUBECONFIG`/`~/.kube/config`, with
/// [`CONNECT_TIMEOUT`] and [`WRITE_TIMEOUT`].
pub async fn client() -> Result<Client, KubeError> {
    let mut config = Config::infer().await.map_err(|e| KubeError::ClientConfig {
        source: Box::new(e),
    })?;
    config.connect_timeout = Some(CONNECT_TIMEOUT);
    config.write_timeout = Some(WRITE_TIMEOUT);
    Client::try_from(config).map_err(|e| KubeError::ClientConfig {
        source: Box::new(e),
    })
}
