//! The native FlinkDeployment path against a real kube-apiserver (v1.20) with the Flink
//! Kubernetes Operator's CRD (release-1.15.0, vendored in `manifests/crds/`): the scaler's
//! server-side apply (as its ServiceAccount, through `manifests/rbac.yaml`) touches only
//! `spec.flinkConfiguration["pipeline.jobvertex-parallelism-overrides"]`, keeps every other
//! key and its owner, is idempotent (no write, same resourceVersion), bumps the generation
//! on a new value (what the operator's reconcile reacts to), survives the user's
//! client-side re-apply of their manifest, and a conflicting writer gets a 409 naming the
//! scaler (and the scaler, second, gets a conflict error instead of forcing). A dry run
//! changes nothing. The operator does not run here: that the SCALE diff becomes an
//! in-place PUT rests on `NativeFlinkService#scale` (see `src/kube/native.rs`).

use crate::support;

use flink_keda_scaler::kube::{
    apply_overrides, native_refusals, resources, OverridesError, FIELD_MANAGER, OVERRIDES_KEY,
};
use kube::{
    api::{Api, Patch, PatchParams, PostParams},
    core::DynamicObject,
};
use serde_json::json;
use support::kube::{apply_rbac, install_crds, namespace, KubeApiServer};

fn native_deployment(name: &str) -> DynamicObject {
    DynamicObject::new(name, &resources::flink_deployment()).data(json!({
        "spec": {
            "image": "flink:1.20",
            "flinkVersion": "v1_20",
            "mode": "native",
            "serviceAccount": "flink",
            "flinkConfiguration": {
                "jobmanager.scheduler": "adaptive",
                "taskmanager.numberOfTaskSlots": "2",
                "pipeline.max-parallelism": "128"
            },
            "jobManager": {"resource": {"memory": "1024m", "cpu": 0.5}},
            "taskManager": {"replicas": 2, "resource": {"memory": "1024m", "cpu": 0.5}},
            "job": {"jarURI": "local:///opt/flink/job.jar", "upgradeMode": "last-state", "parallelism": 2}
        }
    }))
}

/// The managers that own `f:<key>` under `spec.flinkConfiguration`.
fn owners(obj: &DynamicObject, key: &str) -> Vec<String> {
    let field = format!("f:{key}");
    obj.metadata
        .managed_fields
        .iter()
        .flatten()
        .filter(|m| {
            m.fields_v1.as_ref().is_some_and(|f| {
                f.0.pointer("/f:spec/f:flinkConfiguration")
                    .and_then(|c| c.get(&field))
                    .is_some()
            })
        })
        .filter_map(|m| m.manager.clone())
        .collect()
}

#[tokio::test]
async fn server_side_apply_touches_only_the_overrides_key() {
    let Some(server) = KubeApiServer::shared() else {
        return;
    };
    let admin = server.admin().await;
    install_crds(&admin).await;
    let ns = namespace(&admin, "native").await;
    apply_rbac(&server, &admin, &ns).await;
    let scaler = server.scaler(&ns).await;
    let ar = resources::flink_deployment();
    let api: Api<DynamicObject> = Api::namespaced_with(admin.clone(), &ns, &ar);
    let user = PostParams {
        field_manager: Some("user".into()),
        ..PostParams::default()
    };
    let created = api
        .create(&user, &native_deployment("job"))
        .await
        .expect("create the FlinkDeployment with the operator's CRD");
    assert!(
        native_refusals(&created).is_empty(),
        "{:?}",
        native_refusals(&created)
    );
    let gen0 = created.metadata.generation;

    // dry run: the answer shows the patch, nothing is persisted
    let dry = apply_overrides(&scaler, &ns, "job", "aa:2,bb:3", true)
        .await
        .expect("dry run");
    assert!(dry.dry_run);
    let after_dry = api.get("job").await.expect("get");
    assert_eq!(
        after_dry.metadata.resource_version,
        created.metadata.resource_version
    );

    // the apply: one key, owned by the scaler; everything else unchanged and still the user's
    let first = apply_overrides(&scaler, &ns, "job", "aa:2,bb:3", false)
        .await
        .expect("apply as the scaler's ServiceAccount");
    assert_eq!(first.generation, gen0.map(|g| g + 1));
    let obj = api.get("job").await.expect("get");
    let conf = &obj.data["spec"]["flinkConfiguration"];
    assert_eq!(conf[OVERRIDES_KEY], "aa:2,bb:3");
    assert_eq!(conf["jobmanager.scheduler"], "adaptive");
    assert_eq!(conf["taskmanager.numberOfTaskSlots"], "2");
    assert_eq!(obj.data["spec"]["taskManager"]["replicas"], 2);
    assert_eq!(owners(&obj, OVERRIDES_KEY), vec![FIELD_MANAGER.to_string()]);
    assert_eq!(
        owners(&obj, "jobmanager.scheduler"),
        vec!["user".to_string()]
    );

    // idempotent: the same value is no write
    let again = apply_overrides(&scaler, &ns, "job", "aa:2,bb:3", false)
        .await
        .expect("apply again");
    assert_eq!(again.generation, first.generation);
    assert_eq!(again.resource_version, first.resource_version);

    // a new value: a new generation (the operator's SCALE diff)
    let second = apply_overrides(&scaler, &ns, "job", "aa:4,bb:4", false)
        .await
        .expect("apply a new value");
    assert_eq!(second.generation, first.generation.map(|g| g + 1));

    // the user re-applies their manifest (without the key): the scaler's key stays
    let mut mine = native_deployment("job");
    mine.data["spec"]["flinkConfiguration"]["state.backend.type"] = json!("rocksdb");
    api.patch(
        "job",
        &PatchParams::apply("user"),
        &Patch::Apply(&json!({
            "apiVersion": ar.api_version, "kind": ar.kind,
            "metadata": {"name": "job"}, "spec": mine.data["spec"].clone()
        })),
    )
    .await
    .expect("the user's apply");
    let obj = api.get("job").await.expect("get");
    assert_eq!(
        obj.data["spec"]["flinkConfiguration"][OVERRIDES_KEY],
        "aa:4,bb:4"
    );
    assert_eq!(
        obj.data["spec"]["flinkConfiguration"]["state.backend.type"],
        "rocksdb"
    );

    // a conflicting writer: its apply is refused naming the scaler ...
    let err = api
        .patch(
            "job",
            &PatchParams::apply("gitops"),
            &Patch::Apply(&json!({
                "apiVersion": ar.api_version, "kind": ar.kind, "metadata": {"name": "job"},
                "spec": {"flinkConfiguration": {OVERRIDES_KEY: "aa:1,bb:1"}}
            })),
        )
        .await
        .expect_err("a second manager conflicts");
    assert!(err.to_string().contains(FIELD_MANAGER), "{err}");
    // ... and once it forces the key, the scaler does not force it back: an error naming it
    api.patch(
        "job",
        &PatchParams::apply("gitops").force(),
        &Patch::Apply(&json!({
            "apiVersion": ar.api_version, "kind": ar.kind, "metadata": {"name": "job"},
            "spec": {"flinkConfiguration": {OVERRIDES_KEY: "aa:1,bb:1"}}
        })),
    )
    .await
    .expect("forced apply");
    let err = apply_overrides(&scaler, &ns, "job", "aa:4,bb:4", false)
        .await
        .expect_err("the scaler meets the other owner");
    match &err {
        OverridesError::Conflict { message, .. } => {
            assert!(message.contains("gitops"), "{message}");
        }
        other => panic!("expected a conflict, got {other}"),
    }
    let obj = api.get("job").await.expect("get");
    assert_eq!(
        obj.data["spec"]["flinkConfiguration"][OVERRIDES_KEY],
        "aa:1,bb:1"
    );
}
