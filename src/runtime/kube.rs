//! Kubernetes services of the runtime (when `kubernetes.enabled`): discovery of the scale
//! target behind each ScaledObject (watch-fed), the per-job state store (ConfigMaps with
//! optimistic concurrency) and its watch-fed cache for followers, Lease-based leader
//! election (only the leader PUTs, annotates pods and writes state and Events), the
//! Event publisher, and the leader's collection of stale state ConfigMaps
//! ([`super::state_gc`]).

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use super::shutdown::ShutdownSignal;
use crate::{
    config::KubernetesConfig,
    exporter::Metrics,
    kube::{
        self, Discovery, DiscoveryConfig, EventPublisher, KubeError, LeaderElector, ScaleTarget,
        StateCache, StateStore,
    },
};

/// Scale-target discovery over the namespaces the scaler serves: one set of watches over
/// every namespace (the ClusterRole), or one per namespace of `kubernetes.namespaces`
/// (namespaced Roles suffice); a ScaledObject elsewhere is refused.
pub enum Discoveries {
    /// Every namespace.
    All(Box<Discovery>),
    /// These namespaces only.
    Namespaces(BTreeMap<String, Discovery>),
}

impl Discoveries {
    /// Starts the watches `config` asks for.
    pub fn start(client: &::kube::Client, config: &KubernetesConfig) -> Self {
        let watch = |namespace: Option<String>| {
            Discovery::start_with(
                client.clone(),
                &DiscoveryConfig {
                    namespace,
                    deployment_selector: config.deployment_selector.clone(),
                },
            )
        };
        match &config.namespaces {
            None => Discoveries::All(Box::new(watch(None))),
            Some(list) => Discoveries::Namespaces(
                list.iter()
                    .map(|ns| (ns.clone(), watch(Some(ns.clone()))))
                    .collect(),
            ),
        }
    }

    /// The discovery that holds `namespace`.
    fn of(&self, namespace: &str) -> Result<&Discovery, KubeError> {
        match self {
            Discoveries::All(d) => Ok(d),
            Discoveries::Namespaces(by) => {
                by.get(namespace)
                    .ok_or_else(|| KubeError::NamespaceNotWatched {
                        namespace: crate::core::text::cap(namespace, 64),
                        watched: by.keys().cloned().collect::<Vec<_>>().join(", "),
                    })
            }
        }
    }

    /// [`Discovery::resolve`] in the watches of `namespace`.
    pub fn resolve(
        &self,
        namespace: &str,
        name: &str,
        rest_override: Option<&str>,
    ) -> Result<ScaleTarget, KubeError> {
        self.of(namespace)?.resolve(namespace, name, rest_override)
    }

    /// Whether ScaledObject `namespace/name` exists, from the watch caches: None when
    /// its namespace is not watched (unknown), an error while the cache is not ready.
    pub fn scaled_object_exists(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<bool>, KubeError> {
        match self.of(namespace) {
            Ok(d) => d.scaled_object_exists(namespace, name).map(Some),
            Err(KubeError::NamespaceNotWatched { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// [`Discovery::wait_ready`] for every set of watches.
    pub async fn wait_ready(&self, timeout: Duration, with_flink: bool) -> Result<(), KubeError> {
        match self {
            Discoveries::All(d) => d.wait_ready(timeout, with_flink).await,
            Discoveries::Namespaces(by) => {
                for d in by.values() {
                    d.wait_ready(timeout, with_flink).await?;
                }
                Ok(())
            }
        }
    }
}

/// Everything the runtime uses from Kubernetes.
pub struct KubeServices {
    /// API client.
    pub client: ::kube::Client,
    /// Scale-target discovery (reflectors over ScaledObjects, Deployments, FlinkDeployments)
    /// in the namespaces served.
    pub discovery: Discoveries,
    /// Per-job persisted state (leader writes, with resourceVersion).
    pub store: StateStore,
    /// Watch-fed copy of the state (followers read it).
    pub cache: StateCache,
    /// Leader election.
    pub leader: LeaderElector,
    /// Kubernetes Events on ScaledObjects and FlinkDeployments.
    pub events: EventPublisher,
    /// This instance's identity (pod name).
    pub identity: String,
}

/// This instance's identity: `POD_NAME`, else host name + pid.
pub fn identity() -> String {
    if let Ok(p) = std::env::var("POD_NAME") {
        if !p.is_empty() {
            return p;
        }
    }
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "flink-keda-scaler".to_string());
    format!("{host}-{}", std::process::id())
}

/// The namespace for state and Lease: config, else `POD_NAMESPACE`, else `default`.
pub fn namespace(config: &KubernetesConfig) -> String {
    config
        .namespace
        .clone()
        .or_else(|| {
            std::env::var("POD_NAMESPACE")
                .ok()
                .filter(|n| !n.is_empty())
        })
        .unwrap_or_else(|| "default".to_string())
}

impl KubeServices {
    /// Connects, starts the watches and the leader elector task.
    pub async fn start(
        config: &KubernetesConfig,
        metrics: Arc<Metrics>,
        shutdown: ShutdownSignal,
    ) -> Result<Arc<Self>, KubeError> {
        let client = kube::client().await?;
        let ns = namespace(config);
        let identity = identity();
        let le = &config.leader_election;
        let leader = LeaderElector::new(
            client.clone(),
            &ns,
            &le.lease_name,
            &identity,
            le.lease_duration,
            le.renew_deadline,
            le.retry_period,
        );
        let discovery = Discoveries::start(&client, config);
        let cache = StateCache::start(client.clone(), &ns);
        let services = Arc::new(Self {
            store: StateStore::new(client.clone(), &ns, &identity),
            events: EventPublisher::new(client.clone(), &identity),
            client,
            discovery,
            cache,
            leader: leader.clone(),
            identity: identity.clone(),
        });
        let stop = shutdown.clone();
        tokio::spawn(leader.clone().run(async move { stop.wait().await }));
        super::state_gc::spawn(
            services.clone(),
            metrics.clone(),
            config.stale_state_grace(),
            shutdown.clone(),
        );
        let mut rx = leader.subscribe();
        tokio::spawn(async move {
            loop {
                let is_leader = *rx.borrow_and_update();
                metrics.set_leader(is_leader);
                tracing::info!(identity = %identity, is_leader, "leadership");
                tokio::select! {
                    r = rx.changed() => if r.is_err() { break },
                    () = shutdown.clone().wait() => break,
                }
            }
        });
        if let Err(e) = services
            .discovery
            .wait_ready(Duration::from_secs(30), true)
            .await
        {
            tracing::warn!(error = %e, "Kubernetes discovery caches not ready yet; requests will be UNAVAILABLE until they are");
        }
        Ok(services)
    }
}
