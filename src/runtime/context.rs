//! Shared runtime context: the validated config, the exporter's metrics, one Prometheus
//! client per configured server, the signal hub and one Flink REST client per JobManager
//! URL (reused across ticks so connections are pooled).

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
};

use crate::{
    config::{Config, ServerAuth, ServerSettings},
    exporter::Metrics,
    flink::{CallHook, ClientOptions, FlinkClient, FlinkError},
    promql::{Auth, ClientBuildError, Endpoint, PasswordSource, PromClient},
};

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
    flink: Mutex<HashMap<String, Arc<FlinkClient>>>,
}

impl Context {
    /// Builds the clients for every configured Prometheus server.
    pub fn new(config: Config, metrics: Arc<Metrics>) -> Result<Self, ClientBuildError> {
        let mut prometheus = BTreeMap::new();
        for (name, settings) in &config.prometheus {
            let client = PromClient::new(&prometheus_endpoint(settings))?;
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
        Ok(Self {
            config,
            metrics,
            prometheus,
            kube: None,
            hub,
            rest: super::rest_cache::RestCache::default(),
            flink: Mutex::new(HashMap::new()),
        })
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

    /// Flink client options from the config.
    pub fn flink_options(&self) -> ClientOptions {
        ClientOptions {
            request_timeout: self.config.flink.timeout,
            connect_timeout: self
                .config
                .flink
                .timeout
                .min(std::time::Duration::from_secs(5)),
            get_retries: 1,
        }
    }
}
