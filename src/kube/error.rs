//! Typed errors of the kube adapter, with a closed [`KubeError::kind`] set for metric labels.

use std::time::Duration;

/// An error of the kube adapter.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// A Kubernetes API call failed (transport, 4xx/5xx other than a conflict).
    #[error("kubernetes {op} failed: {source}")]
    Api {
        /// What was being done, e.g. `get ConfigMap ns/name`.
        op: String,
        /// The client error.
        #[source]
        source: Box<kube::Error>,
    },
    /// A Kubernetes API call did not complete within its timeout.
    #[error("kubernetes {op} timed out after {timeout:?}")]
    Timeout {
        /// What was being done.
        op: String,
        /// The bound that was exceeded.
        timeout: Duration,
    },
    /// Optimistic concurrency lost: the object changed (HTTP 409) since it was read, or
    /// it already exists when a create was expected.
    #[error("conflict on {what}: the object was changed by another writer")]
    Conflict {
        /// The object, e.g. `ConfigMap ns/name`.
        what: String,
    },
    /// The ScaledObject's namespace is not one the scaler watches
    /// (`kubernetes.namespaces`).
    #[error(
        "namespace {namespace} is not watched by this scaler (kubernetes.namespaces: {watched})"
    )]
    NamespaceNotWatched {
        /// The ScaledObject's namespace.
        namespace: String,
        /// The namespaces watched, comma-separated.
        watched: String,
    },
    /// The ScaledObject is not in the watch cache.
    #[error("ScaledObject {namespace}/{name} not found")]
    ScaledObjectNotFound {
        /// Namespace of the ScaledObject.
        namespace: String,
        /// Name of the ScaledObject.
        name: String,
    },
    /// The scale target named by the ScaledObject is not in the watch cache.
    #[error("scale target {kind} {namespace}/{name} not found")]
    TargetNotFound {
        /// Kind of the target.
        kind: String,
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
    },
    /// The scale target's kind is neither an `apps/v1 Deployment` nor a `FlinkDeployment`.
    #[error("unsupported scale target {api_version} {kind} (supported: apps/v1 Deployment, flink.apache.org FlinkDeployment)")]
    UnsupportedTarget {
        /// `apiVersion` from `scaleTargetRef`.
        api_version: String,
        /// `kind` from `scaleTargetRef`.
        kind: String,
    },
    /// An object lacks a field we need, or has it in the wrong shape.
    #[error("invalid {what}: {reason}")]
    InvalidObject {
        /// The object.
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// No JobManager REST URL could be found for a Deployment target.
    #[error("no Flink REST URL for {namespace}/{name}: set trigger metadata `flinkRestUrl` or annotation `flink-keda-scaler.io/rest-url`")]
    NoRestUrl {
        /// Namespace of the target.
        namespace: String,
        /// Name of the target.
        name: String,
    },
    /// A watch cache has not finished its initial list yet.
    #[error("watch cache for {what} is not ready")]
    CacheNotReady {
        /// The resource, e.g. `scaledobjects`.
        what: &'static str,
    },
    /// No usable Kubernetes client configuration (in-cluster or kubeconfig).
    #[error("kubernetes client configuration: {source}")]
    ClientConfig {
        /// Why: the config could not be inferred, or no client built from it.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Persisted state could not be (de)serialized.
    #[error("persisted state of {job}: {source}")]
    Serialization {
        /// The job key.
        job: String,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },
}

impl KubeError {
    /// Closed set of label values for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            KubeError::Api { .. } => "api",
            KubeError::Timeout { .. } => "timeout",
            KubeError::Conflict { .. } => "conflict",
            KubeError::ScaledObjectNotFound { .. } => "scaled_object_not_found",
            KubeError::NamespaceNotWatched { .. } => "namespace_not_watched",
            KubeError::TargetNotFound { .. } => "target_not_found",
            KubeError::UnsupportedTarget { .. } => "unsupported_target",
            KubeError::InvalidObject { .. } => "invalid_object",
            KubeError::NoRestUrl { .. } => "no_rest_url",
            KubeError::CacheNotReady { .. } => "cache_not_ready",
            KubeError::ClientConfig { .. } => "client_config",
            KubeError::Serialization { .. } => "serialization",
        }
    }

    /// True for an optimistic-concurrency conflict.
    pub fn is_conflict(&self) -> bool {
        matches!(self, KubeError::Conflict { .. })
    }

    /// Wraps a client error; a 409 becomes [`KubeError::Conflict`].
    pub(crate) fn api(op: impl Into<String>, source: kube::Error) -> Self {
        let op = op.into();
        match &source {
            kube::Error::Api(status) if status.code == 409 => KubeError::Conflict { what: op },
            _ => KubeError::Api {
                op,
                source: Box::new(source),
            },
        }
    }

    /// The HTTP status code of an API error, if any.
    pub fn status_code(&self) -> Option<u16> {
        match self {
            KubeError::Api { source, .. } => match source.as_ref() {
                kube::Error::Api(status) => Some(status.code),
                _ => None,
            },
            KubeError::Conflict { .. } => Some(409),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every variant maps to a distinct, snake_case label.
    #[test]
    fn kinds_are_distinct_labels() {
        let errors = [
            KubeError::Timeout {
                op: "x".into(),
                timeout: Duration::from_secs(1),
            },
            KubeError::Conflict { what: "x".into() },
            KubeError::ScaledObjectNotFound {
                namespace: "n".into(),
                name: "x".into(),
            },
            KubeError::TargetNotFound {
                kind: "k".into(),
                namespace: "n".into(),
                name: "x".into(),
            },
            KubeError::UnsupportedTarget {
                api_version: "v1".into(),
                kind: "k".into(),
            },
            KubeError::InvalidObject {
                what: "x".into(),
                reason: "r".into(),
            },
            KubeError::NoRestUrl {
                namespace: "n".into(),
                name: "x".into(),
            },
            KubeError::CacheNotReady { what: "pods" },
            KubeError::ClientConfig { source: "r".into() },
        ];
        let mut kinds: Vec<&str> = errors.iter().map(KubeError::kind).collect();
        assert!(kinds
            .iter()
            .all(|k| k.chars().all(|c| c.is_ascii_lowercase() || c == '_')));
        kinds.sort_unstable();
        kinds.dedup();
        assert_eq!(kinds.len(), errors.len());
    }
}
