//! Watch-fed read-only view of the persisted job states, for followers: they answer
//! `GetMetrics` from what the leader persisted without a GET per RPC. Watches the state
//! ConfigMaps (label [`STATE_LABEL`]`=true`) of the scaler's namespace.

use std::sync::{
    atomic::{AtomicBool, Ordering},
    Arc,
};

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{
    api::Api,
    runtime::{
        reflector::{self, ObjectRef, Store},
        watcher, WatchStreamExt,
    },
    Client,
};
use tokio::task::JoinHandle;

use crate::core::ScaledObjectRef;

use super::{
    error::KubeError,
    state::{PersistedJob, StateStore, StateVersion, DATA_KEY, JOB_ANNOTATION, STATE_LABEL},
};

/// One state ConfigMap as cached: what the garbage collection of stale states needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateEntry {
    /// ConfigMap name.
    pub name: String,
    /// The job it belongs to (its [`JOB_ANNOTATION`]); None when the annotation is
    /// missing or not `namespace/name` (never collected then).
    pub job: Option<ScaledObjectRef>,
    /// ConfigMap uid.
    pub uid: String,
    /// ConfigMap resourceVersion.
    pub resource_version: String,
}

/// Read-only cache of every job's persisted state. Dropping it stops the watch.
pub struct StateCache {
    store: Store<ConfigMap>,
    namespace: String,
    ready: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl Drop for StateCache {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl StateCache {
    /// Starts watching the state ConfigMaps in `namespace` (inside a tokio runtime).
    pub fn start(client: Client, namespace: &str) -> Self {
        let api = Api::<ConfigMap>::namespaced(client, namespace);
        let writer = reflector::store::Writer::<ConfigMap>::default();
        let store = writer.as_reader();
        let ready = Arc::new(AtomicBool::new(false));
        let flag = ready.clone();
        let stream = watcher(
            api,
            watcher::Config::default().labels(&format!("{STATE_LABEL}=true")),
        )
        .default_backoff()
        .reflect(writer);
        let task = tokio::spawn(async move {
            futures_util::pin_mut!(stream);
            while let Some(ev) = stream.next().await {
                match ev {
                    Ok(watcher::Event::InitDone) => flag.store(true, Ordering::Release),
                    Ok(_) => {}
                    Err(error) => {
                        tracing::warn!(resource = "configmaps", %error, "state watch failed; retrying")
                    }
                }
            }
        });
        Self {
            store,
            namespace: namespace.into(),
            ready,
            task,
        }
    }

    /// True once the initial list completed.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Every cached state ConfigMap (error until the initial list completed).
    pub fn entries(&self) -> Result<Vec<StateEntry>, KubeError> {
        if !self.is_ready() {
            return Err(KubeError::CacheNotReady { what: "configmaps" });
        }
        Ok(self
            .store
            .state()
            .iter()
            .map(|cm| StateEntry {
                name: cm.metadata.name.clone().unwrap_or_default(),
                job: cm
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(JOB_ANNOTATION))
                    .and_then(|j| j.split_once('/'))
                    .filter(|(ns, name)| !ns.is_empty() && !name.is_empty())
                    .map(|(ns, name)| ScaledObjectRef::new(ns, name)),
                uid: cm.metadata.uid.clone().unwrap_or_default(),
                resource_version: cm.metadata.resource_version.clone().unwrap_or_default(),
            })
            .collect())
    }

    /// The cached state of `job` and its version (None: nothing persisted, or not cached
    /// yet — see [`Self::is_ready`]).
    pub fn get(
        &self,
        job: &ScaledObjectRef,
    ) -> Result<Option<(PersistedJob, StateVersion)>, KubeError> {
        if !self.is_ready() {
            return Err(KubeError::CacheNotReady { what: "configmaps" });
        }
        let name = StateStore::config_map_name(job);
        let Some(cm) = self
            .store
            .get(&ObjectRef::new(&name).within(&self.namespace))
        else {
            return Ok(None);
        };
        let owner = cm
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(JOB_ANNOTATION));
        if owner.map(String::as_str) != Some(job.to_string().as_str()) {
            return Ok(None);
        }
        let version = StateVersion(cm.metadata.resource_version.clone().unwrap_or_default());
        let state = match cm.data.as_ref().and_then(|d| d.get(DATA_KEY)) {
            Some(s) => serde_json::from_str(s).map_err(|source| KubeError::Serialization {
                job: job.to_string(),
                source,
            })?,
            None => PersistedJob::default(),
        };
        Ok(Some((state, version)))
    }
}
