//! Shared runtime context: the validated config, the exporter's metrics, one Prometheus
//! client per configured server, the signal hub and one Flink REST client per JobManager
//! URL (reused across ticks so connections are pooled).

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
};

use crate::{
    config::{AllowedUrls, Config, FlinkConfig, ServerAuth, ServerSettings},
    exporter::Metrics,
    flink::{Access, CallHook, ClientOptions, FlinkClient, FlinkError},
    keda::EvalError,
    promql::{Auth, ClientBuildError, Endpoint, PasswordSource, PromClient},
};

/// A client the config names could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    /// A Prometheus client.
    #[error("prometheus.{name}: {source}")]
    Prometheus {
        /// The server's name in the config.
        name: String,
        /// Why.
        #[source]
        source: ClientBuildError,
    },
    /// The Flink REST client settings (`flink.tls`, `flink.auth`).
    #[error("flink: {0}")]
    Flink(#[source] FlinkError),
    /// `flink.allowedUrls` does not parse.
    #[error("{0}")]
    AllowedUrls(#[source] crate::config::ConfigError),
}

/// The Prometheus client's view of a configured server (`prometheus.<name>`, validated
/// by the config loader: exactly one credential source).
pub fn prometheus_endpoint(settings: &ServerSettings) -> Endpoint {
    Endpoint {
        url: settings.url.clone(),
        timeout: settings.timeout,
        retries: settings.retries,
        headers: settings.headers.clone(),
        auth: settings.auth.as_ref().map_or(Auth::None, auth),
        tls: settings.tls.clone(),
        max_response_bytes: settings.max_response_bytes,
        max_series: settings.max_series,
        max_concurrent_requests: settings.max_concurrent_requests,
    }
}

fn auth(a: &ServerAuth) -> Auth {
    match (&a.bearer_token_file, &a.basic) {
        (Some(file), _) => Auth::BearerTokenFile(file.clone()),
        (None, Some(b)) => Auth::Basic {
            username: b.username.clone(),
            password: match (&b.password_file, &b.password_env) {
                (Some(file), _) => PasswordSource::File(file.clone()),
                (None, var) => PasswordSource::Env(var.clone().unwrap_or_default()),
            },
        },
        (None, None) => Auth::None,
    }
}

/// Everything a job worker needs that is shared across jobs.
pub struct Context {
    /// Validated configuration.
    pub config: Config,
    /// The exporter's metrics.
    pub metrics: Arc<Metrics>,
    /// Prometheus clients by configured server name.
    pub prometheus: BTreeMap<String, Arc<PromClient>>,
    /// Kubernetes services, when enabled.
    pub kube: Option<Arc<super::kube::KubeServices>>,
    /// Batched signal reads for every job (the round task runs in `serve` only).
    pub hub: Arc<super::hub::SignalHub>,
    /// The JobManager reads shared by all jobs (one per JobManager per tick).
    pub rest: super::rest_cache::RestCache,
    /// One rescale per job at a time, automatic or manual.
    pub claims: Arc<super::claims::RescaleClaims>,
    flink: Mutex<HashMap<String, Arc<FlinkClient>>>,
    flink_options: ClientOptions,
    allowed_urls: AllowedUrls,
}

/// The Flink REST client's options from the config's `flink` section: timeouts, TLS,
/// credentials, headers and one bound on requests in flight to all JobManagers.
pub fn flink_options(config: &FlinkConfig) -> ClientOptions {
    ClientOptions {
        request_timeout: config.timeout,
        connect_timeout: config.timeout.min(std::time::Duration::from_secs(5)),
        get_retries: 1,
        access: Access {
            tls: config.tls.clone(),
            auth: config.auth.as_ref().map_or(Auth::None, auth),
            headers: config.headers.clone(),
        },
        limiter: fks_net::Limiter::new(config.max_concurrent_requests),
    }
}

impl Context {
    /// Builds the clients for every configured Prometheus server and checks that Flink
    /// clients can be built (their TLS and credential files exist and parse).
    pub fn new(config: Config, metrics: Arc<Metrics>) -> Result<Self, ContextError> {
        let mut prometheus = BTreeMap::new();
        for (name, settings) in &config.prometheus {
            let client = PromClient::new(&prometheus_endpoint(settings)).map_err(|source| {
                ContextError::Prometheus {
                    name: name.clone(),
                    source,
                }
            })?;
            prometheus.insert(name.clone(), Arc::new(client));
        }
        let scrape_intervals = config
            .prometheus
            .iter()
            .filter_map(|(name, s)| s.scrape_interval.map(|i| (name.clone(), i)))
            .collect();
        let hub = Arc::new(super::hub::SignalHub::new(
            config.evaluation.interval,
            scrape_intervals,
            metrics.clone(),
        ));
        let flink_options = flink_options(&config.flink);
        FlinkClient::check_options(&flink_options).map_err(ContextError::Flink)?;
        let allowed_urls = config
            .flink
            .allowed_urls(config.kubernetes.enabled)
            .map_err(ContextError::AllowedUrls)?;
        Ok(Self {
            config,
            metrics,
            prometheus,
            kube: None,
            hub,
            rest: super::rest_cache::RestCache::default(),
            claims: Arc::default(),
            flink: Mutex::new(HashMap::new()),
            flink_options,
            allowed_urls,
        })
    }

    /// Refuses (`PERMISSION_DENIED`, naming the rules) a JobManager URL outside
    /// `flink.allowedUrls` for a ScaledObject in `namespace`, before any request is sent.
    pub fn allow_flink_url(&self, url: &str, namespace: &str) -> Result<(), EvalError> {
        if self.allowed_urls.allows_any() {
            return Ok(());
        }
        let parsed = url::Url::parse(url)
            .map_err(|e| EvalError::invalid_argument("flinkRestUrl", format!("not a URL: {e}")))?;
        self.allowed_urls
            .check(&parsed, namespace)
            .map_err(EvalError::permission_denied_from)
    }

    /// True when this instance may act (PUT, annotate, write state): the Lease holder, or
    /// always when Kubernetes integration is off (single instance).
    pub fn is_leader(&self) -> bool {
        self.kube.as_ref().is_none_or(|k| k.leader.is_leader())
    }

    /// The Flink client for a JobManager URL (created on first use, then reused).
    pub fn flink_client(&self, base_url: &str) -> Result<Arc<FlinkClient>, FlinkError> {
        let mut clients = match self.flink.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(c) = clients.get(base_url) {
            return Ok(c.clone());
        }
        let metrics = self.metrics.clone();
        let hook = CallHook(Arc::new(move |endpoint: &str| {
            metrics.count_flink_call(endpoint)
        }));
        let client =
            Arc::new(FlinkClient::new(base_url, self.flink_options())?.with_call_hook(hook));
        clients.insert(base_url.to_string(), client.clone());
        Ok(client)
    }

    /// Flink client options from the config (clones share the bound on requests in
    /// flight).
    pub fn flink_options(&self) -> ClientOptions {
        self.flink_options.clone()
    }
}
