//! Type-erased descriptions of the custom resources we read (KEDA ScaledObject, Flink
//! operator FlinkDeployment). We use [`kube::core::DynamicObject`] instead of generated
//! types: we read a handful of fields and must tolerate every CRD version in the wild.

use kube::core::ApiResource;

/// `keda.sh/v1alpha1 ScaledObject`.
pub fn scaled_object() -> ApiResource {
    ApiResource {
        group: "keda.sh".into(),
        version: "v1alpha1".into(),
        api_version: "keda.sh/v1alpha1".into(),
        kind: "ScaledObject".into(),
        plural: "scaledobjects".into(),
    }
}

/// `flink.apache.org/v1beta1 FlinkDeployment`.
pub fn flink_deployment() -> ApiResource {
    ApiResource {
        group: "flink.apache.org".into(),
        version: "v1beta1".into(),
        api_version: "flink.apache.org/v1beta1".into(),
        kind: "FlinkDeployment".into(),
        plural: "flinkdeployments".into(),
    }
}

/// API group of FlinkDeployments (any version is accepted in `scaleTargetRef`).
pub const FLINK_GROUP: &str = "flink.apache.org";
