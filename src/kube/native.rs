//! A `FlinkDeployment` in **native** mode, scaled the way the Flink Kubernetes Operator
//! scales it in place itself (issue 14 §2): the scaler server-side-applies **only**
//! `spec.flinkConfiguration["pipeline.jobvertex-parallelism-overrides"]` (field manager
//! `flink-keda-scaler`, every vertex listed), the operator turns that SCALE diff into a
//! resource-requirements PUT, and the scaler verifies through Flink REST.
//!
//! Operator code this relies on (apache/flink-kubernetes-operator, the same from
//! release-1.10.0 to main 6e9caeb4):
//! * `AbstractFlinkSpec` (`@SpecDiff.Entry(prefix = "pipeline.jobvertex-parallelism-overrides",
//!   type = SCALE, mode = NATIVE)`): the key is a SCALE change in native mode only (an
//!   UPGRADE = restart in standalone), every other `flinkConfiguration` key outside
//!   `job.autoscaler*`, `kubernetes.operator*`, `parallelism.default` is an UPGRADE.
//! * `AbstractFlinkResourceReconciler#reconcile` → `#scale` → `NativeFlinkService#scale`:
//!   GET requirements, `(min(p, lower), p)` for every listed vertex, PUT; a vertex whose
//!   override is **removed**, or any exception in those REST calls, falls back to a full
//!   upgrade (so: list every vertex, patch only while the job is RUNNING).
//! * `NativeFlinkService#supportsInPlaceScaling`: `spec.job` set, `kubernetes.operator.job.
//!   upgrade.inplace-scaling.enabled` (default true), `flinkVersion` ≥ v1_18,
//!   `jobmanager.scheduler: adaptive`, job neither terminal nor RECONCILING.
//! * `AbstractFlinkResourceReconciler#applyAutoscaler` / `KubernetesScalingRealizer`: the
//!   operator's autoscaler overwrites the overrides on every reconcile (it fights us), and
//!   its memory tuning writes TaskManager memory (an UPGRADE).
//!
//! Server-side apply of the one key was measured on kube-apiserver v1.20.2 with the
//! operator's CRD (vendored in `manifests/crds/flink-flinkdeployments.yaml`): granular
//! ownership, idempotent, a second manager gets a 409 naming us (`tests/it/kube_native.rs`).
//! The operator itself cannot run here; the in-place verdict rests on the code above.

use std::{collections::BTreeMap, fmt};

use kube::{
    api::{Api, Patch, PatchParams},
    core::DynamicObject,
    Client,
};
use serde_json::{json, Value};

use super::{error::KubeError, resources, timeout::API_TIMEOUT};

/// The Flink key the scaler owns in a native FlinkDeployment.
pub const OVERRIDES_KEY: &str = "pipeline.jobvertex-parallelism-overrides";
/// The server-side-apply field manager.
pub const FIELD_MANAGER: &str = "flink-keda-scaler";

/// A set-up where patching the overrides would restart the job or fight a controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NativeRefusal {
    /// The field or Flink setting at fault (e.g. `spec.flinkConfiguration["job.autoscaler.enabled"]`).
    pub setting: String,
    /// Why the scaler refuses.
    pub reason: String,
}

impl fmt::Display for NativeRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.setting, self.reason)
    }
}

/// A flattened `spec.flinkConfiguration` value: a string map, or (operator ≥ 1.13) nested
/// YAML that `ConfigObjectNode#asFlatMap` flattens with dots.
fn flat_conf(fd: &DynamicObject) -> BTreeMap<String, String> {
    fn walk(prefix: &str, v: &Value, out: &mut BTreeMap<String, String>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&key, v, out);
                }
            }
            Value::String(s) => {
                out.insert(prefix.to_owned(), s.clone());
            }
            other => {
                out.insert(prefix.to_owned(), other.to_string());
            }
        }
    }
    let mut out = BTreeMap::new();
    if let Some(conf) = fd.data.pointer("/spec/flinkConfiguration") {
        walk("", conf, &mut out);
    }
    out
}

fn conf_field(key: &str) -> String {
    format!("spec.flinkConfiguration[\"{key}\"]")
}

fn is_true(v: Option<&String>) -> bool {
    v.is_some_and(|s| s.trim().eq_ignore_ascii_case("true"))
}

/// `flinkVersion` `v1_18` → (1, 18).
fn flink_version(v: &str) -> Option<(u32, u32)> {
    let (major, minor) = v.strip_prefix('v')?.split_once('_')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// Every reason to refuse scaling this native FlinkDeployment in place (empty: go).
pub fn native_refusals(fd: &DynamicObject) -> Vec<NativeRefusal> {
    let mut out = Vec::new();
    let mut refuse = |setting: String, reason: &str| {
        out.push(NativeRefusal {
            setting,
            reason: reason.to_owned(),
        });
    };
    let spec = |p: &str| fd.data.pointer(&format!("/spec/{p}"));
    if spec("job").is_none_or(Value::is_null) {
        refuse("spec.job".into(), "a session FlinkDeployment has no job to scale in place: the operator redeploys the session cluster on an overrides change (NativeFlinkService#supportsInPlaceScaling)");
    }
    if spec("taskManager/replicas")
        .and_then(Value::as_u64)
        .is_none()
    {
        refuse("spec.taskManager.replicas".into(), "must be set: KEDA's GET /scale answers 500 without it and never calls the scaler; pin it with minReplicaCount = maxReplicaCount = replicas");
    }
    match spec("flinkVersion")
        .and_then(Value::as_str)
        .and_then(flink_version)
    {
        Some(v) if v >= (1, 18) => {}
        _ => refuse(
            "spec.flinkVersion".into(),
            "in-place scaling needs Flink ≥ 1.18 (v1_18)",
        ),
    }
    if spec("job/upgradeMode").and_then(Value::as_str) == Some("stateless") {
        refuse("spec.job.upgradeMode".into(), "stateless: any fallback of the operator to a full upgrade would restart the job without its state; use last-state or savepoint");
    }
    let conf = flat_conf(fd);
    if !conf
        .get("jobmanager.scheduler")
        .is_some_and(|s| s.trim().eq_ignore_ascii_case("adaptive"))
    {
        refuse(conf_field("jobmanager.scheduler"), "must be adaptive: the operator scales in place only with the adaptive scheduler (Flink's default is Default)");
    }
    if conf
        .get("scheduler-mode")
        .is_some_and(|s| s.trim().eq_ignore_ascii_case("reactive"))
    {
        refuse(conf_field("scheduler-mode"), "reactive mode is for standalone application clusters; Flink refuses every requirements update in it");
    }
    if conf
        .get("kubernetes.operator.job.upgrade.inplace-scaling.enabled")
        .is_some_and(|s| s.trim().eq_ignore_ascii_case("false"))
    {
        refuse(
            conf_field("kubernetes.operator.job.upgrade.inplace-scaling.enabled"),
            "false: every overrides change would be a full upgrade (restart)",
        );
    }
    for key in [
        "job.autoscaler.enabled",
        "kubernetes.operator.job.autoscaler.enabled",
    ] {
        if is_true(conf.get(key)) {
            refuse(conf_field(key), "the operator's own autoscaler rewrites the overrides on every reconcile (it would fight the scaler); disable one of the two");
        }
    }
    if is_true(conf.get("job.autoscaler.memory.tuning.enabled")) {
        refuse(
            conf_field("job.autoscaler.memory.tuning.enabled"),
            "memory tuning writes TaskManager memory into the spec, an UPGRADE (restart)",
        );
    }
    if fd
        .data
        .pointer("/spec/flinkConfiguration/pipeline/jobvertex-parallelism-overrides")
        .is_some()
    {
        refuse(
            "spec.flinkConfiguration.pipeline.jobvertex-parallelism-overrides".into(),
            "the nested form of the key: the scaler owns the flat key; remove the nested one",
        );
    }
    out
}

/// The overrides value for `parallelism` (vertex id → parallelism): `id:p,id:p`, sorted
/// by vertex id so the same plan is always the same string (the operator compares the
/// values as strings).
pub fn overrides_value<K: fmt::Display>(parallelism: &BTreeMap<K, u32>) -> String {
    parallelism
        .iter()
        .map(|(v, p)| format!("{v}:{p}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// What an apply of the overrides did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverridesApplied {
    /// `metadata.generation` after the apply (unchanged: it was already in place).
    pub generation: Option<i64>,
    /// `metadata.resourceVersion` after the apply.
    pub resource_version: Option<String>,
    /// The value now in the spec.
    pub value: String,
    /// Server-side dry run: nothing was persisted.
    pub dry_run: bool,
}

/// Errors of [`apply_overrides`].
#[derive(Debug, thiserror::Error)]
pub enum OverridesError {
    /// Another field manager owns the key (server-side apply 409, `force: false`).
    #[error("{OVERRIDES_KEY} of FlinkDeployment {namespace}/{name} is owned by another writer; the scaler does not force it: {message}")]
    Conflict {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// The apiserver's message (names the other manager), capped.
        message: String,
    },
    /// Any other API failure.
    #[error(transparent)]
    Kube(#[from] KubeError),
}

/// Server-side-applies `value` as the FlinkDeployment's overrides key, and nothing else:
/// field manager [`FIELD_MANAGER`], never forced; a conflict with another manager is an
/// error naming it. Idempotent (the same value is no write). `dry_run` asks the apiserver
/// for a server-side dry run.
pub async fn apply_overrides(
    client: &Client,
    namespace: &str,
    name: &str,
    value: &str,
    dry_run: bool,
) -> Result<OverridesApplied, OverridesError> {
    let ar = resources::flink_deployment();
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &ar);
    let patch = json!({
        "apiVersion": ar.api_version,
        "kind": ar.kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"flinkConfiguration": {OVERRIDES_KEY: value}},
    });
    let mut params = PatchParams::apply(FIELD_MANAGER);
    params.dry_run = dry_run;
    let op = format!("apply {OVERRIDES_KEY} to FlinkDeployment {namespace}/{name}");
    let result = tokio::time::timeout(API_TIMEOUT, api.patch(name, &params, &Patch::Apply(&patch)))
        .await
        .map_err(|_| KubeError::Timeout {
            op: op.clone(),
            timeout: API_TIMEOUT,
        })?;
    let obj = match result {
        Ok(o) => o,
        Err(kube::Error::Api(status)) if status.code == 409 => {
            return Err(OverridesError::Conflict {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
                message: status.message.chars().take(512).collect(),
            })
        }
        Err(e) => return Err(KubeError::api(op, e).into()),
    };
    Ok(OverridesApplied {
        generation: obj.metadata.generation,
        resource_version: obj.metadata.resource_version,
        value: value.to_owned(),
        dry_run,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fd(spec: Value) -> DynamicObject {
        DynamicObject::new("job", &resources::flink_deployment()).data(json!({ "spec": spec }))
    }

    fn good() -> Value {
        json!({
            "mode": "native",
            "flinkVersion": "v1_20",
            "flinkConfiguration": {"jobmanager.scheduler": "adaptive"},
            "job": {"jarURI": "local:///j.jar", "upgradeMode": "last-state"},
            "taskManager": {"replicas": 2}
        })
    }

    fn settings(spec: Value) -> Vec<String> {
        native_refusals(&fd(spec))
            .into_iter()
            .map(|r| r.setting)
            .collect()
    }

    #[test]
    fn a_supported_native_deployment_has_no_refusal() {
        assert!(settings(good()).is_empty());
        // nested YAML (operator >= 1.13) is flattened like the operator does
        let mut s = good();
        s["flinkConfiguration"] = json!({"jobmanager": {"scheduler": "Adaptive"}});
        assert!(settings(s).is_empty());
    }

    #[test]
    fn every_restarting_or_fighting_set_up_is_refused_by_name() {
        let cases: Vec<(&str, Value, &str)> = vec![
            ("/job", Value::Null, "spec.job"),
            ("/taskManager", json!({}), "spec.taskManager.replicas"),
            ("/flinkVersion", json!("v1_17"), "spec.flinkVersion"),
            (
                "/job/upgradeMode",
                json!("stateless"),
                "spec.job.upgradeMode",
            ),
        ];
        for (path, v, setting) in cases {
            let mut s = good();
            *s.pointer_mut(path).unwrap() = v;
            assert_eq!(settings(s), vec![setting.to_string()], "{path}");
        }
        for (key, value) in [
            ("job.autoscaler.enabled", "true"),
            ("kubernetes.operator.job.autoscaler.enabled", "true"),
            ("job.autoscaler.memory.tuning.enabled", "true"),
            (
                "kubernetes.operator.job.upgrade.inplace-scaling.enabled",
                "false",
            ),
            ("scheduler-mode", "reactive"),
        ] {
            let mut s = good();
            s["flinkConfiguration"][key] = json!(value);
            assert_eq!(settings(s), vec![conf_field(key)], "{key}");
        }
        let mut s = good();
        s["flinkConfiguration"] = json!({});
        assert_eq!(settings(s), vec![conf_field("jobmanager.scheduler")]);
        let mut s = good();
        s["flinkConfiguration"]["pipeline"] = json!({"jobvertex-parallelism-overrides": "a:1"});
        assert_eq!(
            settings(s),
            vec!["spec.flinkConfiguration.pipeline.jobvertex-parallelism-overrides".to_string()]
        );
    }

    #[test]
    fn overrides_are_sorted_and_stable() {
        let m: BTreeMap<String, u32> = [("bb".to_string(), 3), ("aa".to_string(), 2)].into();
        assert_eq!(overrides_value(&m), "aa:2,bb:3");
    }
}
