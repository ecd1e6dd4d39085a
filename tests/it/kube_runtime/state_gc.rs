//! Stale state ConfigMaps on the real kube-apiserver: two built binaries (leader and
//! follower, the shipped RBAC, a real ServiceAccount token) with
//! `kubernetes.staleStateGrace: 2s`. The state of a deleted ScaledObject in another
//! namespace is collected by the leader (logged, counted) and never by the follower; a
//! live ScaledObject's state is kept; a ScaledObject deleted and re-created within the
//! grace keeps its state. The adapter's pieces: the ownerReference a state gets when its
//! ScaledObject lives in the scaler's namespace, and the preconditioned delete that keeps
//! a state written again since it was seen.

use super::*;

use support::kube::service_account_token;

const GRACE_CONFIG: &str = "  staleStateGrace: 2s\n";

async fn create_scaled_object(admin: &Client, ns: &str, name: &str) -> String {
    let so = DynamicObject::new(name, &resources::scaled_object()).data(json!({
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "x"},
            "triggers": [{"type": "external", "metadata": {"scalerAddress": "s:1"}}]}
    }));
    Api::<DynamicObject>::namespaced_with(admin.clone(), ns, &resources::scaled_object())
        .create(&PostParams::default(), &so)
        .await
        .expect("create ScaledObject")
        .uid()
        .expect("uid")
}

async fn delete_scaled_object(admin: &Client, ns: &str, name: &str) {
    Api::<DynamicObject>::namespaced_with(admin.clone(), ns, &resources::scaled_object())
        .delete(name, &Default::default())
        .await
        .expect("delete ScaledObject");
}

async fn state_exists(store: &StateStore, ns: &str, name: &str) -> bool {
    store
        .load(&core::ScaledObjectRef::new(ns, name))
        .await
        .expect("load")
        .is_some()
}

fn collected_total(metrics: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with("flink_keda_scaler_state_configmaps_collected_total "))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_collects_stale_state_follower_never_live_and_recreated_kept() {
    let Some(server) = KubeApiServer::shared() else {
        return;
    };
    let admin = server.admin().await;
    install_crds(&admin).await;
    let own = namespace(&admin, "gc-scaler").await;
    let apps = namespace(&admin, "gc-apps").await;
    apply_rbac(&server, &admin, &own).await;
    let store = StateStore::new(admin.clone(), &own, "test");
    let doc = PersistedJob::default();
    for name in ["gone", "live", "again"] {
        create_scaled_object(&admin, &apps, name).await;
        store
            .save(&core::ScaledObjectRef::new(&apps, name), &doc, None)
            .await
            .expect("save state");
    }

    // The adapter: an owner only in the scaler's own namespace ...
    let local_uid = create_scaled_object(&admin, &own, "local").await;
    let local = core::ScaledObjectRef::new(&own, "local");
    store
        .save_owned(&local, &doc, None, Some(&local_uid))
        .await
        .expect("save owned");
    let cm = Api::<ConfigMap>::namespaced(admin.clone(), &own)
        .get(&StateStore::config_map_name(&local))
        .await
        .expect("state ConfigMap");
    let owners = cm.metadata.owner_references.unwrap_or_default();
    assert_eq!(owners.len(), 1, "{owners:?}");
    assert_eq!(
        (
            owners[0].kind.as_str(),
            owners[0].name.as_str(),
            owners[0].uid.as_str()
        ),
        ("ScaledObject", "local", local_uid.as_str())
    );
    assert!(
        store
            .owner_reference(&core::ScaledObjectRef::new(&apps, "gone"), Some("u"))
            .is_none(),
        "never a cross-namespace owner"
    );
    // ... and a preconditioned delete that keeps a state written since it was seen.
    let seen = Api::<ConfigMap>::namespaced(admin.clone(), &own)
        .get(&StateStore::config_map_name(&local))
        .await
        .expect("state ConfigMap");
    let (name, uid) = (seen.name_any(), seen.uid().expect("uid"));
    let old_rv = seen.resource_version().expect("rv");
    let (_, v) = store.load(&local).await.expect("load").expect("state");
    store
        .save_owned(&local, &doc, Some(&v), Some(&local_uid))
        .await
        .expect("write again");
    assert!(!store
        .delete_stale(&name, &uid, &old_rv)
        .await
        .expect("delete"));
    assert!(
        state_exists(&store, &own, "local").await,
        "written again: kept"
    );

    // The runtime: leader first, then a follower.
    let token = service_account_token(&admin, &own, SERVICE_ACCOUNT).await;
    let dir = support::tempdir("fks-kube-state-gc-");
    let kubeconfig = server.kubeconfig_with_token(&token, dir.path());
    let cfg = config("http://127.0.0.1:1").replace(
        "kubernetes:\n  enabled: true\n",
        &format!("kubernetes:\n  enabled: true\n{GRACE_CONFIG}"),
    );
    let leader = Scaler::start(dir.path(), "gc-a", &own, &kubeconfig, &cfg).await;
    eventually("gc-a leads", Duration::from_secs(15), || {
        let (admin, own) = (admin.clone(), own.clone());
        async move { (lease_holder(&admin, &own).await.as_deref() == Some("gc-a")).then_some(()) }
    })
    .await;
    let follower = Scaler::start(dir.path(), "gc-b", &own, &kubeconfig, &cfg).await;

    delete_scaled_object(&admin, &apps, "gone").await;
    delete_scaled_object(&admin, &apps, "again").await;
    create_scaled_object(&admin, &apps, "again").await; // re-created within the grace
    eventually("the stale state collected", Duration::from_secs(20), || {
        let (store, apps) = (&store, &apps);
        async move { (!state_exists(store, apps, "gone").await).then_some(()) }
    })
    .await;
    // Two more grace periods: the live and the re-created ScaledObject keep their state.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(
        state_exists(&store, &apps, "live").await,
        "a live ScaledObject's state is kept"
    );
    assert!(
        state_exists(&store, &apps, "again").await,
        "a re-created ScaledObject's state is kept"
    );
    assert!(state_exists(&store, &own, "local").await);
    assert!(leader.log().contains("stale state ConfigMap collected"));
    assert_eq!(collected_total(&leader.metrics().await), Some(1.0));
    assert_eq!(follower.leader_gauge().await, Some(0.0));
    assert!(
        !follower.log().contains("stale state ConfigMap"),
        "a follower never deletes"
    );
    assert_eq!(collected_total(&follower.metrics().await), Some(0.0));
    for s in [&leader, &follower] {
        for bad in ["Forbidden", "forbidden", "cannot delete a stale state"] {
            assert!(!s.log().contains(bad), "{}: `{bad}` in its log", s.identity);
        }
    }
}
