//! The Kubernetes objects of the runtime test, read and written as the admin: the Lease
//! holder, the persisted state, the ScaledObject's Events, the pods' deletion costs, and
//! the scale target (Deployment + ScaledObject + TaskManager pods with their IPs).

use super::*;

pub(super) async fn lease_holder(admin: &Client, ns: &str) -> Option<String> {
    Api::<Lease>::namespaced(admin.clone(), ns)
        .get_opt(LEASE)
        .await
        .ok()
        .flatten()
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
}

pub(super) async fn state(admin: &Client, ns: &str) -> Option<PersistedJob> {
    StateStore::new(admin.clone(), ns, "test")
        .load(&core::ScaledObjectRef::new(ns, SO))
        .await
        .expect("load state")
        .map(|(doc, _)| doc)
}

pub(super) async fn events_on_scaled_object(admin: &Client, ns: &str) -> Vec<Event> {
    Api::<Event>::namespaced(admin.clone(), ns)
        .list(&ListParams::default())
        .await
        .expect("list events")
        .items
        .into_iter()
        .filter(|e| {
            e.regarding.as_ref().is_some_and(|r| {
                r.kind.as_deref() == Some("ScaledObject") && r.name.as_deref() == Some(SO)
            })
        })
        .collect()
}

pub(super) async fn deletion_costs(admin: &Client, ns: &str) -> BTreeMap<String, Option<i32>> {
    Api::<Pod>::namespaced(admin.clone(), ns)
        .list(&ListParams::default().labels(&format!("app={APP}")))
        .await
        .expect("list pods")
        .items
        .iter()
        .map(|p| {
            (
                p.name_any(),
                p.annotations()
                    .get(DELETION_COST_ANNOTATION)
                    .and_then(|v| v.parse().ok()),
            )
        })
        .collect()
}

pub(super) fn tm_ip(i: usize) -> String {
    format!("10.0.0.{}", i + 1)
}

/// A TaskManager pod `tm-<i>` with IP `10.0.0.<i+1>` (no kubelet: the status is set here).
pub(super) async fn create_tm_pod(admin: &Client, ns: &str, i: usize) {
    let pods = Api::<Pod>::namespaced(admin.clone(), ns);
    let name = format!("tm-{i}");
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": APP, "component": "taskmanager"}},
        "spec": {"containers": [{"name": "taskmanager", "image": "flink:2.0"}]}
    }))
    .expect("pod");
    pods.create(&PostParams::default(), &pod)
        .await
        .expect("create pod");
    pods.patch_status(
        &name,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"phase": "Running", "podIP": tm_ip(i), "podIPs": [{"ip": tm_ip(i)}]}})),
    )
    .await
    .expect("pod status");
}

pub(super) async fn create_scale_target(admin: &Client, ns: &str, flink_url: &str, job_name: &str) {
    let pp = PostParams::default();
    let dep: Deployment = serde_json::from_value(json!({
        "metadata": {"name": DEPLOYMENT,
            "annotations": {"flink-keda-scaler.io/rest-url": flink_url}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": APP}},
            "template": {
                "metadata": {"labels": {"app": APP, "component": "taskmanager"}},
                "spec": {"containers": [{"name": "taskmanager", "image": "flink:2.0"}]}
            }
        }
    }))
    .expect("deployment");
    Api::<Deployment>::namespaced(admin.clone(), ns)
        .create(&pp, &dep)
        .await
        .expect("create Deployment");
    let so = DynamicObject::new(SO, &resources::scaled_object()).data(json!({
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": DEPLOYMENT},
            "minReplicaCount": 1,
            "maxReplicaCount": 10,
            "pollingInterval": 15,
            "triggers": [{"type": "external", "metricType": "AverageValue",
                "metadata": {"scalerAddress": "flink-keda-scaler:50051",
                    "jobName": job_name, "minTaskManagers": "1", "maxTaskManagers": "10"}}]
        }
    }));
    Api::<DynamicObject>::namespaced_with(admin.clone(), ns, &resources::scaled_object())
        .create(&pp, &so)
        .await
        .expect("create ScaledObject");
    for i in 0..2 {
        create_tm_pod(admin, ns, i).await;
    }
}
