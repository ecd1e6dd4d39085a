//! Per-job persisted state in ConfigMaps, written with optimistic concurrency.
//!
//! Layout: **one ConfigMap per job** (per ScaledObject) in the scaler's namespace, named
//! by [`StateStore::config_map_name`] (`flink-keda-scaler-state-<ns>-<name>-<hash>`), with the
//! JSON [`PersistedJob`] under the data key [`DATA_KEY`]. One object per job keeps writes
//! for different jobs from conflicting with each other and stays far below the 1 MiB
//! object limit. The ConfigMap's `resourceVersion` is the [`StateVersion`]: a save
//! carries the version it read, and a concurrent writer's save fails with
//! [`KubeError::Conflict`] (HTTP 409); reload and retry, or report.
//!
//! Lifetime: a state ConfigMap whose ScaledObject lives in the scaler's own namespace
//! carries an ownerReference to it, so Kubernetes' garbage collector deletes it with the
//! ScaledObject. Kubernetes forbids cross-namespace owners ("Cross-namespace owner
//! references are disallowed by design", kubernetes.io/docs/concepts/overview/
//! working-with-objects/owners-dependents/), so for every other ScaledObject the leader
//! collects stale ConfigMaps itself (`runtime::state_gc`) with [`StateStore::delete_stale`]:
//! a delete with preconditions on the ConfigMap's uid and resourceVersion, so a state
//! written again in between (a re-created ScaledObject) is never deleted.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use k8s_openapi::{api::core::v1::ConfigMap, apimachinery::pkg::apis::meta::v1::OwnerReference};
use kube::{
    api::{Api, DeleteParams, ObjectMeta, PostParams, Preconditions},
    Client,
};
use serde::{Deserialize, Serialize};

use crate::core::{JobState, Plan, ScaledObjectRef};

use super::{error::KubeError, resources, timeout::call};

/// Data key holding the JSON record.
pub const DATA_KEY: &str = "state.json";
/// Annotation holding the job key (guards against name-hash collisions).
pub const JOB_ANNOTATION: &str = "flink-keda-scaler.io/job";
/// Label on every state ConfigMap.
pub const STATE_LABEL: &str = "flink-keda-scaler.io/state";

/// Opaque optimistic-concurrency token (the ConfigMap's `resourceVersion`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateVersion(pub String);

/// A decision as persisted: what was decided, when, against which plan and generation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PersistedDecision {
    /// Monotonic per-job decision id (see [`PersistedJob::next_decision_id`]).
    pub id: u64,
    /// When it was decided.
    pub decided_at: DateTime<Utc>,
    /// The scale target's `metadata.generation` when decided.
    pub observed_generation: Option<i64>,
    /// The plan the job ran at when decided.
    pub current: Plan,
    /// The target plan.
    pub target: Plan,
    /// The decision's reason (summary).
    pub reason: String,
    /// True once the resource-requirements PUT for this decision was issued.
    pub applied: bool,
}

/// Everything persisted for one job.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PersistedJob {
    /// The decision core's memory (cooldown, scale-down window, history).
    pub job_state: JobState,
    /// Highest decision id handed out so far (the decision generation).
    pub decision_id: u64,
    /// The latest decision, applied or not.
    pub decision: Option<PersistedDecision>,
    /// The in-flight rescale of the runtime's state machine (opaque JSON), if any.
    pub rescale: Option<serde_json::Value>,
    /// Identity of the last writer (scaler pod).
    pub updated_by: Option<String>,
    /// When it was last written.
    pub updated_at: Option<DateTime<Utc>>,
}

impl PersistedJob {
    /// Allocates the next decision id.
    pub fn next_decision_id(&mut self) -> u64 {
        self.decision_id += 1;
        self.decision_id
    }
}

/// 64-bit FNV-1a: stable across processes and Rust versions (unlike `DefaultHasher`).
fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// ConfigMap-backed store of [`PersistedJob`]s.
#[derive(Clone)]
pub struct StateStore {
    api: Api<ConfigMap>,
    namespace: String,
    identity: String,
}

impl StateStore {
    /// A store writing ConfigMaps in `namespace` (the scaler's own), signing writes with
    /// `identity` (the pod name).
    pub fn new(client: Client, namespace: &str, identity: &str) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            namespace: namespace.into(),
            identity: identity.into(),
        }
    }

    /// Deterministic, DNS-1123-valid ConfigMap name of `job`'s state.
    pub fn config_map_name(job: &ScaledObjectRef) -> String {
        let readable: String = format!("{}-{}", job.namespace, job.name)
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .take(200)
            .collect();
        format!(
            "flink-keda-scaler-state-{readable}-{:016x}",
            fnv1a(&job.to_string())
        )
    }

    fn what(&self, job: &ScaledObjectRef) -> String {
        format!(
            "ConfigMap {}/{} ({job})",
            self.namespace,
            Self::config_map_name(job)
        )
    }

    /// Loads `job`'s state and its version; None when nothing was saved yet.
    pub async fn load(
        &self,
        job: &ScaledObjectRef,
    ) -> Result<Option<(PersistedJob, StateVersion)>, KubeError> {
        let name = Self::config_map_name(job);
        let Some(cm) = call(format!("get {}", self.what(job)), self.api.get_opt(&name)).await?
        else {
            return Ok(None);
        };
        let owner = cm
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(JOB_ANNOTATION));
        if owner.map(String::as_str) != Some(job.to_string().as_str()) {
            return Err(KubeError::InvalidObject {
                what: self.what(job),
                reason: format!("belongs to job {owner:?}"),
            });
        }
        let version = StateVersion(cm.metadata.resource_version.clone().unwrap_or_default());
        let json = cm.data.as_ref().and_then(|d| d.get(DATA_KEY));
        let state = match json {
            Some(s) => serde_json::from_str(s).map_err(|source| KubeError::Serialization {
                job: job.to_string(),
                source,
            })?,
            None => PersistedJob::default(),
        };
        Ok(Some((state, version)))
    }

    /// Saves `state`. `expected` is the version read by [`Self::load`] (None: the job has
    /// no state yet, create it). Returns the new version, or [`KubeError::Conflict`] when
    /// another writer saved in between.
    pub async fn save(
        &self,
        job: &ScaledObjectRef,
        state: &PersistedJob,
        expected: Option<&StateVersion>,
    ) -> Result<StateVersion, KubeError> {
        self.save_owned(job, state, expected, None).await
    }

    /// The ownerReference to `job`'s ScaledObject (uid `owner_uid`) when it lives in the
    /// store's namespace; None otherwise (cross-namespace owners are not allowed).
    pub fn owner_reference(
        &self,
        job: &ScaledObjectRef,
        owner_uid: Option<&str>,
    ) -> Option<OwnerReference> {
        let uid = owner_uid.filter(|u| !u.is_empty())?;
        (job.namespace == self.namespace).then(|| {
            let so = resources::scaled_object();
            OwnerReference {
                api_version: so.api_version,
                kind: so.kind,
                name: job.name.clone(),
                uid: uid.to_string(),
                ..Default::default()
            }
        })
    }

    /// [`Self::save`], with an ownerReference to the ScaledObject (uid `owner_uid`) when
    /// it lives in the store's namespace (see [`Self::owner_reference`]).
    pub async fn save_owned(
        &self,
        job: &ScaledObjectRef,
        state: &PersistedJob,
        expected: Option<&StateVersion>,
        owner_uid: Option<&str>,
    ) -> Result<StateVersion, KubeError> {
        let mut state = state.clone();
        state.updated_by = Some(self.identity.clone());
        state.updated_at = Some(Utc::now());
        let json = serde_json::to_string(&state).map_err(|source| KubeError::Serialization {
            job: job.to_string(),
            source,
        })?;
        let name = Self::config_map_name(job);
        let cm = ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(self.namespace.clone()),
                resource_version: expected.map(|v| v.0.clone()),
                labels: Some(BTreeMap::from([
                    (
                        "app.kubernetes.io/managed-by".to_string(),
                        "flink-keda-scaler".to_string(),
                    ),
                    (STATE_LABEL.to_string(), "true".to_string()),
                ])),
                annotations: Some(BTreeMap::from([(
                    JOB_ANNOTATION.to_string(),
                    job.to_string(),
                )])),
                owner_references: self.owner_reference(job, owner_uid).map(|o| vec![o]),
                ..Default::default()
            },
            data: Some(BTreeMap::from([(DATA_KEY.to_string(), json)])),
            ..Default::default()
        };
        let pp = PostParams::default();
        let saved = match expected {
            Some(_) => {
                call(
                    format!("replace {}", self.what(job)),
                    self.api.replace(&name, &pp, &cm),
                )
                .await?
            }
            None => {
                call(
                    format!("create {}", self.what(job)),
                    self.api.create(&pp, &cm),
                )
                .await?
            }
        };
        Ok(StateVersion(
            saved.metadata.resource_version.unwrap_or_default(),
        ))
    }

    /// Deletes the state ConfigMap `name` if it is still exactly the one seen (uid and
    /// resourceVersion preconditions). Ok(true) when deleted; Ok(false) when it changed
    /// in between (written again: kept) or is already gone.
    pub async fn delete_stale(
        &self,
        name: &str,
        uid: &str,
        resource_version: &str,
    ) -> Result<bool, KubeError> {
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                uid: Some(uid.to_string()),
                resource_version: Some(resource_version.to_string()),
            }),
            ..DeleteParams::default()
        };
        let op = format!("delete stale ConfigMap {}/{name}", self.namespace);
        match call(op, self.api.delete(name, &params)).await {
            Ok(_) => Ok(true),
            Err(e) if e.is_conflict() || e.status_code() == Some(404) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Load → `f` → save, retrying on conflict up to `attempts` times. `f` returns false
    /// to skip the write (nothing to change). Returns the state as stored.
    pub async fn update<F>(
        &self,
        job: &ScaledObjectRef,
        attempts: u32,
        mut f: F,
    ) -> Result<PersistedJob, KubeError>
    where
        F: FnMut(&mut PersistedJob) -> bool,
    {
        let mut last = None;
        for _ in 0..attempts.max(1) {
            let (mut state, version) = match self.load(job).await? {
                Some((s, v)) => (s, Some(v)),
                None => (PersistedJob::default(), None),
            };
            if !f(&mut state) {
                return Ok(state);
            }
            match self.save(job, &state, version.as_ref()).await {
                Ok(_) => return Ok(state),
                Err(e) if e.is_conflict() => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or(KubeError::Conflict {
            what: self.what(job),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names are valid DNS-1123 subdomains, stable and distinct for distinct jobs whose
    /// readable parts collide.
    #[test]
    fn config_map_names_are_valid_stable_and_distinct() {
        let a = StateStore::config_map_name(&ScaledObjectRef::new("ns", "a-b"));
        let b = StateStore::config_map_name(&ScaledObjectRef::new("ns-a", "b"));
        assert_ne!(a, b);
        assert_eq!(
            a,
            StateStore::config_map_name(&ScaledObjectRef::new("ns", "a-b"))
        );
        let long =
            StateStore::config_map_name(&ScaledObjectRef::new("n".repeat(63), "x".repeat(253)));
        for n in [&a, &b, &long] {
            assert!(n.len() <= 253, "{n}");
            assert!(n
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
        }
    }

    /// The JSON record round-trips, including the opaque rescale value.
    #[test]
    fn persisted_job_round_trips() {
        let mut job = PersistedJob {
            rescale: Some(serde_json::json!({"phase": "waiting", "target": 4})),
            ..Default::default()
        };
        assert_eq!(job.next_decision_id(), 1);
        assert_eq!(job.next_decision_id(), 2);
        let text = serde_json::to_string(&job).unwrap_or_default();
        let back: PersistedJob = serde_json::from_str(&text).unwrap_or_default();
        assert_eq!(back, job);
    }
}
