//! The YAML configuration file: listen addresses, Prometheus servers, Flink client,
//! Kubernetes, and named scaling policies. Strict: unknown fields are rejected, and every
//! error names the field path (`policies.default.targetUtilization: must be in (0, 1]`).
//! Secrets are never inline: they come from files or environment variables.

mod admin;
mod allowed_urls;
mod duration;
mod flink;
mod policy;
mod prometheus;

use std::{collections::BTreeMap, net::SocketAddr, path::Path, time::Duration};

use serde::Deserialize;

pub use admin::{is_loopback, AdminAuth, AdminConfig};
pub use allowed_urls::{AllowedUrls, Denied, KUBERNETES_DEFAULT};
pub use policy::{PolicySpec, PredictiveSpec, QueryPresetSpec, ScheduleSpec};
pub use prometheus::{
    BasicAuthSettings, ServerAuth, ServerSettings, DEFAULT_RETRIES, DEFAULT_TIMEOUT, MAX_RETRIES,
    MAX_TIMEOUT,
};

use crate::core::{ClientTls, Policy, ServerTls};

/// A configuration error with the path of the offending field.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// File path.
        path: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// YAML syntax or schema error (unknown field, wrong type), with its field path and,
    /// when the parser knows it, the line and column.
    #[error("{path}: {message}{}", location.map(|(l, c)| format!(" (line {l}, column {c})")).unwrap_or_default())]
    Parse {
        /// Field path (`policies.default.cooldown`), or `.` for the document.
        path: String,
        /// What is wrong: the YAML error's text without its path and location prefix
        /// (`path` names the field), so not the `serde_yaml::Error` itself.
        message: String,
        /// Line and column (1-based) where the parser stopped.
        location: Option<(usize, usize)>,
    },
    /// A semantic validation error, with its field path.
    #[error("{path}: {message}")]
    Invalid {
        /// Field path.
        path: String,
        /// What is wrong.
        message: String,
    },
}

impl ConfigError {
    pub(crate) fn invalid(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Config {
    /// gRPC server (the KEDA external scaler).
    #[serde(default)]
    pub grpc: GrpcConfig,
    /// HTTP server (/metrics, /healthz, /readyz).
    #[serde(default)]
    pub http: HttpConfig,
    /// Admin listener (/debug/jobs, /admin/rescale).
    #[serde(default)]
    pub admin: AdminConfig,
    /// Per-job evaluation loop.
    #[serde(default)]
    pub evaluation: EvaluationConfig,
    /// Prometheus servers by name; `default` is used when a ScaledObject names none.
    #[serde(default)]
    pub prometheus: BTreeMap<String, ServerSettings>,
    /// Flink REST client.
    #[serde(default)]
    pub flink: FlinkConfig,
    /// Kubernetes integration.
    #[serde(default)]
    pub kubernetes: KubernetesConfig,
    /// Named scaling policies; `default` applies when a ScaledObject names none.
    #[serde(default)]
    pub policies: BTreeMap<String, PolicySpec>,
    /// The core policy of every entry of `policies`, built by [`Config::validate`].
    #[serde(skip)]
    core_policies: BTreeMap<String, Policy>,
}

/// gRPC server settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GrpcConfig {
    /// Listen address (default `0.0.0.0:50051`).
    #[serde(default = "defaults::grpc_addr")]
    pub listen_address: SocketAddr,
    /// Upper bound on one rpc (KEDA sets no deadline).
    #[serde(default = "defaults::rpc_timeout", with = "duration")]
    pub rpc_timeout: Duration,
    /// How often StreamIsActive re-evaluates.
    #[serde(default = "defaults::stream_interval", with = "duration")]
    pub stream_interval: Duration,
    /// Optional TLS (mTLS when `clientCaFile` is set).
    #[serde(default)]
    pub tls: Option<ServerTls>,
}

/// HTTP server settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpConfig {
    /// Listen address (default `0.0.0.0:8080`).
    #[serde(default = "defaults::http_addr")]
    pub listen_address: SocketAddr,
}

/// Evaluation loop settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EvaluationConfig {
    /// Tick per job: signals are read and the core evaluated once per interval, and that
    /// one evaluation serves every GetMetrics/IsActive/HPA call in between.
    #[serde(default = "defaults::interval", with = "duration")]
    pub interval: Duration,
    /// Stop evaluating a job KEDA has not asked about for this long.
    #[serde(default = "defaults::idle_timeout", with = "duration")]
    pub idle_timeout: Duration,
}

/// Flink REST client settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FlinkConfig {
    /// Timeout of one REST call.
    #[serde(default = "defaults::flink_timeout", with = "duration")]
    pub timeout: Duration,
    /// Longest wait for a job to reach a new parallelism after a PUT (the checkpoint
    /// interval is added: Flink 2.x waits for a completed checkpoint before rescaling).
    #[serde(default = "defaults::rescale_timeout", with = "duration")]
    pub rescale_timeout: Duration,
    /// JobManager URLs a ScaledObject may point the scaler at (see
    /// [`AllowedUrls`]); absent: the namespace-scoped default with Kubernetes, any URL
    /// without.
    #[serde(default)]
    pub allowed_urls: Option<Vec<String>>,
    /// TLS of the REST client (CA bundle, client certificate for mTLS).
    #[serde(default)]
    pub tls: Option<ClientTls>,
    /// Credentials sent to every JobManager (bearer token file or basic auth).
    #[serde(default)]
    pub auth: Option<ServerAuth>,
    /// Extra headers sent with every request (never `Authorization`: use `auth`).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Requests in flight to all JobManagers at most (default 64).
    #[serde(default = "defaults::flink_max_concurrent_requests")]
    pub max_concurrent_requests: usize,
}

/// Kubernetes integration settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct KubernetesConfig {
    /// Enable discovery, pod-deletion-cost, persisted state, leader election and Events.
    #[serde(default)]
    pub enabled: bool,
    /// Namespace for the state ConfigMap and the Lease (default: `POD_NAMESPACE` env).
    #[serde(default)]
    pub namespace: Option<String>,
    /// Namespaces whose ScaledObjects (and scale targets, and TaskManager pods) the
    /// scaler watches and serves; absent: every namespace (needs the ClusterRole).
    /// With a list, namespaced Roles in those namespaces suffice.
    #[serde(default)]
    pub namespaces: Option<Vec<String>>,
    /// Label selector of the Deployments watched for Deployment scale targets (e.g.
    /// `component=taskmanager`), so a large cluster's Deployments are not all cached.
    #[serde(default)]
    pub deployment_selector: Option<String>,
    /// Lease-based leader election.
    #[serde(default)]
    pub leader_election: LeaderElectionConfig,
    /// How long the ScaledObject of a state ConfigMap must be gone before the leader
    /// deletes that ConfigMap (default [`KubernetesConfig::DEFAULT_STALE_STATE_GRACE`]);
    /// see [`KubernetesConfig::stale_state_grace`].
    #[serde(default, with = "duration::option")]
    pub stale_state_grace: Option<Duration>,
}

impl KubernetesConfig {
    /// Default of `kubernetes.staleStateGrace`: 10 minutes (many watch resyncs; a
    /// ScaledObject deleted and re-created within it keeps its state).
    pub const DEFAULT_STALE_STATE_GRACE: Duration = Duration::from_secs(600);

    /// `kubernetes.staleStateGrace` or its default.
    pub fn stale_state_grace(&self) -> Duration {
        self.stale_state_grace
            .unwrap_or(Self::DEFAULT_STALE_STATE_GRACE)
    }
}

/// Leader election settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LeaderElectionConfig {
    /// Lease name.
    #[serde(default = "defaults::lease_name")]
    pub lease_name: String,
    /// How long a lease is valid without renewal.
    #[serde(default = "defaults::lease_duration", with = "duration")]
    pub lease_duration: Duration,
    /// The leader gives up if it cannot renew within this time.
    #[serde(default = "defaults::renew_deadline", with = "duration")]
    pub renew_deadline: Duration,
    /// How often candidates retry.
    #[serde(default = "defaults::retry_period", with = "duration")]
    pub retry_period: Duration,
}

mod defaults {
    use std::{net::SocketAddr, time::Duration};

    pub fn grpc_addr() -> SocketAddr {
        SocketAddr::from(([0, 0, 0, 0], 50051))
    }
    pub fn http_addr() -> SocketAddr {
        SocketAddr::from(([0, 0, 0, 0], 8080))
    }
    pub fn rpc_timeout() -> Duration {
        Duration::from_secs(5)
    }
    pub fn stream_interval() -> Duration {
        Duration::from_secs(5)
    }
    pub fn interval() -> Duration {
        Duration::from_secs(15)
    }
    pub fn idle_timeout() -> Duration {
        Duration::from_secs(600)
    }
    pub fn flink_timeout() -> Duration {
        Duration::from_secs(10)
    }
    pub fn rescale_timeout() -> Duration {
        Duration::from_secs(180)
    }
    pub fn flink_max_concurrent_requests() -> usize {
        64
    }
    pub fn lease_name() -> String {
        "flink-keda-scaler".to_string()
    }
    pub fn lease_duration() -> Duration {
        Duration::from_secs(15)
    }
    pub fn renew_deadline() -> Duration {
        Duration::from_secs(10)
    }
    pub fn retry_period() -> Duration {
        Duration::from_secs(2)
    }
}

impl Default for GrpcConfig {
    fn default() -> Self {
        Self {
            listen_address: defaults::grpc_addr(),
            rpc_timeout: defaults::rpc_timeout(),
            stream_interval: defaults::stream_interval(),
            tls: None,
        }
    }
}
impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen_address: defaults::http_addr(),
        }
    }
}
impl Default for EvaluationConfig {
    fn default() -> Self {
        Self {
            interval: defaults::interval(),
            idle_timeout: defaults::idle_timeout(),
        }
    }
}
impl Default for FlinkConfig {
    fn default() -> Self {
        Self {
            timeout: defaults::flink_timeout(),
            rescale_timeout: defaults::rescale_timeout(),
            allowed_urls: None,
            tls: None,
            auth: None,
            headers: BTreeMap::new(),
            max_concurrent_requests: defaults::flink_max_concurrent_requests(),
        }
    }
}
impl Default for LeaderElectionConfig {
    fn default() -> Self {
        Self {
            lease_name: defaults::lease_name(),
            lease_duration: defaults::lease_duration(),
            renew_deadline: defaults::renew_deadline(),
            retry_period: defaults::retry_period(),
        }
    }
}

/// The name of the policy and Prometheus server used when nothing else is named.
pub const DEFAULT_NAME: &str = "default";

impl Config {
    /// Reads, parses and validates a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text)
    }

    /// Parses and validates YAML text.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let de = serde_yaml::Deserializer::from_str(text);
        let mut config: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let message = strip_path_prefix(&strip_location(&e.inner().to_string()));
            let location = e.inner().location().map(|l| (l.line(), l.column()));
            ConfigError::Parse {
                path,
                message,
                location,
            }
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Semantic validation; every error names its field path. Keeps the core policy built
    /// from each `policies.<name>` (see [`Config::policy`]).
    pub fn validate(&mut self) -> Result<(), ConfigError> {
        if self.grpc.rpc_timeout.is_zero() {
            return Err(ConfigError::invalid("grpc.rpcTimeout", "must be > 0"));
        }
        if self.grpc.stream_interval.is_zero() {
            return Err(ConfigError::invalid("grpc.streamInterval", "must be > 0"));
        }
        if self.grpc.listen_address == self.http.listen_address {
            return Err(ConfigError::invalid(
                "http.listenAddress",
                format!(
                    "must differ from grpc.listenAddress ({})",
                    self.grpc.listen_address
                ),
            ));
        }
        if self.evaluation.interval < Duration::from_secs(1) {
            return Err(ConfigError::invalid(
                "evaluation.interval",
                "must be at least 1s",
            ));
        }
        if self.flink.timeout.is_zero() {
            return Err(ConfigError::invalid("flink.timeout", "must be > 0"));
        }
        self.flink.validate(self.kubernetes.enabled)?;
        self.kubernetes.validate()?;
        self.admin.check(self.admin.listen_address)?;
        for (what, addr) in [
            ("grpc.listenAddress", self.grpc.listen_address),
            ("http.listenAddress", self.http.listen_address),
        ] {
            if addr == self.admin.listen_address {
                return Err(ConfigError::invalid(
                    "admin.listenAddress",
                    format!("must differ from {what} ({addr})"),
                ));
            }
        }
        let le = &self.kubernetes.leader_election;
        if le.renew_deadline >= le.lease_duration {
            return Err(ConfigError::invalid(
                "kubernetes.leaderElection.renewDeadline",
                "must be shorter than leaseDuration",
            ));
        }
        if le.retry_period.is_zero() || le.retry_period >= le.renew_deadline {
            return Err(ConfigError::invalid(
                "kubernetes.leaderElection.retryPeriod",
                "must be > 0 and shorter than renewDeadline",
            ));
        }
        for (name, server) in &self.prometheus {
            server.validate(&format!("prometheus.{name}"))?;
        }
        self.core_policies = self
            .policies
            .iter()
            .map(|(name, spec)| Ok((name.clone(), spec.to_policy(&format!("policies.{name}"))?)))
            .collect::<Result<_, ConfigError>>()?;
        Ok(())
    }

    /// The core policy named `name` (or `default`; built-in defaults if the config has
    /// no `default` policy).
    pub fn policy(&self, name: Option<&str>) -> Result<Policy, ConfigError> {
        match name {
            Some(n) => self.core_policies.get(n).cloned().ok_or_else(|| {
                ConfigError::invalid(
                    "policy",
                    format!(
                        "no policy named '{n}' in the config (known: {})",
                        self.known_policies()
                    ),
                )
            }),
            None => Ok(self
                .core_policies
                .get(DEFAULT_NAME)
                .cloned()
                .unwrap_or_default()),
        }
    }

    fn known_policies(&self) -> String {
        if self.policies.is_empty() {
            "none".to_string()
        } else {
            self.policies.keys().cloned().collect::<Vec<_>>().join(", ")
        }
    }
}

/// serde_yaml prefixes its own (shorter) path, `policies.fast: ...`; ours is exact.
fn strip_path_prefix(msg: &str) -> String {
    match msg.split_once(": ") {
        Some((head, rest)) if !head.contains(' ') && !head.is_empty() => rest.to_string(),
        _ => msg.to_string(),
    }
}

/// serde_yaml appends "at line X column Y"; the path already says where.
fn strip_location(msg: &str) -> String {
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}
