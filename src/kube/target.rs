//! Scale-target parsing, pure: a ScaledObject's `scaleTargetRef` (with KEDA's defaults),
//! the target it designates (a TaskManager `Deployment` or a `FlinkDeployment`) turned
//! into a [`ScaleTarget`]: JobManager REST URL, TaskManager pod selector, replica count
//! and the set-up warnings. Plain functions over k8s-openapi / `DynamicObject` values,
//! tested without an API server; [`super::discovery`] feeds them from its watch caches.
//! See the [module docs](super) for the supported set-ups.

use std::collections::BTreeMap;

use k8s_openapi::{api::apps::v1::Deployment, api::autoscaling::v1::Scale};
use kube::{core::DynamicObject, Resource, ResourceExt};
use serde_json::Value;

use super::{error::KubeError, resources};

/// Annotation on the scale target carrying the JobManager REST URL.
pub const REST_URL_ANNOTATION: &str = "flink-keda-scaler.io/rest-url";
/// Trigger metadata key carrying the JobManager REST URL (overrides everything).
pub const REST_URL_METADATA_KEY: &str = "flinkRestUrl";
/// The operator's default REST port.
const DEFAULT_REST_PORT: u16 = 8081;

/// Kind of scale target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    /// `apps/v1 Deployment` of TaskManagers (Flink standalone).
    Deployment,
    /// `flink.apache.org FlinkDeployment` (Flink Kubernetes Operator).
    FlinkDeployment,
}

impl TargetKind {
    /// The Kubernetes kind.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Deployment => "Deployment",
            TargetKind::FlinkDeployment => "FlinkDeployment",
        }
    }
}

/// `spec.mode` of a FlinkDeployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlinkDeploymentMode {
    /// `native` (the operator's default): Flink manages TaskManager pods itself.
    Native,
    /// `standalone`: the operator runs a TaskManager Deployment.
    Standalone,
}

/// Something about the target that makes rescaling costly or unreliable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetWarning {
    /// FlinkDeployment in native mode: a replicas change is an UPGRADE (job restart).
    NativeModeUpgrade,
    /// FlinkDeployment in standalone mode without `scheduler-mode: reactive`: the
    /// operator falls back to a full upgrade on a replicas change.
    StandaloneNotReactive,
    /// `spec.taskManager.replicas` is unset: KEDA reads 0 replicas through `/scale`.
    ReplicasUnset,
}

impl TargetWarning {
    /// Stable label value.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetWarning::NativeModeUpgrade => "native_mode_upgrade",
            TargetWarning::StandaloneNotReactive => "standalone_not_reactive",
            TargetWarning::ReplicasUnset => "replicas_unset",
        }
    }

    /// Human explanation for logs and Events.
    pub fn message(self) -> &'static str {
        match self {
            TargetWarning::NativeModeUpgrade => "FlinkDeployment in native mode that the scaler cannot scale in place through pipeline.jobvertex-parallelism-overrides (see the refusals); a taskManager.replicas change is an UPGRADE that restarts the job",
            TargetWarning::StandaloneNotReactive => "FlinkDeployment in standalone mode without scheduler-mode: reactive: the operator turns a replicas change into a full upgrade",
            TargetWarning::ReplicasUnset => "spec.taskManager.replicas is unset: KEDA sees 0 replicas; set it explicitly",
        }
    }
}

/// The resolved scale target of one ScaledObject.
#[derive(Debug, Clone, PartialEq)]
pub struct ScaleTarget {
    /// Namespace of the ScaledObject and its target.
    pub namespace: String,
    /// Name of the ScaledObject.
    pub scaled_object: String,
    /// UID of the ScaledObject (for Events).
    pub scaled_object_uid: Option<String>,
    /// Target kind.
    pub kind: TargetKind,
    /// `apiVersion` of the target.
    pub api_version: String,
    /// Target name.
    pub name: String,
    /// Target UID (for Events).
    pub uid: Option<String>,
    /// Target `metadata.generation` when cached (changes with every spec change).
    pub generation: Option<i64>,
    /// JobManager REST base URL, without trailing slash.
    pub rest_url: String,
    /// Desired TaskManagers from the cached spec (what `/scale` reports as spec.replicas).
    pub replicas: Option<u32>,
    /// Label selector of the TaskManager pods, when known.
    pub pod_selector: Option<String>,
    /// FlinkDeployment mode (None for a Deployment).
    pub mode: Option<FlinkDeploymentMode>,
    /// Set-up warnings (log them, and publish them as Events once).
    pub warnings: Vec<TargetWarning>,
    /// Native mode: why the scaler refuses to scale it through
    /// `pipeline.jobvertex-parallelism-overrides` (empty: it does, [`super::native`]).
    pub native_refusals: Vec<super::native::NativeRefusal>,
}

impl ScaleTarget {
    /// True for a native FlinkDeployment the scaler scales through the operator's
    /// overrides key (no refusal): KEDA is pinned at `replicas`, the scaler answers it.
    pub fn native_overrides(&self) -> bool {
        self.mode == Some(FlinkDeploymentMode::Native) && self.native_refusals.is_empty()
    }

    /// True when a replicas change does not restart the job.
    pub fn in_place(&self) -> bool {
        !self.warnings.iter().any(|w| {
            matches!(
                w,
                TargetWarning::NativeModeUpgrade | TargetWarning::StandaloneNotReactive
            )
        })
    }
}

/// A read of the `/scale` subresource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScaleReading {
    /// `spec.replicas` (what KEDA/HPA set).
    pub spec_replicas: u32,
    /// `status.replicas`.
    pub status_replicas: u32,
    /// `status.selector` (empty for a FlinkDeployment whose job is not RUNNING).
    pub selector: Option<String>,
}

/// `scaleTargetRef` of a ScaledObject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetRef {
    /// `apiVersion` (KEDA defaults it to `apps/v1`).
    pub api_version: String,
    /// `kind` (KEDA defaults it to `Deployment`).
    pub kind: String,
    /// `name`.
    pub name: String,
}

/// Reads `spec.scaleTargetRef` (with KEDA's defaults) from a ScaledObject.
pub fn scale_target_ref(so: &DynamicObject) -> Result<TargetRef, KubeError> {
    let what = || {
        format!(
            "ScaledObject {}/{}",
            so.namespace().unwrap_or_default(),
            so.name_any()
        )
    };
    let r = so
        .data
        .pointer("/spec/scaleTargetRef")
        .ok_or_else(|| KubeError::InvalidObject {
            what: what(),
            reason: "spec.scaleTargetRef missing".into(),
        })?;
    let s = |k: &str| r.get(k).and_then(Value::as_str).filter(|v| !v.is_empty());
    let name = s("name").ok_or_else(|| KubeError::InvalidObject {
        what: what(),
        reason: "spec.scaleTargetRef.name missing".into(),
    })?;
    Ok(TargetRef {
        api_version: s("apiVersion").unwrap_or("apps/v1").to_string(),
        kind: s("kind").unwrap_or("Deployment").to_string(),
        name: name.to_string(),
    })
}

/// The `flinkRestUrl` metadata key of the ScaledObject's first trigger that has one.
pub fn rest_url_from_triggers(so: &DynamicObject) -> Option<String> {
    so.data
        .pointer("/spec/triggers")?
        .as_array()?
        .iter()
        .filter_map(|t| t.pointer(&format!("/metadata/{REST_URL_METADATA_KEY}")))
        .filter_map(Value::as_str)
        .find(|v| !v.trim().is_empty())
        .map(|v| v.trim().trim_end_matches('/').to_string())
}

impl TargetRef {
    /// The supported kind this reference designates (`apps` Deployment or
    /// `flink.apache.org` FlinkDeployment, any version).
    pub fn target_kind(&self) -> Result<TargetKind, KubeError> {
        let group = self.api_version.split('/').next().unwrap_or_default();
        match (self.kind.as_str(), group) {
            ("Deployment", "apps") => Ok(TargetKind::Deployment),
            ("FlinkDeployment", resources::FLINK_GROUP) => Ok(TargetKind::FlinkDeployment),
            _ => Err(KubeError::UnsupportedTarget {
                api_version: self.api_version.clone(),
                kind: self.kind.clone(),
            }),
        }
    }
}

/// The REST URL that wins over the target's annotation and the Service convention:
/// `rest_override` (the trigger's `flinkRestUrl`, passed by the runtime), else the
/// ScaledObject's own trigger metadata.
pub fn rest_url_override(so: &DynamicObject, rest_override: Option<&str>) -> Option<String> {
    rest_override
        .map(|s| s.trim_end_matches('/').to_string())
        .or_else(|| rest_url_from_triggers(so))
}

/// A `/scale` subresource read as a [`ScaleReading`] (negative counts read as 0).
pub fn scale_reading(scale: Scale) -> ScaleReading {
    let clamp = |v: i32| u32::try_from(v).unwrap_or(0);
    ScaleReading {
        spec_replicas: scale.spec.and_then(|s| s.replicas).map_or(0, clamp),
        status_replicas: scale.status.as_ref().map_or(0, |s| clamp(s.replicas)),
        selector: scale
            .status
            .and_then(|s| s.selector)
            .filter(|s| !s.is_empty()),
    }
}

fn annotation_url<K: Resource>(obj: &K) -> Option<String> {
    obj.meta()
        .annotations
        .as_ref()?
        .get(REST_URL_ANNOTATION)
        .map(|v| v.trim().trim_end_matches('/').to_string())
        .filter(|v| !v.is_empty())
}

fn base(so: &DynamicObject, r: &TargetRef, kind: TargetKind) -> ScaleTarget {
    ScaleTarget {
        namespace: so.namespace().unwrap_or_default(),
        scaled_object: so.name_any(),
        scaled_object_uid: so.uid(),
        kind,
        api_version: r.api_version.clone(),
        name: r.name.clone(),
        uid: None,
        generation: None,
        rest_url: String::new(),
        replicas: None,
        pod_selector: None,
        mode: None,
        warnings: Vec::new(),
        native_refusals: Vec::new(),
    }
}

/// Resolves a Deployment target (pure). `rest_override` is the trigger's `flinkRestUrl`.
pub fn target_from_deployment(
    so: &DynamicObject,
    r: &TargetRef,
    dep: &Deployment,
    rest_override: Option<&str>,
) -> Result<ScaleTarget, KubeError> {
    let mut t = base(so, r, TargetKind::Deployment);
    t.uid = dep.uid();
    t.generation = dep.metadata.generation;
    t.rest_url = rest_override
        .map(str::to_string)
        .or_else(|| annotation_url(dep))
        .ok_or_else(|| KubeError::NoRestUrl {
            namespace: t.namespace.clone(),
            name: t.name.clone(),
        })?;
    let spec = dep.spec.as_ref();
    t.replicas = Some(
        spec.and_then(|s| s.replicas)
            .map_or(1, |r| u32::try_from(r).unwrap_or(0)),
    );
    t.pod_selector = spec
        .and_then(|s| s.selector.match_labels.as_ref())
        .filter(|m| !m.is_empty())
        .map(selector_from_labels);
    Ok(t)
}

/// `rest.port` from `spec.flinkConfiguration` (a string map, or a nested object in newer
/// operator versions).
fn rest_port(fd: &DynamicObject) -> Option<u16> {
    let conf = fd.data.pointer("/spec/flinkConfiguration")?;
    let v = conf
        .get("rest.port")
        .or_else(|| conf.pointer("/rest/port"))?;
    match v {
        Value::String(s) => s.trim().parse().ok(),
        Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
        _ => None,
    }
}

fn flink_conf<'a>(fd: &'a DynamicObject, key: &str) -> Option<&'a str> {
    fd.data
        .pointer("/spec/flinkConfiguration")?
        .get(key)?
        .as_str()
}

/// Resolves a FlinkDeployment target (pure).
pub fn target_from_flink_deployment(
    so: &DynamicObject,
    r: &TargetRef,
    fd: &DynamicObject,
    rest_override: Option<&str>,
) -> Result<ScaleTarget, KubeError> {
    let mut t = base(so, r, TargetKind::FlinkDeployment);
    t.uid = fd.uid();
    t.generation = fd.metadata.generation;
    let port = rest_port(fd).unwrap_or(DEFAULT_REST_PORT);
    t.rest_url = rest_override
        .map(str::to_string)
        .or_else(|| annotation_url(fd))
        .unwrap_or_else(|| format!("http://{}-rest.{}.svc:{port}", t.name, t.namespace));
    let replicas = fd
        .data
        .pointer("/spec/taskManager/replicas")
        .and_then(Value::as_u64);
    t.replicas = replicas.map(|r| u32::try_from(r).unwrap_or(u32::MAX));
    if replicas.is_none() {
        t.warnings.push(TargetWarning::ReplicasUnset);
    }
    t.pod_selector = Some(
        fd.data
            .pointer("/status/taskManager/labelSelector")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .unwrap_or_else(|| format!("component=taskmanager,app={}", t.name)),
    );
    let mode = match fd.data.pointer("/spec/mode").and_then(Value::as_str) {
        Some(m) if m.eq_ignore_ascii_case("standalone") => FlinkDeploymentMode::Standalone,
        _ => FlinkDeploymentMode::Native,
    };
    t.mode = Some(mode);
    match mode {
        FlinkDeploymentMode::Native => {
            t.native_refusals = super::native::native_refusals(fd);
            if !t.native_refusals.is_empty() {
                t.warnings.push(TargetWarning::NativeModeUpgrade);
            }
        }
        FlinkDeploymentMode::Standalone => {
            let reactive = flink_conf(fd, "scheduler-mode")
                .is_some_and(|m| m.eq_ignore_ascii_case("reactive"));
            if !reactive {
                t.warnings.push(TargetWarning::StandaloneNotReactive);
            }
        }
    }
    Ok(t)
}

/// Sorted `k=v` pairs of a label map, comma separated (a label selector).
pub fn selector_from_labels(labels: &BTreeMap<String, String>) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn so(spec: Value) -> DynamicObject {
        let mut o =
            DynamicObject::new("so", &resources::scaled_object()).data(json!({ "spec": spec }));
        o.metadata.namespace = Some("ns".into());
        o
    }

    fn fd(spec: Value) -> DynamicObject {
        let mut o =
            DynamicObject::new("job", &resources::flink_deployment()).data(json!({ "spec": spec }));
        o.metadata.namespace = Some("ns".into());
        o
    }

    /// KEDA defaults a missing apiVersion/kind to apps/v1 Deployment; a missing name is invalid.
    #[test]
    fn scale_target_ref_defaults_like_keda() {
        let r = scale_target_ref(&so(json!({"scaleTargetRef": {"name": "tm"}}))).ok();
        assert_eq!(
            r,
            Some(TargetRef {
                api_version: "apps/v1".into(),
                kind: "Deployment".into(),
                name: "tm".into()
            })
        );
        let bad = scale_target_ref(&so(json!({"scaleTargetRef": {"kind": "Deployment"}})));
        assert!(matches!(bad, Err(KubeError::InvalidObject { .. })));
    }

    /// Deployments of group `apps` and FlinkDeployments of any version are supported;
    /// anything else (a StatefulSet, a Deployment of another group) is refused by name.
    #[test]
    fn target_kind_by_kind_and_group() {
        let r = |api_version: &str, kind: &str| TargetRef {
            api_version: api_version.into(),
            kind: kind.into(),
            name: "t".into(),
        };
        assert_eq!(
            r("apps/v1", "Deployment").target_kind().ok(),
            Some(TargetKind::Deployment)
        );
        assert_eq!(
            r("flink.apache.org/v1beta1", "FlinkDeployment")
                .target_kind()
                .ok(),
            Some(TargetKind::FlinkDeployment)
        );
        for (v, k) in [("apps/v1", "StatefulSet"), ("example.com/v1", "Deployment")] {
            assert!(matches!(
                r(v, k).target_kind(),
                Err(KubeError::UnsupportedTarget { .. })
            ));
        }
    }

    /// The first non-empty `flinkRestUrl` of any trigger is used, without trailing slash.
    #[test]
    fn rest_url_from_trigger_metadata() {
        let o = so(json!({"triggers": [
            {"type": "cpu", "metadata": {"value": "50"}},
            {"type": "external", "metadata": {"flinkRestUrl": " http://jm:8081/ "}}
        ]}));
        assert_eq!(
            rest_url_from_triggers(&o).as_deref(),
            Some("http://jm:8081")
        );
        assert_eq!(rest_url_from_triggers(&so(json!({"triggers": []}))), None);
        assert_eq!(
            rest_url_override(&o, Some("http://given:8081/")).as_deref(),
            Some("http://given:8081")
        );
        assert_eq!(
            rest_url_override(&o, None).as_deref(),
            Some("http://jm:8081")
        );
    }

    /// `rest.port` is read as a string, a number or a nested key; the mode decides the warnings.
    #[test]
    fn flink_deployment_port_mode_and_warnings() {
        let r = TargetRef {
            api_version: "flink.apache.org/v1beta1".into(),
            kind: "FlinkDeployment".into(),
            name: "job".into(),
        };
        let s = so(json!({}));
        let cases = [
            (
                json!({"mode": "standalone", "flinkConfiguration": {"rest.port": 9000, "scheduler-mode": "REACTIVE"}, "taskManager": {"replicas": 2}}),
                9000,
                vec![],
            ),
            (
                json!({"mode": "standalone", "flinkConfiguration": {"rest": {"port": "9001"}}, "taskManager": {"replicas": 2}}),
                9001,
                vec![TargetWarning::StandaloneNotReactive],
            ),
            (
                json!({"flinkConfiguration": {}, "taskManager": {"replicas": 1}}),
                8081,
                vec![TargetWarning::NativeModeUpgrade],
            ),
            // native, scaled through the overrides key: no warning
            (
                json!({"flinkVersion": "v1_20", "flinkConfiguration": {"jobmanager.scheduler": "adaptive"}, "job": {"jarURI": "local:///j.jar"}, "taskManager": {"replicas": 1}}),
                8081,
                vec![],
            ),
        ];
        for (spec, port, warnings) in cases {
            let t = target_from_flink_deployment(&s, &r, &fd(spec), None).ok();
            let t = t.as_ref();
            assert_eq!(
                t.map(|t| t.rest_url.clone()),
                Some(format!("http://job-rest.ns.svc:{port}"))
            );
            assert_eq!(t.map(|t| t.warnings.clone()), Some(warnings.clone()));
            assert_eq!(t.map(ScaleTarget::in_place), Some(warnings.is_empty()));
        }
    }
}
