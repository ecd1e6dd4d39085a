//! The kube adapter against a real kube-apiserver (v1.20) + etcd: CRDs from
//! `manifests/crds/`, discovery of Deployment and FlinkDeployment targets through the
//! watch caches and the `/scale` subresource, pod-deletion-cost, Events, and the shipped
//! RBAC (every adapter call runs as the `flink-keda-scaler` ServiceAccount).

use crate::support;

use std::time::{Duration, Instant};

use flink_keda_scaler::kube::{
    mark_deletion_costs, resources, Discovery, DiscoveryConfig, EventPublisher,
    FlinkDeploymentMode, KubeError, RescalePhase, TargetKind, TargetRef, TargetWarning,
    TaskManagerSlots, DELETION_COST_ANNOTATION, REST_URL_ANNOTATION,
};
use k8s_openapi::api::{apps::v1::Deployment, core::v1::Pod, events::v1::Event};
use kube::{
    api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams},
    core::DynamicObject,
    Client, ResourceExt,
};
use serde_json::json;
use support::kube::{apply_rbac, install_crds, namespace, KubeApiServer};

mod deletion_cost;
mod events;

fn deployment(name: &str, replicas: i32, rest_url: Option<&str>) -> Deployment {
    let mut d: Deployment = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name, "component": "taskmanager"}},
            "template": {
                "metadata": {"labels": {"app": name, "component": "taskmanager"}},
                "spec": {"containers": [{"name": "taskmanager", "image": "flink:2.0"}]}
            }
        }
    }))
    .expect("deployment json");
    if let Some(url) = rest_url {
        d.annotations_mut()
            .insert(REST_URL_ANNOTATION.into(), url.into());
    }
    d
}

fn flink_deployment(
    name: &str,
    mode: &str,
    conf: serde_json::Value,
    replicas: Option<u32>,
) -> DynamicObject {
    let mut spec = json!({
        "image": "flink:2.0",
        "flinkVersion": "v2_0",
        "mode": mode,
        "flinkConfiguration": conf,
        "job": {"jarURI": "local:///opt/flink/job.jar", "upgradeMode": "last-state"},
        "taskManager": {}
    });
    if let Some(r) = replicas {
        spec["taskManager"]["replicas"] = json!(r);
    }
    DynamicObject::new(name, &resources::flink_deployment()).data(json!({ "spec": spec }))
}

fn scaled_object(
    name: &str,
    api_version: &str,
    kind: &str,
    target: &str,
    metadata: serde_json::Value,
) -> DynamicObject {
    DynamicObject::new(name, &resources::scaled_object()).data(json!({
        "spec": {
            "scaleTargetRef": {"apiVersion": api_version, "kind": kind, "name": target},
            "minReplicaCount": 1,
            "maxReplicaCount": 10,
            "pollingInterval": 15,
            "triggers": [{"type": "external", "metricType": "AverageValue", "metadata": metadata}]
        }
    }))
}

fn pod(name: &str, app: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": app, "component": "taskmanager"}},
        "spec": {"containers": [{"name": "taskmanager", "image": "flink:2.0"}]}
    }))
    .expect("pod json")
}

async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

struct Setup {
    server: std::sync::Arc<KubeApiServer>,
    admin: Client,
    scaler: Client,
    ns: String,
}

async fn setup(prefix: &str) -> Option<Setup> {
    let server = KubeApiServer::shared()?;
    let admin = server.admin().await;
    install_crds(&admin).await;
    let ns = namespace(&admin, prefix).await;
    apply_rbac(&server, &admin, &ns).await;
    let scaler = server.scaler(&ns).await;
    Some(Setup {
        server,
        admin,
        scaler,
        ns,
    })
}

/// The CRDs install and are served; the scaler discovers a standalone TaskManager
/// Deployment and FlinkDeployments (standalone/reactive and native) from their
/// ScaledObjects through watch caches, reads replicas through `/scale`, and follows a
/// KEDA-style scale through the watch.
#[tokio::test]
async fn discovers_deployment_and_flink_deployment_targets() {
    let Some(Setup {
        server,
        admin,
        scaler,
        ns,
    }) = setup("disc").await
    else {
        return;
    };
    let t0 = Instant::now();
    let pp = PostParams::default();
    let deps = Api::<Deployment>::namespaced(admin.clone(), &ns);
    let fds =
        Api::<DynamicObject>::namespaced_with(admin.clone(), &ns, &resources::flink_deployment());
    let sos =
        Api::<DynamicObject>::namespaced_with(admin.clone(), &ns, &resources::scaled_object());
    deps.create(&pp, &deployment("tm", 2, Some("http://jm.example:8081/")))
        .await
        .expect("create deployment");
    deps.create(&pp, &deployment("tm-bare", 1, None))
        .await
        .expect("create deployment");
    fds.create(
        &pp,
        &flink_deployment(
            "reactive",
            "standalone",
            json!({"scheduler-mode": "reactive", "rest.port": "8082"}),
            Some(3),
        ),
    )
    .await
    .expect("create FlinkDeployment");
    fds.create(&pp, &flink_deployment("native", "native", json!({}), None))
        .await
        .expect("create FlinkDeployment");
    for so in [
        scaled_object(
            "so-dep",
            "apps/v1",
            "Deployment",
            "tm",
            json!({"scalerAddress": "s:9090"}),
        ),
        scaled_object(
            "so-bare",
            "apps/v1",
            "Deployment",
            "tm-bare",
            json!({"scalerAddress": "s:9090"}),
        ),
        scaled_object(
            "so-bare-meta",
            "apps/v1",
            "Deployment",
            "tm-bare",
            json!({"flinkRestUrl": "http://meta:8081"}),
        ),
        scaled_object(
            "so-fd",
            "flink.apache.org/v1beta1",
            "FlinkDeployment",
            "reactive",
            json!({}),
        ),
        scaled_object(
            "so-native",
            "flink.apache.org/v1beta1",
            "FlinkDeployment",
            "native",
            json!({}),
        ),
        scaled_object("so-sts", "apps/v1", "StatefulSet", "x", json!({})),
    ] {
        sos.create(&pp, &so).await.expect("create ScaledObject");
    }

    // The structural schemas are enforced: no target name, no triggers.
    let invalid = |r: Result<DynamicObject, kube::Error>, what: &str| match r {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 422, "{what}: {s:?}"),
        other => panic!("{what}: expected 422, got {other:?}"),
    };
    invalid(
        sos.create(
            &pp,
            &scaled_object("bad", "apps/v1", "Deployment", "", json!({})),
        )
        .await,
        "empty scaleTargetRef.name",
    );
    invalid(
        sos.create(
            &pp,
            &DynamicObject::new("bad2", &resources::scaled_object())
                .data(json!({"spec": {"scaleTargetRef": {"name": "tm"}}})),
        )
        .await,
        "no triggers",
    );
    // The operator's own CRD (vendored) does not bound replicas: 0 is accepted by the
    // apiserver and refused only in the operator's reconcile
    // (`DefaultValidator#validateTmReplicas`, "TaskManager replicas should not be
    // configured less than one.").
    fds.create(
        &pp,
        &flink_deployment("zero", "standalone", json!({}), Some(0)),
    )
    .await
    .expect("replicas 0 passes the operator's schema");

    let discovery = Discovery::start(scaler.clone(), Some(&ns));
    discovery
        .wait_ready(Duration::from_secs(15), true)
        .await
        .expect("caches ready");
    let ready = t0.elapsed();

    let dep = discovery
        .resolve(&ns, "so-dep", None)
        .expect("Deployment target");
    assert_eq!(dep.kind, TargetKind::Deployment);
    assert_eq!(dep.name, "tm");
    assert_eq!(dep.rest_url, "http://jm.example:8081");
    assert_eq!(dep.replicas, Some(2));
    assert_eq!(
        dep.pod_selector.as_deref(),
        Some("app=tm,component=taskmanager")
    );
    assert!(dep.in_place() && dep.warnings.is_empty());
    let over = discovery
        .resolve(&ns, "so-dep", Some("http://override:1"))
        .expect("override");
    assert_eq!(over.rest_url, "http://override:1");

    let bare = discovery.resolve(&ns, "so-bare", None);
    assert!(matches!(bare, Err(KubeError::NoRestUrl { .. })), "{bare:?}");
    let meta = discovery
        .resolve(&ns, "so-bare-meta", None)
        .expect("rest url from trigger metadata");
    assert_eq!(meta.rest_url, "http://meta:8081");

    let fd = discovery
        .resolve(&ns, "so-fd", None)
        .expect("FlinkDeployment target");
    assert_eq!(fd.kind, TargetKind::FlinkDeployment);
    assert_eq!(fd.rest_url, format!("http://reactive-rest.{ns}.svc:8082"));
    assert_eq!(fd.mode, Some(FlinkDeploymentMode::Standalone));
    assert_eq!(fd.replicas, Some(3));
    assert!(fd.in_place());
    assert_eq!(
        fd.pod_selector.as_deref(),
        Some("component=taskmanager,app=reactive")
    );

    let native = discovery
        .resolve(&ns, "so-native", None)
        .expect("native target");
    assert_eq!(native.rest_url, format!("http://native-rest.{ns}.svc:8081"));
    assert!(!native.in_place());
    assert_eq!(
        native.warnings,
        vec![
            TargetWarning::ReplicasUnset,
            TargetWarning::NativeModeUpgrade
        ]
    );

    let sts = discovery.resolve(&ns, "so-sts", None);
    assert!(
        matches!(sts, Err(KubeError::UnsupportedTarget { .. })),
        "{sts:?}"
    );
    let missing = discovery.resolve(&ns, "nope", None);
    assert!(
        matches!(missing, Err(KubeError::ScaledObjectNotFound { .. })),
        "{missing:?}"
    );

    // /scale reads, as the scaler.
    let s = discovery.read_scale(&dep).await.expect("deployments/scale");
    assert_eq!(s.spec_replicas, 2);
    let s = discovery
        .read_scale(&fd)
        .await
        .expect("flinkdeployments/scale");
    assert_eq!(
        (s.spec_replicas, s.status_replicas, s.selector.clone()),
        (3, 0, None)
    );
    // The operator publishes status.taskManager while RUNNING; /scale then has a selector.
    fds.patch_status(
        "reactive",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"taskManager": {"replicas": 3, "labelSelector": "component=taskmanager,app=reactive"}}})),
    )
    .await
    .expect("patch FlinkDeployment status");
    let s = discovery
        .read_scale(&fd)
        .await
        .expect("flinkdeployments/scale");
    assert_eq!(
        (s.status_replicas, s.selector.as_deref()),
        (3, Some("component=taskmanager,app=reactive"))
    );

    // KEDA scales through /scale (admin here); the watch cache follows without a GET.
    fds.patch_scale(
        "reactive",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 5}})),
    )
    .await
    .expect("scale FlinkDeployment");
    deps.patch_scale(
        "tm",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 4}})),
    )
    .await
    .expect("scale Deployment");
    eventually(
        "cache to follow /scale",
        Duration::from_secs(10),
        || async {
            let fd = discovery.resolve(&ns, "so-fd", None).ok()?;
            let dep = discovery.resolve(&ns, "so-dep", None).ok()?;
            (fd.replicas == Some(5) && dep.replicas == Some(4)).then_some(())
        },
    )
    .await;
    let generation = discovery
        .resolve(&ns, "so-fd", None)
        .expect("fd")
        .generation;
    assert!(
        generation > fd.generation,
        "a scale bumps the generation: {generation:?} vs {:?}",
        fd.generation
    );
    eprintln!(
        "discovery: caches ready in {:.3} s (apiserver start {:.2} s)",
        ready.as_secs_f64(),
        server.start_secs
    );
    assert_eq!(
        TargetRef {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            name: "tm".into()
        },
        flink_keda_scaler::kube::target::scale_target_ref(
            &sos.get("so-dep").await.expect("get so")
        )
        .expect("ref")
    );

    // With a Deployment label selector only labelled TaskManager Deployments are cached.
    deps.patch(
        "tm",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"component": "taskmanager"}}})),
    )
    .await
    .expect("label deployment");
    let selective = Discovery::start_with(
        scaler.clone(),
        &DiscoveryConfig {
            namespace: Some(ns.clone()),
            deployment_selector: Some("component=taskmanager".into()),
        },
    );
    selective
        .wait_ready(Duration::from_secs(15), false)
        .await
        .expect("selective caches ready");
    assert_eq!(
        selective
            .resolve(&ns, "so-dep", None)
            .expect("labelled")
            .name,
        "tm"
    );
    let unlabelled = selective.resolve(&ns, "so-bare-meta", None);
    assert!(
        matches!(unlabelled, Err(KubeError::TargetNotFound { .. })),
        "{unlabelled:?}"
    );
}

/// The shipped Role is sufficient (the other tests) and no broader: the scaler cannot
/// read Secrets, delete pods, scale targets, write ConfigMaps outside its namespace, or
/// get a ScaledObject directly (it only lists/watches).
#[tokio::test]
async fn rbac_forbids_everything_outside_the_role() {
    let Some(Setup {
        server: _server,
        admin,
        scaler,
        ns,
    }) = setup("rbac").await
    else {
        return;
    };
    let other = namespace(&admin, "rbac-other").await;
    let pp = PostParams::default();
    Api::<Pod>::namespaced(admin.clone(), &ns)
        .create(&pp, &pod("p", "x"))
        .await
        .expect("pod");
    Api::<Deployment>::namespaced(admin.clone(), &ns)
        .create(&pp, &deployment("d", 1, None))
        .await
        .expect("dep");
    let forbidden = |r: Result<(), kube::Error>, what: &str| match r {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 403, "{what}: {s:?}"),
        other => panic!("{what}: expected 403, got {other:?}"),
    };
    let secrets = Api::<k8s_openapi::api::core::v1::Secret>::namespaced(scaler.clone(), &ns);
    forbidden(
        secrets.list(&ListParams::default()).await.map(drop),
        "list secrets",
    );
    let pods = Api::<Pod>::namespaced(scaler.clone(), &ns);
    forbidden(
        pods.delete("p", &DeleteParams::default()).await.map(drop),
        "delete pod",
    );
    forbidden(pods.get("p").await.map(drop), "get pod");
    let deps = Api::<Deployment>::namespaced(scaler.clone(), &ns);
    forbidden(
        deps.patch_scale(
            "d",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 3}})),
        )
        .await
        .map(drop),
        "scale deployment",
    );
    forbidden(
        deps.patch(
            "d",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})),
        )
        .await
        .map(drop),
        "patch deployment",
    );
    let cms = Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(scaler.clone(), &other);
    let cm: k8s_openapi::api::core::v1::ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "x"}})).expect("cm");
    forbidden(
        cms.create(&pp, &cm).await.map(drop),
        "create configmap outside the scaler namespace",
    );
    forbidden(
        cms.list(&ListParams::default()).await.map(drop),
        "list configmaps outside the scaler namespace",
    );
    // delete: only in the scaler's namespace (stale state ConfigMaps, src/runtime/state_gc.rs)
    forbidden(
        cms.delete("x", &DeleteParams::default()).await.map(drop),
        "delete configmap outside the scaler namespace",
    );
    let sos =
        Api::<DynamicObject>::namespaced_with(scaler.clone(), &ns, &resources::scaled_object());
    forbidden(sos.get("x").await.map(drop), "get scaledobject");
    // ... while the granted verbs work as the scaler.
    assert!(deps.list(&ListParams::default()).await.is_ok());
    assert!(pods.list(&ListParams::default()).await.is_ok());
}
