//! The namespaced install on the real kube-apiserver: the built binary runs with a real
//! ServiceAccount token (TokenRequest API) bound ONLY to the namespaced Roles of the
//! shipped files (`manifests/rbac.yaml` without its ClusterRole/ClusterRoleBinding,
//! `manifests/examples/rbac-namespaced.yaml` in the watched namespace) and
//! `kubernetes.namespaces: [<watched>]`. Proven: it discovers, leads, persists, PUTs,
//! patches pods and emits Events; a ScaledObject in a namespace it does not watch is
//! refused and nothing there is touched; and the apiserver's audit log shows every
//! request of the ServiceAccount was namespaced (own or watched namespace), none was
//! Forbidden, and each pod patch was a merge patch of the pod-deletion-cost annotation
//! only.

use super::*;

use std::collections::BTreeSet;

use support::kube::{apply_namespaced_rbac, service_account_token};

/// `(verb, resource[/subresource], namespace)` of one audited request.
type Access = (String, String, String);

fn access(e: &serde_json::Value) -> Access {
    let o = &e["objectRef"];
    let mut resource = o["resource"]
        .as_str()
        .unwrap_or("<non-resource>")
        .to_string();
    if let Some(sub) = o["subresource"].as_str() {
        resource = format!("{resource}/{sub}");
    }
    (
        e["verb"].as_str().unwrap_or_default().to_string(),
        resource,
        o["namespace"].as_str().unwrap_or("<cluster>").to_string(),
    )
}

fn namespaced_config(prom_url: &str, watched: &str) -> String {
    config(prom_url).replace(
        "kubernetes:\n  enabled: true\n",
        &format!("kubernetes:\n  enabled: true\n  namespaces: [{watched}]\n"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaced_install_works_with_namespaced_roles_only() {
    // Busy 0.5 at target utilization 0.5: no decision yet; 3 TaskManagers registered
    // for 2 TaskManagers' worth of slots, so the third pod is marked idle.
    let Some(Base {
        server,
        admin,
        job,
        exporter,
        prom,
    }) = base(0.5).await
    else {
        return;
    };
    let own = namespace(&admin, "nsi-scaler").await;
    let watched = namespace(&admin, "nsi-flink").await;
    let other = namespace(&admin, "nsi-other").await;
    let applied = apply_namespaced_rbac(&admin, &own, &[&watched]).await;
    eprintln!("applied: {applied:?}");
    let user = format!("system:serviceaccount:{own}:{SERVICE_ACCOUNT}");
    let token = service_account_token(&admin, &own, SERVICE_ACCOUNT).await;
    let dir = support::tempdir("fks-kube-namespaced-");
    let kubeconfig = server.kubeconfig_with_token(&token, dir.path());
    let flink = FakeFlink::start(&job, vec![tm_ip(0), tm_ip(1), tm_ip(2)], false).await;
    create_scale_target(&admin, &watched, &flink.url(), &job.job_name).await;
    create_tm_pod(&admin, &watched, 2).await;
    create_scale_target(&admin, &other, &flink.url(), &job.job_name).await;
    prom.wait_for_job(&job.job_id).await;
    let sa = Client::try_from(
        kube::Config::from_custom_kubeconfig(
            kube::config::Kubeconfig::read_from(&kubeconfig).expect("kubeconfig"),
            &Default::default(),
        )
        .await
        .expect("config"),
    )
    .expect("sa client");
    // The RBAC authorizer learns bindings through an informer: wait until they apply.
    eventually("namespaced RBAC effective", Duration::from_secs(10), || {
        let api = Api::<Deployment>::namespaced(sa.clone(), &watched);
        async move { api.list(&ListParams::default()).await.ok().map(|_| ()) }
    })
    .await;
    // The token has no cluster-wide permission: a cluster-wide list is Forbidden.
    let cluster_wide = Api::<DynamicObject>::all_with(sa.clone(), &resources::scaled_object())
        .list(&ListParams::default())
        .await;
    assert!(
        matches!(&cluster_wide, Err(kube::Error::Api(s)) if s.code == 403),
        "a cluster-wide list must be Forbidden for this ServiceAccount: {cluster_wide:?}"
    );

    // Only the scaler's requests from here on are audited below.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = server.audit_of(&user).len();
    let cfg = namespaced_config(&prom.url(), &watched);
    let scaler = Scaler::start(dir.path(), "scaler-ns", &own, &kubeconfig, &cfg).await;
    let client = scaler.client().await;
    // Discovers the target in the watched namespace and answers what the job needs.
    let r = object_ref(&watched, &job.job_name);
    let first = eventually("GetMetrics answered", Duration::from_secs(20), || {
        let (client, r) = (&client, &r);
        async move { get_metrics(client, r).await.ok() }
    })
    .await;
    assert_eq!(first, 2.0, "2 TaskManagers' worth of slots");
    // A ScaledObject in a namespace it does not watch is refused, naming the namespaces.
    let refused = get_metrics(&client, &object_ref(&other, &job.job_name))
        .await
        .expect_err("a ScaledObject outside kubernetes.namespaces");
    assert!(
        refused.message().contains(&watched) && refused.message().contains(&other),
        "{refused:?}"
    );
    eprintln!("outside the watched namespaces: {refused:?}");
    // Leads (the Lease in its own namespace).
    eventually("Lease held", Duration::from_secs(15), || {
        let (admin, own) = (admin.clone(), own.clone());
        async move { (lease_holder(&admin, &own).await.as_deref() == Some("scaler-ns")).then_some(()) }
    })
    .await;
    // Patches the pods of the watched namespace: the idle one cheapest.
    let costs = eventually("deletion costs", Duration::from_secs(20), || {
        let (admin, watched) = (admin.clone(), watched.clone());
        async move {
            let c = deletion_costs(&admin, &watched).await;
            c.values().all(Option::is_some).then_some(c)
        }
    })
    .await;
    eprintln!("pod-deletion-cost: {costs:?}");
    assert!(costs["tm-2"] < costs["tm-0"] && costs["tm-2"] < costs["tm-1"]);

    // A scale-up: PUT, persisted claim in its own namespace, Event in the watched one.
    export_load(&job, &exporter, 500.0, 0.9);
    eventually("the PUT", Duration::from_secs(40), || {
        let flink = &flink;
        async move { (flink.put_count().await >= 1).then_some(()) }
    })
    .await;
    let (admin2, own2, watched2) = (admin.clone(), own.clone(), watched.clone());
    let doc = eventually("state persisted", Duration::from_secs(10), || {
        let (admin, own, watched) = (admin2.clone(), own2.clone(), watched2.clone());
        async move {
            StateStore::new(admin, &own, "test")
                .load(&core::ScaledObjectRef::new(watched, SO))
                .await
                .ok()
                .flatten()
                .map(|(d, _)| d)
                .filter(|d| d.decision.as_ref().is_some_and(|d| d.applied))
        }
    })
    .await;
    assert_eq!(doc.updated_by.as_deref(), Some("scaler-ns"));
    let started =
        event_with_reason(&admin, &watched, "RescaleStarted", Duration::from_secs(10)).await;
    assert_eq!(started.reporting_instance.as_deref(), Some("scaler-ns"));
    // Nothing in the namespace it does not watch was touched.
    assert!(deletion_costs(&admin, &other)
        .await
        .values()
        .all(Option::is_none));
    assert!(events_on_scaled_object(&admin, &other).await.is_empty());
    assert_eq!(flink.put_count().await, 1, "one PUT, for the watched job");

    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_audit(&server.audit_of(&user)[before..], &user, &own, &watched);
    for bad in [
        "Forbidden",
        "forbidden",
        "watch failed",
        "decision not claimed",
        "cannot save state",
        "cannot load persisted state",
        "cannot write the rescale Event",
        "cannot update pod-deletion-cost",
    ] {
        assert!(
            !scaler.log().contains(bad),
            "`{bad}` in the log:\n{}",
            scaler.log()
        );
    }
}

/// Every request of the ServiceAccount in the audit log: namespaced in `own` or
/// `watched`, none refused, and the expected set of accesses present; pod patches carry
/// only the pod-deletion-cost annotation. (apiserver 1.20 writes no audit event for the
/// kube-rs watch streams; kube-runtime's watcher lists before it watches, through the
/// same `Api` and so in the same scope, so the audited lists stand for the watches too,
/// and a watch outside the Roles would be Forbidden and logged by the scaler as "watch
/// failed", which the caller checks for.)
fn assert_audit(events: &[serde_json::Value], user: &str, own: &str, watched: &str) {
    assert!(!events.is_empty(), "no audit events for {user}");
    let mut seen = BTreeSet::new();
    for e in events {
        let a = access(e);
        let code = e["responseStatus"]["code"].as_i64().unwrap_or_default();
        let uri = e["requestURI"].as_str().unwrap_or_default();
        assert!(
            a.2 == own || a.2 == watched,
            "a request outside the scaler's and the watched namespace: {a:?} {uri}"
        );
        assert_ne!(code, 403, "Forbidden: {a:?} {uri}");
        if a.0 == "patch" && a.1 == "pods" {
            let body = &e["requestObject"];
            assert_eq!(
                body.as_object()
                    .map(|o| o.keys().cloned().collect::<Vec<_>>()),
                Some(vec!["metadata".to_string()]),
                "{body}"
            );
            let annotations = body["metadata"]["annotations"]
                .as_object()
                .expect("annotations");
            assert_eq!(
                annotations.keys().collect::<Vec<_>>(),
                [DELETION_COST_ANNOTATION],
                "{body}"
            );
            assert_eq!(
                body["metadata"].as_object().map(|m| m.len()),
                Some(1),
                "{body}"
            );
        }
        seen.insert(a);
    }
    eprintln!("audited accesses of {user}:");
    for a in &seen {
        eprintln!("  {} {} in {}", a.0, a.1, a.2);
    }
    let want = |verb: &str, resource: &str, ns: &str| {
        (verb.to_string(), resource.to_string(), ns.to_string())
    };
    for w in [
        want("list", "scaledobjects", watched),
        want("list", "deployments", watched),
        want("list", "flinkdeployments", watched),
        want("list", "pods", watched),
        want("patch", "pods", watched),
        want("create", "events", watched),
        want("create", "leases", own),
        want("create", "configmaps", own),
        want("update", "configmaps", own),
        want("list", "configmaps", own),
    ] {
        assert!(seen.contains(&w), "expected {w:?} among {seen:?}");
    }
}
