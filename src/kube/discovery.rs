//! Discovery: the watch-fed caches of ScaledObjects, Deployments and FlinkDeployments,
//! and the lookups over them. [`Discovery::resolve`] finds a ScaledObject and its target
//! in the caches (no API call) and hands them to the pure parsing in [`super::target`];
//! [`Discovery::read_scale`] reads the `/scale` subresource (one bounded GET) when an
//! authoritative count is needed.

use std::sync::{
    atomic::{AtomicBool, Ordering},
    Arc,
};

use futures_util::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use kube::{
    api::Api,
    core::DynamicObject,
    runtime::{
        reflector::{self, ObjectRef, Store},
        watcher, WatchStreamExt,
    },
    Client, Resource,
};
use tokio::task::JoinHandle;

use super::{
    error::KubeError,
    resources,
    target::{
        rest_url_override, scale_reading, scale_target_ref, target_from_deployment,
        target_from_flink_deployment, ScaleReading, ScaleTarget, TargetKind,
    },
    timeout::call,
};

/// Readiness of one watch-fed cache (set after its first complete list).
struct Ready {
    flag: Arc<AtomicBool>,
    what: &'static str,
}

impl Ready {
    fn check(&self) -> Result<(), KubeError> {
        if self.flag.load(Ordering::Acquire) {
            Ok(())
        } else {
            Err(KubeError::CacheNotReady { what: self.what })
        }
    }
}

fn spawn_cache<K>(
    api: Api<K>,
    dyntype: K::DynamicType,
    watch: watcher::Config,
    what: &'static str,
    tasks: &mut Vec<JoinHandle<()>>,
) -> (Store<K>, Ready)
where
    K: Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + Sync + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone + Send + Sync,
{
    let writer: reflector::store::Writer<K> = reflector::store::Writer::new(dyntype);
    let store = writer.as_reader();
    let flag = Arc::new(AtomicBool::new(false));
    let set = flag.clone();
    let stream = watcher(api, watch).default_backoff().reflect(writer);
    tasks.push(tokio::spawn(async move {
        futures_util::pin_mut!(stream);
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(watcher::Event::InitDone) => {
                    set.store(true, Ordering::Release);
                    tracing::debug!(resource = what, "watch cache ready");
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(resource = what, %error, "watch failed; retrying"),
            }
        }
    }));
    (store, Ready { flag, what })
}

/// Watch-fed discovery of scale targets. Dropping it stops the watches.
pub struct Discovery {
    client: Client,
    scaled_objects: Store<DynamicObject>,
    deployments: Store<Deployment>,
    flink_deployments: Store<DynamicObject>,
    ready: [Ready; 3],
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Discovery {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// What [`Discovery`] watches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiscoveryConfig {
    /// Watch one namespace only (None: all namespaces, needs the ClusterRoleBinding).
    pub namespace: Option<String>,
    /// Label selector for the Deployment watch (e.g. `component=taskmanager`), so a large
    /// cluster's Deployments are not all cached. Target Deployments must match it.
    pub deployment_selector: Option<String>,
}

impl Discovery {
    /// Starts the watches (all namespaces when `namespace` is None). Must be called
    /// inside a tokio runtime. The FlinkDeployment watch retries with backoff while the
    /// CRD is not installed; only FlinkDeployment targets fail meanwhile.
    pub fn start(client: Client, namespace: Option<&str>) -> Self {
        Self::start_with(
            client,
            &DiscoveryConfig {
                namespace: namespace.map(str::to_string),
                deployment_selector: None,
            },
        )
    }

    /// [`Self::start`] with a [`DiscoveryConfig`].
    pub fn start_with(client: Client, config: &DiscoveryConfig) -> Self {
        let namespace = config.namespace.as_deref();
        let so_ar = resources::scaled_object();
        let fd_ar = resources::flink_deployment();
        let (so_api, dep_api, fd_api) = match namespace {
            Some(ns) => (
                Api::<DynamicObject>::namespaced_with(client.clone(), ns, &so_ar),
                Api::<Deployment>::namespaced(client.clone(), ns),
                Api::<DynamicObject>::namespaced_with(client.clone(), ns, &fd_ar),
            ),
            None => (
                Api::<DynamicObject>::all_with(client.clone(), &so_ar),
                Api::<Deployment>::all(client.clone()),
                Api::<DynamicObject>::all_with(client.clone(), &fd_ar),
            ),
        };
        let mut tasks = Vec::new();
        let all = watcher::Config::default();
        let dep_watch = match &config.deployment_selector {
            Some(sel) => watcher::Config::default().labels(sel),
            None => watcher::Config::default(),
        };
        let (scaled_objects, so_ready) =
            spawn_cache(so_api, so_ar, all.clone(), "scaledobjects", &mut tasks);
        let (deployments, dep_ready) =
            spawn_cache(dep_api, (), dep_watch, "deployments", &mut tasks);
        let (flink_deployments, fd_ready) =
            spawn_cache(fd_api, fd_ar, all, "flinkdeployments", &mut tasks);
        Self {
            client,
            scaled_objects,
            deployments,
            flink_deployments,
            ready: [so_ready, dep_ready, fd_ready],
            tasks,
        }
    }

    /// Waits until the ScaledObject and Deployment caches have listed once (and the
    /// FlinkDeployment cache, when `with_flink_deployments`), at most `timeout`.
    pub async fn wait_ready(
        &self,
        timeout: std::time::Duration,
        with_flink_deployments: bool,
    ) -> Result<(), KubeError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let needed = if with_flink_deployments { 3 } else { 2 };
            let pending = self.ready[..needed].iter().find(|r| r.check().is_err());
            match pending {
                None => return Ok(()),
                Some(r) if tokio::time::Instant::now() >= deadline => {
                    return Err(KubeError::CacheNotReady { what: r.what })
                }
                Some(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
            }
        }
    }

    /// Resolves the target of ScaledObject `namespace/name` from the caches (no API call).
    /// `rest_override` (the trigger's `flinkRestUrl`, passed by the runtime) wins over the
    /// ScaledObject's own trigger metadata, the annotation and the Service convention.
    pub fn resolve(
        &self,
        namespace: &str,
        name: &str,
        rest_override: Option<&str>,
    ) -> Result<ScaleTarget, KubeError> {
        self.ready[0].check()?;
        let so = self
            .scaled_objects
            .get(&ObjectRef::new_with(name, resources::scaled_object()).within(namespace))
            .ok_or_else(|| KubeError::ScaledObjectNotFound {
                namespace: namespace.into(),
                name: name.into(),
            })?;
        let r = scale_target_ref(&so)?;
        let rest = rest_url_override(&so, rest_override);
        let not_found = || KubeError::TargetNotFound {
            kind: r.kind.clone(),
            namespace: namespace.into(),
            name: r.name.clone(),
        };
        match r.target_kind()? {
            TargetKind::Deployment => {
                self.ready[1].check()?;
                let dep = self
                    .deployments
                    .get(&ObjectRef::new(&r.name).within(namespace))
                    .ok_or_else(not_found)?;
                target_from_deployment(&so, &r, &dep, rest.as_deref())
            }
            TargetKind::FlinkDeployment => {
                self.ready[2].check()?;
                let fd = self
                    .flink_deployments
                    .get(
                        &ObjectRef::new_with(&r.name, resources::flink_deployment())
                            .within(namespace),
                    )
                    .ok_or_else(not_found)?;
                target_from_flink_deployment(&so, &r, &fd, rest.as_deref())
            }
        }
    }

    /// True when ScaledObject `namespace/name` is in the watch cache (no API call);
    /// an error until the cache has listed once.
    pub fn scaled_object_exists(&self, namespace: &str, name: &str) -> Result<bool, KubeError> {
        self.ready[0].check()?;
        Ok(self
            .scaled_objects
            .get(&ObjectRef::new_with(name, resources::scaled_object()).within(namespace))
            .is_some())
    }

    /// Reads the target's `/scale` subresource (one bounded GET).
    pub async fn read_scale(&self, target: &ScaleTarget) -> Result<ScaleReading, KubeError> {
        let op = format!(
            "get {}/scale {}/{}",
            target.kind.as_str(),
            target.namespace,
            target.name
        );
        let scale = match target.kind {
            TargetKind::Deployment => {
                let api = Api::<Deployment>::namespaced(self.client.clone(), &target.namespace);
                call(op, api.get_scale(&target.name)).await?
            }
            TargetKind::FlinkDeployment => {
                let api = Api::<DynamicObject>::namespaced_with(
                    self.client.clone(),
                    &target.namespace,
                    &resources::flink_deployment(),
                );
                call(op, api.get_scale(&target.name)).await?
            }
        };
        Ok(scale_reading(scale))
    }

    /// Number of cached ScaledObjects (for a gauge).
    pub fn cached_scaled_objects(&self) -> usize {
        self.scaled_objects.len()
    }
}
